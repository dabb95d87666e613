"""The methods of :class:`~colvault.engine.table.Table` that change committed rows and columns:
deletes and updates, by condition (``delete_where``, ``update_where``) or by row number
(PyTables' ``remove_rows``, ``modify_column``, ``modify_rows``), and ``add_column``,
``rename_column``, ``remove_column``. What they do on disk: :mod:`.edits`."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SchemaError
from . import edits, staging
from .coerce import coerce_batch
from .names import check_column_name
from .query.parse import parse
from .query.predicate import columns_used, evaluate
from .reading import ChunkSource
from .schema import ColumnSpec, TableSchema, parse_columns

if TYPE_CHECKING:
    from .codec import Codec
    from .manifest import NodeState
    from .session import Session

Condvars = dict[str, Any] | None


class _OfTable:
    """What the mixins below use of the :class:`~colvault.engine.table.Table` they are mixed
    into (declared for the type checker)."""

    _session: Session
    _id: str

    if TYPE_CHECKING:  # given by the classes it is mixed with

        @property
        def path(self) -> str: ...

        @property
        def nrows(self) -> int: ...

        @property
        def _schema(self) -> TableSchema: ...

        @property
        def _codec(self) -> Codec: ...

        def _state(self) -> NodeState: ...

        def get_where_list(self, cond: str, condvars: Condvars = None) -> np.ndarray: ...


class TableEdits(_OfTable):
    """Deletes and updates; mixed into :class:`~colvault.engine.table.Table`.

    Each is planned at once against the committed rows (one snapshot) and applied by the next
    ``commit()``, atomically with everything else pending; ``abort()`` drops it. It rewrites
    only the chunks holding affected rows. Reads see the change after the commit, as they see
    appended rows. Rows appended and not yet committed are not affected. After a delete, row
    numbers are dense again (as in PyTables). One delete or update per table per commit: a
    second raises ``ColvaultError`` until the first is committed or aborted. If another
    process changes the table before the commit, the commit raises ``NodeError`` and applies
    nothing. The rows as they were stay readable with ``open(as_of=)`` until expired.
    """

    def stage(self, data: Any, *, token: str | None = None) -> dict[str, Any]:
        """Write rows (as ``append`` takes them) durably without committing them, in segment
        files of their own; a descriptor (a dict of JSON values) that
        ``store.commit_staged([...])``, in this process or another, appends to the table in
        one commit. ``token`` labels them for ``store.discard_staged(token=)``."""
        self._session.check_writable()
        schema = self._schema
        n, arrays = coerce_batch(data, schema.columns, f"table {self.path}", schema.index_columns)
        return staging.stage(self._session, self._id, self.path, schema, self._codec, arrays, n,
                             token)  # fmt: skip

    def delete_where(self, cond: str, condvars: Condvars = None) -> int:
        """Delete the committed rows that satisfy ``cond``; how many."""
        self._session.check_writable()
        with self._session.snapshot():
            return self._plan(self.get_where_list(cond, condvars), None)

    def remove_rows(self, start: int, stop: int | None = None, step: int | None = None) -> int:
        """Delete committed rows ``start:stop:step`` (PyTables' name; ``stop`` None: only row
        ``start``); how many."""
        self._session.check_writable()
        with self._session.snapshot():
            n = self.nrows
            if stop is None:
                first = start + n if start < 0 else start
                if not 0 <= first < n:
                    raise IndexError(f"row {start} is out of range for {self.path} ({n} rows)")
                rows = np.array([first], np.int64)
            else:
                rows = np.arange(n, dtype=np.int64)[slice(start, stop, step)]
                rows = np.sort(rows)
            return self._plan(rows, None)

    def update_where(
        self, cond: str, values: dict[str, Any], condvars: Condvars = None
    ) -> int:  # fmt: skip
        """Set columns of the committed rows that satisfy ``cond``: ``values`` maps column
        names to a constant or to values aligned with the matching rows (as many, in row
        order); how many rows. Values are checked as ``append`` checks them."""
        self._session.check_writable()
        with self._session.snapshot():
            rows = self.get_where_list(cond, condvars)
            return self._plan(rows, self._coerced(values, len(rows)))

    def modify_column(self, name: str, values: Any, start: int = 0) -> int:
        """Set column ``name`` of committed rows ``start, start + 1, ...`` to ``values`` (as
        PyTables' ``modify_column(start, column=, colname=)``); how many rows."""
        self._session.check_writable()
        with self._session.snapshot():
            n = len(values)
            rows = self._row_span(start, n)
            return self._plan(rows, self._coerced({name: values}, n, broadcast=False))

    def modify_rows(self, start: int, rows: Any) -> int:
        """Set every column of committed rows ``start, start + 1, ...`` from ``rows`` (a
        structured array, a dict of arrays, a DataFrame, as ``append`` takes them); how many."""
        self._session.check_writable()
        specs = self._schema.columns
        n, arrays = coerce_batch(rows, specs, f"table {self.path}", self._schema.index_columns)
        with self._session.snapshot():
            span = self._row_span(start, n)
            return self._plan(span, dict(enumerate(arrays)))

    def _row_span(self, start: int, n: int) -> np.ndarray:
        total = self.nrows
        if start < 0 or start + n > total:
            raise IndexError(
                f"rows {start}..{start + n - 1} are out of range for {self.path} ({total} rows)"
            )
        return np.arange(start, start + n, dtype=np.int64)

    def _coerced(self, values: dict[str, Any], n: int, broadcast: bool = True) -> dict[int, Any]:
        """Column position → ``n`` values of its type (constants repeated)."""
        if not isinstance(values, dict) or not values:
            raise SchemaError(f"table {self.path}: values must be a dict of column -> values")
        specs = {s.name: (j, s) for j, s in enumerate(self._schema.columns)}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise SchemaError(f"table {self.path} has no column {', '.join(map(repr, unknown))}")
        chosen: list[ColumnSpec] = [specs[name][1] for name in values]
        data = {
            s.name: _repeated(values[s.name], s, n) if broadcast else values[s.name] for s in chosen
        }
        got, arrays = coerce_batch(data, chosen, f"table {self.path}")
        if got != n:
            raise SchemaError(
                f"table {self.path}: {got} values for {n} rows (give one value, or one per row)"
            )
        return {specs[s.name][0]: a for s, a in zip(chosen, arrays, strict=True)}

    def _plan(self, rows: np.ndarray, values: dict[int, Any] | None) -> int:
        return edits.plan(self._session, self._id, self.path, self._schema, self._codec,
                          self._state(), rows, values)  # fmt: skip


def _repeated(value: Any, spec: ColumnSpec, n: int) -> Any:
    """``value`` as ``n`` values when it is one value of the column (a scalar, or one cell of
    a column of cells), else as given."""
    if isinstance(value, str | bytes) or value is None or np.ndim(value) == len(spec.shape):
        return [value] * n
    return value


class ColumnEdits(_OfTable):
    """Column changes; mixed into :class:`~colvault.engine.table.Table`. Each is a change of
    the schema (a new version of the table's record: ``open(as_of=)`` an earlier commit reads
    the old columns) plus, for ``add_column``, new chunks for that column only, aligned with
    the table's chunks. Pending until ``commit()``, as row edits are; not while the table
    has uncommitted appended rows."""

    def add_column(
        self, name: str, dtype: Any, *, fill: Any = None, values: Any = None,
        expr: str | None = None, condvars: Condvars = None,
    ) -> None:  # fmt: skip
        """Add a column of ``dtype`` (as a schema spells it, e.g. ``"f8"`` or
        ``{"dtype": "i4", "nullable": True}``) holding ``fill`` in every row, or ``values`` (one
        per committed row), or what the expression ``expr`` computes from the other columns
        (the query language, e.g. ``"value * 2 + offset"``, evaluated chunk by chunk). With
        none of them, a nullable column is missing in every row."""
        self._session.check_writable()
        schema = self._schema
        if name in schema.names:
            raise SchemaError(f"table {self.path} already has a column {name!r}")
        (spec,) = parse_columns({name: dtype})
        given = sum(x is not None for x in (fill, values, expr))
        if given > 1:
            raise SchemaError("add_column takes one of fill=, values= and expr=")
        if not given and not spec.nullable:
            raise SchemaError(
                f"column {name!r} of table {self.path}: give fill=, values= or expr= (or make "
                "it nullable, to start with every value missing)"
            )
        with self._session.snapshot():
            state = self._state()
            src = ChunkSource(self._session.path, self.path, self._session.reader, None)
            pieces = self._new_column(spec, state, src, fill, values, expr, condvars)
            writer = edits.write_column(self._session, self._id, spec, schema, self._codec,
                                        pieces)  # fmt: skip
            new = TableSchema((*schema.columns, spec), schema.chunk_rows, schema.index)
            edits.plan_columns(self._session, edits.ColumnEdit(
                self._id, self.path, state.version, new, [int(s) for s in state.starts],
                added=writer,
            ))  # fmt: skip

    def _new_column(
        self, spec: ColumnSpec, state: NodeState, src: ChunkSource, fill: Any, values: Any,
        expr: str | None, condvars: Condvars,
    ) -> Iterator[tuple[Any, int]]:  # fmt: skip
        """The new column's values, one piece per chunk position."""
        what = f"table {self.path}"
        first = self._schema.columns[0].id
        sizes = [r.nrows for r in state.columns[first]]
        if values is not None:
            n, (whole,) = coerce_batch({spec.name: values}, [spec], what)
            if n != state.nrows:
                raise SchemaError(f"{what}: {n} values for column {spec.name!r}, not {state.nrows}")
            pieces = list(np.cumsum([0, *sizes]))
            return ((whole[a:b], b - a) for a, b in itertools.pairwise(pieces))
        if expr is not None:
            return self._computed(spec, state, src, expr, condvars, sizes)
        return ((coerce_batch({spec.name: [fill] * n}, [spec], what)[1][0], n) for n in sizes)

    def _computed(
        self, spec: ColumnSpec, state: NodeState, src: ChunkSource, expr: str,
        condvars: Condvars, sizes: list[int],
    ) -> Iterator[tuple[Any, int]]:  # fmt: skip
        columns = {c.name: (np.dtype(object) if c.is_category else c.dtype)
                   for c in self._schema.columns}  # fmt: skip
        tree = parse(expr, columns, condvars, table=self.path, boolean=False)
        used = [c for c in self._schema.columns if c.name in columns_used(tree)]
        for pos, n in enumerate(sizes):
            arrays = {c.name: src.read_chunk_masked(c, state.columns[c.id][pos]) for c in used}
            out = np.broadcast_to(evaluate(tree, arrays), (n,))
            yield coerce_batch({spec.name: out}, [spec], f"table {self.path}")[1][0], n

    def rename_column(self, old: str, new: str) -> None:
        """Rename a column (its values are not touched)."""
        self._session.check_writable()
        schema = self._schema
        spec = schema.column(old)
        if new in schema.names:
            raise SchemaError(f"table {self.path} already has a column {new!r}")
        check_column_name(new)
        columns = tuple(dataclasses.replace(c, name=new) if c is spec else c
                        for c in schema.columns)  # fmt: skip
        index = tuple((new if c == old else c, level) for c, level in schema.index)
        self._plan_schema(TableSchema(columns, schema.chunk_rows, index))

    def remove_column(self, name: str) -> None:
        """Remove a column (its chunks stay for the commits that saw it, until expired)."""
        self._session.check_writable()
        schema = self._schema
        spec = schema.column(name)
        if len(schema.columns) == 1:
            raise SchemaError(f"{name!r} is the only column of table {self.path}")
        columns = tuple(c for c in schema.columns if c is not spec)
        index = tuple((c, level) for c, level in schema.index if c != name)
        self._plan_schema(TableSchema(columns, schema.chunk_rows, index), dropped=spec.id)

    def _plan_schema(self, schema: TableSchema, dropped: str | None = None) -> None:
        with self._session.snapshot():
            state = self._state()
            edits.plan_columns(self._session, edits.ColumnEdit(
                self._id, self.path, state.version, schema, [int(s) for s in state.starts],
                dropped=dropped,
            ))  # fmt: skip
