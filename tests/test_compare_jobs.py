"""``python -m asv_benchmarks.compare``: every job loads and parses its options, the modules share
only public names, and the wide job's data and condition are what its figures claim.

Nothing here times anything (timings belong to the jobs themselves, never to a test run).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import numpy as np
import pytest

from asv_benchmarks.compare import report
from asv_benchmarks.compare.__main__ import JOBS

BENCH = Path(__file__).resolve().parents[1] / "asv_benchmarks"


#: firstuse.py (kept where it is by its owner) still imports these from the package.
@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_loads_and_parses_its_defaults(name):
    module = JOBS[name].load()
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args([])
    assert callable(module.run)
    assert hasattr(args, "tmpdir")


def test_no_private_name_crosses_a_module():
    found = set()
    for path in BENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.add((str(path.relative_to(BENCH)), alias.name))
    assert not found, found


def test_target_table_says_met_and_missed():
    text = report.target_table([("a", "x/y", 0.5, 1.0), ("b", "x/z", 1.5, 1.25)])
    lines = text.splitlines()
    assert lines[2].endswith("met") and "0.500" in lines[2]
    assert lines[3].endswith("MISSED") and "<= 1.25" in lines[3]


def test_wide_columns_cycle_dtypes_and_the_condition_selects_about_one_percent():
    from asv_benchmarks.compare import wide

    data = wide.columns(20_000, 14)
    assert [str(a.dtype) for a in data.values()][:7] == [
        "float64", "float32", "int64", "int32", "int16", "uint8", "float64",
    ]  # fmt: skip
    assert all(len(a) == 20_000 for a in data.values())
    cond, mask = wide.condition(data)
    hits = mask(data)
    assert 0.005 < hits.mean() < 0.02
    rows = wide.records(data)
    assert rows.dtype.names == tuple(data)
    assert np.array_equal(rows["c013"], data["c013"])
    assert cond.startswith("(c000 > ")


def test_cold_reads_this_process_io_counters():
    from asv_benchmarks.compare import cold

    if not Path("/proc/self/io").exists():
        pytest.skip("no /proc/self/io here")
    assert cold.read_bytes() >= 0
