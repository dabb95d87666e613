"""A full disk (issue 12): what a caller is told, and what the store holds afterwards.

:class:`FullDiskSeam` raises ``ENOSPC`` from step k of an operation on, at every call of the
I/O seam that needs space, until the disk is freed.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import colvault
from colvault.engine import seam as seam_mod

from . import _rows

SEGMENT_BYTES = 16 << 10  # small segments: rollovers during appends, commits and compact()
CHUNK_CSV = 500
CHUNK_NEW = 500


# -- the seam that fills the disk --------------------------------------------------------------


def _full_error(path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _sqlite_full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    exc.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    return exc


class FullDiskSeam(seam_mod.Seam):
    """Real I/O until step ``fail_at`` of the counted operation; from there on the disk is full:
    every call that needs space fails with ``ENOSPC`` (the sqlite ``COMMIT`` with
    ``SQLITE_FULL``, after rolling the transaction back as sqlite does), until ``free()``.
    Shrinking a file (``truncate``) needs no space and works."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.counting = False
        self.full = False
        self.ops: list[str] = []  # the seam calls of the counted operation, in order

    @contextmanager
    def counted(self) -> Iterator[None]:
        self.counting, self.ops = True, []
        try:
            yield
        finally:
            self.counting = False

    def free(self) -> None:
        self.full, self.fail_at = False, None

    def _needs_space(self, op: str, path: str) -> bool:
        """Count the call; whether it fails for want of space."""
        if self.counting:
            if len(self.ops) == self.fail_at:
                self.full = True
            self.ops.append(f"{op} {path}")
        return self.full

    def create_file(self, path: str) -> int:
        if self._needs_space("create_file", path):
            raise _full_error(path)
        return super().create_file(path)

    def mkdir(self, path: str) -> None:
        if self._needs_space("mkdir", path):
            raise _full_error(path)
        super().mkdir(path)

    def link(self, src: str, dst: str) -> None:
        if self._needs_space("link", dst):
            raise _full_error(dst)
        super().link(src, dst)

    def write(self, fd: int, data: bytes | memoryview, offset: int, path: str) -> None:
        if self._needs_space("write", path):
            raise _full_error(path)
        super().write(fd, data, offset, path)

    def fsync(self, fd: int, path: str) -> None:
        if self._needs_space("fsync", path):
            raise _full_error(path)  # delayed allocation: the space is found missing at fsync
        super().fsync(fd, path)

    def fsync_dir(self, path: str) -> None:
        if self._needs_space("fsync_dir", path):
            raise _full_error(path)
        super().fsync_dir(path)

    def commit(self, conn: sqlite3.Connection) -> None:
        if self._needs_space("commit", "catalog.sqlite"):
            conn.execute("ROLLBACK")  # what sqlite does when the WAL cannot grow at COMMIT
            raise _sqlite_full()
        super().commit(conn)


# -- the data -----------------------------------------------------------------------------------

SCHEMA_CSV = {"i": "i8", "x": "f8", "s": "category"}


def _csv_values(start: int, stop: int) -> dict[str, np.ndarray]:
    i = np.arange(start, stop, dtype=np.int64)
    return {
        "i": i,
        "x": i * 0.25 - 100.0,
        "s": np.array([f"st{j % 5}" for j in range(start, stop)]),
    }


def _write_csv(path: Path, start: int, stop: int) -> Path:
    v = _csv_values(start, stop)
    lines = ["i,x,s"] + [
        f"{i},{float(x)!r},{s}" for i, x, s in zip(v["i"], v["x"], v["s"], strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


#: Where each table's values come from: ``VALUES[path](start, stop)``.
VALUES: dict[str, Callable[[int, int], dict[str, np.ndarray]]] = {
    "/t": _rows.values_a,
    "/u": _rows.values_b,
    "/csv": _csv_values,
    "/g/new": _rows.values_b,
    "/g/csvnew": _csv_values,
}


@dataclass(frozen=True)
class State:
    rows: dict[str, int]  # table path -> committed rows (values: ``VALUES[path](0, rows)``)
    tag: str  # the root attribute "state"

    def plus(self, tag: str, more: dict[str, int]) -> State:
        """This state with ``more`` rows in some tables, and the tag ``tag``."""
        rows = dict(self.rows)
        for path, m in more.items():
            rows[path] = rows.get(path, 0) + m
        return State(rows, tag)


#: The template: /t holds a short chunk between full ones and /u's segments a retired short chunk
#: (compact() re-cuts both); a removed table left its segments behind (compact() deletes them).
A = State({"/t": 2500, "/u": 760, "/csv": 600}, "A")


def _build_template(path: Path) -> None:
    with colvault.open(path, "w", segment_bytes=SEGMENT_BYTES) as store:
        t = store.create_table("/t", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
        u = store.create_table("/u", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        c = store.create_table("/csv", SCHEMA_CSV, chunk_rows=CHUNK_CSV)
        gone = store.create_table("/gone", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        t.append(_rows.values_a(0, 300))
        u.append(_rows.values_b(0, 500))
        gone.append(_rows.values_b(0, 2000))
        store.commit()
        t.append(_rows.values_a(300, 2500))  # full chunks behind the short one of 300 rows
        u.append(_rows.values_b(500, 760))
        c.append(_csv_values(0, 600))
        store.commit()
        store.remove("/gone")
        store.attrs["state"] = A.tag


# -- checks -------------------------------------------------------------------------------------


def _check_object(store: colvault.Store, state: State, where: str) -> None:
    """The open store object holds exactly ``state`` and nothing pending."""
    assert not store.has_pending, f"{where}: pending changes left"
    tables = sorted(n.path for n in store.walk() if isinstance(n, colvault.Table))
    assert tables == sorted(state.rows), f"{where}: tables {tables}"
    got = store.attrs["state"]
    assert got == state.tag, f"{where}: state {got!r}, not {state.tag!r}"
    for tpath, n in state.rows.items():
        t = store[tpath]
        assert len(t) == n, f"{where}: {tpath} has {len(t)} rows, not {n}"
        assert t.pending_rows == 0, f"{where}: {tpath} has pending rows"
        _rows.check_prefix(tpath, t.read(), VALUES[tpath](0, n), f"{where}: ")


def _check(path: str, state: State, where: str) -> None:
    """Reopened in fresh objects, the store holds exactly ``state`` and passes ``verify()``."""
    for mode in ("a", "r"):  # "a" runs recovery first
        at = f"{where}, reopened with mode {mode!r}"
        with colvault.open(path, mode) as store, store.snapshot():
            report = store.verify()
            assert report.ok, f"{at}: verify() found damage:\n{report}"
            _check_object(store, state, at)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fulldisk")
    _build_template(root / "a.colvault")
    return root


def _fresh(template: Path, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    shutil.copytree(template / "a.colvault", path)
    return str(path)


def test_compact_on_a_full_disk_says_so(template: Path, tmp_path: Path) -> None:
    """``compact()`` told a full disk by the bare errno text ("failed ([Errno 28] No space
    left on device: ...)") where a commit says "the disk is full"."""
    path = _fresh(template, tmp_path, "compact")
    rec = FullDiskSeam(fail_at=0)
    with seam_mod.installed(rec), colvault.open(path, "a") as store:
        with rec.counted(), pytest.raises(colvault.CommitError) as info:
            store.compact()
        rec.free()
        assert "the disk is full" in str(info.value), info.value
        cause = info.value.__cause__
        assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC, repr(cause)
        _check_object(store, A, "compact() on a full disk: the store object")
    _check(path, A, "compact() on a full disk")
