"""``python -m asv_benchmarks.compare wide``: a table of 300 numeric columns of mixed dtypes.

Wide tables are where one file per column hurts (issue 15): every commit opens, writes and
fsyncs a segment per column. Timed, interleaved, each tool on the same arrays:

- append: open a new file or store, create the table, append every batch, close (colvault's
  close commits durably; PyTables and h5py flush and close, no fsync);
- query: the rows satisfying a condition on three columns (a float64, a float32 and an int64 one,
  about 1 % of the rows), every column materialized; h5py has no query language: it reads the
  three fields, masks them with numpy and reads the rows hit;
- slice: ten rows from the middle, every column.

The stores of the last append are kept for the query and the slice, opened beforehand (files in
the page cache). Then a child process with its descriptors limited to 256 creates and commits a
1,000-column table (issue 15's target).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .harness import Timings, check_durable, child_json, rounds, select_tools
from .report import mb, medians_table, print_header, runs_table, table

TABLE = "wide"
#: Column dtypes, cycled over the columns: the query's three columns come first.
DTYPES = ("f8", "f4", "i8", "i4", "i2", "u1")
#: The descriptor-limit check: columns of its table, the limit (issue 15's target).
FD_COLUMNS = 1_000
FD_LIMIT = 256

#: numpy's version of the query's condition, on a dict of columns.
Mask = Callable[[dict[str, np.ndarray]], np.ndarray]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options."""
    p.add_argument("--rows", type=int, default=200_000, help="rows (default 200,000)")
    p.add_argument("--columns", type=int, default=300, help="columns (default 300)")
    p.add_argument("--batch", type=int, default=50_000, help="rows per append (default 50,000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool (default 3)")
    p.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated subset of {','.join(TOOLS)} (missing ones are skipped)",
    )
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def columns(rows: int, ncols: int) -> dict[str, np.ndarray]:
    """``ncols`` columns named ``c000``...: measurements (float64 with 3 decimals, float32
    noise), counters (sorted int64), codes (int32, int16) and flags (uint8)."""
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    for i in range(ncols):
        kind = DTYPES[i % len(DTYPES)]
        if kind == "f8":
            a: np.ndarray = np.round(rng.normal(20, 5, rows), 3)
        elif kind == "f4":
            a = rng.normal(0, 1, rows).astype(np.float32)
        elif kind == "i8":
            a = np.cumsum(rng.integers(0, 100, rows, dtype=np.int64))
        elif kind == "i4":
            a = rng.integers(0, 100_000, rows, dtype=np.int32)
        elif kind == "i2":
            a = rng.integers(-500, 500, rows, dtype=np.int16)
        else:
            a = rng.integers(0, 8, rows, dtype=np.uint8)
        out[f"c{i:03d}"] = a
    return out


def condition(data: dict[str, np.ndarray]) -> tuple[str, Mask]:
    """About 1 % of the rows: the top fifth of c000, the bottom fifth of c001, the last quarter
    of c002 (constants written out, so every tool parses the same text); and numpy's mask."""
    a = float(np.quantile(data["c000"], 0.8))
    b = float(np.float32(np.quantile(data["c001"], 0.2)))
    c = int(np.quantile(data["c002"], 0.75))

    def mask(d: dict[str, np.ndarray]) -> np.ndarray:
        return (d["c000"] > a) & (d["c001"] < b) & (d["c002"] > c)

    return f"(c000 > {a!r}) & (c001 < {b!r}) & (c002 > {c})", mask


def records(data: dict[str, np.ndarray]) -> np.ndarray:
    """The columns as one structured array (what PyTables and h5py store)."""
    n = len(next(iter(data.values())))
    out = np.empty(n, [(k, v.dtype) for k, v in data.items()])
    for k, v in data.items():
        out[k] = v
    return out


# -- the tools -----------------------------------------------------------------------------------


class Opened:
    """One tool's table opened for the timed reads."""

    def query(self) -> Any:
        raise NotImplementedError

    def slice(self, start: int, stop: int) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ReadWhereOpened(Opened):
    """colvault or PyTables: both answer ``read_where`` and ``read(start, stop)``."""

    def __init__(self, handle: Any, table: Any, cond: str) -> None:
        self.handle, self.table, self.cond = handle, table, cond

    def query(self) -> np.ndarray:
        return self.table.read_where(self.cond)

    def slice(self, start: int, stop: int) -> np.ndarray:
        return self.table.read(start, stop)

    def close(self) -> None:
        self.handle.close()


def _colvault_opened(path: str, cond: str) -> ReadWhereOpened:
    import colvault

    store = colvault.open(path, "r")
    return ReadWhereOpened(store, store["/" + TABLE], cond)


