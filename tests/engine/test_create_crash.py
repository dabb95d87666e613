"""kill -9 while a store is being created: afterwards it is absent or whole, never unopenable.

A child process creates a store with one table and is killed at a random moment of it, many
times over. The store must then be absent (``mode="r"`` finds none) or open in every mode at a
committed state (no table yet, or the table with all its rows), pass ``verify()``, and take new
work. Before the catalog was created under a temporary name and linked into place, about one
kill in eight left a catalog without its schema that no mode could open again.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import colvault

from ._spawn import Child

TRIALS = 50
AT_ONCE = 2


def _time_a_creation(path: Path) -> float:
    """Seconds a child takes to create the store when nobody kills it (on this machine, now)."""
    with Child("_child_create.py", stdin=True) as child:
        child.expect("ready")
        start = time.perf_counter()
        child.send(str(path))
        child.expect("done")
        return time.perf_counter() - start


def _trial(path: Path, delay: float) -> None:
    with Child("_child_create.py", stdin=True) as child:
        child.expect("ready")
        child.send(str(path))
        time.sleep(delay)
        child.kill()


def _outcome(path: Path) -> str:
    """What the killed child left, checked from every side; raises on anything broken."""
    if not (path / "catalog.sqlite").exists():
        try:
            colvault.open(path, "r")
        except colvault.StoreNotFoundError:
            pass
        else:
            raise AssertionError(f"{path}: no catalog, yet mode 'r' opened it")
        outcome = "absent"
    else:
        with colvault.open(path, "r") as store:
            tables = [n.path for n in store.walk() if isinstance(n, colvault.Table)]
            assert tables in ([], ["/t"]), tables
            if tables:
                np.testing.assert_array_equal(store["/t"].cols.x[:], np.arange(100.0))
            outcome = "with table" if tables else "empty"
    for mode in ("r+", "a") if outcome != "absent" else ("a",):
        with colvault.open(path, mode) as store:
            report = store.verify()
            assert report.ok, f"{path} ({outcome}, mode {mode}):\n{report}"
    with colvault.open(path, "a") as store:  # the store takes new work
        store.create_table("/after", {"y": "i8"}).append({"y": [1, 2, 3]})
    with colvault.open(path) as store:
        assert store["/after"].cols.y[:].tolist() == [1, 2, 3]
    return outcome


def test_kill_while_creating_a_store(tmp_path: Path) -> None:
    seed = int(os.environ.get("COLVAULT_TEST_SEED", random.randrange(2**32)))
    print(f"base seed {seed} (COLVAULT_TEST_SEED={seed} repeats these kill delays)")
    rng = random.Random(seed)
    whole = _time_a_creation(tmp_path / "timed.colvault")
    print(f"an uninterrupted creation took {whole * 1000:.1f} ms")
    delays = [rng.uniform(0.0, 1.2 * whole) for _ in range(TRIALS)]
    paths = [tmp_path / f"s{i}.colvault" for i in range(TRIALS)]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(_trial, paths, delays))
    outcomes: Counter[str] = Counter()
    failures = []
    for path, delay in zip(paths, delays, strict=True):
        try:
            outcomes[_outcome(path)] += 1
        except Exception as exc:
            failures.append(f"kill after {delay * 1000:.1f} ms: {type(exc).__name__}: {exc}")
    print(dict(outcomes))
    assert not failures, f"{len(failures)} of {TRIALS} kills broke the store:\n" + "\n".join(
        failures
    )
    # The kills fell inside the creation, not only before or after it.
    assert outcomes["with table"] < TRIALS, dict(outcomes)
    assert outcomes["absent"] + outcomes["empty"] >= TRIALS // 10, dict(outcomes)
