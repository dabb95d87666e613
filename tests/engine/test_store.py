"""Store behaviour a caller sees: modes, the node tree, transactions, snapshots."""

from __future__ import annotations

import errno
import itertools
import os

import numpy as np
import pytest

import colvault
from colvault import ColvaultError, LockError, NodeError, ReadOnlyError, StoreClosedError
from colvault.engine import seam as seam_mod
from colvault.engine import writer as writer_mod


def test_modes(store_path):
    with pytest.raises(colvault.StoreNotFoundError):
        colvault.open(store_path)
    with pytest.raises(colvault.StoreNotFoundError):
        colvault.open(store_path, "r+")
    with pytest.raises(ValueError, match="mode"):
        colvault.open(store_path, "x")
    with colvault.open(store_path, "a") as store:
        store.create_table("/t", {"x": "i8"}).append({"x": [1, 2]})
    with colvault.open(store_path, "r+") as store:
        store["/t"].append({"x": [3]})
    with colvault.open(store_path) as store:
        assert store["/t"].col("x").tolist() == [1, 2, 3]
        with pytest.raises(ReadOnlyError):
            store["/t"].append({"x": [4]})
        with pytest.raises(ReadOnlyError):
            store.create_group("/g")
        with pytest.raises(ReadOnlyError):
            store.attrs["k"] = 1
    with colvault.open(store_path, "w") as store:
        assert store.ls() == []


def test_mode_w_refuses_foreign_directory_and_open_stores(tmp_path, store_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ColvaultError, match="not a colvault store"):
        colvault.open(str(foreign), "w")
    assert (foreign / "thesis.tex").read_text() == "precious"
    with colvault.open(store_path, "w") as store:
        store.create_group("/g")
    reader = colvault.open(store_path)
    with pytest.raises(LockError):
        colvault.open(store_path, "w")
    assert reader.ls() == ["g"]
    reader.close()


def test_closed_store(store_path):
    store = colvault.open(store_path, "w")
    t = store.create_table("/t", {"x": "f8"})
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreClosedError):
        len(t)
    with pytest.raises(StoreClosedError):
        store.commit()


