"""Queries run out of core: their memory does not grow with the table.

A child process (``_child_memory.py``, started with ``subprocess``, never ``fork``) builds a
64 MB and a 256 MB (raw) table of the benchmark data; then one fresh child per table runs
``count_where`` and ``iter_where`` over it while a thread samples ``RssAnon``. The two peaks may
differ by less than :data:`MAX_GROWTH`: a query that materialized a column, or kept its batches,
would add about 100 MB per column of the larger table. No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from colvault.benchdata import benchmark_data

from ._spawn import HERE, child_env

ROW_BYTES = 24  # t 8 + sensor 4 + value 8 + temp 4
SMALL = 64_000_000 // ROW_BYTES
LARGE = 256_000_000 // ROW_BYTES
MAX_GROWTH = 20_000_000
SELECTIVE = "(value > 10) & (value < 20.5) & (temp < 20)"


def _run(*args: object, fsync: bool = True) -> str:
    env = child_env()
    env["COLVAULT_NUMPY_ROWS"] = "0"  # the kernels' paths at both sizes (see execute.py)
    if not fsync:
        env["COLVAULT_FSYNC"] = "0"  # building the tables is not what this test is about
    out = subprocess.run(
        [sys.executable, str(HERE / "_child_memory.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, f"_child_memory.py {args} failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def _expected(rows: int) -> tuple[int, int]:
    """numpy's (selective count, rows with temp < 20) for ``rows`` rows of the benchmark data."""
    d = benchmark_data(rows)
    selective = (d["value"] > 10) & (d["value"] < 20.5) & (d["temp"] < 20)
    return int(selective.sum()), int(np.count_nonzero(d["temp"] < 20))


def test_peak_memory_does_not_grow_with_the_table(tmp_path: Path) -> None:
    stores = {rows: tmp_path / f"t{rows}.colvault" for rows in (SMALL, LARGE)}
    for rows, path in stores.items():
        assert _run("build", path, rows, fsync=False) == f"built {rows}"
    got = {rows: json.loads(_run("measure", path)) for rows, path in stores.items()}

    for rows, m in got.items():
        assert m["rows"] == rows
        count, broad = _expected(rows)
        assert m["count"] == m["selected"] == count
        assert m["broad"] == broad
        assert m["samples"] > 10, m  # the sampler ran during the queries
    small, large = got[SMALL], got[LARGE]
    growth = large["peak"] - small["peak"]
    assert growth < MAX_GROWTH, (
        f"peak RssAnon {small['peak'] / 1e6:.1f} MB over the 64 MB table, "
        f"{large['peak'] / 1e6:.1f} MB over the 256 MB one: +{growth / 1e6:.1f} MB "
        f"(limit {MAX_GROWTH / 1e6:.0f} MB); {small} {large}"
    )
