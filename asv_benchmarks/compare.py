"""Head-to-head figures against PyTables and DuckDB at full scale, which asv cannot give us.

asv times one tool at a time on small data, each in a fresh process; the claims that matter
(colvault vs. PyTables vs. DuckDB on the 20 M-row benchmark set) need all tools in one process on
the same arrays, interleaved so that drift in disk or page-cache state hits them alike.

    python -m asv_benchmarks.compare append [--rows N] [--repeat K]
    python -m asv_benchmarks.compare logger [--commits N] [--rows-per-commit R] [--repeat K]
    python -m asv_benchmarks.compare query [--rows N] [--repeat K]
    python -m asv_benchmarks.compare csv [--rows N] [--repeat K]
    python -m asv_benchmarks.compare first-use [--repeat K]
    python -m asv_benchmarks.compare hdf5 [--rows N] [--repeat K] [--complib none|zlib]
    python -m asv_benchmarks.compare nodes [--tables N] [--rows R]

Each job is a subcommand registered in ``JOBS``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import math
import operator
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

# PyTables' blosc2 filter resolves its blosc2 functions in the process: once colvault's native
# kernels have loaded the blosc2 wheel's libblosc2 (kernels/native.py), PyTables runs on that
# newer build, ~4x faster on the logger job (0.72 s against 3.3 s; files of 2.45 against 2.40
# MB). ``import colvault`` loaded it until issue 13 made kernels load on first use; the
# harness loads it up front so that the peers run as they did in every earlier figure, at
# their best, whichever colvault job ran first.
import colvault.kernels.native  # noqa: F401  (for its side effect)

from .queries import (
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
from .writers import (
    BATCH_ROWS,
    PYTABLES_DTYPE,
    SAME_CHUNK_ROWS,
    WRITERS,
    Writer,
    colvault_catalog_bytes,
    colvault_column_sizes,
    dir_bytes,
    pytables_default_chunk_rows,
    pytables_write,
)

#: Ratios are given against each of these that ran: PyTables as configured by hand (its default
#: chunk shape), and PyTables with colvault's chunk size (see ``writers.SAME_CHUNK_ROWS``).
BASELINES = ("pytables", "pytables-128k")


@dataclass(frozen=True)
class Job:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _check_durable() -> None:
    """Refuse to benchmark with fsync turned off: the figure would not be a durable write."""
    if os.environ.get("COLVAULT_FSYNC") == "0":
        raise SystemExit(
            "COLVAULT_FSYNC=0 turns colvault's fsync off; benchmarks measure durable commits. "
            "Unset it and run again."
        )


def _versions(names: list[str]) -> str:
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def _mb(n: float, digits: int = 1) -> str:
    return f"{n / 1e6:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Plain text: first column left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# -- shared by the jobs --------------------------------------------------------------------------

#: (per-column sizes as ``writers.colvault_column_sizes`` gives them, store bytes, catalog bytes)
ColvaultReport = tuple[list[tuple[str, str, int, int, int]], int, int]


def _colvault_report(path: str) -> ColvaultReport:
    return colvault_column_sizes(path), dir_bytes(path), colvault_catalog_bytes(path)


def _common_arguments(
    p: argparse.ArgumentParser, tools: list[str], registry: Mapping[str, Any] = WRITERS
) -> None:
    p.add_argument("--repeat", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument(
        "--tools",
        default=",".join(tools),
        help=f"comma-separated subset of {','.join(registry)} (default {','.join(tools)}; "
        "missing ones are skipped)",
    )
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def _select_tools(spec: str, registry: Mapping[str, Any] = WRITERS) -> tuple[list[str], list[str]]:
    """(tools to run, tools skipped because they are not importable); ``registry`` maps a name to
    something with an ``available`` flag (``writers.WRITERS``, ``queries.QUERY_TOOLS``)."""
    tools = [t for t in spec.split(",") if t]
    unknown = [t for t in tools if t not in registry]
    if unknown:
        raise SystemExit(f"unknown tools {unknown}; choose from {list(registry)}")
    skipped = [t for t in tools if not registry[t].available]
    return [t for t in tools if t not in skipped], skipped


def _timed_write(
    writer: Writer,
    batches: object,
    n: int,
    tmpdir: str | None,
    *,
    commit_each: bool = False,
    inspect: Callable[[str], Any] | None = None,
) -> tuple[float, int, Any]:
    """One run in a fresh directory: (seconds, bytes on disk, ``inspect(path)`` or None).

    The directory is removed after. ``commit_each`` (the logger job): the tool commits after every
    batch, and the clock starts at the first batch, once the file and the table exist.
    """
    workdir = tempfile.mkdtemp(prefix=f"cmp-{writer.name}-", dir=tmpdir)
    try:
        # Flush other tools' dirty pages first, or our fsync would pay for their writeback.
        os.sync()
        gc.collect()
        start = time.perf_counter()

        def ready() -> None:
            nonlocal start
            start = time.perf_counter()

        options = {"commit_each": True, "ready": ready} if commit_each else {}
        path = writer.write(batches, workdir, n, **options)
        seconds = time.perf_counter() - start
        size = writer.size(path)
        rows = writer.rows(path)
        if rows != n:
            raise RuntimeError(f"{writer.name} stored {rows} rows, expected {n}")
        return seconds, size, None if inspect is None else inspect(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _warm_up(
    tools: list[str], data: dict, rows: int, batch: int, tmpdir: str | None, commit_each: bool
) -> None:
    """Untimed: Numba kernels, HDF5 and DuckDB initialisation are paid once per process."""
    warm = {k: v[:rows] for k, v in data.items()}
    for t in tools:
        writer = WRITERS[t]
        _timed_write(writer, writer.prepare(warm, batch), rows, tmpdir, commit_each=commit_each)


@dataclass
class Timings:
    """Seconds of the timed runs of every tool (or variant), in run order."""

    tools: list[str]
    times: dict[str, list[float]]

    def median(self, tool: str) -> float:
        return statistics.median(self.times[tool])


def _rounds(calls: dict[str, Callable[[], object]], repeat: int) -> Timings:
    """``repeat`` rounds of one call of each, interleaved so that drift hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            gc.collect()
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return Timings(list(calls), times)


