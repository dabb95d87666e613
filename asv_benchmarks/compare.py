"""Head-to-head figures against PyTables and DuckDB at full scale, which asv cannot give us.

asv times one tool at a time on small data, each in a fresh process; the claims that matter
(colvault vs. PyTables vs. DuckDB on the 20 M-row benchmark set) need all tools in one process on
the same arrays, interleaved so that drift in disk or page-cache state hits them alike.

    python -m asv_benchmarks.compare append [--rows N] [--repeat K]

Each job is a subcommand registered in ``JOBS``; ``logger``, ``query`` and ``csv`` go there too.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from .writers import BATCH_ROWS, SAME_CHUNK_ROWS, WRITERS, colvault_column_sizes, dir_bytes

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


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


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


# -- append --------------------------------------------------------------------------------------


def _append_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=20_000_000, help="rows (default 20,000,000)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument("--batch", type=int, default=BATCH_ROWS, help="rows per append call")
    p.add_argument(
        "--tools",
        default=",".join(WRITERS),
        help=f"comma-separated subset of {','.join(WRITERS)} (missing ones are skipped)",
    )
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def _timed_write(name: str, batches: object, n: int, tmpdir: str | None) -> tuple[float, int]:
    """One run in a fresh directory: (seconds, bytes on disk). The directory is removed after."""
    writer = WRITERS[name]
    workdir = tempfile.mkdtemp(prefix=f"cmp-{name}-", dir=tmpdir)
    try:
        # Flush other tools' dirty pages first, or our fsync would pay for their writeback.
        os.sync()
        gc.collect()
        t0 = time.perf_counter()
        path = writer.write(batches, workdir, n)
        seconds = time.perf_counter() - t0
        size = writer.size(path)
        rows = writer.rows(path)
        if rows != n:
            raise RuntimeError(f"{name} stored {rows} rows, expected {n}")
        return seconds, size
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_append(args: argparse.Namespace) -> int:
    _check_durable()
    from colvault.benchdata import benchmark_data

    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in WRITERS]
    if unknown:
        raise SystemExit(f"unknown tools {unknown}; choose from {list(WRITERS)}")
    skipped = [t for t in tools if not WRITERS[t].available]
    tools = [t for t in tools if t not in skipped]
    n = args.rows

    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    raw = sum(a.nbytes for a in data.values())

    t0 = time.perf_counter()
    prepared = {t: WRITERS[t].prepare(data, args.batch) for t in tools}
    prep_s = time.perf_counter() - t0

    # Untimed warm-up: Numba kernels, HDF5 and DuckDB initialisation are paid once per process.
    warm = {k: v[: min(n, 50_000)] for k, v in data.items()}
    for t in tools:
        _timed_write(t, WRITERS[t].prepare(warm, args.batch), len(warm["t"]), args.tmpdir)

    load_before = os.getloadavg()
    times: dict[str, list[float]] = {t: [] for t in tools}
    sizes: dict[str, list[int]] = {t: [] for t in tools}
    for _ in range(args.repeat):
        for t in tools:
            s, b = _timed_write(t, prepared[t], n, args.tmpdir)
            times[t].append(s)
            sizes[t].append(b)
    load_after = os.getloadavg()

    # Per-column sizes come from one more (untimed) colvault store, kept until read.
    columns = None
    if "colvault" in tools:
        workdir = tempfile.mkdtemp(prefix="cmp-colvault-cols-", dir=args.tmpdir)
        try:
            path = WRITERS["colvault"].write(prepared["colvault"], workdir, n)
            columns = (colvault_column_sizes(path), dir_bytes(path))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"append: {n:,} rows ({_mb(raw)} MB raw), {args.batch:,}-row batches, "
        f"{args.repeat} timed runs per tool, interleaved"
    )
    print(
        f"python {platform.python_version()}, "
        + _versions(["numpy", "blosc2", "numba", "tables", "duckdb", "pyarrow"])
        + f"; {os.cpu_count()} CPUs; stores in {args.tmpdir or tempfile.gettempdir()}"
    )
    print(
        f"COLVAULT_FSYNC={os.environ.get('COLVAULT_FSYNC', '(unset)')} (fsync on); "
        f"data generated in {gen_s:.2f} s, tool batches built in {prep_s:.2f} s (untimed)"
    )
    print(
        "load average (1, 5, 15 min) before timing "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
        + " (other processes on the machine skew the figures)"
    )
    print(
        "timed: open -> create table -> append all batches -> close.\n"
        "  colvault: close commits (fsync + sqlite); DuckDB: CHECKPOINT (fsync) + close;\n"
        "  PyTables: blosc2:lz4 level 5 + shuffle, flush + close (no fsync), default chunk shape;\n"
        f"  pytables-128k: the same with chunkshape=({SAME_CHUNK_ROWS},), colvault's chunk rows"
    )
    if skipped:
        print(f"skipped (not importable): {', '.join(skipped)}")
    print()
    print(
        _table(
            ["run", *tools],
            [[str(i + 1), *(f"{times[t][i]:.3f}" for t in tools)] for i in range(args.repeat)],
        )
    )
    print()

    med = {t: statistics.median(times[t]) for t in tools}
    msize = {t: statistics.median(sizes[t]) for t in tools}
    header = ["tool", "median s", "min s", "max s", "M rows/s", "raw MB/s", "size MB"]
    bases = [b for b in BASELINES if b in tools]
    for b in bases:
        header += [f"time/{b}", f"size/{b}"]
    rows = []
    for t in tools:
        row = [
            t,
            f"{med[t]:.3f}",
            f"{min(times[t]):.3f}",
            f"{max(times[t]):.3f}",
            f"{n / med[t] / 1e6:.1f}",
            f"{raw / med[t] / 1e6:.0f}",
            _mb(msize[t]),
        ]
        for b in bases:
            row += [f"{med[t] / med[b]:.3f}", f"{msize[t] / msize[b]:.3f}"]
        rows.append(row)
    print(_table(header, rows))

    if columns is not None:
        cols, total = columns
        print()
        print("colvault per column (committed chunk lengths from the catalog):")
        crows = [
            [name, dtype, str(chunks), _mb(r), _mb(s), f"{r / s:.2f}" if s else "-"]
            for name, dtype, chunks, r, s in cols
        ]
        r_all = sum(c[3] for c in cols)
        s_all = sum(c[4] for c in cols)
        crows.append(["all columns", "", "", _mb(r_all), _mb(s_all), f"{r_all / s_all:.2f}"])
        crows.append(["store directory", "", "", "", _mb(total), ""])
        print(_table(["column", "dtype", "chunks", "raw MB", "stored MB", "ratio"], crows))
    return 0


# -- command line --------------------------------------------------------------------------------

JOBS: dict[str, Job] = {
    "append": Job("bulk-load the benchmark data set", _append_arguments, run_append),
}


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
