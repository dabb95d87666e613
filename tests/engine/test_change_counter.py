"""The caches behind cheap calls (``len(t)`` without a catalog statement, the node index, the
manifests, parsed conditions) are dropped by every change that can make them wrong: this
process's commits and aborts, other processes' commits, renames and removals, and they never
leak into or out of ``as_of`` stores or ``snapshot()`` blocks."""

from __future__ import annotations

import numpy as np
import pytest

import colvault
from colvault.engine import changes
from colvault.errors import NodeError

from ._spawn import Child


def _make(path: str, n: int = 10) -> None:
    with colvault.open(path, "w") as store:
        store.create_table("/t", {"x": "i8"}).append({"x": np.arange(n, dtype=np.int64)})
        store.commit()


def _warm(t: colvault.Table) -> None:
    """Fill every cache a read goes through, twice (the second call takes the fast path)."""
    for _ in range(2):
        len(t)
        t[0]
        t.count_where("x >= 0")
        t.read_where("x >= 0")


def test_this_process_commits_are_seen(store_path: str) -> None:
    _make(store_path)
    with colvault.open(store_path, "a") as store:
        t = store["/t"]
        _warm(t)
        t.append({"x": np.arange(10, 15, dtype=np.int64)})
        assert len(t) == 10  # pending rows are not committed rows
        store.commit()
        assert len(t) == 15
        assert t.count_where("x >= 0") == 15
        assert t[14]["x"] == 14
        np.testing.assert_array_equal(t.read_where("x >= 12")["x"], [12, 13, 14])


def test_another_store_object_commits_are_seen(store_path: str) -> None:
    _make(store_path)
    with colvault.open(store_path, "r") as reader, colvault.open(store_path, "a") as writer:
        t = reader["/t"]
        _warm(t)
        writer["/t"].append({"x": np.arange(10, 13, dtype=np.int64)})
        writer.commit()
        assert len(t) == 13
        assert t.count_where("x >= 10") == 3


def test_abort_leaves_what_was_committed(store_path: str) -> None:
    _make(store_path)
    with colvault.open(store_path, "a") as store:
        t = store["/t"]
        _warm(t)
        t.append({"x": np.arange(10, 99, dtype=np.int64)})
        store.remove("/t")
        store.create_table("/u", {"x": "i8"})
        store.abort()
        assert "/u" not in store and "/t" in store
        t = store["/t"]
        assert len(t) == 10 and t.count_where("x >= 0") == 10
        t.append({"x": np.arange(10, 12, dtype=np.int64)})
        store.commit()
        assert len(t) == 12


def test_renames_and_removals_in_this_process(store_path: str) -> None:
    _make(store_path)
    with colvault.open(store_path, "a") as store:
        t = store["/t"]
        _warm(t)
        store.rename("/t", "/g/t2")
        assert "/t" not in store and len(store["/g/t2"]) == 10
        store.commit()
        assert "/t" not in store and store["/g/t2"].count_where("x < 4") == 4
        store.remove("/g/t2")
        with pytest.raises(NodeError):
            len(t)  # a table object whose node this process removed
        store.commit()
        assert "/g/t2" not in store


def test_other_processes_changes_are_seen_on_the_next_call(store_path: str) -> None:
    _make(store_path)
    child = Child("_child_ops.py", store_path, stdin=True)
    with colvault.open(store_path, "r") as store, child:
        t = store["/t"]
        _warm(t)
        child.send("append /t 5")
        child.expect("ok")
        assert len(t) == 15 and t.count_where("x >= 10") == 5 and t[14]["x"] == 14
        child.send("attr /t unit m")
        child.expect("ok")
        assert store["/t"].attrs["unit"] == "m"
        child.send("create /new")
        child.expect("ok")
        assert "/new" in store and len(store["/new"]) == 0
        child.send("rename /t /moved")
        child.expect("ok")
        assert "/t" not in store and len(store["/moved"]) == 15
        child.send("remove /moved")
        child.expect("ok")
        assert "/moved" not in store
        with pytest.raises(NodeError):
            len(t)


def test_a_writer_dead_inside_its_commit_leaves_readers_correct(store_path: str) -> None:
    """Killed between the COMMIT and the counter's second move, a writer leaves the counter odd:
    readers read the catalog on every call (still exact) until the next write."""
    _make(store_path)
    with colvault.open(store_path, "r") as store:
        t = store["/t"]
        _warm(t)
        with Child("_child_ops.py", store_path, stdin=True) as child:
            child.send("die-in-commit /t 4")
            child.finish()
        assert store._session.changes.value() is None  # odd: nothing is trusted
        assert len(t) == 14 and t.count_where("x >= 10") == 4
        with colvault.open(store_path, "a") as writer:
            writer["/t"].append({"x": np.arange(14, 16, dtype=np.int64)})
            writer.commit()
        assert store._session.changes.value() is not None  # the next write made it even
        assert len(t) == 16


def test_without_a_counter_every_call_reads_the_catalog(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose LOCK cannot be mapped (a read-only file system) stays exact."""
    _make(store_path)
    monkeypatch.setattr(changes.ChangeCounter, "value", lambda self: None)
    with colvault.open(store_path, "r") as reader, colvault.open(store_path, "a") as writer:
        t = reader["/t"]
        _warm(t)
        writer["/t"].append({"x": np.arange(10, 11, dtype=np.int64)})
        writer.commit()
        assert len(t) == 11


def test_as_of_stores_keep_their_commit(store_path: str) -> None:
    _make(store_path)
    with colvault.open(store_path, "a") as writer:
        first = writer.commit()  # nothing pending: the last commit's id
        with colvault.open(store_path, as_of=first) as past:
            t = past["/t"]
            _warm(t)
            writer["/t"].append({"x": np.arange(10, 20, dtype=np.int64)})
            writer.commit()
            assert len(t) == 10 and t.count_where("x >= 0") == 10
            now = writer["/t"]
            _warm(now)
            assert len(now) == 20  # and the present is not the past's
            assert len(t) == 10


def test_snapshot_blocks_neither_see_nor_leak_later_commits(store_path: str) -> None:
    _make(store_path)
    with colvault.open(store_path, "r") as store, colvault.open(store_path, "a") as writer:
        t = store["/t"]
        _warm(t)
        with store.snapshot():
            writer["/t"].append({"x": np.arange(10, 12, dtype=np.int64)})
            writer.commit()
            assert len(t) == 10 and t.count_where("x >= 0") == 10
        assert len(t) == 12 and t.count_where("x >= 0") == 12
