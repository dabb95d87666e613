"""The node tree of a store: the path index, lookups, and pending node changes.

The index a process sees is the committed one with its own pending creations, renames and
removals replayed over it (read-your-writes); other processes see them after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import CatalogError, NodeError
from . import arrowin, display
from .array import Array
from .codec import Codec
from .coerce import coerce_batch
from .frames import index_levels, is_frame
from .names import check_limits, normalize_path, parent_of
from .nodes import Group, Node
from .pending import NodeRecord, in_subtree, moved
from .schema import (
    ColumnSpec,
    TableSchema,
    check_dtype,
    make_schema,
    new_id,
    parse_columns,
)
from .table import Table

if TYPE_CHECKING:
    from .session import Session
    from .store import Store

KINDS: dict[str, type[Node]] = {"group": Group, "table": Table, "array": Array}


class NodeTree:
    """Node lookups and changes; mixed into :class:`~colvault.engine.store.Store`."""

    _session: Session

    def _store(self) -> Store:
        return cast("Store", self)

    def _index(self) -> dict[str, NodeRecord]:
        """path → record: committed nodes with this process's pending changes."""
        return self._session.index()[0]

    def __getitem__(self, path: str) -> Any:
        """The node at ``path`` (a :class:`Group`, :class:`Table` or :class:`Array`)."""
        norm = normalize_path(path)
        rec = self._index().get(norm)
        if rec is None:
            raise NodeError(f"no node {norm} in {self._session.path}")
        try:
            return KINDS[rec.kind](self._store(), rec)
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            raise CatalogError(
                self._session.path, f"the record of node {norm} does not decode ({exc!r})"
            ) from exc

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            return normalize_path(path) in self._index()
        except NodeError:
            return False

    def get(self, path: str, default: Any = None) -> Any:
        return self[path] if path in self else default  # noqa: SIM401

    @property
    def root(self) -> Group:
        return self["/"]

    def ls(self, path: str = "/") -> list[str]:
        """Names of the children of a group, sorted."""
        top = normalize_path(path)
        index = self._index()
        if top not in index:
            raise NodeError(f"no node {top} in {self._session.path}")
        if index[top].kind != "group":
            raise NodeError(f"{top} is a {index[top].kind}, not a group")
        return sorted(p.rsplit("/", 1)[1] for p in index if p != "/" and parent_of(p) == top)

    def walk(self, path: str = "/") -> Iterator[Node]:
        """Every node at or below ``path``, parents before children, sorted by path."""
        for p in self.paths(path):
            yield self[p]

    def paths(self, path: str = "/") -> list[str]:
        """The paths of the nodes :meth:`walk` yields, in its order."""
        top = normalize_path(path)
        index = self._index()
        if top not in index:
            raise NodeError(f"no node {top} in {self._session.path}")
        return sorted((p for p in index if in_subtree(p, top)), key=lambda p: p.split("/"))

    def keys(self) -> list[str]:
        """The paths of every node below the root, in :meth:`walk` order (as pandas'
        ``HDFStore.keys()``, groups included); ``path in store`` and ``store[path]`` take them.
        """
        return self.paths("/")[1:]

    def items(self) -> Iterator[tuple[str, Node]]:
        """``(path, node)`` pairs for :meth:`keys`, nodes opened as the iteration reaches them."""
        for p in self.keys():
            yield p, self[p]

    def _repr_html_(self) -> str:
        """The node tree as a notebook shows it: kind, rows, stored size and ratio per node."""
        return display.tree_html(self._store())

    # -- creating and changing nodes -------------------------------------------------------------

    def _add_node(
        self, path: str, kind: str, schema: str | None, options: str | None,
        parsed: tuple[TableSchema, Codec] | None = None,
    ) -> Node:  # fmt: skip
        self._session.check_writable()
        norm = normalize_path(path)
        if norm == "/":
            raise NodeError("the root group always exists")
        index = self._index()
        if norm in index:
            raise NodeError(f"{norm} already exists in {self._session.path}")
        self._ensure_parents(norm, index)
        rec = NodeRecord(new_id(), norm, kind, schema, options, parsed)
        self._session.pending.ops.append(("create", rec))
        return KINDS[kind](self._store(), rec)

    def _ensure_parents(self, norm: str, index: dict[str, NodeRecord]) -> None:
        missing = []
        parent = parent_of(norm)
        while parent not in index:
            missing.append(parent)
            parent = parent_of(parent)
        if index[parent].kind != "group":
            raise NodeError(f"{parent} is a {index[parent].kind}; it cannot hold {norm}")
        for p in reversed(missing):
            self._session.pending.ops.append(("create", NodeRecord(new_id(), p, "group")))

    def create_group(self, path: str, *, exist_ok: bool = False) -> Group:
        """Create a group (and missing parents)."""
        if exist_ok and path in self:
            node = self[path]
            if isinstance(node, Group):
                return node
        return self._add_node(path, "group", None, None)  # type: ignore[return-value]

    def create_table(
        self,
        path: str,
        schema: Any,
        *,
        codec: str = "lz4",
        clevel: int = 5,
        shuffle: str | None = "auto",
        chunk_rows: int | None = None,
        expected_rows: int | None = None,
    ) -> Table:
        """Create a table from ``{name: dtype}``, ``{name: (dtype, cell_shape)}``, a structured
        dtype, or a structured array or pandas DataFrame (whose rows are then appended, as
        PyTables does with record arrays; a DataFrame's index, unless it is the default
        ``RangeIndex``, is stored as the first columns and restored by ``to_pandas``). A
        zone-aware timestamp column (``"datetime64[ns, Europe/Paris]"`` or pandas' dtype) keeps
        its zone in the schema and its values as UTC. ``chunk_rows`` defaults to about 1 MiB of
        the widest column. Rows that do not fit raise before anything is created.

        Arrow data (a pyarrow Table, RecordBatch, RecordBatchReader, or any object with
        ``__arrow_c_stream__``: Polars, DuckDB, another table) give the schema and the rows:
        text as wide as its longest value, dictionaries as categories, columns nullable where
        the Arrow field is (bool, int, text and category columns; floats and timestamps hold NaN
        and NaT). A type colvault has no column for raises before anything is created."""
        if arrowin.is_arrow(schema):
            options = (codec, clevel, shuffle, chunk_rows, expected_rows)
            return self._create_from_arrow(path, schema, options)
        columns = parse_columns(schema)
        levels = index_levels(schema) if is_frame(schema) else []
        index = tuple((c, None if lv.name is None else str(lv.name)) for c, lv in levels)
        rows = None
        if is_frame(schema) or (isinstance(schema, np.ndarray) and len(schema)):
            # checked before the node exists: bad rows leave no empty table behind
            rows = coerce_batch(schema, columns, f"table {path}", [c for c, _ in index])
        table = self._create_data(path, "table", columns, codec, clevel, shuffle, chunk_rows,
                                  expected_rows, index)  # fmt: skip
        assert isinstance(table, Table)
        if rows is not None:  # as PyTables does with a record array: the data go in too
            n, arrays = rows
            table.append_checked(arrays, n)  # checked above: not coerced again
        return table

    def _create_from_arrow(self, path: str, data: Any, options: tuple[Any, ...]) -> Table:
        """A table from Arrow data, streamed batch by batch into it (one commit's worth of
        pending rows); if a batch still fails, the new table is removed again."""
        with arrowin.ArrowSource(data, f"table {path}") as source:
            columns = parse_columns(source.items)
            table = self._create_data(path, "table", columns, *options)
            assert isinstance(table, Table)
            try:
                for batch in source.batches():
                    table.append(batch)
            except BaseException:
                self.remove(path)
                raise
        return table

    def create_array(
        self,
        path: str,
        dtype: Any,
        *,
        inner_shape: tuple[int, ...] = (),
        codec: str = "lz4",
        clevel: int = 5,
        shuffle: str | None = "auto",
        chunk_rows: int | None = None,
        expected_rows: int | None = None,
    ) -> Array:
        """Create an array extendable along axis 0, with cells of ``inner_shape``."""
        columns = parse_columns({"data": (check_dtype(dtype, f"array {path}"), inner_shape)})
        return self._create_data(path, "array", columns, codec, clevel, shuffle, chunk_rows,
                                 expected_rows)  # type: ignore[return-value]  # fmt: skip

    def _create_data(
        self, path: str, kind: str, columns: list[ColumnSpec], codec: str, clevel: int,
        shuffle: str | None, chunk_rows: int | None, expected_rows: int | None,
        index: tuple[tuple[str, str | None], ...] = (),
    ) -> Node:  # fmt: skip
        options = Codec(codec, clevel, shuffle)
        schema = make_schema(columns, chunk_rows, expected_rows, index)
        return self._add_node(
            path, kind, json.dumps(schema.to_json()), json.dumps(options.to_json()),
            (schema, options),
        )  # fmt: skip

    def rename(self, old: str, new: str) -> None:
        """Move a node (and its subtree) to a new path; missing parents are created."""
        self._session.check_writable()
        old_n, new_n = normalize_path(old), normalize_path(new)
        index = self._index()
        if old_n == "/":
            raise NodeError("the root group cannot be renamed")
        if old_n not in index:
            raise NodeError(f"no node {old_n} in {self._session.path}")
        if new_n in index:
            raise NodeError(f"{new_n} already exists in {self._session.path}")
        if in_subtree(new_n, old_n):
            raise NodeError(f"cannot move {old_n} into itself ({new_n})")
        for p in index:  # the nodes below move too: their new paths must be within the limits
            if in_subtree(p, old_n):
                check_limits(moved(p, old_n, new_n))
        self._ensure_parents(new_n, index)
        self._session.pending.ops.append(("rename", old_n, new_n))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Remove a node; a group with children needs ``recursive=True``. Uncommitted rows of
        removed tables are dropped; their committed bytes are reclaimed by ``compact()``."""
        self._session.check_writable()
        norm = normalize_path(path)
        index = self._index()
        if norm == "/":
            raise NodeError("the root group cannot be removed")
        if norm not in index:
            raise NodeError(f"no node {norm} in {self._session.path}")
        below = [r for p, r in index.items() if in_subtree(p, norm)]
        if len(below) > 1 and not recursive:
            raise NodeError(f"{norm} has children; pass recursive=True to remove them too")
        for rec in below:
            self._session.drop_rows(rec.id)
            self._session.pending.forget_node(rec.id)
        self._session.pending.ops.append(("remove", norm))