def _pytables_opened(path: str, cond: str) -> ReadWhereOpened:
    import tables

    h5 = tables.open_file(path, "r")
    return ReadWhereOpened(h5, h5.get_node("/" + TABLE), cond)


class H5pyOpened(Opened):
    def __init__(self, path: str, mask: Mask) -> None:
        import h5py

        self.f = h5py.File(path, "r")
        self.ds = self.f[TABLE]
        self.mask = mask

    def query(self) -> np.ndarray:
        fields = self.ds.fields(["c000", "c001", "c002"])[:]
        hits = np.flatnonzero(self.mask({k: fields[k] for k in fields.dtype.names}))
        return self.ds[hits] if len(hits) else self.ds[0:0]

    def slice(self, start: int, stop: int) -> np.ndarray:
        return self.ds[start:stop]

    def close(self) -> None:
        self.f.close()


def _colvault_write(data: dict[str, np.ndarray], path: str, batch: int) -> None:
    import colvault

    n = len(next(iter(data.values())))
    schema = {k: v.dtype.str for k, v in data.items()}
    with colvault.open(path, "w") as store:
        t = store.create_table("/" + TABLE, schema, expected_rows=n)
        for i in range(0, n, batch):
            t.append({k: v[i : i + batch] for k, v in data.items()})


def _pytables_write(rows: np.ndarray, path: str, batch: int) -> None:
    import tables

    filters = tables.Filters(complevel=5, complib="blosc2:lz4", shuffle=True)
    with tables.open_file(path, "w") as h5:
        t = h5.create_table("/", TABLE, rows.dtype, filters=filters, expectedrows=len(rows))
        for i in range(0, len(rows), batch):
            t.append(rows[i : i + batch])
        t.flush()


def _h5py_filter() -> dict[str, Any]:
    """blosc2 lz4 level 5 + shuffle through hdf5plugin, as PyTables; none without it."""
    try:
        import hdf5plugin
    except ImportError:
        return {}
    return dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.SHUFFLE))


