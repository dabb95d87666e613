"""``python -m asv_benchmarks.compare append``: bulk-load the benchmark data set, every tool.

Timed: open, create the table, append every batch, durable close; runs interleaved.
"""

from __future__ import annotations

import argparse
import time

from ..writers import BATCH_ROWS, SAME_CHUNK_ROWS, WRITERS
from .harness import check_durable, common_arguments, interleaved, select_tools, warm_up
from .report import mb, print_colvault_report, print_runs, summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=20_000_000, help="rows (default 20,000,000)")
    p.add_argument("--batch", type=int, default=BATCH_ROWS, help="rows per append call")
    common_arguments(p, list(WRITERS))


def run(args: argparse.Namespace) -> int:
    check_durable()
    from colvault.benchdata import benchmark_data

    tools, skipped = select_tools(args.tools)
    n = args.rows

    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    raw = sum(a.nbytes for a in data.values())

    t0 = time.perf_counter()
    prepared = {t: WRITERS[t].prepare(data, args.batch) for t in tools}
    prep_s = time.perf_counter() - t0

    warm_up(tools, data, min(n, 50_000), args.batch, args.tmpdir, commit_each=False)
    runs = interleaved(tools, prepared, n, args.repeat, args.tmpdir)

    print_runs(
        f"append: {n:,} rows ({mb(raw)} MB raw), {args.batch:,}-row batches, "
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
    print(summary(runs, rates, by_rate=False))
    if runs.colvault is not None:
        print_colvault_report(
            "colvault per column (committed chunk lengths from the catalog, last timed run):",
            runs.colvault,
            n,
        )
    return 0