def test_tree_operations(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/a/b/t", {"x": "i4"})
        t.append({"x": [1, 2, 3]})
        store.create_array("/a/arr", "f4", inner_shape=(2,))
        assert store.ls() == ["a"]
        assert store.ls("/a") == ["arr", "b"]
        assert isinstance(store["/a"], colvault.Group)
        assert isinstance(store["a/b/t"], colvault.Table)
        assert "/a/arr" in store and "/nope" not in store and 3 not in store
        store.commit()
        store.rename("/a/b", "/c/d")
        assert t.path == "/c/d/t"  # handles follow renames
        assert [n.path for n in store.walk()] == ["/", "/a", "/a/arr", "/c", "/c/d", "/c/d/t"]
        with pytest.raises(NodeError, match="children"):
            store.remove("/c")
        store.remove("/c", recursive=True)
        assert store.ls() == ["a"]
        with pytest.raises(NodeError):
            len(t)
    with colvault.open(store_path) as store:
        assert [n.path for n in store.walk()] == ["/", "/a", "/a/arr"]


def test_uncommitted_rows_are_invisible_and_metadata_is_read_your_writes(store_path):
    with colvault.open(store_path, "w") as writer:
        t = writer.create_table("/t", {"x": "i8"})
        t.attrs["unit"] = "V"
        with colvault.open(store_path) as reader:
            assert "/t" not in reader  # other processes see nodes after the commit
            writer.commit()
            assert "/t" in reader
            t.append({"x": np.arange(10)})
            assert len(t) == 0 and t.pending_rows == 10
            assert len(reader["/t"]) == 0
            assert reader["/t"].attrs["unit"] == "V"
            writer.commit()
            assert len(reader["/t"]) == 10 and t.pending_rows == 0


def test_abort_drops_everything_pending(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=4)
        t.append({"x": np.arange(10)})
        store.commit()
        t.append({"x": np.arange(100)})  # full chunks already written to segments
        store.create_group("/g")
        store.attrs["a"] = 1
        store.remove("/t")
        store.abort()
        assert store.ls() == ["t"]
        assert "a" not in store.attrs
        t = store["/t"]
        assert t.col("x").tolist() == list(range(10))
        t.append({"x": [42]})
    with colvault.open(store_path) as store:
        assert store["/t"].col("x").tolist() == [*range(10), 42]
        report = store.verify()
        assert report.ok, report


def test_exception_in_with_block_aborts(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i8"})
    with pytest.raises(RuntimeError), colvault.open(store_path, "a") as store:
        store["/t"].append({"x": [1]})
        raise RuntimeError("boom")
    with colvault.open(store_path) as store:
        assert len(store["/t"]) == 0


def test_snapshot_pins_one_view(store_path):
    with colvault.open(store_path, "w") as writer:
        t = writer.create_table("/t", {"x": "i8"})
        t.append({"x": [1]})
        writer.commit()
        with colvault.open(store_path) as reader:
            rt = reader["/t"]
            with reader.snapshot():
                assert len(rt) == 1
                t.append({"x": [2]})
                writer.commit()
                assert len(rt) == 1 and rt.col("x").tolist() == [1]
            assert len(rt) == 2


def test_reads_and_indexing(store_path):
    n = 1000
    data = {"i": np.arange(n), "v": np.random.default_rng(1).normal(size=n)}
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"i": "i8", "v": "f8"}, chunk_rows=64)
        t.append(data)
    with colvault.open(store_path) as store:
        t = store["/t"]
        assert t.colnames == ["i", "v"] and t.schema.names == ("i", "v")
        assert t[5]["i"] == 5 and t[-1]["i"] == n - 1
        assert np.array_equal(t[10:700]["v"], data["v"][10:700])
        assert np.array_equal(t.read(100, 200, columns=["v"])["v"], data["v"][100:200])
        mask = data["v"] > 0
        assert np.array_equal(t[mask]["i"], data["i"][mask])
        assert np.array_equal(t.cols.v[[999, 0, 64, 64]], data["v"][[999, 0, 64, 64]])
        assert np.array_equal(t["v"], data["v"])
        assert t.cols.v.shape == (n,) and len(t.cols) == 2
        assert t[2000:3000].shape == (0,)
        with pytest.raises(IndexError):
            t[n]
        with pytest.raises(IndexError):
            t.cols.i[[0, n]]
        with pytest.raises(AttributeError, match="columns are"):
            _ = t.cols.nope
        sizes = [len(c["i"]) for c in t.iter_chunks(["i"])]
        assert sum(sizes) == n and max(sizes) == 64
        text = repr(t)
        assert "1,000 rows" in text and "lz4" in text


def test_column_names_need_not_be_identifiers(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"temp (°C)": "f4", "class": "i1"})
        t.append({"temp (°C)": [20.5], "class": [1]})
        store.commit()
        assert t.cols["temp (°C)"][0] == np.float32(20.5)
        assert "class" in dir(t.cols)


def test_segments_roll_over_and_seal(store_path):
    with colvault.open(store_path, "w", segment_bytes=4096) as store:
        t = store.create_table("/t", {"x": "f8"}, chunk_rows=256, codec="none")
        for _ in range(10):
            t.append({"x": np.arange(1000.0)})
            store.commit()
    seg_dir = os.path.join(store_path, "data")
    segs = [f for _, _, files in os.walk(seg_dir) for f in files if f.endswith(".seg")]
    assert len(segs) > 5
    with colvault.open(store_path) as store:
        assert np.array_equal(store["/t"].col("x"), np.tile(np.arange(1000.0), 10))
        assert store.verify().ok


