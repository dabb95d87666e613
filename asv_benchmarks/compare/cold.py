"""``python -m asv_benchmarks.compare cold``: reads with the page cache dropped.

Issue 15's out-of-core targets, on the 20 M-row benchmark table of ``compare query`` (built the
same way, by ``query.build_stores``):

- a scan of one column fetches from disk (the process's ``read_bytes`` in ``/proc/self/io``) at
  most 1.25x that column's compressed bytes (the chunk lengths the manifest lists, through
  ``Table.storage()``): reads stay sequential and no other column's bytes come along. The
  figure the target takes is the scan's alone, the store opened before the drop: an open reads
  the catalog (~0.3 MB for this table) and creates sqlite's ``-wal`` and ``-shm`` files, the
  same bytes whichever column follows, which outweigh a column of a few kilobytes (``t``).
  Open + scan is printed beside it;
- the benchmark query (``select``: open, ``read_where(COND)`` of all columns, close) with the
  page cache dropped before every run, against PyTables and DuckDB; ``--baseline`` is
  colvault's median on an earlier layout, which it must not exceed.

The cache is dropped with ``sync; echo 1 > /proc/sys/vm/drop_caches``: this needs root, and
empties the cache of every process on the machine. Pages mapped by a running process (this
one's Python, numpy, Numba kernels, loaded by an untimed warm-up) stay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..queries import COND, QUERY_TOOLS, NumpyQueries, n_rows
from .harness import Timings, rounds, select_tools
from .query import build_stores
from .report import Target, mb, medians_table, print_header, runs_table, table, target_table

DROP_CACHES = "/proc/sys/vm/drop_caches"
#: read_bytes of a one-column scan / the column's compressed bytes, at most (issue 15).
SCAN_TARGET = 1.25
COLD_TOOLS = ["colvault", "pytables-128k", "duckdb"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options."""
    p.add_argument("--rows", type=int, default=20_000_000, help="rows (default 20,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool (default 3)")
    tools = [t for t in QUERY_TOOLS if QUERY_TOOLS[t].writer is not None]
    p.add_argument(
        "--tools",
        default=",".join(COLD_TOOLS),
        help=f"comma-separated subset of {','.join(tools)} (default {','.join(COLD_TOOLS)}; "
        "missing ones are skipped)",
    )
    p.add_argument(
        "--baseline",
        type=float,
        default=None,
        help="colvault's median cold select on the old layout, in seconds: the target",
    )
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def drop_caches() -> None:
    """Write back dirty pages, then drop the clean ones from the page cache (needs root)."""
    os.sync()
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("1\n")
    except OSError as e:
        raise SystemExit(
            f"compare cold needs to drop the page cache and could not: writing 1 to "
            f"{DROP_CACHES} failed ({e}). Run it as root (uid {os.getuid()} now), on a machine "
            "whose /proc/sys is writable (not a container without that privilege)."
        ) from e


def read_bytes() -> int:
    """Bytes this process (all its threads) has caused to be fetched from storage."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no read_bytes in /proc/self/io")


def scan_column(path: str, column: str) -> Scan:
    """Read ``column`` whole twice, the page cache dropped before each: once with the store's
    open counted, once after an open (and its manifest) that the drop left out."""
    import colvault

    drop_caches()
    before = read_bytes()
    start = time.perf_counter()
    with colvault.open(path, "r") as store:
        table = store["/bench"]
        table.storage()  # the manifest, which the scan reads first
        opened = read_bytes() - before
        table.read_columns([column])
    seconds = time.perf_counter() - start
    fetched = read_bytes() - before
    with colvault.open(path, "r") as store:
        table = store["/bench"]
        stored = next(c.stored_bytes for c in table.storage() if c.name == column)
        drop_caches()
        before = read_bytes()
        start = time.perf_counter()
        table.read_columns([column])
        alone_s = time.perf_counter() - start
        alone = read_bytes() - before
    return Scan(stored, fetched, opened, seconds, alone, alone_s)


@dataclass(frozen=True)
class Scan:
    """What one column's cold scans read from disk (bytes) and took (seconds)."""

    stored: int  #: the column's compressed bytes, as the manifest lists them
    fetched: int  #: open + manifest + scan
    opened: int  #: of ``fetched``, the part before the scan's first chunk
    seconds: float
    alone: int  #: the scan, the store opened before the drop
    alone_seconds: float


def select_call(tool: str, source: Any, fetched: dict[str, int]) -> Callable[[], int]:
    """Open ``source``, ``select``, close: the rows it gave; ``read_bytes`` it caused go to
    ``fetched[tool]``."""

    def call() -> int:
        before = read_bytes()
        q = QUERY_TOOLS[tool].queries(source)
        try:
            rows = n_rows(q.select())
        finally:
            q.close()
        fetched[tool] = read_bytes() - before
        return rows

    return call


