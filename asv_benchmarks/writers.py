"""One definition of "write the benchmark data" per tool, shared by asv and ``compare``.

Both harnesses must time exactly the same work, or their figures stop agreeing: tool-native
batches are built beforehand (``prepare``, untimed); ``write`` is the timed part, from opening the
file to a durable close. Heavy imports stay inside the functions so that asv's discovery, which
imports every module of this package, stays fast and works without the optional tools.

Every ``write`` serves two jobs. Bulk append (the default): all batches, one commit at close.
Logger (``commit_each=True``): the tool's commit after every batch, as an instrument logger that
must not lose a batch does. ``ready``, if given, is called once the file and the table exist, just
before the first batch: the logger job starts its clock there, as a logger opens its file once.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BATCH_ROWS = 1_000_000
TABLE = "bench"


def disk_bytes(path: str) -> int:
    """The bytes the disk gives a file (``st_blocks``, as ``du`` counts): a hole, such as the
    room colvault reserves behind a logger's short chunk, takes none."""
    return os.lstat(path).st_blocks * 512


def dir_bytes(path: str) -> int:
    """Disk bytes of every file under ``path`` (catalog, segments, LOCK, ...)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += disk_bytes(os.path.join(root, name))
    return total


def file_bytes(path: str) -> int:
    """Disk bytes of a single-file database plus any journal left next to it."""
    total = 0
    for p in (path, path + ".wal"):
        if os.path.exists(p):
            total += disk_bytes(p)
    return total


def slices(n: int, batch: int = BATCH_ROWS) -> list[slice]:
    return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


#: Type of the ``ready`` hook of the ``write`` functions.
Ready = Callable[[], object] | None


def _feed(
    batches: Sequence[Any],
    append: Callable[[Any], object],
    commit: Callable[[], object] | None,
    ready: Ready,
) -> None:
    """The loop every ``write`` times: ``ready()``, then each batch appended (and committed)."""
    if ready is not None:
        ready()
    for b in batches:
        append(b)
        if commit is not None:
            commit()


# -- colvault ------------------------------------------------------------------------------------


def colvault_prepare(data: dict[str, np.ndarray], batch: int = BATCH_ROWS) -> list[dict]:
    n = len(next(iter(data.values())))
    return [{k: v[s] for k, v in data.items()} for s in slices(n, batch)]


def colvault_write(
    batches: Sequence[dict], workdir: str, n: int, *, commit_each: bool = False, ready: Ready = None
) -> str:
    """Open, create, append every batch, close (close commits: fsync + sqlite commit).

    ``commit_each``: ``store.commit()`` after every batch, durable (fsync) like the final one.
    """
    import colvault
    from colvault.benchdata import SCHEMA

    path = os.path.join(workdir, "x.colvault")
    store = colvault.open(path, "w")
    table = store.create_table("/" + TABLE, SCHEMA, expected_rows=n)
    _feed(batches, table.append, store.commit if commit_each else None, ready)
    store.close()
    return path


def colvault_rows(path: str) -> int:
    import colvault

    with colvault.open(path) as store:
        return len(store["/" + TABLE])


def colvault_catalog_bytes(path: str) -> int:
    """Size of the sqlite catalog (with its WAL and shared-memory files, if any are left)."""
    return sum(
        os.lstat(os.path.join(path, name)).st_size
        for name in os.listdir(path)
        if name.startswith("catalog.sqlite")
    )


def colvault_column_sizes(path: str) -> list[tuple[str, str, int, int, int]]:
    """(name, dtype, chunks, raw bytes, stored bytes) per column, from the committed manifest
    (``Table.storage()``)."""
    import colvault

    with colvault.open(path) as store:
        return [
            (c.name, str(c.spec.dtype), c.chunks, c.raw_bytes or 0, c.stored_bytes)
            for c in store["/" + TABLE].storage()
        ]


# -- PyTables ------------------------------------------------------------------------------------

#: PyTables has no datetime64[ns] column: ``t`` is stored as its int64 view.
PYTABLES_DTYPE = np.dtype([("t", "<i8"), ("sensor", "<i4"), ("value", "<f8"), ("temp", "<f4")])


def pytables_prepare(data: dict[str, np.ndarray], batch: int = BATCH_ROWS) -> list[np.ndarray]:
    n = len(next(iter(data.values())))
    rows = np.empty(n, PYTABLES_DTYPE)
    rows["t"] = data["t"].view(np.int64)
    for name in ("sensor", "value", "temp"):
        rows[name] = data[name]
    return [rows[s] for s in slices(n, batch)]


def _pytables_description() -> type:
    import tables

    class Bench(tables.IsDescription):
        t = tables.Int64Col(pos=0)
        sensor = tables.Int32Col(pos=1)
        value = tables.Float64Col(pos=2)
        temp = tables.Float32Col(pos=3)

    return Bench


#: colvault's default rows per chunk for this schema (about 1 MiB of the widest column).
#: With blosc2, PyTables sizes a chunk to the L3 cache whatever ``expectedrows`` is; a VM that
#: reports a 480 MiB L3 gets 20,971,520-row (503 MB) chunks, and every append then recompresses
#: that one partial chunk. The second PyTables variant fixes the chunk to colvault's size, so the
#: comparison does not hinge on what the CPU reports.
SAME_CHUNK_ROWS = 131_072


def _pytables_create(h5: Any, n: int, chunkshape: int | None) -> Any:
    """The benchmark table: blosc2:lz4 level 5, byte shuffle, ``expectedrows=n``."""
    import tables

    return h5.create_table(
        "/",
        TABLE,
        _pytables_description(),
        filters=tables.Filters(complevel=5, complib="blosc2:lz4", shuffle=True),
        expectedrows=n,
        chunkshape=None if chunkshape is None else (chunkshape,),
    )


def pytables_write(
    batches: Sequence[np.ndarray],
    workdir: str,
    n: int,
    chunkshape: int | None = None,
    *,
    commit_each: bool = False,
    ready: Ready = None,
) -> str:
    """Open, create, append every batch, flush, close.

    PyTables' flush and close do not fsync; the figure is the time to hand the bytes to the OS.
    ``commit_each``: ``table.flush()`` after every batch (the data reach the file, not the disk).
    """
    import tables

    path = os.path.join(workdir, "x.h5")
    with tables.open_file(path, "w") as h5:
        table = _pytables_create(h5, n, chunkshape)
        _feed(batches, table.append, table.flush if commit_each else None, ready)
        table.flush()
    return path


def pytables_default_chunk_rows(workdir: str, n: int) -> int:
    """Rows per chunk PyTables picks by itself for the benchmark table of ``n`` expected rows."""
    import tables

    with tables.open_file(os.path.join(workdir, "chunkshape.h5"), "w") as h5:
        return int(_pytables_create(h5, n, None).chunkshape[0])


def pytables_rows(path: str) -> int:
    import tables

    with tables.open_file(path, "r") as h5:
        return int(h5.get_node("/" + TABLE).nrows)


# -- DuckDB --------------------------------------------------------------------------------------

DUCKDB_CREATE = f"CREATE TABLE {TABLE} (t TIMESTAMP_NS, sensor INTEGER, value DOUBLE, temp FLOAT)"


def duckdb_prepare(data: dict[str, np.ndarray], batch: int = BATCH_ROWS) -> list[Any]:
    import pyarrow as pa

    n = len(next(iter(data.values())))
    full = pa.table({k: pa.array(v) for k, v in data.items()})
    return [full.slice(s.start, s.stop - s.start) for s in slices(n, batch)]


def duckdb_write(
    batches: Sequence[Any], workdir: str, n: int, *, commit_each: bool = False, ready: Ready = None
) -> str:
    """Native database file: create, INSERT each Arrow batch, CHECKPOINT (fsyncs), close.

    The connection is in autocommit mode, so every INSERT is a durable commit (its WAL record is
    fsynced) whatever ``commit_each`` says: bulk append and logger differ only in batch size.
    """
    import duckdb

    path = os.path.join(workdir, "x.duckdb")
    con = duckdb.connect(path)
    try:
        con.execute(DUCKDB_CREATE)

        def insert(b: Any) -> None:
            con.register("batch", b)
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM batch")
            con.unregister("batch")

        _feed(batches, insert, None, ready)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def duckdb_rows(path: str) -> int:
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:
        return int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
    finally:
        con.close()


# -- registry ------------------------------------------------------------------------------------


def importable(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it: discovery stays fast)."""
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Writer:
    name: str
    module: str  # import name; the tool is skipped when it is missing
    prepare: Callable[[dict[str, np.ndarray], int], Any]
    write: Callable[..., str]  # (batches, workdir, n, *, commit_each=False, ready=None) -> path
    size: Callable[[str], int]
    rows: Callable[[str], int]

    @property
    def available(self) -> bool:
        return importable(self.module)


WRITERS = {
    w.name: w
    for w in (
        Writer("colvault", "colvault", colvault_prepare, colvault_write, dir_bytes, colvault_rows),
        Writer("pytables", "tables", pytables_prepare, pytables_write, file_bytes, pytables_rows),
        Writer(
            "pytables-128k",
            "tables",
            pytables_prepare,
            functools.partial(pytables_write, chunkshape=SAME_CHUNK_ROWS),
            file_bytes,
            pytables_rows,
        ),
        Writer("duckdb", "duckdb", duckdb_prepare, duckdb_write, file_bytes, duckdb_rows),
    )
}
