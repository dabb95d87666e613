"""``python -m asv_benchmarks.compare hdf5``: ``import_hdf5`` against PyTables and h5py reading,
``export_hdf5`` against PyTables and h5py writing.

A PyTables file of the benchmark data set (``t`` as int64 nanoseconds, as the other PyTables
figures store it) is written once per filter asked for, untimed, with PyTables' default chunk
shape. By default two files: ``blosc2:lz4`` (level 5, shuffle: PyTables' files as the ``query``,
``append`` and ``cold`` jobs write them; h5py reads them through ``hdf5plugin``, the ``hdf5``
extra) and ``none``. Timed per file, interleaved: colvault's whole import (read, compress,
durable commit) into a new store each run; PyTables' ``table.read()`` and h5py's
``dataset[:]``, which only read the table into memory. The issue's target: the import in at
most the time PyTables takes to read, printed for each file. Reading an uncompressed file is a
copy from the page cache, which no import that compresses and fsyncs the same bytes can match.

Export, timed the same way: colvault's ``export_hdf5`` of the imported table (read from the
store, written as a PyTables table, fsync'd) against PyTables' ``Table.append`` and h5py's
``create_dataset`` writing the same rows from memory into a new file (fsync'd too), all three
with the same HDF5 chunks and filters: none, then shuffle + deflate at ``export_hdf5``'s
level (whatever ``--complib`` is). PyTables' read of colvault's export is checked against the
source file first (untimed).

The bounded-memory check and the export use the last file. The bounded-memory check runs
``python -m asv_benchmarks.compare.hdf5 memory H5 STORE`` in a fresh process: ``RssAnon`` after
a small import (the level), its peak during the big one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .harness import Timings, check_durable, child_json, rounds
from .report import print_header, runs_table, table

TABLE = "bench"
#: colvault's import time / PyTables' read time, at most (issue 14); peak growth in MB, at most.
TARGET_RATIO = 1.0
TARGET_MB = 150
WRITE_BATCH = 2_000_000
DTYPE = np.dtype([("t", "<i8"), ("sensor", "<i4"), ("value", "<f8"), ("temp", "<f4")])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=20_000_000, help="rows (default 20,000,000)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument("--tmpdir", default=None, help="where files and stores go (default: TMPDIR)")
    p.add_argument(
        "--complib",
        default="blosc2:lz4,none",
        help="PyTables filters of the files, comma-separated: none, zlib, or any PyTables "
        "complib (default blosc2:lz4,none)",
    )
    p.add_argument("--no-memory", action="store_true", help="leave out the bounded-memory check")


def write_file(path: str, rows: int, complib: str) -> None:
    """The benchmark data set as a PyTables table, written in batches (untimed)."""
    import tables

    from colvault.benchdata import benchmark_data

    data = benchmark_data(rows)
    filters = tables.Filters(0) if complib == "none" else tables.Filters(5, complib)
    with tables.open_file(path, "w") as f:
        t = f.create_table("/", TABLE, DTYPE, expectedrows=rows, filters=filters)
        for start in range(0, rows, WRITE_BATCH):
            stop = min(start + WRITE_BATCH, rows)
            batch = np.empty(stop - start, DTYPE)
            for name in DTYPE.names or ():
                col = data[name][start:stop]
                batch[name] = col.view("i8") if col.dtype.kind == "M" else col
            t.append(batch)
        t.flush()


def _check(path: str, workdir: str) -> None:
    """colvault's table equals PyTables' reading of the file, slice by slice (untimed)."""
    import tables

    import colvault

    with colvault.open(os.path.join(workdir, "check.colvault"), "w") as store:
        colvault.import_hdf5(path, store, progress=False)
        got = store["/" + TABLE]
        with tables.open_file(path) as f:
            want = f.get_node("/" + TABLE)
            if got.nrows != want.nrows:
                raise SystemExit(f"colvault has {got.nrows} rows, PyTables {want.nrows}")
            for start in range(0, want.nrows, WRITE_BATCH):
                g = got.read(start, start + WRITE_BATCH)
                w = want.read(start, start + WRITE_BATCH)
                for name in DTYPE.names or ():
                    if not np.array_equal(g[name], w[name]):
                        raise SystemExit(f"column {name} differs from PyTables' read")
    shutil.rmtree(os.path.join(workdir, "check.colvault"), ignore_errors=True)


def _calls(path: str, workdir: str) -> dict[str, Callable[[], Any]]:
    import h5py
    import tables

    import colvault

    counter = iter(range(1_000_000))

    def colvault_import() -> None:
        target = os.path.join(workdir, f"run{next(counter)}.colvault")
        with colvault.open(target, "w") as store:
            colvault.import_hdf5(path, store, progress=False)
        shutil.rmtree(target)  # untimed in effect: after the commit, which is what is measured

    def pytables_read() -> Any:
        with tables.open_file(path) as f:
            return f.get_node("/" + TABLE).read()

    def h5py_read() -> Any:
        with h5py.File(path, "r") as f:
            return f[TABLE][:]

    out: dict[str, Callable[[], Any]] = {"colvault": colvault_import, "pytables": pytables_read}
    with h5py.File(path, "r") as f:
        dcpl = f[TABLE].id.get_create_plist()
        readable = all(
            h5py.h5z.filter_avail(dcpl.get_filter(i)[0]) for i in range(dcpl.get_nfilters())
        )
    if readable:
        out["h5py"] = h5py_read
    return out


def _export_calls(
    store: Any, rows: np.ndarray, workdir: str, compression: str | None
) -> tuple[dict[str, Callable[[], Any]], str]:
    """colvault's export of the imported table (in ``store``), and PyTables and h5py writing
    the same ``rows``, with ``compression``; with a description of the setup."""
    import h5py
    import tables

    import colvault
    from colvault.io.hdf5.export import GZIP_LEVEL, HDF5_CHUNK_BYTES

    chunk = 1 << ((HDF5_CHUNK_BYTES // rows.dtype.itemsize).bit_length() - 1)
    out = os.path.join(workdir, "export.h5")
    filters = tables.Filters(GZIP_LEVEL, "zlib", shuffle=True) if compression else None

    def durable(name: str) -> None:
        with open(name, "rb+") as fh:
            os.fsync(fh.fileno())

    def colvault_export() -> None:
        colvault.export_hdf5(store, out, compression=compression, overwrite=True, progress=False)

    def pytables_write() -> None:
        with tables.open_file(out, "w") as f:
            t = f.create_table("/", TABLE, rows.dtype, filters=filters, chunkshape=(chunk,),
                               expectedrows=len(rows))  # fmt: skip
            t.append(rows)
        durable(out)

    def h5py_write() -> None:
        with h5py.File(out, "w") as f:
            f.create_dataset(
                TABLE, data=rows, chunks=(chunk,), maxshape=(None,), compression=compression,
                compression_opts=GZIP_LEVEL if compression else None, shuffle=bool(compression),
            )  # fmt: skip
        durable(out)

    colvault_export()  # checked once: PyTables reads the source's rows back (untimed)
    with tables.open_file(out) as f:
        got = f.get_node("/" + TABLE)
        if not isinstance(got, tables.Table) or got.nrows != len(rows):
            raise SystemExit("PyTables does not read colvault's export as the table")
        for start in range(0, len(rows), WRITE_BATCH):
            stop = start + WRITE_BATCH
            if got.read(start, stop).tobytes() != rows[start:stop].tobytes():
                raise SystemExit("PyTables' read of colvault's export differs from the source")
    setup = (
        f"HDF5 chunks of {chunk:,} rows, "
        + (f"shuffle + deflate level {GZIP_LEVEL}" if compression else "no filter")
        + "; PyTables' read of colvault's export equals the source (checked, untimed)"
    )
    calls = {"colvault": colvault_export, "pytables": pytables_write, "h5py": h5py_write}
    return calls, setup


def _run_export(path: str, workdir: str, args: argparse.Namespace) -> None:
    """Export timings without a filter, then with gzip (what PyTables' zlib reads)."""
    import tables

    import colvault

    store = colvault.open(os.path.join(workdir, "export-source.colvault"), "w")
    try:
        colvault.import_hdf5(path, store, progress=False)
        with tables.open_file(path) as f:
            rows = f.get_node("/" + TABLE).read()
        for compression in (None, "gzip"):
            calls, setup = _export_calls(store, rows, workdir, compression)
            for call in calls.values():
                call()  # warm-up
            load_before = os.getloadavg()
            runs = rounds(calls, args.repeat)
            load_after = os.getloadavg()
            _print_export(args, setup, runs, load_before, load_after)
    finally:
        store.close()


def _print_export(
    args: argparse.Namespace, setup: str, runs: Timings, load_before: Any, load_after: Any
) -> None:
    mb = args.rows * DTYPE.itemsize / 1e6
    print(f"export: {args.rows:,} rows ({mb:,.1f} MB of rows) written to a new HDF5 file; {setup}")
    print(
        "timed: colvault: export_hdf5 of the imported table (read from the store + write + "
        "fsync);\n  pytables: Table.append of the rows in memory + fsync; h5py: "
        "create_dataset(data=rows) + fsync"
    )
    print(
        "load average (1, 5, 15 min) before timing "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    print_runs(runs, mb)


def print_runs(runs: Any, mb: float) -> float:
    """Print the runs and their medians (MB/s of ``mb``, colvault against each); colvault's
    median."""
    print(runs_table(runs))
    print()
    base = runs.median("colvault")
    medians = {t: runs.median(t) for t in runs.tools}
    rows = [[t, f"{m:.3f}", f"{mb / m:,.0f}", f"{base / m:.3f}"] for t, m in medians.items()]
    print(table(["tool", "median s", "MB/s", "colvault/tool"], rows))
    print()
    return float(base)


def run(args: argparse.Namespace) -> int:
    check_durable()
    workdir = tempfile.mkdtemp(prefix="cmp-hdf5-", dir=args.tmpdir)
    complibs = [c for c in args.complib.split(",") if c]
    try:
        verdicts = []
        for i, complib in enumerate(complibs):
            path = os.path.join(workdir, f"bench{i}.h5")
            verdicts.append((complib, _run_import(path, workdir, complib, args)))
            if i < len(complibs) - 1:
                os.remove(path)
        print("targets: colvault's import / PyTables' read, per file:")
        for complib, ratio in verdicts:
            verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
            print(f"  complib {complib}: {ratio:.3f} (<= {TARGET_RATIO:g}: {verdict})")
        if not args.no_memory:
            _memory(path, workdir)
        print()
        _run_export(path, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _run_import(path: str, workdir: str, complib: str, args: argparse.Namespace) -> float:
    """Write the file with ``complib``, check colvault's import of it, time the import against
    the reads; colvault's median / PyTables'."""
    t0 = time.perf_counter()
    write_file(path, args.rows, complib)
    gen_s = time.perf_counter() - t0
    _check(path, workdir)
    calls = _calls(path, workdir)
    for call in calls.values():
        call()  # warm-up: imports, kernels, page cache
    load_before = os.getloadavg()
    runs = rounds(calls, args.repeat)
    load_after = os.getloadavg()
    mb = os.path.getsize(path) / 1e6
    print_header(
        f"hdf5: {args.rows:,} rows of the benchmark data in a PyTables table "
        f"({mb:,.1f} MB, complib {complib}), {args.repeat} timed runs per tool, interleaved",
        args.tmpdir,
        f"file written in {gen_s:.1f} s (untimed); colvault's table equals PyTables' read "
        "(checked, untimed)",
        (load_before, load_after),
        "timed: colvault: import_hdf5 into a new store (read + compress + durable commit);"
        "\n  pytables: table.read() into memory; h5py: dataset[:] into memory",
        [],
    )
    base = print_runs(runs, args.rows * DTYPE.itemsize / 1e6)
    ratio = base / runs.median("pytables")
    print(f"colvault's import / PyTables' read, complib {complib}: {ratio:.3f}")
    print()
    return ratio


def _memory(path: str, workdir: str) -> None:
    got = child_json("asv_benchmarks.compare.hdf5", ["memory", path, workdir])
    grow = (got["peak"] - got["level"]) / 1e6
    print(
        f"bounded memory: import of {got['rows']:,} rows ({got['bytes'] / 1e6:,.0f} MB of "
        f"rows) in a child process; RssAnon after a small import {got['level'] / 1e6:.1f} MB, "
        f"peak during the big one {got['peak'] / 1e6:.1f} MB: +{grow:.1f} MB "
        f"(target <= {TARGET_MB} MB: {'met' if grow <= TARGET_MB else 'MISSED'})"
    )


def measure_memory(path: str, workdir: str) -> dict[str, Any]:
    """In a fresh process: the level after a small import, the peak during the big one."""
    import colvault
    from colvault.diagnostics import PeakRss, rss_anon

    small = os.path.join(workdir, "small.h5")
    write_file(small, 100_000, "none")
    with colvault.open(os.path.join(workdir, "mem-small.colvault"), "w") as store:
        colvault.import_hdf5(small, store, progress=False)
    level = rss_anon()
    with colvault.open(os.path.join(workdir, "mem.colvault"), "w") as store:
        with PeakRss() as sampler:
            colvault.import_hdf5(path, store, progress=False)
        rows = store["/" + TABLE].nrows
    return {"rows": rows, "bytes": rows * DTYPE.itemsize, "level": level, "peak": sampler.peak}


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:
        print(json.dumps(measure_memory(sys.argv[2], sys.argv[3])), flush=True)
    else:
        sys.exit("usage: python -m asv_benchmarks.compare.hdf5 memory H5 WORKDIR")
