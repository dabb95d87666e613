"""Arrow out of tables: ``Table.to_arrow``, ``Table.iter_batches`` and ``__arrow_c_stream__``.

pyarrow is an optional extra (``pip install colvault[arrow]``), imported only when a table is
asked for Arrow data. The functions here are attached to :class:`~colvault.Table` when colvault
is imported, as ``to_pandas`` is; they read through the table's public API only. The Arrow
PyCapsule stream (``__arrow_c_stream__``) lets ``pyarrow.table(t)``, ``polars.DataFrame(t)`` and
DuckDB read a table batch by batch, one record batch per chunk, without pandas in between.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.arrowin import pyarrow_module
from ..errors import SchemaError

if TYPE_CHECKING:
    from ..engine.schema import ColumnSpec
    from ..engine.table import Table

#: Time units Arrow's timestamps and durations have; others are converted to seconds.
_ARROW_UNITS = ("s", "ms", "us", "ns")


def _unit(spec: ColumnSpec) -> str:
    unit = np.datetime_data(spec.dtype)[0]
    return unit if unit in _ARROW_UNITS else "s"


def arrow_type(spec: ColumnSpec) -> Any:
    """The Arrow type of a column: numbers and bools as Arrow's primitives, text as ``string``
    (bytes as ``binary``), categories as ``dictionary<int32, string>``, timestamps with their
    unit and zone (days as ``date32``), cells as (nested) ``fixed_size_list``. Complex numbers
    have no Arrow type: a ``SchemaError`` naming the column."""
    pa = pyarrow_module()
    kind = spec.dtype.kind
    if spec.is_category:
        return pa.dictionary(pa.int32(), pa.string())
    if kind == "M" and spec.tz is None and np.datetime_data(spec.dtype)[0] == "D":
        scalar = pa.date32()
    elif kind == "M":
        scalar = pa.timestamp(_unit(spec), tz=spec.tz)
    elif kind == "m":
        scalar = pa.duration(_unit(spec))
    elif kind == "U":
        scalar = pa.string()
    elif kind == "S":
        scalar = pa.binary()
    elif kind == "c":
        raise SchemaError(f"column {spec.name!r}: {spec.dtype} has no Arrow type")
    else:
        scalar = pa.from_numpy_dtype(spec.dtype)
    out = scalar
    for size in reversed(spec.shape):
        out = pa.list_(out, size)
    return out


def arrow_schema(table: Table, columns: list[str] | None = None) -> Any:
    """The ``pyarrow.Schema`` of ``table``'s columns (all, or those named, in that order)."""
    pa = pyarrow_module()
    specs = table.column_specs(columns)
    # nullable where values may be missing: so an Arrow copy of a table keeps its schema
    return pa.schema(
        [
            pa.field(s.name, arrow_type(s), nullable=s.nullable or s.dtype.kind in "fcMm")
            for s in specs
        ]
    )


def _arrow_array(pa: Any, spec: ColumnSpec, values: np.ndarray, typ: Any) -> Any:
    """One column's values (numpy, masked where missing) as an Arrow array of ``typ``."""
    if isinstance(values, _Codes):
        return values.arrow(pa)
    mask = np.ma.getmaskarray(values) if isinstance(values, np.ma.MaskedArray) else None
    data = np.ma.getdata(values)
    if mask is not None and not mask.any():
        mask = None
    if spec.is_category:
        return _array(pa, data, pa.string(), mask).dictionary_encode()
    if spec.shape:
        flat = data.reshape(-1)
        inner = typ
        for _ in spec.shape:
            inner = inner.value_type
        out = _arrow_array(pa, _scalar(spec), flat, inner)
        for size in reversed(spec.shape):
            out = pa.FixedSizeListArray.from_arrays(out, size)
        return out
    if data.dtype.kind == "S":  # pyarrow reads numpy's bytes up to their first NUL
        return _array(pa, data.tolist(), typ, mask)
    if pa.types.is_date32(typ):
        return _array(pa, data, typ, mask)
    if data.dtype.kind in "Mm" and np.datetime_data(data.dtype)[0] not in _ARROW_UNITS:
        data = data.astype(f"{data.dtype.kind}8[s]")
    return _array(pa, data, typ, mask)


def _array(pa: Any, data: Any, typ: Any, mask: np.ndarray | None) -> Any:
    """``data`` as an Arrow array of ``typ``, null where ``mask`` is True (zero-copy for
    numbers without a mask)."""
    return pa.array(data, type=typ, mask=mask)


