"""Crash safety: a writer killed with SIGKILL at a random moment never damages the store.

A child process (``_child_writer.py``) appends deterministic rows to two tables and commits in a
loop, printing the committed row count after each commit. The test kills it with ``kill -9``
after a seeded random delay, many times over the same growing store, and after every kill checks
that the store opens (read-only, and for writing, which runs recovery), that ``verify()`` finds
no damage, and that both tables hold exactly the rows of the last reported commit or of the one
after it (which may have landed just before the kill, without its report), value by value.

kill -9 does not lose the page cache, so this tests the commit protocol's ordering and recovery,
not fsync; ``test_powercut.py`` covers durability. ``COLVAULT_CRASH_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
import time

import colvault

from . import _rows
from ._spawn import Child

KILLS = int(os.environ.get("COLVAULT_CRASH_KILLS", "20"))


def _create(path: str) -> None:
    with colvault.open(path, "w") as store:
        store.create_table("/a", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
        store.create_table("/b", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        store.attrs["rows"] = 0


def _check(path: str, mode: str, candidates: tuple[int, ...], where: str) -> int:
    """Open the store, check it holds a clean prefix of one of ``candidates`` rows; return it."""
    with colvault.open(path, mode) as store, store.snapshot():
        a, b = store["/a"], store["/b"]
        n = len(a)
        assert n in candidates, f"{where}: /a has {n} rows, expected one of {candidates}"
        assert len(b) == n, f"{where}: /b has {len(b)} rows but /a has {n}: a torn commit"
        assert store.attrs["rows"] == n, f"{where}: attrs['rows'] = {store.attrs['rows']} != {n}"
        _rows.check_prefix("/a", a.read(), _rows.values_a(0, n), f"{where}: ")
        _rows.check_prefix("/b", b.read(), _rows.values_b(0, n), f"{where}: ")
        assert (a.cols.h[:] == _rows.values_a(0, n)["h"]).all(), f"{where}: /a.h by column"
        _rows.check_extra_tables(store, n, f"{where}: ")
        report = store.verify()
        assert report.ok, f"{where}: verify() found damage:\n{report}"
    return n


def test_kill_9_during_commit_loop_leaves_a_clean_prefix(store_path: str) -> None:
    seed = int(os.environ.get("COLVAULT_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash test seed {seed} (set COLVAULT_CRASH_SEED={seed} to replay), {KILLS} kills")
    rng = random.Random(seed)
    _create(store_path)
    committed = 0
    for kill in range(KILLS):
        # Alternate small segments (rollovers before and during commits) with the default size.
        segment_bytes = 16 << 10 if kill % 2 == 0 else 0
        delay = 0.0 if rng.random() < 0.2 else rng.uniform(0.0, 0.5)
        print(f"kill {kill}: {committed} rows, segment_bytes={segment_bytes}, delay {delay:.3f} s")
        with Child("_child_writer.py", store_path, "--segment-bytes", segment_bytes) as child:
            first = child.line()
            time.sleep(delay)
            child.kill()
            printed = [int(x) for x in [first, *child.rest()]]
        # The reports form the chain of batches that starts at the last verified state.
        expected = committed
        for count in printed:
            expected += _rows.batch_size(expected)
            assert count == expected, f"kill {kill}: child reported {printed} after {committed}"
        last = printed[-1]
        candidates = (last, last + _rows.batch_size(last))
        where = f"kill {kill} (seed {seed}, delay {delay:.3f} s, reported {last})"
        n = _check(store_path, "r", candidates, where + " before recovery")
        assert _check(store_path, "a", (n,), where + " after recovery") == n
        assert _check(store_path, "r", (n,), where + " reopened read-only") == n
        print(f"  reported {len(printed)} commits up to {last}; store holds {n} rows")
        committed = n
    assert committed > 0