@dataclass
class Runs(Timings):
    """The timed runs of every tool, and what the last colvault store held."""

    sizes: dict[str, list[int]]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    colvault: ColvaultReport | None

    def median_size(self, tool: str) -> float:
        return statistics.median(self.sizes[tool])


def _interleaved(
    tools: list[str],
    prepared: dict[str, Any],
    n: int,
    repeat: int,
    tmpdir: str | None,
    commit_each: bool = False,
) -> Runs:
    """``repeat`` rounds of one run per tool; the last colvault store is inspected, then removed."""
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {t: [] for t in tools}
    sizes: dict[str, list[int]] = {t: [] for t in tools}
    report = None
    for i in range(repeat):
        for t in tools:
            inspect = _colvault_report if t == "colvault" and i == repeat - 1 else None
            s, b, got = _timed_write(
                WRITERS[t], prepared[t], n, tmpdir, commit_each=commit_each, inspect=inspect
            )
            times[t].append(s)
            sizes[t].append(b)
            report = got if got is not None else report
    return Runs(tools, times, sizes, load_before, os.getloadavg(), report)


def _print_header(
    title: str,
    tmpdir: str | None,
    setup: str,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    timed: str,
    skipped: list[str],
) -> None:
    """What ran, where, on what, how loaded (``load``: averages before and after timing)."""
    import colvault

    fsync = os.environ.get("COLVAULT_FSYNC", "(unset)")
    print(title)
    print(f"colvault from {os.path.dirname(colvault.__file__)}")
    print(
        f"python {platform.python_version()}, "
        + _versions(["numpy", "blosc2", "numba", "tables", "duckdb", "pyarrow"])
        + f"; {os.cpu_count()} CPUs; stores in {tmpdir or tempfile.gettempdir()}"
    )
    print(f"COLVAULT_FSYNC={fsync} (fsync {'off' if fsync == '0' else 'on'}); {setup}")
    print(
        "load average (1, 5, 15 min) before timing "
        + " ".join(f"{x:.2f}" for x in load[0])
        + ", after "
        + " ".join(f"{x:.2f}" for x in load[1])
        + " (other processes on the machine skew the figures)"
    )
    print(timed)
    if skipped:
        print(f"skipped (not importable): {', '.join(skipped)}")
    print()