class FailingWrites(seam_mod.Seam):
    """Fail the n-th segment write with EIO (a full or broken disk during a bulk append)."""

    def __init__(self, fail_at: int) -> None:
        self.writes = 0
        self.fail_at = fail_at

    def write(self, fd, data, offset, path):
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(errno.EIO, "injected write error", path)
        super().write(fd, data, offset, path)


@pytest.mark.parametrize("fail_at", [1, 2, 5, 9])
def test_write_error_during_append_discards_pending_and_keeps_the_store_usable(
    store_path, fail_at, monkeypatch
):
    monkeypatch.setattr(writer_mod, "RUN_BYTES", 1)  # each chunk written as it is encoded
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"a": "i8", "b": "f8"}, chunk_rows=100)
        t.append({"a": np.arange(50), "b": np.zeros(50)})
        store.commit()
        t.append({"a": np.arange(10), "b": np.zeros(10)})
        with seam_mod.installed(FailingWrites(fail_at)), pytest.raises(colvault.CommitError):
            t.append({"a": np.arange(1000), "b": np.ones(1000)})
        assert t.pending_rows == 0 and not store.has_pending
        t.append({"a": [7], "b": [7.0]})
    with colvault.open(store_path) as store:
        assert store["/t"].col("a").tolist() == [*range(50), 7]
        assert store.verify().ok


class RecordingWriteback(seam_mod.Seam):
    """Record the writeback hints and the fsyncs of segment files."""

    def __init__(self) -> None:
        self.hints: list[tuple[int, int, int]] = []
        self.fsynced: list[str] = []

    def start_writeback(self, fd, offset, length):
        self.hints.append((fd, offset, length))
        super().start_writeback(fd, offset, length)

    def fsync(self, fd, path):
        self.fsynced.append(path)
        super().fsync(fd, path)


def test_large_appends_start_their_writeback_and_the_commit_still_fsyncs(store_path):
    from colvault.engine.segments import WRITEBACK_BYTES

    rec = RecordingWriteback()
    with seam_mod.installed(rec), colvault.open(store_path, "w") as s:
        t = s.create_table("/t", {"x": "f8"}, codec="none")
        t.append({"x": np.random.default_rng(0).random(3 * WRITEBACK_BYTES // 8)})
        s.commit()
        assert t.col("x").shape == (3 * WRITEBACK_BYTES // 8,)
    # one file's hints cover its bytes back to back, each at least WRITEBACK_BYTES long
    by_fd: dict[int, list[tuple[int, int]]] = {}
    for fd, offset, length in rec.hints:
        by_fd.setdefault(fd, []).append((offset, length))
    assert by_fd, "no writeback was started"
    for ranges in by_fd.values():
        assert ranges[0][0] == 0 and all(n >= WRITEBACK_BYTES for _, n in ranges)
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(ranges))
    assert any(p.endswith(".seg") for p in rec.fsynced)  # the hint never stands for the fsync


def test_a_commit_of_full_chunks_and_a_short_one_fsyncs_each_segment_once(store_path):
    # the short last chunk behind this commit's full ones is written before the fsyncs, not
    # under the catalog lock with a second round of them
    rec = RecordingWriteback()
    with seam_mod.installed(rec), colvault.open(store_path, "w") as s:
        idle = s.create_table("/idle", {"x": "i8"})
        idle.append({"x": [1, 2]})
        s.commit()
        t = s.create_table("/t", {"a": "i8", "b": "f8"}, chunk_rows=1000)
        rec.fsynced.clear()
        t.append({"a": np.arange(2500), "b": np.arange(2500) / 4})
        s.commit()
        segments = [p for p in rec.fsynced if p.endswith(".seg")]
        assert len(segments) == 1, rec.fsynced  # the store's one segment, whatever the column
        assert t.col("a").tolist() == list(range(2500))
        assert [len(c["a"]) for c in t.iter_chunks(["a"])] == [1000, 1000, 500]
        assert idle.col("x").tolist() == [1, 2]
    with colvault.open(store_path) as s:
        assert s["/t"].col("b").tolist() == [i / 4 for i in range(2500)]
        assert s.verify().ok
