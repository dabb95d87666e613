"""The ``colvault`` command line: ``demo``, ``info``, ``verify``, ``import-csv``, ``warmup``."""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from . import open as open_store
from .benchdata import SCHEMA, benchmark_data
from .engine.nodes import DataNode


def _tree(store) -> None:
    for node in store.walk():
        depth = node.path.count("/") - (node.path == "/")
        print("  " * depth + (repr(node) if isinstance(node, DataNode) else node.path))


def print_storage(table) -> None:
    """Per-column encodings and compression ratios."""
    head = ("column", "dtype", "chunks", "raw MB", "stored MB", "ratio", "encodings (chunks)")
    print("{:<10} {:<16} {:>6} {:>8} {:>9} {:>6}  {}".format(*head))
    for c in table.storage():
        dtype = "category" if c.spec.is_category else str(c.spec.dtype)
        raw = "-" if c.raw_bytes is None else f"{c.raw_bytes / 1e6:.1f}"
        ratio = f"{c.ratio:.1f}x" if c.ratio else "-"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(c.encodings.items()))
        row = (c.name, dtype, c.chunks, raw, f"{c.stored_bytes / 1e6:.1f}", ratio, kinds)
        print("{:<10} {:<16} {:>6} {:>8} {:>9} {:>6}  {}".format(*row))


def demo(path: str, rows: int, batch: int) -> int:
    """Bulk-append the benchmark data, commit, reopen read-only and show what is there."""
    from tqdm import tqdm

    print(f"generating {rows:,} rows of benchmark data ...", flush=True)
    data = benchmark_data(rows)
    # A status column of instrument states, as text: stored as a category (codes + dictionary).
    states = np.array(["ok", "warming", "saturated", "fault"])
    data["status"] = states[np.digitize(data["value"], [-45.0, 45.0, 52.0])]
    start = time.perf_counter()
    with open_store(path, "w") as store:
        t = store.create_table(
            "/sensors/run1", {**SCHEMA, "status": "category"}, expected_rows=rows
        )
        t.attrs["source"] = "colvault demo (benchmark data set)"
        with tqdm(total=rows, unit="rows", unit_scale=True, desc="append") as bar:
            for i in range(0, rows, batch):
                t.append({k: v[i : i + batch] for k, v in data.items()})
                bar.update(min(batch, rows - i))
        store.commit()
    elapsed = time.perf_counter() - start
    print(f"appended and committed {rows:,} rows in {elapsed:.2f} s: {rows / elapsed:,.0f} rows/s")
    with open_store(path) as store:
        print(f"\n{store.path}")
        _tree(store)
        t = store["/sensors/run1"]
        print(f"\nfirst rows:\n{t[:3]}")
        print(f"last row: {t[-1]}")
        mid = len(t) // 2
        print(f"value[{mid}:{mid + 5}] = {t.cols.value[mid : mid + 5]}")
        ok = np.array_equal(t.cols.value[mid : mid + 1000], data["value"][mid : mid + 1000])
        print(f"slice matches the generated data: {ok}")
        print(f"status[{mid}:{mid + 3}] = {t.cols.status[mid : mid + 3]}")
        ok = ok and np.array_equal(t.cols.status[:1000], data["status"][:1000])
        raw = sum(c.raw_bytes or 0 for c in t.storage()) / 1e6
        stored = t.stored_bytes / 1e6
        print(f"\nnumeric columns {raw:,.0f} MB raw; all columns {stored:,.1f} MB stored")
        print_storage(t)
        ok = run_queries(t, data) and ok
        report = store.verify()
        print(f"verify: {report}")
    return 0 if ok and report.ok else 1