def _runs_table(runs: Timings, scale: float = 1.0, digits: int = 3, first: str = "run") -> str:
    """One row per run, one column per tool: seconds × ``scale``."""
    repeat = len(runs.times[runs.tools[0]])
    return _table(
        [first, *runs.tools],
        [
            [str(i + 1), *(f"{runs.times[t][i] * scale:,.{digits}f}" for t in runs.tools)]
            for i in range(repeat)
        ],
    )


def _print_runs(
    title: str,
    tmpdir: str | None,
    setup: str,
    runs: Runs,
    timed: str,
    skipped: list[str],
) -> None:
    """The header and the seconds of every run."""
    _print_header(title, tmpdir, setup, (runs.load_before, runs.load_after), timed, skipped)
    print(_runs_table(runs))
    print()


def _summary(
    runs: Runs, rates: list[tuple[str, Callable[[float], str]]], by_rate: bool, digits: int = 1
) -> str:
    """Medians per tool, ``rates`` computed from the median seconds, and ratios to each baseline:
    ``time/B`` (median seconds ÷ B's) or, ``by_rate``, ``rate/B`` (B's median seconds ÷ ours,
    the same work per run, so: our rate ÷ B's rate), and ``size/B``."""
    bases = [b for b in BASELINES if b in runs.tools]
    header = ["tool", "median s", "min s", "max s", *(h for h, _ in rates), "size MB"]
    for b in bases:
        header += [f"rate/{b}" if by_rate else f"time/{b}", f"size/{b}"]
    rows = []
    for t in runs.tools:
        med = runs.median(t)
        row = [
            t,
            f"{med:.3f}",
            f"{min(runs.times[t]):.3f}",
            f"{max(runs.times[t]):.3f}",
            *(f(med) for _, f in rates),
            _mb(runs.median_size(t), digits),
        ]
        for b in bases:
            ratio = runs.median(b) / med if by_rate else med / runs.median(b)
            row += [f"{ratio:.3f}", f"{runs.median_size(t) / runs.median_size(b):.3f}"]
        rows.append(row)
    return _table(header, rows)


def _print_colvault_report(
    heading: str, report: ColvaultReport, nrows: int, digits: int = 1
) -> None:
    """Chunks and bytes per column of one colvault store, its catalog and its whole directory."""
    cols, total, catalog = report
    print()
    print(heading)
    rows = [
        [
            name,
            dtype,
            f"{chunks:,}",
            f"{nrows / chunks:,.0f}" if chunks else "-",
            _mb(r, digits),
            _mb(s, digits),
            f"{s / chunks:,.0f}" if chunks else "-",
            f"{r / s:.2f}" if s else "-",
        ]
        for name, dtype, chunks, r, s in cols
    ]
    r_all = sum(c[3] for c in cols)
    s_all = sum(c[4] for c in cols)
    blank = ["", "", ""]
    rows.append(
        ["all columns", *blank, _mb(r_all, digits), _mb(s_all, digits), "", f"{r_all / s_all:.2f}"]
    )
    rows.append(["catalog (sqlite)", *blank, "", _mb(catalog, digits), "", ""])
    rows.append(["store directory", *blank, "", _mb(total, digits), "", ""])
    header = ["column", "dtype", "chunks", "rows/chunk", "raw MB", "stored MB", "B/chunk", "ratio"]
    print(_table(header, rows))


# -- append --------------------------------------------------------------------------------------


def _append_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=20_000_000, help="rows (default 20,000,000)")
    p.add_argument("--batch", type=int, default=BATCH_ROWS, help="rows per append call")
    _common_arguments(p, list(WRITERS))


