"""``python -m asv_benchmarks.compare latency``: the fixed cost of every call (issue 17).

The calls a notebook makes hundreds of times in a loop, each timed as the mean of a loop of
calls, rounds interleaved across the tools, in one process:

- small: a 1,000-row table (``x`` float64 in [0, 1000), ``y`` int64 in 0..9, ``z`` float32):
  ``count_where("y == 3")``, ``read_where("x > 990")``, ``t[500]``, ``len(t)``. PyTables counts
  with ``get_where_list``, its cheapest count; DuckDB answers the same in SQL on its own file;
- point: ``t[i]`` at 1,000 random rows, cycled, of the 2 M-row benchmark table (PyTables with its
  own chunk shape);
- frame: ``t[i]`` at the same rows of the benchmark table made from a pandas DataFrame with
  missing values (``sensor`` as ``Int64`` and a ``status`` categorical, 1 % missing each), the
  table a notebook gets from ``create_table(path, df)``; pandas' ``df.iloc[i]`` in memory
  beside it (no target);
- wide: a 10-row slice from the middle of a 300-column table of 200,000 rows (PyTables);
- range: the benchmark's 0.1 % range of the sorted time column of 20 M rows (DuckDB native), as
  the ``query`` job's ``t_range``.

Every answer is checked against numpy's once, untimed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..queries import QUERY_TOOLS, TIME_COND, NumpyQueries, t_bounds
from ..writers import importable
from .harness import rounds
from .report import Target, print_header, table, target_table
from .wide import records

#: Rows of the small table, and the calls on it (colvault's spelling).
SMALL_ROWS = 1_000
COUNT_COND, READ_COND, ROW = "y == 3", "x > 990", 500
#: Columns of the wide table; rows of its slice.
WIDE_COLUMNS, WIDE_ROWS, SLICE_ROWS = 300, 200_000, 10

#: (part, call, numerator, denominator or None for an absolute bound in µs, at most)
TARGETS: list[tuple[str, str, str, str | None, float]] = [
    ("small", "count_where", "colvault", "pytables", 1.0),
    ("small", "read_where", "colvault", "pytables", 1.0),
    ("small", "t[i]", "colvault", "pytables", 4.0),
    ("small", "len(t)", "colvault", None, 2.0),
    ("point", "t[i]", "colvault", None, 50.0),
    ("wide", "10-row slice", "colvault", None, 5_000.0),
    ("range", "t_range", "colvault", "duckdb", 0.5),
]

Calls = dict[str, dict[str, Callable[[], Any]]]  # call -> tool -> one call
#: What the parts opened, closed when the job ends.
_OPENED: list[Any] = []


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options."""
    p.add_argument("--repeat", type=int, default=5, help="timed rounds per call (default 5)")
    p.add_argument(
        "--range-rows", type=int, default=20_000_000, help="rows of the range part (default 20 M)"
    )
    p.add_argument(
        "--point-rows", type=int, default=2_000_000, help="rows of the point part (default 2 M)"
    )
    p.add_argument(
        "--parts",
        default="small,point,frame,wide,range",
        help="comma-separated parts to run (all)",
    )
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def _small_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.uniform(0, 1000, SMALL_ROWS),
        "y": rng.integers(0, 10, SMALL_ROWS, dtype=np.int64),
        "z": rng.normal(0, 1, SMALL_ROWS).astype(np.float32),
    }


def _wide_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    kinds = ("f8", "f4", "i8", "i4", "i2", "u1")
    return {
        f"c{i:03d}": (rng.normal(0, 100, WIDE_ROWS) * (i + 1)).astype(kinds[i % len(kinds)])
        for i in range(WIDE_COLUMNS)
    }


def _colvault_table(data: Any, path: str) -> Any:
    """A store holding ``data`` (columns, or a DataFrame) as ``/t`` (one append), reopened
    read-only: the table."""
    import colvault

    with colvault.open(path, "w") as store:
        if hasattr(data, "iloc"):  # a DataFrame: its dtypes and missing values as they are
            store.create_table("/t", data)
        else:
            store.create_table("/t", {k: v.dtype for k, v in data.items()}).append(data)
    store = colvault.open(path, "r")
    _OPENED.append(store)
    return store["/t"]