def run_queries(t, data: dict[str, np.ndarray]) -> bool:
    """Time a few queries and check each answer against numpy on the generated columns."""
    mid = data["t"][len(data["t"]) // 2]
    lo, hi = mid, mid + np.timedelta64(10, "ms")
    cond = "(value > 10) & (value < 20.5) & (temp < 20)"
    mask = (data["value"] > 10) & (data["value"] < 20.5) & (data["temp"] < 20)
    in_range = (data["t"] >= lo) & (data["t"] < hi)
    checks = [
        (f"read_where({cond!r})", lambda: len(t.read_where(cond)), int(mask.sum())),
        (f"count_where({cond!r})", lambda: t.count_where(cond), int(mask.sum())),
        (
            "count_where('(t >= lo) & (t < hi)')  # 10 ms of the sorted clock",
            lambda: t.count_where("(t >= lo) & (t < hi)", {"lo": lo, "hi": hi}),
            int(in_range.sum()),
        ),
        ("count_where('status == \"fault\"')", lambda: t.count_where('status == "fault"'),
         int((data["status"] == "fault").sum())),
        (f"stats('value', where={cond!r})['mean']",
         lambda: round(float(t.stats("value", where=cond)["mean"]), 9),
         round(float(np.mean(data["value"][mask])), 9)),
    ]  # fmt: skip
    print("\nqueries (each answer checked against numpy):")
    ok = True
    for text, run, want in checks:
        run()  # the first call compiles or loads the kernel
        start = time.perf_counter()
        got = run()
        ms = (time.perf_counter() - start) * 1e3
        ok = ok and got == want
        print(f"  {ms:8.1f} ms  {text} -> {got}{'' if got == want else f' != numpy {want}'}")
    return ok


def _target(text: str, first_file: str) -> tuple[str, str]:
    """``STORE[:/path]`` -> (store, table path); the default path is ``/<first file's stem>``.

    >>> _target("lab.colvault:/runs/r1", "x.csv")
    ('lab.colvault', '/runs/r1')
    >>> _target("lab.colvault", "data/2025-03 run.csv.gz")
    ('lab.colvault', '/2025-03_run')
    """
    store, sep, path = text.rpartition(":")
    if sep and path.startswith("/"):
        return store, path
    stem = os.path.basename(first_file).split(".")[0] or "imported"
    return text, "/" + "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)


def import_csv_command(args: argparse.Namespace) -> int:
    """``colvault import-csv FILE... STORE[:/path]``: import, then say what the table holds."""
    from .errors import ColvaultError
    from .io.csvimport import import_csv

    if len(args.paths) < 2:
        print("error: give one or more CSV files, then STORE[:/path]", file=sys.stderr)
        return 2
    files, target = args.paths[:-1], args.paths[-1]
    store_path, table_path = _target(target, files[0])
    schema = {}
    for item in args.schema or []:
        name, _, dtype = item.partition("=")
        schema[name] = dtype
    na = list(args.na_values.split(",")) if args.na_values is not None else None
    options = {
        "schema": schema or None,
        "delimiter": args.delimiter,
        "quotechar": args.quotechar or None,
        "header": {"infer": "infer", "yes": True, "no": False}[args.header],
        "skiprows": args.skiprows,
        "comment": args.comment,
        "decimal": args.decimal,
        "thousands": args.thousands,
        "usecols": args.usecols.split(",") if args.usecols else None,
        "encoding": args.encoding,
        "datetime_formats": args.datetime_format,
        "on_bad_lines": args.on_bad_lines,
        "chunk_bytes": args.chunk_bytes,
        "progress": False if args.no_progress else None,
    }
    if na is not None:
        options["na_values"] = na
    start = time.perf_counter()
    source = files if len(files) > 1 else files[0]
    try:
        with open_store(store_path, "a") as store:
            t = import_csv(source, store, table_path, **options)
            print(f"imported {t.nrows:,} rows in {time.perf_counter() - start:.2f} s")
            print(repr(t))
            print_storage(t)
    except ColvaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def warmup_command(processes: int | None) -> int:
    from .warmup import warmup

    where = os.environ.get("NUMBA_CACHE_DIR") or (
        "Numba's cache (beside the package, or under ~/.cache when that is read-only)"
    )
    print(f"compiling colvault's kernels for this machine into {where}:", flush=True)
    seconds = warmup(processes, sys.stdout)
    print(f"done in {seconds:.1f} s; later processes load them from the cache")
    return 0


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE... STORE[:/path]")
    p.add_argument("--delimiter", help="field delimiter (default: sniffed)")
    p.add_argument("--quotechar", default='"', help='quote character (default "; "" for none)')
    p.add_argument("--header", choices=["infer", "yes", "no"], default="infer")
    p.add_argument("--skiprows", type=int, help="lines above the header (default: sniffed)")
    p.add_argument("--comment", help="comment character: the rest of a line is ignored")
    p.add_argument("--na-values", help="comma-separated missing-value texts (replace defaults)")
    p.add_argument("--decimal", default=".", help="decimal mark (default .)")
    p.add_argument("--thousands", help="thousands separator")
    p.add_argument("--usecols", help="comma-separated column names to import")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--datetime-format", action="append", help="strptime format (repeatable)")
    p.add_argument("--on-bad-lines", choices=["error", "skip"], default="error")
    p.add_argument("--schema", action="append", metavar="NAME=DTYPE", help="fix a column's type")
    p.add_argument("--chunk-bytes", type=int, help="block size in bytes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="colvault", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="bulk-load the benchmark data set and read it back")
    p.add_argument("--path", default="demo.colvault")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--batch", type=int, default=1_000_000)
    p = sub.add_parser("info", help="print the tree of a store")
    p.add_argument("store")
    p = sub.add_parser("verify", help="check every chunk's checksum")
    p.add_argument("store")
    _import_arguments(sub.add_parser("import-csv", help="import CSV files into a table"))
    p = sub.add_parser("warmup", help="compile the kernels for this machine ahead of first use")
    p.add_argument("--processes", type=int, help="parallel processes (default: one per CPU)")
    args, extra = parser.parse_known_args(argv)  # import-csv's files may sit between options
    if extra and (args.command != "import-csv" or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.paths += extra
    if args.command == "demo":
        return demo(args.path, args.rows, args.batch)
    if args.command == "import-csv":
        return import_csv_command(args)
    if args.command == "warmup":
        return warmup_command(args.processes)
    from .errors import ColvaultError

    try:
        with open_store(args.store) as store:
            if args.command == "info":
                _tree(store)
                return 0
            report = store.verify()
            print(report)
            return 0 if report.ok else 1
    except ColvaultError as exc:  # e.g. a catalog too damaged to open: said, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