def run_append(args: argparse.Namespace) -> int:
    _check_durable()
    from colvault.benchdata import benchmark_data

    tools, skipped = _select_tools(args.tools)
    n = args.rows

    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    raw = sum(a.nbytes for a in data.values())

    t0 = time.perf_counter()
    prepared = {t: WRITERS[t].prepare(data, args.batch) for t in tools}
    prep_s = time.perf_counter() - t0

    _warm_up(tools, data, min(n, 50_000), args.batch, args.tmpdir, commit_each=False)
    runs = _interleaved(tools, prepared, n, args.repeat, args.tmpdir)

    _print_runs(
        f"append: {n:,} rows ({_mb(raw)} MB raw), {args.batch:,}-row batches, "
        f"{args.repeat} timed runs per tool, interleaved",
        args.tmpdir,
        f"data generated in {gen_s:.2f} s, tool batches built in {prep_s:.2f} s (untimed)",
        runs,
        "timed: open -> create table -> append all batches -> close.\n"
        "  colvault: close commits (fsync + sqlite); DuckDB: CHECKPOINT (fsync) + close;\n"
        "  PyTables: blosc2:lz4 level 5 + shuffle, flush + close (no fsync), default chunk shape;\n"
        f"  pytables-128k: the same with chunkshape=({SAME_CHUNK_ROWS},), colvault's chunk rows",
        skipped,
    )
    rates = [
        ("M rows/s", lambda s: f"{n / s / 1e6:.1f}"),
        ("raw MB/s", lambda s: f"{raw / s / 1e6:.0f}"),
    ]
    print(_summary(runs, rates, by_rate=False))
    if runs.colvault is not None:
        _print_colvault_report(
            "colvault per column (committed chunk lengths from the catalog, last timed run):",
            runs.colvault,
            n,
        )
    return 0


# -- logger --------------------------------------------------------------------------------------

#: "pytables" (PyTables' own chunk shape) runs only if a probe projects one run within
#: ``--max-seconds``: with blosc2 PyTables sizes chunks by the reported L3 cache, and a flush of
#: a partial chunk costs in proportion to the chunk, not to the rows it adds.
LOGGER_TOOLS = ["colvault", "pytables-128k", "pytables", "duckdb"]


def _logger_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--commits", type=int, default=2_000, help="commits per run (default 2,000)")
    p.add_argument(
        "--rows-per-commit", type=int, default=100, help="rows appended per commit (default 100)"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="leave out pytables (default chunk shape) if a probe projects one run to take "
        "longer (default 60)",
    )
    p.add_argument(
        "--probe-commits",
        type=int,
        default=10,
        help="commits timed to project a pytables run with its default chunk shape (default 10)",
    )
    _common_arguments(p, LOGGER_TOOLS)


@dataclass(frozen=True)
class ChunkshapeProbe:
    """The first commits of a logger run with PyTables' default chunk shape."""

    chunk_rows: int
    commits: int
    seconds_per_commit: float

    def projected(self, commits: int) -> float:
        return self.seconds_per_commit * commits


def _probe_default_chunkshape(
    batches: list[Any], n: int, commits: int, tmpdir: str | None
) -> ChunkshapeProbe:
    """Time ``commits`` flushes with the chunk shape PyTables picks for ``n`` expected rows."""
    workdir = tempfile.mkdtemp(prefix="cmp-chunkshape-", dir=tmpdir)
    try:
        chunk_rows = pytables_default_chunk_rows(workdir, n)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    writer = dataclasses.replace(
        WRITERS["pytables"], write=functools.partial(pytables_write, chunkshape=chunk_rows)
    )
    k = max(1, min(commits, len(batches)))
    rows = sum(len(b) for b in batches[:k])
    seconds, _, _ = _timed_write(writer, batches[:k], rows, tmpdir, commit_each=True)
    return ChunkshapeProbe(chunk_rows, k, seconds / k)


