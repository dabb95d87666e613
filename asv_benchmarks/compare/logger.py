"""``python -m asv_benchmarks.compare logger``: a durable commit after every small batch.

An instrument logger must not lose a batch: every tool commits after each one, as durably as it
can; the clock starts once the file and the table exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from typing import Any

from ..writers import (
    PYTABLES_DTYPE,
    SAME_CHUNK_ROWS,
    WRITERS,
    pytables_default_chunk_rows,
    pytables_write,
)
from .harness import (
    Runs,
    check_durable,
    common_arguments,
    interleaved,
    select_tools,
    timed_write,
    warm_up,
)
from .report import BASELINES, mb, print_colvault_report, print_runs, summary

#: "pytables" (PyTables' own chunk shape) runs only if a probe projects one run within
#: ``--max-seconds``: with blosc2 PyTables sizes chunks by the reported L3 cache, and a flush of
#: a partial chunk costs in proportion to the chunk, not to the rows it adds.
LOGGER_TOOLS = ["colvault", "pytables-128k", "pytables", "duckdb"]


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    common_arguments(p, LOGGER_TOOLS)


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
    seconds, _, _ = timed_write(writer, batches[:k], rows, tmpdir, commit_each=True)
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


def run(args: argparse.Namespace) -> int:
    check_durable()
    from colvault.benchdata import benchmark_data

    tools, skipped = select_tools(args.tools)
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
    warm_up(tools, data, min(commits, 50) * per, per, args.tmpdir, commit_each=True)
    runs = interleaved(tools, prepared, n, args.repeat, args.tmpdir, commit_each=True)

    print_runs(
        f"logger: {commits:,} commits of {per:,} rows ({n:,} rows, {mb(raw, 2)} MB raw), "
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
    print(summary(runs, rates, by_rate=True, digits=2))
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
        print_colvault_report(
            f"colvault per column after a run (committed chunks from the catalog; "
            f"{commits:,} commits of {per:,} rows):",
            runs.colvault,
            n,
            digits=2,
        )
    return 0
