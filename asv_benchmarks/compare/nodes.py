"""``python -m asv_benchmarks.compare nodes``: many small tables, as a lab's store fills up.

Each tool creates ``--tables`` tables of ``--rows`` rows of the benchmark schema (100 tables per
group) and commits once; then a fresh process-level open lists every node. Printed per tool: the
seconds to create and commit, the seconds to reopen and walk, the blocks on disk (``st_blocks``,
what the disk gives, not the files' lengths) and the number of files, with issue 15's targets:
create ≤ 1.0x h5py, reopen + walk ≤ 5x h5py's reopen + list, blocks ≤ 1.5x the h5py file,
≤ 100 files. Before each tool, ``os.sync()``: none pays for another's writeback. colvault's
commit is durable (its segment and catalog fsync'd); h5py and PyTables close their file, which
hands the bytes to the OS without an fsync, as in the ``append`` and ``logger`` jobs.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable

import numpy as np

from colvault.benchdata import SCHEMA, benchmark_data

PER_GROUP = 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", type=int, default=10_000, help="tables to create (10,000)")
    p.add_argument("--rows", type=int, default=100, help="rows per table (100)")
    p.add_argument("--tmpdir", default=None, help="where the stores go (default: the temp dir)")


def _paths(n: int) -> list[tuple[str, str]]:
    return [(f"g{i // PER_GROUP}", f"t{i % PER_GROUP}") for i in range(n)]


def _colvault_write(path: str, names: list[tuple[str, str]], rows: dict) -> None:
    import colvault

    with colvault.open(path, "w") as store:
        for group, name in names:
            store.create_table(f"/{group}/{name}", SCHEMA).append(rows)
        store.commit()


def _colvault_walk(path: str) -> int:
    import colvault

    with colvault.open(path) as store:
        return len([node.path for node in store.walk()])


def _records(rows: dict) -> np.ndarray:
    """The rows as HDF5 compound records (datetimes as int64 nanoseconds: HDF5 has no
    datetime64; the same bytes)."""
    dtype = [(k, np.int64 if v.dtype.kind == "M" else v.dtype) for k, v in rows.items()]
    out = np.empty(len(rows["t"]), dtype)
    for k, v in rows.items():
        out[k] = v.view(np.int64) if v.dtype.kind == "M" else v
    return out


def _h5py_write(path: str, names: list[tuple[str, str]], rows: dict) -> None:
    import h5py

    records = _records(rows)
    with h5py.File(path, "w") as f:
        for group, name in names:
            f.require_group(group).create_dataset(name, data=records, maxshape=(None,))


def _h5py_walk(path: str) -> int:
    import h5py

    found: list[str] = []
    with h5py.File(path, "r") as f:
        f.visit(found.append)
    return len(found)


def _pytables_write(path: str, names: list[tuple[str, str]], rows: dict) -> None:
    import tables

    records = _records(rows)
    with tables.open_file(path, "w") as f:
        for group, name in names:
            where = f"/{group}"
            if where not in f:
                f.create_group("/", group)
            f.create_table(where, name, obj=records)


def _pytables_walk(path: str) -> int:
    import tables

    with tables.open_file(path, "r") as f:
        return len([n._v_pathname for n in f.walk_nodes()])


TOOLS: dict[str, tuple[str, Callable, Callable]] = {
    "colvault": ("store.colvault", _colvault_write, _colvault_walk),
    "h5py": ("file.h5", _h5py_write, _h5py_walk),
    "pytables": ("file.h5", _pytables_write, _pytables_walk),
}


def _on_disk(path: str) -> tuple[int, int]:
    """(bytes of blocks, files) under ``path`` (a file or a directory)."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512, 1
    blocks = files = 0
    for d, _, names in os.walk(path):
        for n in names:
            blocks += os.stat(os.path.join(d, n)).st_blocks * 512
            files += 1
    return blocks, files


def run(args: argparse.Namespace) -> int:
    rows = benchmark_data(args.rows)
    names = _paths(args.tables)
    results: dict[str, tuple[float, float, int, int, int]] = {}
    for tool, (leaf, write, walk) in TOOLS.items():
        top = tempfile.mkdtemp(prefix=f"nodes-{tool}-", dir=args.tmpdir)
        path = os.path.join(top, leaf)
        try:
            os.sync()  # no tool pays for the writeback of the one before
            gc.collect()
            start = time.perf_counter()
            write(path, names, rows)
            created = time.perf_counter() - start
            start = time.perf_counter()
            nodes = walk(path)
            walked = time.perf_counter() - start
            blocks, files = _on_disk(path)
            results[tool] = (created, walked, blocks, files, nodes)
        finally:
            shutil.rmtree(top, ignore_errors=True)
    print(
        f"{args.tables:,} tables of {args.rows} rows, {PER_GROUP} per group, one commit; "
        "colvault's commit is durable (fsync), h5py and PyTables close their file (no fsync)"
    )
    print(f"{'tool':10} {'create s':>9} {'walk s':>8} {'blocks MB':>10} {'files':>7} {'nodes':>7}")
    for tool, (c, w, b, f, n) in results.items():
        print(f"{tool:10} {c:9.2f} {w:8.3f} {b / 1e6:10.1f} {f:7,} {n:7,}")
    cv, h5 = results["colvault"], results["h5py"]
    checks = [
        ("create <= 1.0x h5py", cv[0] / h5[0], 1.0),
        ("reopen + walk <= 5x h5py", cv[1] / h5[1], 5.0),
        ("blocks <= 1.5x h5py", cv[2] / h5[2], 1.5),
    ]
    for what, ratio, limit in checks:
        print(f"target: colvault {what}: {ratio:.2f}x, {'met' if ratio <= limit else 'MISSED'}")
    print(f"target: colvault <= 100 files: {cv[3]:,}, {'met' if cv[3] <= 100 else 'MISSED'}")
    return 0
