"""compact(): retired and unreferenced bytes come back; rows and values stay exactly the same."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import colvault
from colvault import ColvaultError, LockError
from colvault.benchdata import SCHEMA, benchmark_data


def store_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def segment_bytes(path: str) -> int:
    data = os.path.join(path, "data")
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(data) for f in files)


def chunk_sizes(table) -> list[int]:
    return [r.nrows for r in table._state().columns[table._schema.columns[0].id]]


def test_logger_store_compacts_to_the_bulk_loaded_size(tmp_path):
    """10,000 commits of 100 rows: one short chunk at most, the same values as a bulk load,
    and after compact() the store is within 1.2x of the same rows bulk-loaded. The full-scan
    times of both stores are printed (run with -s), not checked."""
    commits, per = 10_000, 100
    data = benchmark_data(commits * per)
    bulk, logged = str(tmp_path / "bulk.colvault"), str(tmp_path / "log.colvault")
    with colvault.open(bulk, "w") as store:
        store.create_table("/t", SCHEMA).append(data)
    os.environ["COLVAULT_FSYNC"] = "0"  # this test is about layout, not durability
    try:
        with colvault.open(logged, "w") as store:
            t = store.create_table("/t", SCHEMA)
            for i in range(commits):
                t.append({k: v[i * per : (i + 1) * per] for k, v in data.items()})
                store.commit()
            sizes = chunk_sizes(t)
            assert sum(s < t.chunk_rows for s in sizes) <= 1
            assert all(s == t.chunk_rows for s in sizes[:-1])
    finally:
        del os.environ["COLVAULT_FSYNC"]
    scans = {}
    for name, path in (("bulk", bulk), ("log", logged)):
        with colvault.open(path) as store:
            t = store["/t"]
            for k, v in data.items():
                assert np.array_equal(t.col(k), v)
            start = time.perf_counter()
            for _ in t.iter_chunks():
                pass
            scans[name] = time.perf_counter() - start
    print(f"full scan: bulk {scans['bulk']:.3f} s, logged {scans['log']:.3f} s")
    with colvault.open(logged, "a") as store:
        store.expire(store.commit())  # history kept would keep every commit's last chunk
        report = store.compact()
        assert report.rewritten == ("/t",) and report.bytes_after < report.bytes_before
        assert store.verify().ok and store.verify().info == []
    assert store_bytes(logged) <= 1.2 * store_bytes(bulk)
    with colvault.open(logged) as store:
        t = store["/t"]
        for k, v in data.items():
            assert np.array_equal(t.col(k), v)


def test_compact_reclaims_removed_tables_and_keeps_clean_ones(store_path):
    with colvault.open(store_path, "w") as store:  # /keep's segment: its session's own
        store.create_table("/keep", {"x": "f8"}, chunk_rows=1000).append({"x": np.arange(5000.0)})
    with colvault.open(store_path, "a") as store:
        kept = set(os.listdir(os.path.join(store_path, "data")))
        gone = store.create_table("/gone", {"x": "f8"}, chunk_rows=1000)
        gone.append({"x": np.arange(50_000.0)})
        store.commit()
        store.remove("/gone")
        store.expire(store.commit())
        before = segment_bytes(store_path)
        report = store.compact()
        assert report.rewritten == () and report.files_removed >= 1
        assert segment_bytes(store_path) < before / 5
        assert np.array_equal(store["/keep"].col("x"), np.arange(5000.0))
        store["/keep"].append({"x": [1.5]})  # the store stays writable
    with colvault.open(store_path) as store:
        assert len(store["/keep"]) == 5001 and store.verify().ok
        left = set(os.listdir(os.path.join(store_path, "data")))
        assert kept <= left and len(left) == len(kept) + 1  # and the segment of the append


def test_compact_moves_the_tables_that_share_a_segment_with_garbage(store_path):
    """A segment is deleted only when no chunk names it: the tables beside a removed one in
    the same segment are moved out, and its bytes come back."""
    with colvault.open(store_path, "w") as store:
        for name in ("a", "b", "gone"):
            t = store.create_table(f"/{name}", {"x": "i8", "y": "f4"}, chunk_rows=1000)
            t.append({"x": np.arange(20_000) * 7, "y": np.arange(20_000, dtype="f4")})
        store.commit()
        store.remove("/gone")
        store.expire(store.commit())
        before = segment_bytes(store_path)
        report = store.compact()
        assert sorted(report.rewritten) == ["/a", "/b"] and report.files_removed == 1
        assert segment_bytes(store_path) < before * 0.75
        assert store.compact().rewritten == ()  # nothing left to reclaim
    with colvault.open(store_path) as store:
        for name in ("a", "b"):
            assert np.array_equal(store[f"/{name}"].col("x"), np.arange(20_000) * 7)
        assert store.verify().ok and store.verify().info == []


def test_compact_merges_short_chunks_and_drops_crash_leftovers(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=100)
        for k in range(5):  # a bulk append after each small commit leaves short chunks inside
            t.append({"x": np.arange(30) + 1000 * k})
            store.commit()
            t.append({"x": np.arange(250) + 1000 * k + 100})
            store.commit()
        assert sum(s < 100 for s in chunk_sizes(t)) > 1
        want = t.col("x")
    seg = next(
        os.path.join(d, f) for d, _, fs in os.walk(os.path.join(store_path, "data")) for f in fs
    )
    with open(seg, "ab") as f:
        f.write(b"bytes of a writer that crashed")
    with colvault.open(store_path, "a") as store:
        store.expire(store.commit())
        store.compact()
        t = store["/t"]
        assert len(want) == 1400 and chunk_sizes(t) == [100] * 14
        assert np.array_equal(t.col("x"), want)
        assert store.verify().info == []


def test_compact_needs_the_store_to_itself(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i8"}).append({"x": [1, 2]})
    with colvault.open(store_path, "a") as store:
        with colvault.open(store_path) as reader:
            with pytest.raises(LockError):
                store.compact()
            assert reader["/t"].col("x").tolist() == [1, 2]
        store["/t"].append({"x": [3]})
        with pytest.raises(ColvaultError, match="pending"):
            store.compact()
        store.commit()
        store.compact()
        assert store["/t"].col("x").tolist() == [1, 2, 3]
