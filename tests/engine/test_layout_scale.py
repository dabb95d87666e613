"""The file layout scales with writers, not with nodes times columns (issue 15, item 4).

A child process with a 256-descriptor limit commits a 1,000-column table and 2,000 small tables
(each commit wrote one file per column per node before, and failed with EMFILE); a store of
many tables is a handful of files, and small tables lie densely.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

import colvault

CHILD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import colvault

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    path = sys.argv[1]
    with colvault.open(path, "w") as store:
        wide = store.create_table("/wide", {f"c{j}": ("f8", "i4")[j % 2] for j in range(1000)},
                                  chunk_rows=1024)
        wide.append({f"c{j}": np.arange(3000) * (j + 1) for j in range(1000)})
        store.commit()
        for i in range(2000):
            store.create_table(f"/g{i // 100}/t{i}", {"x": "i8", "y": "f4"}).append(
                {"x": np.arange(i % 50 + 1), "y": np.full(i % 50 + 1, i, "f4")}
            )
        store.commit()
    print("committed", flush=True)
    """
)


def test_a_1000_column_table_and_2000_tables_commit_under_256_descriptors(store_path):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, store_path], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and done.stdout.strip() == "committed", done.stderr[-3000:]
    with colvault.open(store_path) as store:
        wide = store["/wide"]
        assert len(wide) == 3000 and len(wide.dtypes) == 1000
        assert np.array_equal(wide.col("c999"), np.arange(3000) * 1000)
        assert np.array_equal(store["/g19/t1999"].col("y"), np.full(50, 1999, "f4"))
        assert sum(1 for n in store.walk() if isinstance(n, colvault.Table)) == 2001
        assert store.verify().ok
    segments = os.listdir(os.path.join(store_path, "data"))
    assert len(segments) <= 2, segments  # one per session (and a rollover at most)


def test_small_tables_lie_densely_in_few_files(store_path):
    """500 tables of 100 rows (24 bytes each) in one commit: one segment, with no room left
    behind their short chunks, holding little more than their bytes."""
    rows = {
        "t": np.arange(100).astype("M8[s]").astype("M8[ns]"),
        "sensor": np.arange(100, dtype="i4"),
        "value": np.linspace(0, 1, 100),
        "temp": np.ones(100, "f4"),
    }
    with colvault.open(store_path, "w") as store:
        for i in range(500):
            store.create_table(f"/g{i // 100}/t{i}", {k: v.dtype for k, v in rows.items()}).append(
                rows
            )
    files = [f for _, _, names in os.walk(store_path) for f in names]
    assert len(files) <= 6, files  # LOCK, catalog (with -wal, -shm), one segment
    (segment,) = os.listdir(os.path.join(store_path, "data"))
    size = os.path.getsize(os.path.join(store_path, "data", segment))
    assert size == 8 + 500 * 100 * 24  # the header, then every table's chunks back to back
    with colvault.open(store_path) as store:
        for i in (0, 257, 499):
            got = store[f"/g{i // 100}/t{i}"].read()
            assert all(np.array_equal(got[k], v) for k, v in rows.items())


def test_a_commit_writes_many_short_chunks_in_few_calls(store_path, monkeypatch):
    """The commit of 2,000 small tables holds their short chunks and writes them together
    (each 2,400 bytes: a few writes of up to HELD_BYTES, not 2,000), where the manifest
    says; a later small append to one of them grows it as before."""
    from colvault.engine import seam as seam_mod

    writes: list[int] = []

    class Counting(seam_mod.Seam):
        def write(self, fd, data, offset, path):
            if path.endswith(".seg"):
                writes.append(len(data))
            super().write(fd, data, offset, path)

    rows = {"x": np.arange(100, dtype="i8"), "y": np.linspace(0, 1, 100), "z": np.ones(100)}
    with colvault.open(store_path, "w") as store, seam_mod.installed(Counting()):
        for i in range(2000):
            t = store.create_table(f"/g{i // 100}/t{i}", {k: v.dtype for k, v in rows.items()})
            t.append({k: v + i for k, v in rows.items()})
        store.commit()
        assert sum(writes) == 8 + 2000 * 2400 and len(writes) <= 8, (len(writes), sum(writes))
        store["/g3/t345"].append({k: v[:5] for k, v in rows.items()})
        store.commit()
    with colvault.open(store_path) as store:
        assert store.verify().ok
        for i in (0, 345, 1999):
            got = store[f"/g{i // 100}/t{i}"].read()
            for k, v in rows.items():
                want = np.concatenate([v + i, v[:5]]) if i == 345 else v + i
                np.testing.assert_array_equal(got[k], want)


def test_reads_ask_the_kernel_for_exactly_their_chunks(store_path, monkeypatch):
    """Columns share a segment, so a read must not let the kernel's read-around fetch the
    others' bytes: each read of a sealed segment asks for exactly its chunk."""
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"a": "f8", "b": "i8"}, chunk_rows=1024)
        t.append({"a": np.random.default_rng(1).random(10_000), "b": np.arange(10_000) ** 2})
    asked: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED
        asked.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    with colvault.open(store_path) as store:
        t = store["/t"]
        a_id, b_id = (t._schema.column(c).id for c in "ab")
        refs = t._state().columns
        got = t.col("a")
    assert len(got) == 10_000
    assert sorted(asked) == sorted((r.offset, r.length) for r in refs[a_id])
    assert not set(asked) & {(r.offset, r.length) for r in refs[b_id]}


def test_threads_appending_to_two_tables_share_the_segment_safely(store_path, monkeypatch):
    """Two tables' writers append to the one segment from two threads at once: each chunk
    gets its own offset (a lock around the segment's end), and every row reads back."""
    import threading
    import time

    from colvault.engine import seam as seam_mod
    from colvault.engine import writer as writer_mod

    class SlowWrites(seam_mod.Seam):  # the GIL is let go inside every write, as pwrite does
        def write(self, fd, data, offset, path):  # type: ignore[no-untyped-def]
            time.sleep(0.001)
            super().write(fd, data, offset, path)

    monkeypatch.setattr(writer_mod, "RUN_BYTES", 1)  # every chunk written as soon as it is cut
    with seam_mod.installed(SlowWrites()), colvault.open(store_path, "w") as store:
        tables = [store.create_table(f"/t{k}", {"x": "i8"}, chunk_rows=256) for k in range(2)]

        def fill(k: int) -> None:
            for b in range(40):
                tables[k].append({"x": np.arange(b * 1000, (b + 1) * 1000) * (k + 1)})

        threads = [threading.Thread(target=fill, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with colvault.open(store_path) as store:
        for k in range(2):
            assert np.array_equal(store[f"/t{k}"].col("x"), np.arange(40_000) * (k + 1))
        assert store.verify().ok
