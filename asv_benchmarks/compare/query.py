"""``python -m asv_benchmarks.compare query``: the four benchmark queries, and cold starts.

select, count, time range and stats on the 20 M-row benchmark table, every tool's answer checked
against numpy's first; then whole fresh processes that open the store and run one select.
"""

from __future__ import annotations

import argparse
import functools
import math
import operator
import os
import shutil
import tempfile
import textwrap
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..queries import (
    COND,
    COND_OTHER_SHAPE,
    QUERY_TOOLS,
    STATS,
    STATS_COLUMN,
    TIME_COND,
    NumpyQueries,
    PytablesQueries,
    Queries,
    n_rows,
    t_bounds,
)
from ..writers import PYTABLES_DTYPE, SAME_CHUNK_ROWS
from .harness import (
    Timings,
    common_arguments,
    fresh_process,
    memory_child,
    numba_env,
    rounds,
    select_tools,
)
from .report import Target, mb, ms, print_header, runs_table, table, target_table

#: "pytables" (PyTables' own chunk shape) is timed only if its first round projects the timed
#: rounds within ``--max-seconds`` (it is built anyway, once).
QUERY_DEFAULT_TOOLS = ["colvault", "pytables-128k", "pytables", "numpy", "duckdb"]

#: Rows of the cold-start table, beside the tools' own names.
COLD_NEW = "colvault-new-expr"
COLD_EMPTY = "colvault-empty-cache"

#: The issue's targets: (row, numerator, denominator, most): median time of the numerator tool
#: / the denominator's must be at most ``most``.
QUERY_TARGETS: list[tuple[str, str, str, float]] = [
    ("select", "colvault", "pytables-128k", 0.1),
    ("select", "colvault", "pytables", 0.1),
    ("select", "colvault", "duckdb", 1.0),
    ("select", "colvault", "numpy", 4.0),
    ("count", "colvault", "duckdb", 1.0),
    ("t_range", "colvault", "duckdb", 1.0),
    ("t_range", "colvault", "pytables-128k", 0.01),
    ("t_range", "colvault", "pytables", 0.01),
    ("cold start", "colvault", "pytables-128k", 4.0),
    ("cold start", "colvault", "pytables", 4.0),
    ("cold start", COLD_NEW, "colvault", 1.5),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=20_000_000, help="rows (default 20,000,000)")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        help="leave out pytables (default chunk shape) if its first round of queries projects "
        "the timed rounds to take longer (default 300)",
    )
    p.add_argument(
        "--memory-rows",
        type=int,
        default=45_000_000,
        help="rows of the out-of-core memory check's table (default 45,000,000: 1.08 GB raw; "
        "0 leaves the check out)",
    )
    common_arguments(p, QUERY_DEFAULT_TOOLS, QUERY_TOOLS)


