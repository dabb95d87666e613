"""Faults at the edges of a commit: a full disk, a store replaced under an open one.

Each test here failed on the code before its fix (issue 12): a commit that sqlite rolled back on
a full disk was taken for landed, an append to a new table on a full disk raised ``NodeError``,
and a store wiped by another process after its ``LOCK`` was deleted took a commit silently.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import colvault
from colvault.engine import seam as seam_mod
from colvault.engine import writer as writer_mod


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _committed(path: str) -> tuple[dict[str, object], np.ndarray]:
    """The root attributes and the rows of /t as a fresh store object sees them."""
    with colvault.open(path) as store:
        assert store.verify().ok
        return dict(store.attrs), store["/t"].cols.x[:]


class _FullAtCommit(seam_mod.Seam):
    """What sqlite does when the WAL cannot grow at COMMIT: it rolls the transaction back
    itself and reports SQLITE_FULL."""

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")


def test_a_commit_sqlite_rolled_back_is_not_taken_for_landed(store_path: str) -> None:
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "f8"}).append({"x": np.arange(10.0)})
        store.attrs["kept"] = 1
    store = colvault.open(store_path, "a")
    try:
        store.attrs["lost"] = 2
        store["/t"].append({"x": [99.0]})
        with seam_mod.installed(_FullAtCommit()), pytest.raises(colvault.CommitError) as info:
            store.commit()
        assert isinstance(_cause(info.value, sqlite3.OperationalError), sqlite3.OperationalError)
        # Dropped, as documented, in this object and for every other.
        assert not store.has_pending
        assert "lost" not in store.attrs
        assert len(store["/t"]) == 10
        assert _committed(store_path)[0] == {"kept": 1}
        # The next commit works.
        store.attrs["next"] = 3
        store.commit()
    finally:
        store.close()
    attrs, x = _committed(store_path)
    assert attrs == {"kept": 1, "next": 3}
    np.testing.assert_array_equal(x, np.arange(10.0))


def _fill(path: Path) -> None:
    """Write zeros into ``path`` until the disk refuses."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    try:
        while True:
            os.write(fd, bytes(512))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


def test_a_real_full_disk_at_commit(tmpfs: Path) -> None:
    path = str(tmpfs / "s.colvault")
    with colvault.open(path, "w") as store:
        store.create_table("/t", {"x": "f8"}).append({"x": np.arange(1000.0)})
        store.attrs["kept"] = 1
    store = colvault.open(path, "a")
    try:
        _fill(tmpfs / "filler")
        store.attrs["lost"] = "x" * 200_000  # more than any page sqlite has free
        with pytest.raises(colvault.CommitError, match="disk is full") as info:
            store.commit()
        assert isinstance(_cause(info.value, sqlite3.Error), sqlite3.Error)
        assert "lost" not in store.attrs and not store.has_pending
        os.unlink(tmpfs / "filler")
        store.attrs["next"] = 2
        store["/t"].append({"x": [1000.0]})
        store.commit()
    finally:
        store.close()
    attrs, x = _committed(path)
    assert attrs == {"kept": 1, "next": 2}
    np.testing.assert_array_equal(x, np.arange(1001.0))


class _FullAtSegmentWrite(seam_mod.Seam):
    def write(self, fd: int, data: bytes | memoryview, offset: int, path: str) -> None:
        if path.endswith(".seg"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        super().write(fd, data, offset, path)


def test_a_full_disk_while_appending_to_a_new_table_names_it(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "RUN_BYTES", 1)  # each chunk written as it is encoded
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "f8"}).append({"x": np.arange(10.0)})
    store = colvault.open(store_path, "a")
    try:
        new = store.create_table("/runs/new", {"x": "f8"}, chunk_rows=100)
        with seam_mod.installed(_FullAtSegmentWrite()), pytest.raises(colvault.CommitError) as info:
            new.append({"x": np.arange(1000.0)})  # full chunks are written at once
        message = str(info.value)
        assert "/runs/new" in message and "disk is full" in message, message
        full = info.value.__cause__
        assert isinstance(full, OSError) and full.errno == errno.ENOSPC
        assert "/runs/new" not in store and not store.has_pending
        store.create_table("/runs/new", {"x": "f8"}, chunk_rows=100).append(
            {"x": np.arange(1000.0)}
        )
        store.commit()
        assert len(store["/runs/new"]) == 1000
    finally:
        store.close()
    np.testing.assert_array_equal(_committed(store_path)[1], np.arange(10.0))


def test_a_store_wiped_after_its_lock_was_deleted_refuses_the_commit(store_path: str) -> None:
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "f8"}).append({"x": np.arange(10.0)})
    first = colvault.open(store_path, "a")
    try:
        first["/t"].append({"x": [10.0]})
        os.unlink(os.path.join(store_path, "LOCK"))
        # flock belongs to the open file: a second store object excludes the first exactly as
        # another process would, and with the LOCK gone, mode "w" gets it and wipes the store.
        with colvault.open(store_path, "w") as second:
            second.create_table("/t", {"x": "f8"}).append({"x": [-1.0]})
        with pytest.raises(colvault.CommitError, match="no longer the store"):
            first.commit()
        assert not first.has_pending
    finally:
        first.close()
    np.testing.assert_array_equal(_committed(store_path)[1], [-1.0])