def _chunkshape_note(probe: ChunkshapeProbe, runs: Runs, commits: int, max_seconds: float) -> str:
    chunk_mb = probe.chunk_rows * PYTABLES_DTYPE.itemsize / 1e6
    ms = probe.seconds_per_commit * 1e3
    what = (
        f"PyTables' default chunkshape here is ({probe.chunk_rows:,},), {chunk_mb:,.1f} MB per "
        f"chunk (with blosc2, PyTables sizes chunks by the L3 cache size the CPU reports). "
        f"A probe of {probe.commits} commits took {ms:,.1f} ms per commit"
    )
    if "pytables-128k" in runs.tools:
        ms_128k = runs.median("pytables-128k") / commits * 1e3
        what += (
            f", {ms / ms_128k:,.0f}x pytables-128k's {ms_128k:.2f} ms with a chunk "
            f"{probe.chunk_rows / SAME_CHUNK_ROWS:,.0f}x as long: each flush handles the whole "
            "partial chunk (recompressed and rewritten in place), not just the rows it adds"
        )
    if "pytables" in runs.tools:
        return textwrap.fill(f"note: {what}.", 100)
    return textwrap.fill(
        f"note: pytables (default chunk shape) was left out. {what}; one run of {commits:,} "
        f"commits would take about {probe.projected(commits):,.0f} s, over --max-seconds "
        f"{max_seconds:g}. pytables-128k (chunkshape=({SAME_CHUNK_ROWS},)) stands in for it.",
        100,
    )


def run_logger(args: argparse.Namespace) -> int:
    _check_durable()
    from colvault.benchdata import benchmark_data

    tools, skipped = _select_tools(args.tools)
    commits, per = args.commits, args.rows_per_commit
    n = commits * per

    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    raw = sum(a.nbytes for a in data.values())

    t0 = time.perf_counter()
    prepared = {t: WRITERS[t].prepare(data, per) for t in tools}
    prep_s = time.perf_counter() - t0

    probe = None
    if "pytables" in tools:
        probe = _probe_default_chunkshape(prepared["pytables"], n, args.probe_commits, args.tmpdir)
        if probe.projected(commits) > args.max_seconds:
            tools.remove("pytables")
    _warm_up(tools, data, min(commits, 50) * per, per, args.tmpdir, commit_each=True)
    runs = _interleaved(tools, prepared, n, args.repeat, args.tmpdir, commit_each=True)

    _print_runs(
        f"logger: {commits:,} commits of {per:,} rows ({n:,} rows, {_mb(raw, 2)} MB raw), "
        f"{args.repeat} timed runs per tool, interleaved",
        args.tmpdir,
        f"data generated in {gen_s:.2f} s, cut into batches in {prep_s:.2f} s (untimed)",
        runs,
        "timed: first batch -> last commit -> close (the file is opened and the table created\n"
        "  before the clock starts, as a logger opens its file once).\n"
        "  colvault: t.append(batch) + store.commit() per batch: durable (fsync of the column\n"
        "    segments, sqlite commit with synchronous=FULL); close.\n"
        "  PyTables: table.append(batch) + table.flush() per batch, close; blosc2:lz4 level 5 +\n"
        "    shuffle. PyTables' flush does NOT fsync: its commits reach the OS, not the disk.\n"
        f"    pytables-128k: chunkshape=({SAME_CHUNK_ROWS},); pytables: PyTables' default.\n"
        "  DuckDB: one INSERT per batch in autocommit mode (each one a durable commit: WAL\n"
        "    fsync), CHECKPOINT + close.",
        skipped,
    )
    rates = [
        ("commits/s", lambda s: f"{commits / s:,.0f}"),
        ("ms/commit", lambda s: f"{s / commits * 1e3:.2f}"),
        ("rows/s", lambda s: f"{n / s:,.0f}"),
    ]
    print(_summary(runs, rates, by_rate=True, digits=2))
    bases = [b for b in BASELINES if b in runs.tools]
    if bases:
        print(
            "rate/B: commits/s of the tool / commits/s of B (>= 1.0: at least as fast as B); "
            "size/B: bytes on disk / B's."
        )
    for b in bases if "colvault" in runs.tools else []:
        ratio = runs.median(b) / runs.median("colvault")
        print(f"colvault/{b} in commits/s: {ratio:.3f}")
    if probe is not None:
        print()
        print(_chunkshape_note(probe, runs, commits, args.max_seconds))
    if runs.colvault is not None:
        _print_colvault_report(
            f"colvault per column after a run (committed chunks from the catalog; "
            f"{commits:,} commits of {per:,} rows):",
            runs.colvault,
            n,
            digits=2,
        )
    return 0