def _query_memory(rows: int, tmpdir: str | None) -> None:
    """The issue's out-of-core check at full scale: peak anonymous memory of ``count_where`` and
    ``iter_where`` over a table of ``rows`` rows, above the level after import + a small query."""
    workdir = tempfile.mkdtemp(prefix="cmp-memory-", dir=tmpdir)
    try:
        got = memory_child(["query", workdir, str(rows)], tmpdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    grow = (got["peak"] - got["level"]) / 1e6
    print(
        f"out of core: {got['rows']:,} rows ({got['raw_bytes'] / 1e9:.2f} GB raw), in a child "
        f"process; RssAnon after import + one small query {got['level'] / 1e6:.1f} MB, peak "
        f"during count_where + iter_where over all rows {got['peak'] / 1e6:.1f} MB: "
        f"+{grow:.1f} MB (target <= 150 MB: {'met' if grow <= 150 else 'MISSED'})"
    )


def query_calls(lo: Any, hi: Any) -> dict[str, Callable[[Queries], Any]]:
    """The four benchmark queries as calls on a tool's :class:`Queries`."""
    return {
        "select": operator.methodcaller("select"),
        "count": operator.methodcaller("count"),
        "t_range": operator.methodcaller("t_range", lo, hi),
        "stats": operator.methodcaller("stats"),
    }


def _wrong(query: str, got: Any, want: Any) -> str | None:
    """How ``got`` differs from numpy's answer ``want`` (None: the same)."""
    if query == "count":
        return None if got == want else f"{got:,} rows, numpy {want:,}"
    if query == "stats":
        for k in STATS:
            a, b = float(got[k]), float(want[k])
            same = a == b if k in ("count", "min", "max") else math.isclose(a, b, rel_tol=1e-9)
            if not same:
                return f"{k} = {a!r}, numpy {b!r}"
        return None
    if n_rows(got) != n_rows(want):
        return f"{n_rows(got):,} rows, numpy {n_rows(want):,}"
    for name, column in want.items():
        mine = got[name]
        if column.dtype.kind == "M" and mine.dtype.kind != "M":
            column = column.view(np.int64)  # PyTables' t
        if not np.array_equal(mine, column):
            return f"column {name!r} differs"
    return None


def _check_answers(
    opened: dict[str, Queries], calls: dict[str, Callable[[Queries], Any]], want: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Every tool's answer to every query against numpy's (untimed, also the warm-up: kernels
    compiled or loaded, files opened); exits on a wrong one. Seconds of each of these calls."""
    first: dict[str, dict[str, float]] = {t: {} for t in opened}
    for t, q in opened.items():
        for name, call in calls.items():
            start = time.perf_counter()
            got = call(q)
            first[t][name] = time.perf_counter() - start
            why = _wrong(name, got, want[name])
            if why is not None:
                raise SystemExit(f"WRONG ANSWER: {t} {name}: {why}")
    return first


def _pick_count(tool: str, q: PytablesQueries, want: int) -> dict[str, float]:
    """Best of two calls of each PyTables way to count; the faster is kept in ``q.count_way``."""
    seconds = {way: math.inf for way in q.COUNTS}
    for _ in range(2):
        for way, count in q.COUNTS.items():
            start = time.perf_counter()
            got = count(q.table)
            seconds[way] = min(seconds[way], time.perf_counter() - start)
            if got != want:
                raise SystemExit(f"WRONG ANSWER: {tool} count by {way}: {got:,}, numpy {want:,}")
    q.count_way = min(seconds, key=seconds.__getitem__)
    return seconds


def _cold_starts(
    tools: list[str], sources: dict[str, Any], expect: int, repeat: int, tmpdir: str
) -> Timings:
    """Whole-process wall time of ``import``, open and one ``select`` in a fresh process.

    colvault three ways: with its kernel compiled by an earlier process (this one) in the
    Numba cache; with every kernel cached but the query's (a copy of a cache that a process
    running ``COND_OTHER_SHAPE`` filled); with an empty cache (everything compiled).
    """
    cv = QUERY_TOOLS["colvault"]
    assert cv.cold_start is not None
    code = cv.cold_start
    path = sources["colvault"]
    base = os.path.join(tmpdir, "numba-base")
    fill = fresh_process(cv.cold_start, path, COND_OTHER_SHAPE, None, numba_env(base))
    fill()
    # One cache directory per call, made before the clock starts (+1: the warm-up round).
    copies = [shutil.copytree(base, os.path.join(tmpdir, f"numba-{i}")) for i in range(repeat + 1)]
    empties = [tempfile.mkdtemp(prefix="numba-empty-", dir=tmpdir) for _ in range(repeat + 1)]

    def fresh_cache(dirs: list[str], cond: str) -> Callable[[], None]:
        return lambda: fresh_process(code, path, cond, expect, numba_env(dirs.pop()))()

    calls = {"colvault": fresh_process(cv.cold_start, path, COND, expect)}
    for t in tools:
        tool = QUERY_TOOLS[t]
        if t != "colvault" and tool.cold_start is not None:
            calls[t] = fresh_process(tool.cold_start, sources[t], tool.cold_cond, expect)
    calls[COLD_NEW] = fresh_cache(copies, COND)
    calls[COLD_EMPTY] = fresh_cache(empties, COND)
    rounds(calls, 1)  # untimed: the OS caches Python's and the tools' files
    return rounds(calls, repeat)


def _query_summary(timings: dict[str, Timings], rows: dict[str, int]) -> str:
    """Median ms per query and tool, and colvault's median / each other tool's."""
    tools = next(iter(timings.values())).tools
    others = [t for t in tools if t != "colvault"]
    header = ["query", "rows", *(f"{t} ms" for t in tools), *(f"colvault/{t}" for t in others)]
    body = []
    for name, runs in timings.items():
        cv = runs.median("colvault")
        ratios = [f"{cv / runs.median(t):.3f}" for t in others]
        body.append([name, f"{rows[name]:,}", *(ms(runs.median(t)) for t in tools), *ratios])
    return table(header, body)


def _targets(timings: dict[str, Timings]) -> list[Target]:
    return [
        (row, f"{num}/{den}", timings[row].median(num) / timings[row].median(den), most)
        for row, num, den, most in QUERY_TARGETS
        if row in timings and num in timings[row].tools and den in timings[row].tools
    ]


def _pytables_default_note(first: dict[str, float], chunk_rows: int, kept: bool, args: Any) -> str:
    chunk_mb = chunk_rows * PYTABLES_DTYPE.itemsize / 1e6
    what = (
        f"PyTables' default chunkshape here is ({chunk_rows:,},), {chunk_mb:,.1f} MB per chunk "
        f"(with blosc2, PyTables sizes chunks by the L3 cache size the CPU reports); its first "
        f"round of the four queries took {sum(first.values()):,.1f} s"
    )
    if kept:
        return textwrap.fill(f"note: {what}.", 100)
    return textwrap.fill(
        f"note: pytables (default chunk shape) was left out of the timed rounds. {what}; "
        f"{args.repeat} rounds would take about {sum(first.values()) * args.repeat:,.0f} s, over "
        f"--max-seconds {args.max_seconds:g}. pytables-128k (chunkshape=({SAME_CHUNK_ROWS},)) "
        "stands in for it.",
        100,
    )


def build_stores(
    data: dict[str, np.ndarray], tools: list[str], workdir: str
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each tool's store of ``data`` in ``workdir/TOOL`` (bulk append, untimed), synced to disk:
    (what each tool's :class:`Queries` opens, seconds each build took)."""
    sources, build_s = {}, {}
    for t in tools:
        os.makedirs(os.path.join(workdir, t))
        t0 = time.perf_counter()
        sources[t] = QUERY_TOOLS[t].build(data, os.path.join(workdir, t))
        build_s[t] = time.perf_counter() - t0
    # Written but unsynced files (PyTables', DuckDB's) would be flushed by the kernel's
    # writeback threads during the timed rounds, on the same cores as whichever tool runs.
    os.sync()
    return sources, build_s


def run(args: argparse.Namespace) -> int:
    from colvault.benchdata import benchmark_data

    tools, skipped = select_tools(args.tools, QUERY_TOOLS)
    if "colvault" not in tools:
        raise SystemExit("the query job compares colvault with the others: keep it in --tools")
    n = args.rows

    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    raw = sum(a.nbytes for a in data.values())
    lo, hi = t_bounds(data["t"])
    calls = query_calls(lo, hi)
    want = {name: call(NumpyQueries(data)) for name, call in calls.items()}
    rows = {
        "select": n_rows(want["select"]),
        "count": want["count"],
        "t_range": n_rows(want["t_range"]),
        "stats": int(want["stats"]["count"]),
    }

    workdir = tempfile.mkdtemp(prefix="cmp-query-", dir=args.tmpdir)
    opened: dict[str, Queries] = {}
    try:
        sources, build_s = build_stores(data, tools, workdir)
        opened = {t: QUERY_TOOLS[t].queries(sources[t]) for t in tools}
        first = _check_answers(opened, calls, want)
        counts = {
            t: _pick_count(t, q, want["count"])
            for t, q in opened.items()
            if isinstance(q, PytablesQueries)
        }
        note = None
        if "pytables" in opened:
            q = opened["pytables"]
            assert isinstance(q, PytablesQueries)
            kept = sum(first["pytables"].values()) * args.repeat <= args.max_seconds
            note = _pytables_default_note(first["pytables"], int(q.table.chunkshape[0]), kept, args)
            if not kept:
                opened.pop("pytables").close()
                tools.remove("pytables")

        load_before = os.getloadavg()
        timings = {
            name: rounds({t: functools.partial(call, q) for t, q in opened.items()}, args.repeat)
            for name, call in calls.items()
        }
        for q in opened.values():
            q.close()
        opened = {}
        cold = _cold_starts(tools, sources, rows["select"], args.repeat, workdir)
        load_after = os.getloadavg()
    finally:
        for q in opened.values():
            q.close()
        shutil.rmtree(workdir, ignore_errors=True)

    print_header(
        f"query: {n:,} rows ({mb(raw)} MB raw), {args.repeat} timed runs per tool and query, "
        "interleaved",
        args.tmpdir,
        f"data generated in {gen_s:.2f} s; stores built once per tool (bulk append, untimed) in "
        + ", ".join(f"{t} {s:.1f} s" for t, s in build_s.items() if QUERY_TOOLS[t].writer)
        + "; colvault reads its store opened read-only",
        (load_before, load_after),
        "timed: one query on a store opened beforehand (files in the page cache), the answer\n"
        "  materialized as numpy arrays; each tool's answers were checked against numpy's first\n"
        "  (rows, order, values exactly; stats: count/min/max exactly, sum/mean/std to 1e-9).\n"
        f"  select: {COND}, all columns: colvault and PyTables\n"
        "    read_where; numpy: boolean mask + indexing of the 4 columns; DuckDB: SELECT *\n"
        "  count: the same condition counted: colvault count_where, numpy mask.sum(), DuckDB\n"
        "    count(*), PyTables the faster of len(get_where_list) and sum(1 for _ in where)\n"
        f"  t_range: {TIME_COND}, {rows['t_range']:,} rows of the sorted t column in the\n"
        "    middle of the table, all columns (PyTables: t as int64)\n"
        f"  stats: stats({STATS_COLUMN!r}, where=COND): count/min/max/sum/mean/std; numpy's\n"
        "    nan-functions on the masked values (PyTables: on read_where(field=)); DuckDB\n"
        "    count/min/max/sum/avg/stddev_pop\n"
        "  DuckDB answers are fetched with fetchnumpy(). PyTables: blosc2:lz4 level 5 + shuffle;\n"
        f"  pytables-128k: chunkshape=({SAME_CHUNK_ROWS},), colvault's chunk rows; pytables:\n"
        "  PyTables' default chunkshape. numpy: the columns in RAM, one thread.",
        skipped,
    )
    for name, runs in timings.items():
        print(f"{name} ({rows[name]:,} rows), ms per run:")
        print(runs_table(runs, 1e3, 2))
        print()
    faster = {t: min(seconds, key=seconds.__getitem__) for t, seconds in counts.items()}
    for t, seconds in counts.items():
        ways = ", ".join(f"{w} {s:.3f} s" for w, s in seconds.items())
        print(f"{t} count: {ways} (best of 2 calls each): timed with {faster[t]}")
    print()
    print("medians:")
    print(_query_summary(timings, rows))
    print()
    print(
        textwrap.fill(
            "cold start: a fresh process imports the tool, opens the store, runs select once; "
            "whole-process wall time (s). colvault: the query's kernel in the Numba cache "
            f"(compiled by an earlier process); {COLD_NEW}: every kernel cached but the query's "
            "(a copy of a cache filled by a process that ran "
            f"{COND_OTHER_SHAPE!r}); {COLD_EMPTY}: an empty Numba cache, every kernel compiled.",
            100,
        )
    )
    print(runs_table(cold, digits=3))
    print()
    base = cold.median("colvault")
    print(
        table(
            ["process", "median s", "min s", "max s", "/colvault"],
            [
                [
                    t,
                    f"{cold.median(t):.3f}",
                    f"{min(cold.times[t]):.3f}",
                    f"{max(cold.times[t]):.3f}",
                    f"{cold.median(t) / base:.3f}",
                ]
                for t in cold.tools
            ],
        )
    )
    print()
    timings["cold start"] = cold
    print("targets (colvault's median time / the other's):")
    print(target_table(_targets(timings)))
    if args.memory_rows:
        print()
        _query_memory(args.memory_rows, args.tmpdir)
    if note is not None:
        print()
        print(note)
    return 0
