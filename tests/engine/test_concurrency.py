"""Concurrency: readers beside a writer, two writers on one table, recovery beside a writer.

All writers are real child processes (``subprocess``; see ``_spawn.py``). Readers must only ever
see whole commits; commits from two processes serialize, each batch landing exactly once and in
one piece; and a process that opens the store for writing (which runs recovery) must never cut
the uncommitted bytes of a writer that is still alive.
"""

from __future__ import annotations

import numpy as np

import colvault

from . import _rows
from ._spawn import Child


def _create(path: str) -> None:
    with colvault.open(path, "w") as store:
        store.create_table("/a", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
        store.create_table("/b", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        store.attrs["rows"] = 0


def _commit_counts(commits: int) -> list[int]:
    """Row counts after each commit of ``_child_writer.py`` on an empty store."""
    counts, n = [0], 0
    for _ in range(commits):
        n += _rows.batch_size(n)
        counts.append(n)
    return counts


def _read_snapshot(store: colvault.Store, full_verify: bool) -> int:
    """Read everything inside one pinned snapshot; check it is one whole commit; return rows."""
    with store.snapshot():
        a, b = store["/a"], store["/b"]
        n = len(a)
        rows = store.attrs["rows"]
        ra = a.read()
        rb = b.read()
        assert len(ra) == n, f"len(/a) = {n} but read() gave {len(ra)} rows"
        assert len(b) == n and len(rb) == n, f"/b: {len(b)}, {len(rb)} rows; /a: {n}"
        assert rows == n, f"attrs['rows'] = {rows} in a snapshot where /a has {n} rows"
        _rows.check_prefix("/a", ra, _rows.values_a(0, n), f"snapshot of {n} rows: ")
        _rows.check_prefix("/b", rb, _rows.values_b(0, n), f"snapshot of {n} rows: ")
        want = _rows.values_a(max(0, n - 77), n)
        assert (a.cols.h[max(0, n - 77) :] == want["h"]).all()
        assert (a[max(0, n - 77) : n]["f"] == want["f"]).all()
        assert sum(len(c["k"]) for c in b.iter_chunks(["k"])) == n
        _rows.check_extra_tables(store, n, f"snapshot of {n} rows: ")
        if full_verify:
            report = store.verify()
            assert report.ok, f"verify() during writes:\n{report}"
        assert len(a) == n and len(b) == n, "a later call inside the snapshot saw other rows"
    return n


def test_snapshots_beside_a_writer_are_whole_commits(store_path: str) -> None:
    commits = 300
    _create(store_path)
    boundaries = set(_commit_counts(commits))
    seen: list[int] = []
    with colvault.open(store_path, "r") as store:
        with Child(
            "_child_writer.py", store_path, "--commits", commits, "--segment-bytes", 16 << 10
        ) as writer:
            writer.line()
            while writer.proc.poll() is None:
                n = _read_snapshot(store, full_verify=len(seen) % 4 == 0)
                assert n in boundaries, f"a snapshot holds {n} rows: not a commit boundary"
                assert not seen or n >= seen[-1], f"rows went back from {seen[-1]} to {n}"
                seen.append(n)
            lines = writer.finish()
        final = _read_snapshot(store, full_verify=True)
    assert final == max(boundaries), (final, lines[-3:])
    print(f"{len(seen)} snapshots, {len(set(seen))} distinct states, final {final} rows")
    assert len(set(seen)) >= 2, "the reader never saw the writer's progress"


def _create_two_writer_table(path: str) -> None:
    with colvault.open(path, "w") as store:
        store.create_table("/t", {"w": "i1", "b": "i4", "k": "i4", "v": "f8"}, chunk_rows=256)


def test_two_writers_commit_every_batch_exactly_once(store_path: str) -> None:
    _create_two_writer_table(store_path)
    with (
        Child("_child_two_writers.py", store_path, 1, stdin=True) as w1,
        Child("_child_two_writers.py", store_path, 2, "--segment-bytes", 8 << 10, stdin=True) as w2,
    ):
        w1.expect("ready")
        w2.expect("ready")
        w1.send("go")
        w2.send("go")
        w1.expect("done")
        w2.expect("done")
        w1.finish()
        w2.finish()
    with colvault.open(store_path, "r") as store:
        report = store.verify()
        assert report.ok, str(report)
        t = store["/t"]
        with store.snapshot():
            rows = t.read()
            assert len(rows) == len(t)
    w, b = rows["w"], rows["b"]
    starts = np.concatenate([[0], np.flatnonzero((w[1:] != w[:-1]) | (b[1:] != b[:-1])) + 1])
    ends = np.append(starts[1:], len(rows))
    found: list[tuple[int, int]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        writer, batch = int(w[s]), int(b[s])
        want = _rows.two_writer_values(writer, batch)
        assert e - s == len(want["k"]), (
            f"batch {batch} of writer {writer} at row {s}: {e - s} contiguous rows, "
            f"expected {len(want['k'])} (torn, duplicated or interleaved)"
        )
        _rows.check_prefix(f"/t[{s}:{e}]", rows[s:e], want)
        found.append((writer, batch))
    expected = [(writer, batch) for writer in (1, 2) for batch in range(100)]
    assert sorted(found) == expected, "batches missing or duplicated"
    for writer in (1, 2):
        order = [batch for wr, batch in found if wr == writer]
        assert order == sorted(order), f"writer {writer}'s commits out of order"
    print(f"{len(rows)} rows; runs {found[:6]} ...")


def test_recovery_beside_a_live_writer_keeps_its_uncommitted_chunks(store_path: str) -> None:
    with colvault.open(store_path, "w") as store:
        store.create_table("/a", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
    rounds, rows = 3, 3500  # 3 full chunks per round written before the commit
    committed = 0
    with Child("_child_holder.py", store_path, rounds, rows, stdin=True) as holder:
        for _ in range(rounds):
            holder.expect(f"appended {committed + rows}")
            # A third process opens the store for writing: recovery runs beside the writer.
            with Child("_child_open.py", store_path, "a") as other:
                other.expect("ok")
                other.finish()
            # ... and so does this one.
            with colvault.open(store_path, "a") as store:
                assert len(store["/a"]) == committed, "uncommitted rows became visible"
            holder.send("commit")
            committed += rows
            holder.expect(f"committed {committed}")
            with colvault.open(store_path, "r") as store, store.snapshot():
                report = store.verify()
                assert report.ok, f"after commit of {committed} rows:\n{report}"
                a = store["/a"]
                assert len(a) == committed
                _rows.check_prefix("/a", a.read(), _rows.values_a(0, committed))
        holder.expect("closed")
        holder.finish()
    with colvault.open(store_path, "a") as store:
        report = store.verify()
        assert report.ok, str(report)
        _rows.check_prefix("/a", store["/a"].read(), _rows.values_a(0, committed))