def run(args: argparse.Namespace) -> int:
    """The scans of every column, then the cold select of every tool."""
    import colvault
    from colvault.benchdata import benchmark_data

    drop_caches()  # fails early, with the reason, when not permitted
    tools, skipped = select_tools(args.tools, QUERY_TOOLS)
    if "colvault" not in tools:
        raise SystemExit("the cold job measures colvault: keep it in --tools")
    n = args.rows
    t0 = time.perf_counter()
    data = benchmark_data(n)
    gen_s = time.perf_counter() - t0
    expect = NumpyQueries(data).count()
    names = list(data)
    raw = sum(a.nbytes for a in data.values())

    workdir = tempfile.mkdtemp(prefix="cmp-cold-", dir=args.tmpdir)
    try:
        sources, build_s = build_stores(data, tools, workdir)
        del data
        with colvault.open(sources["colvault"], "r") as store:  # untimed: kernels loaded
            store["/bench"].read_columns(names)
        scans = {c: scan_column(sources["colvault"], c) for c in names}
        fetched: dict[str, int] = {}
        calls = {t: select_call(t, sources[t], fetched) for t in tools}
        for t, call in calls.items():  # untimed, cache warm: imports, kernels, answers checked
            if (got := call()) != expect:
                raise SystemExit(f"WRONG ANSWER: {t} select: {got:,} rows, numpy {expect:,}")
        load_before = os.getloadavg()
        cold: Timings = rounds(calls, args.repeat, before=drop_caches)
        load_after = os.getloadavg()
        sizes = {t: _bytes(sources[t]) for t in tools}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print_header(
        f"cold: {n:,} rows ({mb(raw)} MB raw), the page cache dropped before every run, "
        f"{args.repeat} timed runs per tool, interleaved",
        args.tmpdir,
        f"data generated in {gen_s:.2f} s; stores built once per tool (bulk append, untimed) in "
        + ", ".join(f"{t} {s:.1f} s" for t, s in build_s.items())
        + f"; answers checked: {expect:,} rows",
        (load_before, load_after),
        "timed: sync + drop_caches (untimed), then open the store, one query, close.\n"
        "  scan: colvault read_columns([column]), the whole column; read_bytes from /proc/self/io"
        "\n    against the column's compressed bytes (Table.storage(): the chunk lengths the "
        "manifest lists);\n"
        '    open+scan: the drop, then open the store, read its manifest, scan ("of it: open":\n'
        "    the open and manifest, and library code the drop evicted); scan alone: open the\n"
        "    store and read its manifest, then the drop, then the scan (the target's figure: the\n"
        "    open reads the same catalog whatever the column); every column read once before.\n"
        f"  select: {COND}, all columns: colvault and PyTables\n"
        "    read_where; DuckDB: SELECT * ... fetchnumpy(). PyTables: blosc2:lz4 level 5 + "
        "shuffle.",
        skipped,
    )
    print("scan of one column, cache dropped (MB are 10^6 bytes):")
    print(
        table(
            [
                "column",
                "stored MB",
                "open+scan MB",
                "of it: open MB",
                "/stored",
                "s",
                "scan alone MB",
                "/stored",
                "s",
            ],
            [
                [
                    c,
                    mb(x.stored, 3),
                    mb(x.fetched, 3),
                    mb(x.opened, 3),
                    f"{x.fetched / x.stored:.3f}",
                    f"{x.seconds:.3f}",
                    mb(x.alone, 3),
                    f"{x.alone / x.stored:.3f}",
                    f"{x.alone_seconds:.3f}",
                ]
                for c, x in scans.items()
            ],
        )
    )
    print()
    print(f"select ({expect:,} rows), s per run, cache dropped before each:")
    print(runs_table(cold))
    print()
    print("medians (s) and read_bytes of the last run:")
    print(medians_table({"select": cold}, unit="s"))
    print(
        table(
            ["tool", "read MB", "store MB", "read/store"],
            [[t, mb(fetched[t]), mb(sizes[t]), f"{fetched[t] / sizes[t]:.3f}"] for t in cold.tools],
        )
    )
    print()
    targets: list[Target] = [
        (f"scan {c}", "read_bytes/stored", x.alone / x.stored, SCAN_TARGET)
        for c, x in scans.items()
    ]
    if args.baseline is not None:
        targets.append(
            ("select", "colvault/baseline", cold.median("colvault") / args.baseline, 1.0)
        )
    print("targets:")
    print(target_table(targets, first="what", ratio="ratio"))
    if args.baseline is None:
        print(
            f"colvault's cold select median: {cold.median('colvault'):.3f} s (pass it as "
            "--baseline after a layout change: the new one must be no slower)"
        )
    return 0


def _bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)
