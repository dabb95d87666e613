"""``colvault warmup``: compile the kernels for this machine ahead of the first real use.

colvault's kernels are compiled by Numba on first use and kept in Numba's cache; on a fresh
machine, container or CI runner the first CSV import and the first statistics wait for that.
Warm-up runs small workloads that reach every fixed kernel with the argument types real data
gives them (each column type; CSV files with numbers, text, dates and missing values; the
usual query shapes), in parallel processes, one per CPU, longest first. Afterwards the cache
holds them and first use is as fast as any other.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TextIO

import numpy as np

ROWS = 5_000  # several chunks of the smallest chunk size and a tail: each path runs once

#: Column types of the table workloads, grouped so that the groups take similar times.
TABLE_GROUPS: dict[str, list[Any]] = {
    "signed integers": ["i1", "i2", "i4", "i8"],
    "unsigned integers and bool": ["u1", "u2", "u4", "u8", "?"],
    "floats": ["f4", "f8"],
    "times": ["M8[ns]", "M8[s]", "m8[ns]"],
    "text": ["U8", "S8", "category"],
}


def _values(dtype: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    if dtype == "category" or str(dtype).startswith("U"):
        return np.array(["north", "south", "east", "west"])[rng.integers(0, 4, n)]
    dt = np.dtype(dtype)
    if dt.kind == "S":
        return np.array([b"alpha", b"beta", b"gamma"])[rng.integers(0, 3, n)]
    if dt.kind == "b":
        return rng.random(n) < 0.3
    if dt.kind in "iu":
        hi = min(int(np.iinfo(dt).max), 1000)
        return np.sort(rng.integers(0, hi, n)).astype(dt)  # sorted: the delta encoding too
    if dt.kind == "f":
        values = np.round(rng.normal(20, 5, n), 2).astype(dt)  # decimals: the scaled encoding
        values[::97] = np.nan
        return values
    return np.arange(n).astype(dt)  # M, m


def _table_job(group: str, workdir: str) -> None:
    import colvault

    rng = np.random.default_rng(0)
    with colvault.open(os.path.join(workdir, "tables.colvault"), "w") as store:
        for i, dtype in enumerate(TABLE_GROUPS[group]):
            t = store.create_table(f"/t{i}", {"x": dtype, "k": "i8"}, chunk_rows=1024)
            x = _values(dtype, ROWS, rng)
            t.append({"x": x, "k": rng.integers(0, 10, ROWS)})
            store.commit()
            t.append({"x": x[:10], "k": np.arange(10)})  # a short tail, extended
            store.commit()
            t.read()
            for _ in t.iter_chunks():
                pass
            t.cols.x[3:2000]
            const = x[len(x) // 2]
            if dtype == "category" or str(dtype)[0] in "US":
                t.count_where("x == c", condvars={"c": const})
                continue
            t.read_where("(x > c) & (k < 5)", condvars={"c": const})
            t.count_where("x >= c", condvars={"c": const})
            kind = np.dtype(dtype).kind
            if kind != "b":
                t.stats("x")
                aggs = ["min", "max", "count"] if kind in "Mm" else ["mean", "min", "max", "count"]
                t.group_by("k", {"x": aggs})
            if kind in "iuf":
                t.histogram("x", bins=10, range=(0, 100))


def _csv_text(rows: int) -> str:
    lines = ["id,value,reading,flag,station,note,when,day"]
    for i in range(rows):
        reading = "" if i % 13 == 0 else f"{(i * 37) % 1000 / 10:.1f}"
        lines.append(
            f"{i},{i * 1.5:.2f},{reading},{'true' if i % 3 else 'false'},"
            f'{["north", "south", "east"][i % 3]},"text, {i}",'
            f"2024-01-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00,2024-02-{1 + i % 28:02d}"
        )
    return "\n".join(lines) + "\n"


def _csv_job(workdir: str) -> None:
    import colvault
    from colvault.kernels.csv import background as csvbackground

    path = os.path.join(workdir, "warmup.csv")
    with open(path, "w") as f:
        f.write(_csv_text(ROWS))
    # no helper process beside the import: warm-up runs one process per CPU already
    before = os.environ.get(csvbackground.ENV)
    os.environ[csvbackground.ENV] = "0"
    try:
        with colvault.open(os.path.join(workdir, "csv.colvault"), "w") as store:
            colvault.import_csv(path, store, "/csv", progress=False)
            colvault.import_csv(path, store, "/csv", progress=False)  # appending: schema checked
    finally:
        if before is None:
            del os.environ[csvbackground.ENV]
        else:
            os.environ[csvbackground.ENV] = before


def jobs() -> dict[str, Callable[[str], None]]:
    """Workloads by name, longest first."""
    found: dict[str, Callable[[str], None]] = {"csv import": _csv_job}
    for group in TABLE_GROUPS:
        found[group] = functools.partial(_table_job, group)
    return found


def _run(name: str) -> tuple[str, float]:
    from colvault.kernels import compiling

    start = time.perf_counter()
    small, compiling.SMALL = compiling.SMALL, 0  # small inputs too take (and compile) kernels
    try:
        with tempfile.TemporaryDirectory(prefix="colvault-warmup-") as workdir:
            jobs()[name](workdir)
    finally:
        compiling.SMALL = small
    return name, time.perf_counter() - start


def warmup(processes: int | None = None, out: TextIO | None = None) -> float:
    """Compile every fixed kernel into Numba's cache, ``processes`` at a time (default: one per
    CPU); each workload's seconds are written to ``out``. Returns the wall seconds."""
    processes = processes or os.cpu_count() or 1
    start = time.perf_counter()
    names = list(jobs())
    with ProcessPoolExecutor(processes) if processes > 1 else contextlib.nullcontext() as pool:
        if pool is None:
            results: Iterator[tuple[str, float]] = map(_run, names)
        else:
            results = (f.result() for f in as_completed([pool.submit(_run, n) for n in names]))
        for name, seconds in results:
            _say(out, f"  {name}: {seconds:.1f} s")
    return time.perf_counter() - start


def _say(out: TextIO | None, line: str) -> None:
    if out is not None:
        print(line, file=out, flush=True)