def _pytables_table(data: dict[str, np.ndarray], path: str) -> Any:
    """A PyTables file holding ``data`` as ``/t`` (blosc2 lz4, shuffle; its own chunk shape),
    reopened read-only: the table."""
    import tables

    rows = records(data)
    filters = tables.Filters(complevel=5, complib="blosc2:lz4", shuffle=True)
    with tables.open_file(path, "w") as h5:
        h5.create_table("/", "t", rows.dtype, filters=filters, expectedrows=len(rows)).append(rows)
    h5 = tables.open_file(path, "r")
    _OPENED.append(h5)
    return h5.root.t


def _duckdb_small(data: dict[str, np.ndarray], path: str) -> Any:
    import duckdb

    con = duckdb.connect(path)
    con.register("src", {k: v for k, v in data.items()})
    con.execute("CREATE TABLE t AS SELECT row_number() OVER () - 1 AS i, * FROM src")
    con.unregister("src")
    con.execute("CHECKPOINT")
    _OPENED.append(con)
    return con


def small_calls(workdir: str) -> tuple[Calls, dict[str, Any]]:
    """The small table's calls per tool, and numpy's answers."""
    data = _small_data()
    t = _colvault_table(data, os.path.join(workdir, "small.colvault"))
    calls: Calls = {
        "count_where": {"colvault": lambda: t.count_where(COUNT_COND)},
        "read_where": {"colvault": lambda: t.read_where(READ_COND)},
        "t[i]": {"colvault": lambda: t[ROW]},
        "len(t)": {"colvault": lambda: len(t)},
    }
    if importable("tables"):
        p = _pytables_table(data, os.path.join(workdir, "small.h5"))
        calls["count_where"]["pytables"] = lambda: len(p.get_where_list(COUNT_COND))
        calls["read_where"]["pytables"] = lambda: p.read_where(READ_COND)
        calls["t[i]"]["pytables"] = lambda: p[ROW]
        calls["len(t)"]["pytables"] = lambda: len(p)
    if importable("duckdb"):
        con = _duckdb_small(data, os.path.join(workdir, "small.duckdb"))
        calls["count_where"]["duckdb"] = lambda: con.execute(
            "SELECT count(*) FROM t WHERE y = 3"
        ).fetchone()[0]
        calls["read_where"]["duckdb"] = lambda: con.execute(
            "SELECT x, y, z FROM t WHERE x > 990 ORDER BY i"
        ).fetchnumpy()
        calls["t[i]"]["duckdb"] = lambda: con.execute(
            f"SELECT x, y, z FROM t WHERE i = {ROW}"
        ).fetchone()
        calls["len(t)"]["duckdb"] = lambda: con.execute("SELECT count(*) FROM t").fetchone()[0]
    want = {
        "count_where": int(np.count_nonzero(data["y"] == 3)),
        "read_where": int(np.count_nonzero(data["x"] > 990)),
        "t[i]": float(data["x"][ROW]),
        "len(t)": SMALL_ROWS,
    }
    return calls, want


def _answer(call: str, got: Any) -> Any:
    """What is compared with numpy's answer: a count, a number of rows, a row's x, a length."""
    if call == "read_where":
        return len(got["x"]) if isinstance(got, dict) else len(got)
    if call == "t[i]":
        return float(got[0] if isinstance(got, tuple) else got["x"])
    return int(got)


def point_calls(workdir: str, rows: int) -> tuple[Calls, list[int], dict[str, np.ndarray]]:
    """``t[i]`` at random rows of the benchmark table, cycled; the rows and the data."""
    from colvault.benchdata import benchmark_data

    data = benchmark_data(rows)
    picks = _picks(rows)
    t = _colvault_table(data, os.path.join(workdir, "point.colvault"))

    calls: Calls = {"t[i]": {"colvault": _cycled(t.__getitem__, picks)}}
    spec = QUERY_TOOLS["pytables"]  # the benchmark's PyTables file (time as int64)
    if spec.available:
        os.makedirs(os.path.join(workdir, "pytables"))
        q = spec.queries(spec.build(data, os.path.join(workdir, "pytables")))
        _OPENED.append(q)
        calls["t[i]"]["pytables"] = _cycled(q.table.__getitem__, picks)  # type: ignore[attr-defined]
    return calls, picks, data