def _h5py_write(rows: np.ndarray, path: str, batch: int) -> None:
    import h5py

    chunk = max(1, min(len(rows), (1 << 20) // rows.dtype.itemsize))
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            TABLE, (0,), rows.dtype, maxshape=(None,), chunks=(chunk,), **_h5py_filter()
        )
        for i in range(0, len(rows), batch):
            part = rows[i : i + batch]
            ds.resize((i + len(part),))
            ds[i : i + len(part)] = part


@dataclass(frozen=True)
class Tool:
    """How one tool writes the table and opens it again."""

    module: str
    leaf: str
    records: bool  # writes the structured array (else the columns)
    write: Callable[[Any, str, int], None]
    open: Callable[[str, str, Mask], Opened]

    @property
    def available(self) -> bool:
        from ..writers import importable

        return importable(self.module)


TOOLS: dict[str, Tool] = {
    "colvault": Tool(
        "colvault", "x.colvault", False, _colvault_write, lambda p, c, m: _colvault_opened(p, c)
    ),
    "pytables": Tool(
        "tables", "x.h5", True, _pytables_write, lambda p, c, m: _pytables_opened(p, c)
    ),
    "h5py": Tool("h5py", "x.h5", True, _h5py_write, lambda p, c, m: H5pyOpened(p, m)),
}


def _on_disk(path: str) -> tuple[int, int]:
    """(bytes, files) of a file or a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path), 1
    total = files = 0
    for d, _, names in os.walk(path):
        for n in names:
            total += os.lstat(os.path.join(d, n)).st_size
            files += 1
    return total, files


def _same(tool: str, what: str, got: np.ndarray, want: np.ndarray) -> None:
    if len(got) != len(want) or any(
        not np.array_equal(got[k], want[k]) for k in want.dtype.names or ()
    ):
        raise SystemExit(f"WRONG ANSWER: {tool} {what}: {len(got):,} rows, numpy {len(want):,}")


def run(args: argparse.Namespace) -> int:
    """Append, query and slice timings, then the descriptor-limit check."""
    check_durable()
    tools, skipped = select_tools(args.tools, TOOLS)
    if "colvault" not in tools:
        raise SystemExit("the wide job compares colvault with the others: keep it in --tools")
    t0 = time.perf_counter()
    data = columns(args.rows, args.columns)
    rows = records(data)
    gen_s = time.perf_counter() - t0
    cond, mask = condition(data)
    want_query = rows[mask(data)]
    start = args.rows // 2
    want_slice = rows[start : start + 10]

    workdir = tempfile.mkdtemp(prefix="cmp-wide-", dir=args.tmpdir)
    opened: dict[str, Opened] = {}
    try:
        paths = {t: os.path.join(workdir, t, TOOLS[t].leaf) for t in tools}

        def writer(t: str) -> Callable[[], None]:
            source = rows if TOOLS[t].records else data

            def write() -> None:
                shutil.rmtree(os.path.dirname(paths[t]), ignore_errors=True)
                os.makedirs(os.path.dirname(paths[t]))
                os.sync()
                TOOLS[t].write(source, paths[t], args.batch)

            return write

        load_before = os.getloadavg()
        appends = {t: writer(t) for t in tools}
        for call in appends.values():
            call()  # warm-up: imports, kernels, HDF5 initialisation
        append = rounds(appends, args.repeat)
        sizes = {t: _on_disk(paths[t]) for t in tools}
        os.sync()
        opened = {t: TOOLS[t].open(paths[t], cond, mask) for t in tools}
        for t, o in opened.items():
            _same(t, "query", o.query(), want_query)  # also the warm-up
            _same(t, "slice", o.slice(start, start + 10), want_slice)
        timings: dict[str, Timings] = {
            "append": append,
            "query": rounds({t: o.query for t, o in opened.items()}, args.repeat),
            "slice": rounds(
                {t: functools.partial(o.slice, start, start + 10) for t, o in opened.items()},
                max(args.repeat, 10),
            ),
        }
        load_after = os.getloadavg()
    finally:
        for o in opened.values():
            o.close()
        shutil.rmtree(workdir, ignore_errors=True)

    raw = rows.nbytes
    print_header(
        f"wide: {args.rows:,} rows x {args.columns} columns ({mb(raw)} MB raw; dtypes "
        f"{', '.join(DTYPES)} in turn), {args.repeat} timed runs per tool, interleaved",
        args.tmpdir,
        f"data generated in {gen_s:.1f} s (untimed); every tool's query and slice answers equal "
        "numpy's (checked, untimed)",
        (load_before, load_after),
        f"timed: append: open -> create -> append {args.batch:,}-row batches -> close (colvault"
        " commits durably; PyTables and h5py\n  flush + close, no fsync; both blosc2:lz4 level 5"
        " + shuffle, h5py through hdf5plugin if installed).\n"
        f"  query: {cond}, {len(want_query):,} rows,\n"
        "    all columns: colvault and PyTables read_where; h5py: the 3 fields read, numpy mask,"
        " the rows hit read.\n"
        f"  slice: rows [{start:,}:{start + 10:,}], all columns; ms per run below.",
        skipped,
    )
    print("append, s per run:")
    print(runs_table(timings["append"]))
    print()
    print("query, ms per run:")
    print(runs_table(timings["query"], 1e3, 2))
    print()
    print("medians (ms):")
    print(medians_table(timings))
    print()
    print(
        table(
            ["tool", "on disk MB", "files", "append raw MB/s"],
            [
                [
                    t,
                    mb(sizes[t][0]),
                    f"{sizes[t][1]:,}",
                    f"{raw / 1e6 / timings['append'].median(t):,.0f}",
                ]
                for t in tools
            ],
        )
    )
    print()
    where = args.tmpdir or tempfile.gettempdir()
    fd = child_json("asv_benchmarks.compare.wide", ["fds", where, str(FD_COLUMNS)])
    ok = fd["ok"]
    print(
        f"target: a {FD_COLUMNS:,}-column table commits with at most {FD_LIMIT} descriptors "
        f"(RLIMIT_NOFILE in a child process): {'met' if ok else 'MISSED'}"
        + ("" if ok else f" ({fd['error']})")
    )
    return 0


def commit_under_limit(workdir: str, ncols: int) -> dict[str, Any]:
    """In a fresh process: create and commit a table of ``ncols`` columns with the process's
    descriptors limited to :data:`FD_LIMIT`; whether it worked, and the error if not."""
    import colvault

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))
    data = columns(1_000, ncols)
    path = tempfile.mkdtemp(prefix="cmp-fds-", dir=workdir)
    try:
        with colvault.open(os.path.join(path, "x.colvault"), "w") as store:
            store.create_table("/" + TABLE, {k: v.dtype.str for k, v in data.items()}).append(data)
            store.commit()
        return {"ok": True}
    except Exception as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["fds"]:
        print(json.dumps(commit_under_limit(sys.argv[2], int(sys.argv[3]))), flush=True)
    else:
        sys.exit("usage: python -m asv_benchmarks.compare.wide fds WORKDIR COLUMNS")