class _Codes:
    """One chunk of a category column as stored: codes (signed, -1 where missing, in a
    nullable column) into the chunk's dictionary; becomes an Arrow dictionary array without a
    string per row."""

    def __init__(self, codes: np.ndarray, dictionary: np.ndarray) -> None:
        self.codes = codes
        self.dictionary = dictionary

    def arrow(self, pa: Any) -> Any:
        codes = self.codes
        missing = codes < 0 if codes.dtype.kind == "i" else None
        if missing is not None and not missing.any():
            missing = None
        indices = codes.astype(np.int32)
        if missing is not None:
            indices[missing] = 0
        dictionary = _array(pa, self.dictionary, pa.string(), None)
        return pa.DictionaryArray.from_arrays(_array(pa, indices, pa.int32(), missing), dictionary)


def _chunks(table: Table, names: list[str], specs: list[ColumnSpec]) -> Iterator[dict[str, Any]]:
    """``iter_chunks`` with category columns as their stored codes and dictionaries
    (``codes=True``): no text decoded and hashed again; all from one snapshot."""
    cats = {s.name for s in specs if s.is_category}
    for piece in table.iter_chunks(names, codes=True):
        yield {name: _Codes(*values) if name in cats else values for name, values in piece.items()}


def _scalar(spec: ColumnSpec) -> ColumnSpec:
    from dataclasses import replace

    return replace(spec, shape=())


def _batch(pa: Any, schema: Any, specs: list[ColumnSpec], arrays: list[np.ndarray]) -> Any:
    columns = [
        _arrow_array(pa, spec, values, field.type)
        for spec, values, field in zip(specs, arrays, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def iter_batches(
    table: Table,
    columns: list[str] | None = None,
    *,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
    batch_rows: int | None = None,
) -> Iterator[Any]:
    """Committed rows (those satisfying ``where``, as in ``read_where``) as
    ``pyarrow.RecordBatch``es of :func:`arrow_schema`: one per chunk, or whole chunks grouped
    until a batch holds at least ``batch_rows`` rows. Memory stays bounded by a batch; without
    ``where`` all batches come from one snapshot.

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"x": "i4"})
    ...     t.append({"x": [1, 2, 3]})
    ...     _ = store.commit()  # the new commit's id
    ...     [b.num_rows for b in t.iter_batches(where="x > 1")]
    [2]
    """
    pa = pyarrow_module()
    names = table.colnames if columns is None else list(columns)
    specs = table.column_specs(names)
    schema = arrow_schema(table, names)
    if where is None:
        pieces: Iterator[Mapping[str, Any]] = _chunks(table, names, specs)
    else:
        pieces = table.iter_where(where, condvars, columns=names)
    group: list[Any] = []
    rows = 0
    for piece in pieces:
        batch = _batch(pa, schema, specs, [piece[name] for name in names])
        if batch.num_rows == 0:
            continue
        if batch_rows is None:
            yield batch
            continue
        group.append(batch)
        rows += batch.num_rows
        if rows >= batch_rows:
            yield _joined(pa, schema, group)
            group, rows = [], 0
    if group:
        yield _joined(pa, schema, group)


def _joined(pa: Any, schema: Any, batches: list[Any]) -> Any:
    """Record batches as one (dictionaries unified)."""
    if len(batches) == 1:
        return batches[0]
    joined = pa.Table.from_batches(batches, schema=schema).unify_dictionaries().combine_chunks()
    return joined.to_batches()[0]


def to_arrow(
    table: Table,
    columns: list[str] | None = None,
    *,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
    start: int | None = None,
    stop: int | None = None,
) -> Any:
    """Committed rows ``[start:stop]`` (those satisfying ``where``, with ``condvars``, as in
    ``read_where``) as a ``pyarrow.Table`` (types as :func:`arrow_type` says), read from one
    snapshot.

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"x": "i4", "site": "category"})
    ...     t.append({"x": [1, 2], "site": ["a", "b"]})
    ...     _ = store.commit()  # the new commit's id
    ...     t.to_arrow().schema
    x: int32 not null
    site: dictionary<values=string, indices=int32, ordered=0> not null
    """
    pa = pyarrow_module()
    names = table.colnames if columns is None else list(columns)
    specs = table.column_specs(names)
    schema = arrow_schema(table, names)
    if where is None:
        got = table.read_columns(names, start, stop)
        arrays = [got[name] for name in names]
    else:
        rows = table.read_where(where, condvars, columns=names, start=start, stop=stop)
        arrays = [rows[name] for name in names]
    return pa.Table.from_batches([_batch(pa, schema, specs, arrays)], schema=schema)


def arrow_c_stream(table: Table, requested_schema: object | None = None) -> object:
    """The Arrow PyCapsule stream of all committed rows, one record batch per chunk
    (``Table.__arrow_c_stream__``): what ``pyarrow.table(t)``, ``polars.DataFrame(t)`` and a
    DuckDB query naming ``t`` read."""
    pa = pyarrow_module()
    reader = pa.RecordBatchReader.from_batches(arrow_schema(table), iter_batches(table))
    return reader.__arrow_c_stream__(requested_schema)