def _picks(rows: int) -> list[int]:
    """The 1,000 random rows the point reads cycle through."""
    return [int(i) for i in np.random.default_rng(2).integers(0, rows, 1_000)]


def _is_missing(v: Any) -> bool:
    """A missing cell as colvault (masked) or pandas (``pd.NA``) gives it."""
    return v is np.ma.masked or type(v).__name__ == "NAType"


def _cycled(fn: Callable[[int], Any], picks: list[int]) -> Callable[[], Any]:
    """A call that gives ``fn`` the next of ``picks`` each time (from the second on)."""
    state = {"k": 0}

    def one() -> Any:
        state["k"] = (state["k"] + 1) % len(picks)
        return fn(picks[state["k"]])

    return one


def frame_calls(workdir: str, rows: int, picks: list[int]) -> tuple[Calls, Any]:
    """``t[i]`` of a table made from a DataFrame with missing values, and pandas' ``iloc``;
    the DataFrame."""
    import pandas as pd

    from colvault.benchdata import benchmark_data

    data = benchmark_data(rows)
    rng = np.random.default_rng(3)
    states = np.array(["ok", "warming", "saturated", "fault"])
    status = pd.Categorical(states[np.digitize(data["value"], [-45.0, 45.0, 52.0])])
    df = pd.DataFrame(
        {
            "t": data["t"],
            "sensor": pd.array(data["sensor"], dtype="Int64"),
            "value": data["value"],
            "status": status,
        }
    )
    df.loc[rng.random(rows) < 0.01, "sensor"] = pd.NA
    df.loc[rng.random(rows) < 0.01, "status"] = np.nan
    t = _colvault_table(df, os.path.join(workdir, "frame.colvault"))
    calls: Calls = {"t[i]": {"colvault": _cycled(t.__getitem__, picks)}}
    calls["t[i]"]["pandas"] = _cycled(df.iloc.__getitem__, picks)
    return calls, df


def wide_calls(workdir: str) -> tuple[Calls, dict[str, np.ndarray]]:
    data = _wide_data()
    mid = WIDE_ROWS // 2
    t = _colvault_table(data, os.path.join(workdir, "wide.colvault"))
    calls: Calls = {"10-row slice": {"colvault": lambda: t[mid : mid + SLICE_ROWS]}}
    if importable("tables"):
        p = _pytables_table(data, os.path.join(workdir, "wide.h5"))
        calls["10-row slice"]["pytables"] = lambda: p[mid : mid + SLICE_ROWS]
    return calls, data


def range_calls(workdir: str, rows: int) -> tuple[Calls, int]:
    """The benchmark's time range, colvault and DuckDB (native file), and numpy's row count."""
    from colvault.benchdata import benchmark_data

    data = benchmark_data(rows)
    lo, hi = t_bounds(data["t"])
    want = len(NumpyQueries(data).t_range(lo, hi)["t"])
    calls: Calls = {"t_range": {}}
    for tool in ("colvault", "duckdb"):
        spec = QUERY_TOOLS[tool]
        if not spec.available:
            continue
        os.makedirs(os.path.join(workdir, tool))
        q = spec.queries(spec.build(data, os.path.join(workdir, tool)))
        _OPENED.append(q)
        calls["t_range"][tool] = lambda q=q: q.t_range(lo, hi)
    os.sync()
    return calls, want


def time_calls(calls: Calls, repeat: int, seconds: float = 0.2) -> dict[str, dict[str, float]]:
    """Median µs per call, per call and tool: each round runs a loop of calls sized to take
    about ``seconds``, the tools interleaved."""
    out: dict[str, dict[str, float]] = {}
    for name, tools in calls.items():
        loops = {}
        for tool, fn in tools.items():
            fn()  # warm: kernels, caches, the file in the page cache
            start, k = time.perf_counter(), 0
            while time.perf_counter() - start < seconds / 10:
                fn()
                k += 1
            loops[tool] = 10 * k

        def loop(fn: Callable[[], Any], n: int) -> Callable[[], None]:
            def run() -> None:
                for _ in range(n):
                    fn()

            return run

        timings = rounds({t: loop(fn, loops[t]) for t, fn in tools.items()}, repeat)
        out[name] = {t: statistics.median(timings.times[t]) / loops[t] * 1e6 for t in tools}
    return out


