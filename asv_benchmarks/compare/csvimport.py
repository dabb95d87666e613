"""``python -m asv_benchmarks.compare csv``: colvault's full CSV import against CSV readers.

colvault's time is the whole import (parse, compress, durable commit) into a new table of a
store opened before the clock starts (as a session opens its store once);
``pandas.read_csv`` and ``pyarrow.csv.read_csv`` only parse into memory (pandas with
``parse_dates`` for the mixed file's timestamp). Runs are interleaved, medians compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import csvfiles
from .harness import memory_child, rounds
from .report import print_header, runs_table, table

TARGETS = (("numeric", "pandas", 1.0), ("mixed", "pyarrow", 1.0))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=2_000_000, help="rows per file (default 2 M)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument("--tmpdir", default=None, help="where files and stores go (default: TMPDIR)")
    p.add_argument(
        "--memory-gb",
        type=float,
        default=1.0,
        help="size of the bounded-memory check's file in GB (default 1; 0 leaves it out)",
    )


def _readers(path: str, kind: str, store: Any) -> dict[str, Callable[[], Any]]:
    import colvault

    counter = iter(range(1_000_000))

    def colvault_import() -> Any:
        colvault.import_csv(path, store, f"/{kind}{next(counter)}", progress=False)

    out: dict[str, Callable[[], Any]] = {"colvault": colvault_import}
    try:
        import pandas as pd

        dates = ["t"] if kind == csvfiles.MIXED else None
        out["pandas"] = lambda: pd.read_csv(path, parse_dates=dates)
    except ImportError:
        pass
    try:
        import pyarrow.csv as pacsv

        out["pyarrow"] = lambda: pacsv.read_csv(path)
    except ImportError:
        pass
    return out


def _check(path: str, kind: str, workdir: str) -> str:
    """colvault's table against pandas' reading of the same file (untimed)."""
    import pandas as pd

    import colvault

    with colvault.open(os.path.join(workdir, "check.colvault"), "w") as s:
        t = colvault.import_csv(path, s, "/t")
        got = t.read()
        schema = {name: str(dtype) for name, dtype in t.dtypes.items()}
    want = pd.read_csv(path, parse_dates=["t"] if kind == csvfiles.MIXED else None)
    for name in want.columns:
        w = want[name].to_numpy()
        g = got[name]
        if w.dtype.kind == "M":
            w = w.astype("datetime64[ns]")
        if w.dtype.kind == "f":
            same = np.array_equal(w.view(np.uint64), g.astype(np.float64).view(np.uint64))
        else:
            same = np.array_equal(w.astype(g.dtype) if w.dtype != object else w, g)
        if not same:
            raise SystemExit(f"{kind}: column {name} differs from pandas")
    return ", ".join(f"{k} {v}" for k, v in schema.items())


def run(args: argparse.Namespace) -> int:
    workdir = tempfile.mkdtemp(prefix="cmp-csv-", dir=args.tmpdir)
    try:
        files = {}
        t0 = time.perf_counter()
        for kind in (csvfiles.NUMERIC, csvfiles.MIXED):
            files[kind] = csvfiles.write(kind, args.rows, os.path.join(workdir, f"{kind}.csv"))
        gen_s = time.perf_counter() - t0
        schemas = {k: _check(p, k, workdir) for k, p in files.items()}
        import colvault

        load_before = os.getloadavg()
        results = {}
        with colvault.open(os.path.join(workdir, "timed.colvault"), "w") as store:
            for kind, path in files.items():
                calls = _readers(path, kind, store)
                for call in calls.values():
                    call()  # warm-up: kernels, imports, page cache
                results[kind] = rounds(calls, args.repeat)
        load_after = os.getloadavg()
        sizes = ", ".join(f"{k} {os.path.getsize(p) / 1e6:.1f} MB" for k, p in files.items())
        print_header(
            f"csv: {args.rows:,} rows per file ({sizes}), {args.repeat} timed runs per tool, "
            "interleaved",
            args.tmpdir,
            f"files generated in {gen_s:.1f} s (untimed); colvault's tables equal pandas' "
            "reading (checked, untimed)",
            (load_before, load_after),
            "timed: colvault: import_csv into a new table of an open store (parse + compress +"
            " durable commit);\n  pandas: read_csv (parse only; parse_dates=['t'] for mixed); "
            "pyarrow: csv.read_csv (parse only, its threads)",
            [],
        )
        for kind, runs in results.items():
            print(f"{kind} ({schemas[kind]}):")
            print(runs_table(runs))
            base = runs.median("colvault")
            mb = os.path.getsize(files[kind]) / 1e6
            rows = [
                [t, f"{runs.median(t):.3f}", f"{mb / runs.median(t):,.0f}", f"{base / m:.3f}"]
                for t, m in ((t, runs.median(t)) for t in runs.tools)
            ]
            print(table(["tool", "median s", "MB/s", "colvault/tool"], rows))
            print()
        body = []
        for kind, other, most in TARGETS:
            runs = results[kind]
            if other not in runs.tools:
                continue
            ratio = runs.median("colvault") / runs.median(other)
            verdict = "met" if ratio <= most else "MISSED"
            body.append([kind, f"colvault/{other}", f"{ratio:.3f}", f"<= {most:g}", verdict])
        print("targets (colvault's median time / the other's):")
        print(table(["file", "ratio of medians", "value", "target", ""], body))
        if args.memory_gb:
            print()
            _memory(workdir, args.memory_gb, args.tmpdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _memory(workdir: str, gb: float, tmpdir: str | None) -> None:
    small = csvfiles.write(csvfiles.NUMERIC, 10_000, os.path.join(workdir, "small.csv"))
    big = csvfiles.write_big(os.path.join(workdir, "big.csv"), int(gb * 1e9))
    got = memory_child(["csv", workdir, small, big], tmpdir)
    grow = (got["peak"] - got["level"]) / 1e6
    print(
        f"bounded memory: import of a {got['bytes'] / 1e9:.2f} GB file ({got['rows']:,} rows) in "
        f"a child process; RssAnon after a small import {got['level'] / 1e6:.1f} MB, peak during "
        f"the big one {got['peak'] / 1e6:.1f} MB: +{grow:.1f} MB (target <= 300 MB: "
        f"{'met' if grow <= 300 else 'MISSED'})"
    )
