"""Nodes of the hierarchy: the common base, groups, and the base of tables and arrays.

A node object is a light handle (store + node id). Its path is looked up on use, so a handle
survives renames; its data are read from a fresh committed snapshot on every call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ColvaultError
from . import display
from .codec import Codec
from .detached import DetachedTable
from .indexing import RowList, RowRange, resolve
from .manifest import NodeState
from .pending import NodeRecord
from .reading import ChunkSource
from .schema import ColumnSpec, TableSchema
from .sidecars import Attrs, Objects

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class ColumnStorage:
    """How one column is stored (``Table.storage()``); ``raw_bytes`` is None for categories,
    whose in-memory size depends on how they are read; ``nulls``: the missing values of a
    nullable column, as the manifest counts them (no chunk is read)."""

    name: str
    spec: ColumnSpec
    chunks: int
    encodings: dict[str, int]
    raw_bytes: int | None
    stored_bytes: int
    nulls: int = 0

    @property
    def ratio(self) -> float | None:
        return self.raw_bytes / self.stored_bytes if self.raw_bytes and self.stored_bytes else None


class Node:
    """A group, table or array in a store."""

    kind = "node"

    def __init__(self, store: Store, rec: NodeRecord) -> None:
        self._store = store
        self._session = store.session
        self._id = rec.id

    @property
    def path(self) -> str:
        """The node's current path (it follows renames)."""
        return self._session.path_of(self._id)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] or "/"

    @property
    def store(self) -> Store:
        """The store this node belongs to."""
        return self._store

    @property
    def attrs(self) -> Attrs:
        """Key-value metadata (JSON values), committed with the data."""
        return Attrs(self._session, self._id)

    @property
    def objects(self) -> Objects:
        """Pickled Python objects (shelve-like), committed with the data."""
        return Objects(self._session, self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._store is self._store and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


class Group(Node):
    """A node that holds other nodes.

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     g = store.create_group("/runs/2025")
    ...     store["/runs"].ls()
    ['2025']
    """

    kind = "group"

    def ls(self) -> list[str]:
        """Names of the children, sorted."""
        return self._store.ls(self.path)

    def __iter__(self) -> Iterator[Node]:
        base = self.path.rstrip("/")
        return (self._store[f"{base}/{name}"] for name in self.ls())

    def __getitem__(self, name: str) -> Node:
        return self._store[f"{self.path.rstrip('/')}/{name}"]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and f"{self.path.rstrip('/')}/{name}" in self._store

    def __getattr__(self, name: str) -> Node:
        """PyTables' natural naming: ``store.root.sensors.run1`` is the child ``run1`` of the
        child ``sensors``. Only for names that are identifiers not starting with ``_``; a child
        named like an attribute of the group (``name``, ``attrs``, ``ls``...) is reached with
        ``group["name"]`` instead."""
        if name.startswith("_") or not name.isidentifier():
            raise AttributeError(name)
        if name in self:
            return self[name]
        raise AttributeError(
            f"group {self.path} of {self._store.path} has no attribute or child {name!r}"
        )

    def _repr_html_(self) -> str:
        """The subtree as a notebook shows it (see :func:`~colvault.engine.display.tree_html`)."""
        return display.tree_html(self._store, self.path)

    def __dir__(self) -> list[str]:
        own = set(super().__dir__())
        try:
            names = self.ls()
        except ColvaultError:  # a closed store or a removed group: completion still answers
            names = []
        return sorted(own | {n for n in names if n.isidentifier() and not n.startswith("_")})


class DataNode(Node):
    """What tables and arrays share: a schema, a codec, committed chunks and pending rows."""

    def __init__(self, store: Store, rec: NodeRecord) -> None:
        super().__init__(store, rec)
        self._record = rec
        self._parsed: tuple[TableSchema, Codec] | None = None
        self._index_key = store.session.index_key()

    @property
    def _parts(self) -> tuple[TableSchema, Codec]:
        """Schema and codec, parsed on first use (walking 10,000 tables to list them parsed
        every schema), and again after a commit changed the columns (``add_column``...); a
        record that does not decode raises ``CatalogError`` naming the node."""
        key = self._session.index_key()
        if key != self._index_key and not self._session.closed:  # the columns may differ
            self._index_key = key
            rec = self._session.record_of(self._id)
            if rec is not None and rec.schema != self._record.schema:
                self._record, self._parsed = rec, None
        if self._parsed is None:
            self._parsed = self._record.data_parts(self._session.path, self._record.path)
        return self._parsed

    @property
    def _schema(self) -> TableSchema:
        return self._parts[0]

    @property
    def _codec(self) -> Codec:
        return self._parts[1]

    @property
    def codec(self) -> Codec:
        return self._codec

    @property
    def chunk_rows(self) -> int:
        return self._schema.chunk_rows

    def _state(self) -> NodeState:
        self._session.path_of(self._id)  # a node removed in this process is gone for it too
        return self._session.node_state(self._id, self._schema)

    def _source(self) -> ChunkSource:
        return self._session.chunk_source(self.path)

    def _snapshot(self) -> tuple[str, NodeState, ChunkSource]:
        """(path, committed manifest, reader) for one read, the path looked up once (a
        ``NodeError`` once this process removed the node): ``_state()`` and ``_source()``
        together looked it up twice."""
        path = self.path
        return (
            path,
            self._session.node_state(self._id, self._schema),
            self._session.chunk_source(path),
        )

    def detached(self) -> DetachedTable:
        """The committed rows as of now, readable from the segment files alone, without the
        catalog: what a Dask task carries to a worker (:mod:`colvault.io.dask`). Later commits
        do not change what it reads; ``compact()`` may delete its files unless a lease holds
        them (:mod:`colvault.engine.leases`)."""
        return DetachedTable(self._session.path, self.path, self._schema, self._state())

    @property
    def nrows(self) -> int:
        """Committed rows (what every reader sees)."""
        return self._state().nrows

    def __len__(self) -> int:
        return self.nrows

    @property
    def pending_rows(self) -> int:
        """Rows appended in this process and not yet committed."""
        writer = self._session.writer(self._id)
        return writer.pending_rows if writer else 0

    def append_checked(self, arrays: list[np.ndarray], n: int, owned: bool = False) -> None:
        """Buffer ``n`` rows already coerced to the schema, one array per column (colvault's
        importers and ``create_table`` check a whole batch first); ``owned``: the arrays are
        the writer's to keep, not copied."""
        self._session.check_writable()
        self._session.append(self._id, self._schema, self._codec, arrays, n, owned)

    def read_selection(self, key: Any, specs: list[ColumnSpec]) -> tuple[list[np.ndarray], bool]:
        """Read rows selected by a numpy-style key from one snapshot; (arrays, key was an int)."""
        path, state, src = self._snapshot()
        sel = resolve(key, state.nrows, path)
        if isinstance(sel, RowRange):
            arrays = src.read_rows_of(state, specs, sel.start, sel.stop)
            return [a[sel.post] for a in arrays], sel.scalar
        assert isinstance(sel, RowList)
        return [src.read_rows(state, s, sel.unique)[sel.inverse] for s in specs], False

    def _iter_chunks(self, specs: list[ColumnSpec]) -> Iterator[list[np.ndarray]]:
        _, state, src = self._snapshot()  # one snapshot for the whole iteration
        for pos in range(len(state.starts)):
            yield [src.read_chunk_masked(s, state.columns[s.id][pos]) for s in specs]

    def _sizes(self, state: NodeState) -> tuple[int, int]:
        raw = state.nrows * sum(c.cell_bytes for c in self._schema.columns if not c.is_category)
        stored = sum(r.length for refs in state.columns.values() for r in refs)
        return raw, stored

    def storage(self) -> list[ColumnStorage]:
        """Per column: chunks, encodings used, raw and stored bytes of the committed rows."""
        state = self._state()
        out = []
        for spec in self._schema.columns:
            refs = state.columns[spec.id]
            raw = None if spec.is_category else state.nrows * spec.cell_bytes
            encodings = dict(Counter(r.encoding.name for r in refs))
            stored = sum(r.length for r in refs)
            nulls = sum(r.nulls for r in refs)
            out.append(ColumnStorage(spec.name, spec, len(refs), encodings, raw, stored, nulls))
        return out

    @property
    def raw_bytes(self) -> int:
        """Uncompressed bytes of the committed rows (category columns not counted: their size
        in memory depends on how they are read)."""
        return self._sizes(self._state())[0]

    @property
    def stored_bytes(self) -> int:
        """Compressed bytes of the committed chunks."""
        return self._sizes(self._state())[1]

    def footprint(self) -> tuple[int, int, int]:
        """``(nrows, raw_bytes, stored_bytes)`` from one look at the committed manifest (each
        property alone reads the catalog)."""
        state = self._state()
        return (state.nrows, *self._sizes(state))

    def _size_text(self, state: NodeState) -> str:
        raw, stored = self._sizes(state)
        ratio = f" ({raw / stored:.2f}x)" if stored else ""
        pending = f"; {self.pending_rows:,} rows pending" if self.pending_rows else ""
        return (
            f"{self._codec.name} clevel {self._codec.clevel} shuffle {self._codec.shuffle}; "
            f"{_mb(raw)} raw, {_mb(stored)} stored{ratio}{pending}"
        )


def index_cells(read: Callable[[Any], tuple[np.ndarray, bool]], key: Any) -> Any:
    """numpy indexing of a column of cells: ``read(row_key)`` gives (rows, key was an int);
    the rest of a tuple key (``a[rows, i, j]``, dask's ``x[(slice, slice)]``) indexes the cells.
    """
    rest: tuple[Any, ...] = ()
    if isinstance(key, tuple):
        if not key:
            key = Ellipsis
        else:
            key, rest = key[0], key[1:]
    if key is Ellipsis or key is None:
        data, _ = read(slice(None))
        full = (key, *rest) if rest or key is None else ()
        return data[full] if full else data
    data, scalar = read(key)
    if scalar:
        return data[0][rest] if rest else data[0]
    return data[(slice(None), *rest)] if rest else data


def array_protocol(read: Callable[[], np.ndarray], dtype: Any, copy: bool | None,
                   what: str) -> np.ndarray:  # fmt: skip
    """numpy 2's ``__array__(dtype=None, copy=None)`` for data on disk (as h5py does): a read
    always allocates, so ``copy=False`` raises ``ValueError``; ``copy=True`` also copies a
    read-only zero-copy view, so that the result is the caller's to change."""
    if copy is False:
        raise ValueError(f"{what} is read from disk: np.asarray() cannot avoid a copy")
    values = read()
    if dtype is not None:
        values = values.astype(dtype, copy=False)
    if copy and not values.flags.writeable:
        values = values.copy()
    return values


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