# -- query ---------------------------------------------------------------------------------------

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


def _query_arguments(p: argparse.ArgumentParser) -> None:
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
    _common_arguments(p, QUERY_DEFAULT_TOOLS, QUERY_TOOLS)


def memory_child(args: list[str], tmpdir: str | None) -> dict[str, Any]:
    """Run ``python -m asv_benchmarks.memory ARGS...`` in a fresh process; its JSON answer."""
    import json

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "asv_benchmarks.memory", *args],
        check=True, capture_output=True, text=True, env=env, cwd=tmpdir or None,
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


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


def _query_calls(lo: Any, hi: Any) -> dict[str, Callable[[Queries], Any]]:
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


def _cold_start(
    code: str, path: str, cond: str, expect: int | None, env: dict[str, str] | None = None
) -> Callable[[], None]:
    """A fresh process: ``code`` run on ``path`` and ``cond``; it must print ``expect``."""

    def run() -> None:
        argv = [sys.executable, "-c", code, path, cond]
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        if out.returncode or (expect is not None and out.stdout.split()[-1:] != [str(expect)]):
            raise SystemExit(
                f"cold start {argv[3:]} failed (exit {out.returncode}), printed "
                f"{out.stdout!r}, expected {expect}:\n{out.stderr}"
            )

    return run


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
    path = sources["colvault"]
    base = os.path.join(tmpdir, "numba-base")
    fill = _cold_start(cv.cold_start, path, COND_OTHER_SHAPE, None, _numba_env(base))
    fill()
    # One cache directory per call, made before the clock starts (+1: the warm-up round).
    copies = [shutil.copytree(base, os.path.join(tmpdir, f"numba-{i}")) for i in range(repeat + 1)]
    empties = [tempfile.mkdtemp(prefix="numba-empty-", dir=tmpdir) for _ in range(repeat + 1)]

    def fresh_cache(dirs: list[str], cond: str) -> Callable[[], None]:
        return lambda: _cold_start(cv.cold_start, path, cond, expect, _numba_env(dirs.pop()))()

    calls = {"colvault": _cold_start(cv.cold_start, path, COND, expect)}
    for t in tools:
        tool = QUERY_TOOLS[t]
        if t != "colvault" and tool.cold_start is not None:
            calls[t] = _cold_start(tool.cold_start, sources[t], tool.cold_cond, expect)
    calls[COLD_NEW] = fresh_cache(copies, COND)
    calls[COLD_EMPTY] = fresh_cache(empties, COND)
    _rounds(calls, 1)  # untimed: the OS caches Python's and the tools' files
    return _rounds(calls, repeat)


def _numba_env(cache: str) -> dict[str, str]:
    """A fresh Numba cache directory; the generated kernel sources stay in one place beside
    it (Numba files machine code under the source's path: in a copied cache directory, the
    copied sources would find none)."""
    sources = os.path.join(os.path.dirname(cache), "kernel-sources")
    return {**os.environ, "NUMBA_CACHE_DIR": cache, "COLVAULT_KERNEL_DIR": sources}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}" if seconds >= 0.1 else f"{seconds * 1e3:,.2f}"


def _query_summary(timings: dict[str, Timings], rows: dict[str, int]) -> str:
    """Median ms per query and tool, and colvault's median / each other tool's."""
    tools = next(iter(timings.values())).tools
    others = [t for t in tools if t != "colvault"]
    header = ["query", "rows", *(f"{t} ms" for t in tools), *(f"colvault/{t}" for t in others)]
    body = []
    for name, runs in timings.items():
        cv = runs.median("colvault")
        ratios = [f"{cv / runs.median(t):.3f}" for t in others]
        body.append([name, f"{rows[name]:,}", *(_ms(runs.median(t)) for t in tools), *ratios])
    return _table(header, body)


