"""Tables: typed columns appended in bulk and read back by slice, column or chunk."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SchemaError
from ..lazy import kernel_module
from ..progress import bar as progress_bar
from ..progress import enabled as progress_enabled
from . import arrowin, display
from .coerce import Lazy, coerce_batch
from .indexing import RowRange, resolve, row_number
from .nodes import DataNode, array_protocol, index_cells
from .reads import TableReads
from .records import TableView, pick_specs, record, records
from .rowedits import ColumnEdits, TableEdits
from .schema import ColumnSpec

if TYPE_CHECKING:
    from ..kernels.encoding import intpack
else:
    intpack = kernel_module("encoding.intpack")


READ_PIECE = 16
"""Chunks read at a time by whole-table reads that show a progress bar."""

_TEXT = np.dtype(str)  # what a category column reads as: str of no fixed width


class Table(DataNode, TableReads, TableEdits, ColumnEdits):
    """A table of typed columns (PyTables names: ``append``, ``flush``, ``cols``, ``read``).

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/runs/a", {"t": "M8[s]", "value": "f8"})
    ...     t.append({"t": ["2025-03-01T00:00", "2025-03-01T00:01"], "value": [1.5, 2.5]})
    ...     t.flush()
    ...     t.cols.value[:], len(t)
    (array([1.5, 2.5]), 2)
    """

    kind = "table"

    @property
    def schema(self) -> np.dtype:
        """The row type as a numpy structured dtype."""
        return self._schema.dtype

    dtype = schema

    @property
    def columns(self) -> list[str]:
        """The column names, in schema order (pandas' name; ``colnames`` in PyTables)."""
        return self._schema.names

    @property
    def frame_index(self) -> list[tuple[str, str | None]]:
        """``(column, level name)`` of each column that holds the index of the DataFrame the
        table was created from (the name None for an unnamed level); ``to_pandas`` makes them
        the index again. Empty for the default ``RangeIndex`` and for other tables."""
        return list(self._schema.index)

    @property
    def shape(self) -> tuple[int, int]:
        """``(nrows, ncols)`` of the committed rows, as a DataFrame's ``shape``."""
        return self.nrows, len(self._schema.columns)

    @property
    def dtypes(self) -> dict[str, np.dtype | str]:
        """Column name → numpy dtype (with the cell shape for multi-dimensional cells, as in
        the structured :attr:`schema`); ``"category"`` for category columns, which read back as
        ``str`` arrays; ``"datetime64[ns, <zone>]"`` for zone-aware timestamps, which read back
        as UTC datetime64 (``to_pandas`` gives them in their zone).

        >>> import colvault, tempfile, os
        >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
        ...     t = store.create_table("/t", {"x": "i4", "site": "category"})
        ...     t.dtypes
        {'x': dtype('int32'), 'site': 'category'}
        """
        return {
            c.name: c.type_name if c.is_category or c.tz else np.dtype((c.dtype, c.shape))
            for c in self._schema.columns
        }

    def head(self, n: int = 5) -> np.ndarray:
        """The first ``n`` committed rows as a structured array (``t[:n]``; a negative ``n``
        gives all but the last ``-n``, as in pandas)."""
        return self.read(stop=n)

    def tail(self, n: int = 5) -> np.ndarray:
        """The last ``n`` committed rows as a structured array (``t[-n:]``; a negative ``n``
        gives all but the first ``-n``, as in pandas)."""
        return self.read(start=-n) if n else self.read(stop=0)

    @property
    def cols(self) -> Cols:
        """Column accessors: ``t.cols.value[10:20]``, ``t.cols["temp (°C)"][:]``."""
        return Cols(self)

    def col(self, name: str, *, codes: bool = False, chunk: int | None = None) -> Any:
        """All committed values of one column.

        For a ``category`` column, ``codes=True`` gives ``(codes, dictionary)`` instead: over the
        whole table (one sorted dictionary, codes remapped into it) or, with ``chunk=i``, the
        i-th chunk's own codes and dictionary as stored. A nullable category's codes are signed,
        -1 where the value is missing (as pandas' Categorical codes).
        """
        if not codes:
            return self.cols[name][:]
        spec = self._schema.column(name)
        if not spec.is_category:
            raise SchemaError(f"column {name!r} of {self.path} is {spec.dtype}, not a category")
        _, state, src = self._snapshot()
        refs = state.columns[spec.id]
        if chunk is not None:
            return src.read_codes_masked(spec, refs[chunk])
        parts = [src.read_codes_masked(spec, ref) for ref in refs]
        if not parts:
            return np.empty(0, np.int8 if spec.nullable else np.uint8), np.empty(0, "U1")
        if spec.nullable:  # only the values in use: a chunk with none holds a placeholder
            parts = [(c, d[np.unique(c[c >= 0])]) if len(d) else (c, d) for c, d in parts]
            parts = [(_rank(c), d) for c, d in parts]
        dictionary = np.unique(np.concatenate([d for _, d in parts]))
        narrow = intpack.narrow_dtype(max(len(dictionary) - 1, 0))
        if spec.nullable:
            signed = np.result_type(np.int8, narrow)
            remapped = [
                np.append(np.searchsorted(dictionary, d).astype(signed), -1)[c] for c, d in parts
            ]
        else:
            remapped = [np.searchsorted(dictionary, d).astype(narrow)[c] for c, d in parts]
        return np.concatenate(remapped), dictionary

    def append(self, data: Any, *, copy: bool = True) -> None:
        """Validate and buffer rows: a dict of arrays, a structured array, a list of tuples, a
        DataFrame, or Arrow data (a pyarrow Table or RecordBatch; a RecordBatchReader or any
        object with ``__arrow_c_stream__``, appended batch by batch).

        The whole batch is checked first; a ``SchemaError`` keeps none of it. Rows become visible
        to reads at the next commit (``flush()``, ``store.commit()``, closing the store).
        ``copy=False`` hands the arrays over: the caller promises never to change them again, so
        append returns while their chunks are still being compressed and keeps the last rows
        without copying them (the CSV importer appends its freshly parsed blocks so).
        """
        self._session.check_writable()
        if arrowin.is_arrow(data) and not arrowin.in_memory(data):
            self._append_stream(data, copy)
            return
        n, arrays = coerce_batch(
            data,
            self._schema.columns,
            Lazy(lambda: f"table {self.path}"),
            self._schema.index_columns,
        )
        self.append_checked(arrays, n, owned=not copy)

    def _append_stream(self, data: Any, copy: bool) -> None:
        """An Arrow stream, batch by batch (memory bounded by a batch). Its column names are
        checked first. A batch that does not fit raises; the batches before it are dropped too
        when the table had no uncommitted rows before (else they stay pending, and
        ``store.abort()`` drops them)."""
        stream = arrowin.reader(data)
        arrowin.check_names(stream.schema, self.colnames, f"table {self.path}")
        fresh = self.pending_rows == 0
        try:
            for batch in stream:
                self.append(batch, copy=copy)
        except BaseException:  # a bad batch, a failing source, an interrupt: never half a stream
            if fresh:
                self._session.drop_rows(self._id)
            raise

    def flush(self) -> None:
        """Commit the store (PyTables' name)."""
        self._store.commit()

    def read_columns(
        self,
        columns: list[str] | None = None,
        start: int | None = None,
        stop: int | None = None,
        *,
        progress: bool | None = None,
        desc: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Committed rows ``[start:stop]`` of the columns, each its own array (masked for a
        nullable column), from one snapshot: what ``read`` gives without building records.
        ``progress`` as in :meth:`read`; ``desc`` labels its bar."""
        specs = pick_specs(self._schema, columns)
        label = desc or f"read {self.path}"
        arrays = self._read_slice(slice(start, stop), specs, progress, label)
        return {spec.name: a for spec, a in zip(specs, arrays, strict=True)}

    def read(
        self, start: int | None = None, stop: int | None = None, step: int | None = None,
        columns: list[str] | None = None, *, progress: bool | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Committed rows ``[start:stop:step]`` as a structured array (optionally some columns).

        ``progress`` shows a bar of the rows read (:mod:`colvault.progress`): by default in a
        terminal or a notebook once the read has lasted a second, ``True`` always, ``False``
        never (nor anywhere with ``COLVAULT_PROGRESS=0``).
        """
        specs = pick_specs(self._schema, columns)
        arrays = self._read_slice(slice(start, stop, step), specs, progress, f"read {self.path}")
        return records(specs, arrays)

    def _read_slice(
        self, key: slice, specs: list[ColumnSpec], progress: bool | None, desc: str
    ) -> list[np.ndarray]:
        """Columns ``specs`` at rows ``key`` from one snapshot; with a progress bar shown, read
        :data:`READ_PIECE` chunks at a time so that the bar moves (into arrays allocated once;
        category columns, whose width the pieces decide, are joined at the end)."""
        if not progress_enabled(progress):
            return self.read_selection(key, specs)[0]
        path, state, src = self._snapshot()
        sel = resolve(key, state.nrows, path)
        assert isinstance(sel, RowRange)
        start, stop = sel.start, sel.stop
        span = state.chunk_span(start, stop)
        cuts = [start, *(int(state.starts[p]) for p in span[READ_PIECE::READ_PIECE]), stop]
        outs = [
            None if s.is_category or s.nullable else np.empty((stop - start, *s.shape), s.dtype)
            for s in specs
        ]
        texts: list[list[np.ndarray]] = [[] for _ in specs]
        with progress_bar(stop - start, "rows", desc, progress) as bar:
            for a, b in itertools.pairwise(cuts):
                for out, text, spec in zip(outs, texts, specs, strict=True):
                    if out is None:
                        text.append(src.read_range(state, spec, a, b))
                    else:  # decoded in place: no piece-sized array copied over
                        src.read_range(state, spec, a, b, out[a - start : b - start])
                bar.update(b - a)
        arrays = [
            out if out is not None else _joined(spec, text)
            for out, text, spec in zip(outs, texts, specs, strict=True)
        ]
        return [a[sel.post] for a in arrays]

    def __getitem__(self, key: Any) -> Any:
        """``t[i]`` → a row (numpy record); ``t[a:b]``, ``t[rows]``, ``t[mask]`` → structured
        array; ``t["name"]`` → a column as an array; ``t[["a", "b"]]`` → a structured array
        of those columns (all committed rows, as ``t.read(columns=["a", "b"])``)."""
        if type(key) is int or isinstance(key, np.integer):  # a point read: nothing to resolve
            return self._row(int(key))
        if isinstance(key, str):
            return self.col(key)
        if isinstance(key, list) and key and all(isinstance(k, str) for k in key):
            return self.read(columns=key)
        specs = list(self._schema.columns)
        arrays, scalar = self.read_selection(key, specs)
        return record(specs, arrays) if scalar else records(specs, arrays)

    def _row(self, i: int) -> Any:
        """Row ``i`` as a numpy record (``t[i]``)."""
        path, state, src = self._snapshot()
        i = row_number(i, state.nrows, path)
        specs = self._schema.columns
        return record(specs, src.read_rows_of(state, specs, i, i + 1))

    def _view(self) -> TableView:
        """The table as of now: one snapshot for a read or a query."""
        path, state, source = self._snapshot()
        return TableView(path, self._schema, state, source)

    def _repr_html_(self) -> str:
        """Schema, size and the first and last rows, as a notebook shows them."""
        return display.table_html(self)

    def __repr__(self) -> str:
        state = self._state()
        cols = ", ".join(
            f"{c.name} {c.type_text}" + (str(c.shape) if c.shape else "")
            for c in self._schema.columns
        )
        return (
            f"<Table {self.path}: {state.nrows:,} rows × {len(self._schema.columns)} columns "
            f"[{cols}]; {self._size_text(state)}>"
        )


def _rank(codes: np.ndarray) -> np.ndarray:
    """Codes into a chunk's dictionary renumbered into the sorted list of the codes in use
    (-1 stays -1)."""
    used = np.unique(codes[codes >= 0])
    out = np.full(len(codes), -1, np.int64)
    out[codes >= 0] = np.searchsorted(used, codes[codes >= 0])
    return out


def _joined(spec: ColumnSpec, pieces: list[np.ndarray]) -> np.ndarray:
    """The pieces of a column read piece by piece as one array (masked when nullable)."""
    if not pieces:
        empty = np.empty((0, *spec.shape), "U1" if spec.is_category else spec.dtype)
        return np.ma.MaskedArray(empty, np.zeros(0, bool)) if spec.nullable else empty
    if spec.nullable:
        return np.ma.MaskedArray(
            np.concatenate([p.data for p in pieces]),
            np.concatenate([np.ma.getmaskarray(p) for p in pieces]),
        )
    return np.concatenate(pieces)


class Column:
    """One column of a table, indexed like a numpy array (committed rows only).

    It is array-like (``shape``, ``dtype``, ``ndim``, ``len``, slicing, ``__array__``), so
    ``np.asarray(t.cols.x)`` reads the column and ``dask.array.from_array(t.cols.x)`` reads it
    lazily, slice by slice. A ``category`` column's ``dtype`` is ``np.dtype(str)`` (``<U0``:
    text of no fixed width), as its reads give ``str`` arrays (``t.dtypes`` says
    ``"category"``).

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"x": "i4"})
    ...     t.append({"x": [3, 1, 2]})
    ...     t.flush()
    ...     t.cols.x.shape, t.cols.x.ndim, np.asarray(t.cols.x).sum()
    ((3,), 1, np.int64(6))
    """

    def __init__(self, table: Table, spec: ColumnSpec) -> None:
        self._table = table
        self._spec = spec

    @property
    def name(self) -> str:
        """The column's name."""
        return self._spec.name

    @property
    def table(self) -> Table:
        """The table the column belongs to (PyTables' ``Column.table``)."""
        return self._table

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the values reads give (the base dtype for multi-dimensional
        cells). For a ``category`` column it is ``np.dtype(str)`` (``<U0``: text of no fixed
        width), of the same kind as ``np.asarray(column)``, whose width is that of the longest
        dictionary entry among the chunks read; ``t.dtypes`` names the column's type,
        ``"category"``.

        >>> import colvault, tempfile, os
        >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
        ...     t = store.create_table("/t", {"site": "category"})
        ...     t.append({"site": ["north", "east"]})
        ...     t.flush()
        ...     t.cols.site.dtype, np.asarray(t.cols.site).dtype, t.dtypes["site"]
        (dtype('<U'), dtype('<U5'), 'category')
        """
        return _TEXT if self._spec.is_category else self._spec.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """``(nrows, *cell_shape)`` of the committed rows."""
        return (len(self._table), *self._spec.shape)

    @property
    def ndim(self) -> int:
        """1, plus the dimensions of a multi-dimensional cell."""
        return 1 + len(self._spec.shape)

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, key: Any) -> Any:
        """Rows by int, slice, int array or mask; a tuple indexes into the cells too
        (``t.cols.spectrum[10:20, :5]``)."""
        return index_cells(self._read_cells, key)

    def _read_cells(self, key: Any) -> tuple[np.ndarray, bool]:
        (data,), scalar = self._table.read_selection(key, [self._spec])
        return data, scalar

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """All committed values: ``np.asarray(t.cols.x)`` (``copy=False`` raises: reads
        allocate)."""
        what = f"column {self.name!r} of {self._table.path}"
        return array_protocol(self._plain, dtype, copy, what)

    def _plain(self) -> np.ndarray:
        """All values as a plain array: numpy's array protocol has no mask, so a nullable
        column with missing values raises rather than give the filler values as data."""
        values = self[:]
        if not isinstance(values, np.ma.MaskedArray):
            return values
        missing = int(np.count_nonzero(np.ma.getmaskarray(values)))
        if missing:
            raise ValueError(
                f"column {self.name!r} of {self._table.path} has {missing} missing value(s), "
                "which a plain array cannot hold: t.cols[name][:] gives a masked array"
            )
        return np.ma.getdata(values)

    def _repr_html_(self) -> str:
        """dtype, rows and the first and last values, as a notebook shows them."""
        return display.column_html(self)

    def __repr__(self) -> str:
        kind = "category" if self._spec.is_category else self.dtype
        return f"<Column {self._table.path}.{self.name}: {kind}, {len(self):,} rows>"


class Cols:
    """Attribute and item access to a table's columns."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def __getitem__(self, name: str) -> Column:
        return Column(self._table, self._table.column_specs([name])[0])

    def __getattr__(self, name: str) -> Column:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except ValueError:
            raise AttributeError(
                f"table {self._table.path} has no column {name!r}; "
                f"columns are {self._table.colnames}"
            ) from None

    def __iter__(self) -> Iterator[Column]:
        return (self[n] for n in self._table.colnames)

    def __len__(self) -> int:
        return len(self._table.colnames)

    def __dir__(self) -> list[str]:
        return [n for n in self._table.colnames if n.isidentifier()]

    def __repr__(self) -> str:
        return f"<Cols of {self._table.path}: {self._table.colnames}>"