def run(args: argparse.Namespace) -> int:
    parts = [p for p in args.parts.split(",") if p]
    work = tempfile.mkdtemp(prefix="cmp-latency-", dir=args.tmpdir)
    results: dict[str, dict[str, dict[str, float]]] = {}
    notes = []
    try:
        load_before = os.getloadavg()
        if "small" in parts:
            calls, want = small_calls(work)
            for name, tools in calls.items():
                for tool, fn in tools.items():
                    if (got := _answer(name, fn())) != want[name]:
                        raise SystemExit(
                            f"WRONG ANSWER: {tool} {name} gave {got}, numpy {want[name]}"
                        )
            results["small"] = time_calls(calls, args.repeat)
        if "point" in parts:
            calls, picks, data = point_calls(work, args.point_rows)
            for tool, fn in calls["t[i]"].items():
                got = float(fn()["value"])  # the first pick
                if got != float(data["value"][picks[1]]):
                    raise SystemExit(f"WRONG ANSWER: {tool} t[{picks[1]}]")
            del data
            results["point"] = time_calls(calls, args.repeat)
        if "frame" in parts and importable("pandas"):
            picks = _picks(args.point_rows)
            calls, df = frame_calls(work, args.point_rows, picks)
            for tool, fn in calls["t[i]"].items():
                row = fn()  # the first pick
                i = picks[1]
                if float(row["value"]) != float(df["value"].iat[i]) or _is_missing(
                    row["sensor"]
                ) != bool(df["sensor"].isna().iat[i]):
                    raise SystemExit(f"WRONG ANSWER: {tool} t[{i}] of the DataFrame's table")
            del df
            results["frame"] = time_calls(calls, args.repeat)
        if "wide" in parts:
            calls, data = wide_calls(work)
            mid = WIDE_ROWS // 2
            for tool, fn in calls["10-row slice"].items():
                got = fn()
                if not np.array_equal(got["c299"], data["c299"][mid : mid + SLICE_ROWS]):
                    raise SystemExit(f"WRONG ANSWER: {tool} 10-row slice")
            del data
            results["wide"] = time_calls(calls, args.repeat)
        if "range" in parts:
            calls, want_rows = range_calls(work, args.range_rows)
            for tool, fn in calls["t_range"].items():
                got = fn()
                n = len(got["t"]) if isinstance(got, dict) else len(got)
                if n != want_rows:
                    raise SystemExit(
                        f"WRONG ANSWER: {tool} t_range {n:,} rows, numpy {want_rows:,}"
                    )
            notes.append(f"range: {TIME_COND}, {want_rows:,} of {args.range_rows:,} rows")
            results["range"] = time_calls(calls, args.repeat)
        load_after = os.getloadavg()
    finally:
        while _OPENED:
            _OPENED.pop().close()
        shutil.rmtree(work, ignore_errors=True)

    print_header(
        f"latency: per-call time in one process, {args.repeat} interleaved rounds per call",
        args.tmpdir,
        f"parts: {', '.join(parts)}",
        (load_before, load_after),
        "timed: the median round's mean µs per call (a round loops the call for ~0.2 s); "
        + "; ".join(notes),
        [],
    )
    rows = []
    for part, per_call in results.items():
        for name, per_tool in per_call.items():
            cv = per_tool["colvault"]
            others = ", ".join(
                f"{t} {us:,.1f} ({cv / us:.3f})" for t, us in per_tool.items() if t != "colvault"
            )
            rows.append([part, name, f"{cv:,.1f}", others or "-"])
    print(table(["part", "call", "colvault µs", "others µs (colvault/other)"], rows))
    print()
    targets: list[Target] = []
    for part, name, num, den, most in TARGETS:
        got = results.get(part, {}).get(name, {})
        if num not in got or (den is not None and den not in got):
            continue
        if den is None:
            targets.append((f"{part} {name}", f"{num} µs", got[num], most))
        else:
            targets.append((f"{part} {name}", f"{num}/{den}", got[num] / got[den], most))
    print("targets:")
    print(target_table(targets, first="call", ratio="what"))
    return 0
