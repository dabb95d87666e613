"""Dask collections over tables and arrays, for work bigger than one machine.

``to_dask_dataframe`` and ``to_dask_array`` take one committed snapshot on the client
(:meth:`Table.detached() <colvault.Table.detached>`) and cut it into pieces of whole chunks, one
task each. A task carries its chunks' manifest rows (segment, offset, length, crc, encoding, zone
map) and reads the segment files through the engine's own readers and query kernels: **workers
never open the catalog**. sqlite's WAL mode does not work across machines on a network file
system, and the manifest rows pin the snapshot, so a commit landing while the graph runs changes
nothing in its result.

Workers must see the store at the same path as the client (a shared file system). Old segment
files outlive ``compact()`` while a **lease** holds them: building a collection writes one in the
store's ``leases/`` directory (``lease=`` seconds, a day by default; ``lease=0`` for none, e.g. a
store on read-only media); ``compact()`` keeps the files it names until it expires
(:mod:`colvault.engine.leases`). A task whose files are gone fails with ``ChecksumError`` naming
the chunk and the segment.

``to_colvault`` writes the other way: the workers stage their partitions (written and fsynced
into segment files of their own, visible to no one) and the client commits them all at once
(:mod:`colvault.engine.staging`).

Needs dask (``pip install colvault[dask]``); imported only when these functions are called.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import leases
from ..engine.detached import DetachedTable
from ..engine.schema import ColumnSpec
from .pandas import columns_frame

if TYPE_CHECKING:
    from ..engine.array import Array
    from ..engine.table import Column, Table

LEASE_SECONDS = 24 * 3600.0
"""How long, by default, ``compact()`` keeps the segment files a collection reads."""

PARTITION_BYTES = 128 * 2**20
"""Raw bytes per partition (or block) that the default ``chunks_per_partition`` aims at."""


def _dask(what: str, module: str) -> Any:
    """``dask.<module>``, or an ImportError that says how to install it."""
    try:
        return importlib.import_module(f"dask.{module}")
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs dask: pip install 'colvault[dask]'") from None


def _per_piece(
    det: DetachedTable, specs: Sequence[ColumnSpec], chunks: int | None, what: str
) -> int:
    if chunks is not None:
        if isinstance(chunks, bool) or not isinstance(chunks, int | np.integer) or chunks < 1:
            raise ValueError(f"{what} must be an int of at least 1, not {chunks!r}")
        return int(chunks)
    row_bytes = sum(s.cell_bytes if not s.is_category else 16 for s in specs) or 1
    return max(1, PARTITION_BYTES // (det.chunk_rows * row_bytes))


def _lease(det: DetachedTable, pieces: list[DetachedTable], seconds: float) -> str | None:
    if not isinstance(seconds, int | float) or not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"lease must be a finite number of seconds (0: none), not {seconds!r}")
    if not seconds or not pieces:
        return None
    return leases.take(det.store_path, set().union(*(p.segments for p in pieces)), seconds)


def _index_column(det: DetachedTable, index: str | None) -> tuple[str | None, list | None]:
    """(the column that indexes the partitions or None for row numbers, the per-chunk bounds
    of that column when its zone maps show it sorted)."""
    specs = det.column_specs()
    if index == "auto":
        first = next((s.name for s in specs if s.dtype.kind == "M" and not s.shape), None)
        bounds = det.sorted_bounds(first) if first is not None else None
        return (first, bounds) if bounds is not None else (None, None)
    if index is None:
        return None, None
    spec = det.column_specs([index])[0]
    if spec.shape:
        raise ValueError(f"column {index!r} of {det.path} holds arrays: it cannot be an index")
    return index, det.sorted_bounds(index)


def _bound(spec: ColumnSpec, value: Any) -> Any:
    """A zone-map bound as the index holds it (zone-aware timestamps in their zone)."""
    import pandas as pd

    if spec.dtype.kind == "M":
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC").tz_convert(spec.tz) if spec.tz else stamp
    if spec.dtype.kind == "m":
        return pd.Timedelta(value)
    return value.item() if isinstance(value, np.generic) else value


def read_partition(
    piece: DetachedTable,
    columns: list[str] | None = None,
    *,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
    index: str | None = None,
    empty: bool = False,
) -> Any:
    """One partition: the rows of ``piece`` (those satisfying ``where``) as a
    ``pandas.DataFrame`` indexed by ``index`` (a column) or by table row number; ``empty``:
    none of them (the collection's ``meta``). What each task of :func:`to_dask_dataframe`
    runs; it reads segment files only."""
    names = piece.colnames if columns is None else list(columns)
    read = names if index is None or index in names else [*names, index]
    specs = piece.column_specs(read)
    with piece:  # its files closed after the read: see DetachedTable.close
        if empty:
            got, rows = piece.read_columns(read, 0, 0), np.empty(0, np.int64)
        elif where is not None:
            rows, got = piece.select(where, dict(condvars or {}), columns=read)
        else:
            got, rows = piece.read_columns(read), np.arange(piece.nrows, dtype=np.int64)
    frame = columns_frame(specs, [got[s.name] for s in specs])
    if index is None:
        import pandas as pd

        frame.index = pd.Index(piece.first_row + rows, dtype=np.int64)
        return frame
    return frame.set_index(index)


def to_dask_dataframe(
    table: Table,
    columns: list[str] | None = None,
    *,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
    chunks_per_partition: int | None = None,
    index: str | None = "auto",
    lease: float = LEASE_SECONDS,
) -> Any:
    """The committed rows of ``table`` (``columns``; those satisfying ``where`` with
    ``condvars``, as ``read_where``) as a ``dask.dataframe.DataFrame`` of one snapshot.

    One partition per ``chunks_per_partition`` consecutive chunks (by default about 128 MB of
    raw rows); chunks that the condition's zone maps rule out get no task at all. The index:
    with ``index="auto"`` the table's first datetime column when its zone maps show it sorted
    (then ``divisions`` are known and ``ddf.loc[start:stop]`` reads only the partitions that
    overlap), else the table row number (divisions known too); ``index=None`` always the row
    number; a column name makes that column the index (divisions known when it is sorted).
    Columns come in the dtypes ``to_pandas`` gives them. ``lease``: see the module doc.

    >>> import colvault, tempfile, os
    >>> from colvault.io.dask import to_dask_dataframe
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"sensor": "i4", "value": "f8"}, chunk_rows=2)
    ...     t.append({"sensor": [1, 2, 3, 4, 5], "value": [0.5, 1.5, 2.5, 3.5, 4.5]})
    ...     _ = store.commit()  # the new commit's id
    ...     ddf = to_dask_dataframe(t, where="value > 1", chunks_per_partition=1, lease=0)
    ...     ddf.npartitions, ddf.compute()
    (3,    sensor  value
    1       2    1.5
    2       3    2.5
    3       4    3.5
    4       5    4.5)
    """
    dd = _dask("to_dask_dataframe", "dataframe")
    det = table.detached()
    names = det.colnames if columns is None else list(columns)
    specs = det.column_specs(names)
    key, bounds = _index_column(det, index)
    names = [n for n in names if n != key]  # the index is not also a column
    positions = det.chunks_left(where, condvars) if where is not None else None
    per = _per_piece(det, specs, chunks_per_partition, "chunks_per_partition")
    # a partition ends only where the index's values change: equal values on both sides of a
    # cut would break the divisions (dask looks for a value in one partition only)
    can_cut = None if bounds is None else (lambda pos: bounds[pos][0] > bounds[pos - 1][1])
    pieces = det.pieces(per, positions, can_cut)
    options = {"where": where, "condvars": dict(condvars or {}), "index": key}
    meta = read_partition(det, names, index=key, empty=True)
    meta = _unknown_categories(meta)
    if not pieces:
        return dd.from_pandas(meta, npartitions=1)
    divisions = _divisions(det, pieces, key, bounds)
    _lease(det, pieces, lease)
    return dd.from_map(
        read_partition, pieces, columns=names, meta=meta, divisions=divisions,
        label=f"colvault-{det.path.strip('/').replace('/', '-') or 'table'}",
        enforce_metadata=False, **options,
    )  # fmt: skip


def _unknown_categories(meta: Any) -> Any:
    """Category columns with unknown categories: each partition has those of its chunks."""
    from dask.dataframe.utils import clear_known_categories

    return clear_known_categories(meta)


def _divisions(
    det: DetachedTable, pieces: list[DetachedTable], key: str | None, bounds: list | None
) -> tuple | None:
    """Partition boundaries along the index: row numbers, or the zone-map bounds of a sorted
    index column; None (unknown) for an unsorted one."""
    if key is None:
        end = pieces[-1].first_row + pieces[-1].nrows - 1
        return (*(p.first_row for p in pieces), end)
    if bounds is None:
        return None
    spec = det.column_specs([key])[0]
    starts = det.chunk_starts
    first = [int(np.searchsorted(starts, p.first_row)) for p in pieces]
    last = [f + p.chunks - 1 for f, p in zip(first, pieces, strict=True)]
    if any(bounds[b][0] <= bounds[a][1] for a, b in zip(last, first[1:], strict=False)):
        return None  # equal values across a gap that zone maps left: no strict cut there
    return (*(_bound(spec, bounds[c][0]) for c in first), _bound(spec, bounds[last[-1]][1]))


def read_block(piece: DetachedTable, column: str) -> np.ndarray:
    """One block of :func:`to_dask_array`: the piece's cells of ``column`` (a masked array
    for a nullable column, object text for a category one)."""
    with piece:
        values = piece.read_columns([column])[column]
    if piece.column_specs([column])[0].is_category:
        return values.astype(object)
    return values


def to_dask_array(
    node: Array | Column,
    *,
    chunks_per_block: int | None = None,
    lease: float = LEASE_SECONDS,
) -> Any:
    """The committed cells of an array, or of one table column (``t.cols.x``), as a
    ``dask.array.Array`` of one snapshot: one block per ``chunks_per_block`` consecutive
    chunks along the first axis (by default about 128 MB), cells whole. Missing values of a
    nullable column come as numpy masked arrays, category columns as object text. Reads as
    :func:`to_dask_dataframe` does (segment files only; ``lease`` as there).

    >>> import colvault, tempfile, os
    >>> from colvault.io.dask import to_dask_array
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     a = store.create_array("/a", "f4", inner_shape=(2,), chunk_rows=2)
    ...     a.append(np.arange(10, dtype="f4").reshape(5, 2))
    ...     _ = store.commit()  # the new commit's id
    ...     x = to_dask_array(a, chunks_per_block=1, lease=0)
    ...     x.chunks, float(x.sum().compute())
    (((2, 2, 1), (2,)), 45.0)
    """
    da = _dask("to_dask_array", "array")
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    det, column = _detached_column(node)
    spec = det.column_specs([column])[0]
    pieces = det.pieces(_per_piece(det, [spec], chunks_per_block, "chunks_per_block"))
    dtype = np.dtype(object) if spec.is_category else spec.dtype
    inner = spec.shape
    name = f"colvault-{column}-" + tokenize(  # the chunks themselves: a recreated store's
        det.store_path, det.path, column, det.fingerprint()
    )  # commit ids start again, its chunks do not name the same bytes
    graph: dict[Any, Any] = {
        (name, i, *(0,) * len(inner)): (read_block, piece, column) for i, piece in enumerate(pieces)
    }
    rows = tuple(len(p) for p in pieces) or (0,)
    chunks = (rows, *((n,) for n in inner))
    empty = np.empty((0, *inner), dtype)
    meta = np.ma.MaskedArray(empty, np.zeros(empty.shape, bool)) if spec.nullable else empty
    if not pieces:
        return da.from_array(empty, chunks=chunks, meta=meta)
    _lease(det, pieces, lease)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=())
    return da.Array(hlg, name, chunks, dtype=dtype, meta=meta)


def _detached_column(node: Any) -> tuple[DetachedTable, str]:
    """(the snapshot of the table or array, the column to read) of an Array or a table
    Column."""
    from ..engine.array import Array
    from ..engine.table import Column

    if isinstance(node, Array):
        det = node.detached()
        return det, det.colnames[0]
    if isinstance(node, Column):
        return node.table.detached(), node.name
    raise TypeError(
        f"to_dask_array takes an Array or a table column (t.cols.x), not {type(node).__name__}"
    )


# -- writing -------------------------------------------------------------------------------------


def stage_partition(frame: Any, store_path: str, node: str, token: str) -> list[dict[str, Any]]:
    """One task of :func:`to_colvault`: stage a partition's rows (on a worker; its store opened
    and closed here); a list of one descriptor, or none for an empty partition."""
    from .. import open as open_store

    if not len(frame):
        return []
    with open_store(store_path, "a") as store:
        return [store[node].stage(frame.reset_index(drop=True), token=token)]


def to_colvault(
    ddf: Any, store_path: str, node: str, *, message: str | None = None, compute: bool = True
) -> Any:
    """Append a Dask DataFrame's partitions to the table ``node`` of the store at
    ``store_path`` (created from the frame's columns if missing), in one commit: each worker
    stages its partitions (:meth:`Table.stage() <colvault.Table.stage>`: written durably,
    visible to no one), and the client commits them all in partition order. If a partition
    fails, the staged ones are discarded and the table is as it was. The commit's id; with
    ``compute=False``, a ``dask.delayed`` object that does all that when computed.

    Workers must see the store at the same path as the client (a shared file system). The
    frame's index is not stored (``reset_index()`` first to keep it)."""
    import uuid

    from .. import open as open_store

    delayed = _dask("to_colvault", "delayed").delayed
    token = uuid.uuid4().hex
    with open_store(store_path, "a") as store:
        if node not in store:
            import pandas as pd

            empty = {c: pd.Series(dtype=t) for c, t in ddf.dtypes.items()}  # the frame's meta
            store.create_table(node, pd.DataFrame(empty))
    parts = [delayed(stage_partition)(part, store_path, node, token) for part in ddf.to_delayed()]

    def finish(staged: list[list[dict[str, Any]]]) -> int:
        with open_store(store_path, "a") as store:
            return store.commit_staged([d for part in staged for d in part], message)

    if not compute:
        return delayed(finish)(parts)
    try:
        staged = _all_done(parts)
    except BaseException:
        with open_store(store_path, "a") as store:  # what the partitions that ran staged
            store.discard_staged(token=token)
        raise
    return finish(staged)


def _all_done(parts: list[Any]) -> list[Any]:
    """Compute every task and wait for all of them, even when one fails (then raise its
    error): a partition still staging after the discard would leave its rows behind. On a
    ``distributed`` cluster through its futures; else with dask's default scheduler (whose
    stragglers are stopped by the discard itself: see :mod:`colvault.engine.staging`)."""
    try:
        from distributed import get_client, wait
    except ImportError:
        client = None
    else:
        try:
            client = get_client()
        except ValueError:  # no client: the default scheduler
            client = None
    if client is None:
        return list(importlib.import_module("dask").compute(*parts))
    futures = client.compute(parts)
    wait(futures)
    for f in futures:
        if f.status == "error":
            raise f.exception()
    return list(client.gather(futures))