def _targets(timings: dict[str, Timings]) -> str:
    body = []
    for row, num, den, most in QUERY_TARGETS:
        runs = timings.get(row)
        if runs is None or num not in runs.tools or den not in runs.tools:
            continue
        ratio = runs.median(num) / runs.median(den)
        body.append(
            [
                row,
                f"{num}/{den}",
                f"{ratio:.3f}",
                f"<= {most:g}",
                "met" if ratio <= most else "MISSED",
            ]
        )
    return _table(["query", "ratio of medians", "value", "target", ""], body)


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


def run_query(args: argparse.Namespace) -> int:
    from colvault.benchdata import benchmark_data

    tools, skipped = _select_tools(args.tools, QUERY_TOOLS)
    if "colvault" not in tools:
        raise SystemExit("the query job compares colvault with the others: keep it in --tools")
    n = args.rows

    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    raw = sum(a.nbytes for a in data.values())
    lo, hi = t_bounds(data["t"])
    calls = _query_calls(lo, hi)
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
        sources, build_s = {}, {}
        for t in tools:
            os.makedirs(os.path.join(workdir, t))
            t0 = time.perf_counter()
            sources[t] = QUERY_TOOLS[t].build(data, os.path.join(workdir, t))
            build_s[t] = time.perf_counter() - t0
        # Written but unsynced files (PyTables', DuckDB's) would be flushed by the kernel's
        # writeback threads during the timed rounds, on the same cores as whichever tool runs.
        os.sync()
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
            name: _rounds({t: functools.partial(call, q) for t, q in opened.items()}, args.repeat)
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

    _print_header(
        f"query: {n:,} rows ({_mb(raw)} MB raw), {args.repeat} timed runs per tool and query, "
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
        print(_runs_table(runs, 1e3, 2))
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
    print(_runs_table(cold, digits=3))
    print()
    base = cold.median("colvault")
    print(
        _table(
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
    print(_targets(timings))
    if args.memory_rows:
        print()
        _query_memory(args.memory_rows, args.tmpdir)
    if note is not None:
        print()
        print(note)
    return 0


# -- command line --------------------------------------------------------------------------------

JOBS: dict[str, Job] = {
    "append": Job("bulk-load the benchmark data set", _append_arguments, run_append),
    "logger": Job(
        "commit every small batch durably, as an instrument logger does",
        _logger_arguments,
        run_logger,
    ),
    "query": Job(
        "select, count, time range and stats queries; cold start of a query process",
        _query_arguments,
        run_query,
    ),
    "csv": Job(
        "import a numeric and a mixed CSV file; pandas and pyarrow read the same files",
        lambda p: _csvjob().add_arguments(p),
        lambda a: _csvjob().run(a),
    ),
    "first-use": Job(
        "a new user's first session on an empty kernel cache, beside PyTables + pandas",
        lambda p: _firstuse().add_arguments(p),
        lambda a: _firstuse().run(a),
    ),
    "hdf5": Job(
        "import a PyTables file of the benchmark data; PyTables and h5py read the same file",
        lambda p: _hdf5job().add_arguments(p),
        lambda a: _hdf5job().run(a),
    ),
    "nodes": Job(
        "create many small tables in one commit, reopen and walk them; h5py and PyTables too",
        lambda p: _nodesjob().add_arguments(p),
        lambda a: _nodesjob().run(a),
    ),
}


def _nodesjob() -> Any:
    from . import nodesjob

    return nodesjob


def _csvjob() -> Any:
    from . import csvjob  # imports this module's helpers: loaded on demand

    return csvjob


def _firstuse() -> Any:
    from . import firstuse

    return firstuse


def _hdf5job() -> Any:
    from . import hdf5job  # imports this module's helpers: loaded on demand

    return hdf5job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asv_benchmarks.compare",
        description="colvault vs. PyTables vs. DuckDB on the benchmark data set.",
    )
    sub = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    for name, job in JOBS.items():
        job.add_arguments(sub.add_parser(name, help=job.help, description=job.help))
    args = parser.parse_args(argv)
    return JOBS[args.job].run(args)


if __name__ == "__main__":
    sys.exit(main())
