"""Arrow data in: pyarrow Tables, RecordBatches, RecordBatchReaders and any object with
``__arrow_c_stream__`` (Polars, DuckDB results, another colvault table), by duck typing.

The engine imports pyarrow only here and only when such an object arrives, so ``import
colvault`` stays light. A column arrives as numpy (masked where Arrow has nulls) through
pyarrow's own ``to_numpy``, a dictionary column as :class:`~colvault.engine.coded.Coded` codes,
and goes through the same checks as any other append. A stream is read batch by batch; when it
holds text, whose fixed width needs its longest value, it is first spooled to a temporary Arrow
IPC file (in ``TMPDIR``; memory stays bounded by a batch) and the table is made from that.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import SchemaError
from .coded import Coded
from .frames import is_frame
from .masked import Masked

_UNITS = ("s", "ms", "us", "ns")


def is_arrow(data: Any) -> bool:
    """An Arrow table, batch or stream (recognised by the Arrow PyCapsule protocol), and not
    a DataFrame (pandas' have ``__arrow_c_stream__`` too; they keep their own route)."""
    return (
        not isinstance(data, np.ndarray | Mapping | list | tuple)
        and (hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"))
        and not is_frame(data)
    )


def pyarrow_module() -> Any:
    """pyarrow, imported on first use (``import colvault`` never loads it), or an ImportError
    naming the extra that brings it."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Arrow needs pyarrow: pip install 'colvault[arrow]'") from None
    return pa


def reader(data: Any) -> Any:
    """``data`` as a ``pyarrow.RecordBatchReader`` (read once)."""
    pa = pyarrow_module()
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, pa.Table):
        return data.to_reader()
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatchReader.from_batches(data.schema, [data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    batch = pa.record_batch(data)
    return pa.RecordBatchReader.from_batches(batch.schema, [batch])


def check_names(schema: Any, names: list[str], where: object) -> None:
    """The columns of an Arrow schema are the table's, or a ``SchemaError`` naming those
    missing and those unknown (before any batch of a stream is appended)."""
    have = list(schema.names)
    missing = [n for n in names if n not in have]
    extra = [n for n in have if n not in names]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}")
    if extra:
        raise SchemaError(f"{where}: unknown column(s) {extra}")


def in_memory(data: Any) -> bool:
    """A pyarrow Table or RecordBatch: all of it in hand, read as often as needed."""
    pa = pyarrow_module()
    return isinstance(data, pa.Table | pa.RecordBatch)


def _is_view(pa: Any, typ: Any) -> bool:
    """Arrow's string_view or binary_view (pyarrow >= 16 has them)."""
    t = pa.types
    return bool(getattr(t, "is_string_view", _no)(typ) or getattr(t, "is_binary_view", _no)(typ))


def _no(typ: Any) -> bool:
    return False


def _text_width(pa: Any, typ: Any) -> str | None:
    """``"U"``/``"S"`` for Arrow's variable-width text and bytes, whose width the data set."""
    t = pa.types
    view = _is_view(pa, typ)
    if t.is_string(typ) or t.is_large_string(typ) or (view and "string" in str(typ)):
        return "U"
    if t.is_binary(typ) or t.is_large_binary(typ) or (view and "binary" in str(typ)):
        return "S"
    return None


def _column_item(pa: Any, field: Any, width: int) -> dict[str, Any]:
    """A schema item (``{"dtype", "nullable", "shape", "tz"}``) for an Arrow field, or a
    ``SchemaError`` naming the column."""
    t = pa.types
    typ = field.type
    what = f"column {field.name!r}"
    nullable = bool(field.nullable)
    shape: list[int] = []
    while t.is_fixed_size_list(typ):
        shape.append(typ.list_size)
        typ = typ.value_type
    if shape and not (t.is_integer(typ) or t.is_floating(typ) or t.is_boolean(typ)):
        raise SchemaError(f"{what}: Arrow type {field.type} has no colvault type (cells: numbers)")
    item: dict[str, Any]
    kind = _text_width(pa, typ)
    if t.is_dictionary(typ):
        if _text_width(pa, typ.value_type) != "U":
            raise SchemaError(f"{what}: Arrow {typ} has no colvault type (categories are text)")
        item = {"dtype": "category"}
    elif kind is not None:
        item = {"dtype": f"{kind}{max(width, 1)}"}
    elif t.is_fixed_size_binary(typ):
        item = {"dtype": f"S{typ.byte_width}"}
    elif t.is_timestamp(typ):
        item = {"dtype": f"M8[{typ.unit}]"}
        if typ.tz is not None:
            item["tz"] = str(typ.tz)
        nullable = False  # NaT
    elif t.is_date32(typ):
        item, nullable = {"dtype": "M8[D]"}, False
    elif t.is_date64(typ):
        item, nullable = {"dtype": "M8[ms]"}, False
    elif t.is_duration(typ):
        item, nullable = {"dtype": f"m8[{typ.unit}]"}, False
    elif (t.is_integer(typ) or t.is_floating(typ) or t.is_boolean(typ)) and not t.is_float16(typ):
        item = {"dtype": np.dtype(typ.to_pandas_dtype())}
        nullable = nullable and not t.is_floating(typ)  # NaN
    else:
        raise SchemaError(
            f"{what}: Arrow type {field.type} has no colvault type (bool, int, uint, float32/64, "
            "string, binary, dictionary of strings, timestamp, date, duration, fixed_size_list "
            "of numbers)"
        )
    if shape:
        item["shape"] = tuple(shape)
        nullable = False
    item["nullable"] = nullable
    return item


def _widths(pa: Any, batch: Any, widths: dict[str, int]) -> None:
    """Widen ``widths`` to the longest text of each text column of ``batch``."""
    pc = _compute()
    for field, col in zip(batch.schema, batch.columns, strict=True):
        kind = _text_width(pa, field.type)
        if kind is None or len(col) == 0:
            continue
        if _is_view(pa, field.type):
            col = col.cast(pa.large_string() if kind == "U" else pa.large_binary())
        lengths = pc.utf8_length(col) if kind == "U" else pc.binary_length(col)
        longest = pc.max(lengths).as_py()
        if longest is not None:
            widths[field.name] = max(widths.get(field.name, 1), int(longest))


def _compute() -> Any:
    import pyarrow.compute as pc

    return pc


class ArrowSource:
    """An Arrow object to make a table from: its schema as colvault schema items (text as
    wide as its longest value) and its batches, read once more. A stream holding text is
    spooled to a temporary IPC file first; ``close`` removes it."""

    def __init__(self, data: Any, where: object) -> None:
        pa = pyarrow_module()
        self._pa = pa
        self._spool: str | None = None
        self._stream: Any = None
        self._data = data
        if in_memory(data):
            schema = data.schema
            batches: Any = iter(reader(data))
        else:
            batches = reader(data)
            schema = batches.schema
        try:
            self._read(data, schema, batches)
        except BaseException:
            self.close()
            raise

    def _read(self, data: Any, schema: Any, batches: Iterator[Any]) -> None:
        pa = self._pa
        for field in schema:  # a type colvault has no column for: before reading any batch
            _column_item(pa, field, 1)
        stream = batches
        texts = any(_text_width(pa, f.type) for f in schema)
        widths: dict[str, int] = {}
        if texts and not in_memory(data):
            fd, self._spool = tempfile.mkstemp(suffix=".arrows", prefix="colvault-")
            os.close(fd)
            with pa.OSFile(self._spool, "wb") as sink, pa.ipc.new_stream(sink, schema) as out:
                for batch in batches:
                    _widths(pa, batch, widths)
                    out.write_batch(batch)
        elif texts:
            for batch in batches:
                _widths(pa, batch, widths)
        self.schema = schema
        self.items = {f.name: _column_item(pa, f, widths.get(f.name, 1)) for f in schema}
        self._stream = None if texts or in_memory(data) else stream

    def batches(self) -> Iterator[Any]:
        """The batches, in order."""
        if self._spool is not None:
            with self._pa.memory_map(self._spool) as source:
                yield from self._pa.ipc.open_stream(source)
        elif self._stream is not None:
            yield from self._stream
        else:
            yield from reader(self._data)

    def close(self) -> None:
        """Remove the spooled copy, if any (``with`` does it on the way out)."""
        if self._spool is not None:
            os.unlink(self._spool)
            self._spool = None

    def __enter__(self) -> ArrowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_arrays(batch: Any, columns: Any, where: object) -> dict[str, Any]:
    """A record batch's columns as ``append`` takes them, by name: numpy arrays (masked where
    Arrow has nulls), dictionary columns as coded text for category columns. ``columns`` (the
    table's ColumnSpecs) say where a zone must match."""
    pa = pyarrow_module()
    specs = {c.name: c for c in columns}
    out: dict[str, Any] = {}
    cols = batch.columns
    if isinstance(batch, pa.Table):  # chunked columns as one array each
        batch = batch.unify_dictionaries()
        cols = [c.combine_chunks() for c in batch.columns]
    for field, col in zip(batch.schema, cols, strict=True):
        spec = specs.get(field.name)
        out[field.name] = _values(pa, field, col, spec, where)
    return out


def _values(pa: Any, field: Any, col: Any, spec: Any, where: object) -> Any:
    t = pa.types
    typ = field.type
    what = f"{where}: column {field.name!r}"
    if t.is_dictionary(typ):
        if spec is not None and spec.is_category and col.dictionary.null_count == 0:
            return _coded(pa, col)
        col = col.dictionary_decode()
        typ = col.type
    if t.is_timestamp(typ) and spec is not None and spec.dtype.kind == "M":
        zone = typ.tz
        if (zone is None) != (spec.tz is None):
            have = "no time zone" if zone is None else f"time zone {zone}"
            want = "none" if spec.tz is None else spec.tz
            raise SchemaError(f"{what}: Arrow timestamps with {have}; the table's zone is {want}")
    if t.is_fixed_size_list(typ):
        return _cells(pa, col, what)
    if _is_view(pa, typ):  # fewer kernels take views
        typ = pa.large_string() if _text_width(pa, typ) == "U" else pa.large_binary()
        col = col.cast(typ)
    if col.null_count == 0:
        return _numpy(pa, col, typ)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    if t.is_floating(typ) or t.is_timestamp(typ) or t.is_duration(typ) or t.is_date(typ):
        return col.to_numpy(zero_copy_only=False)  # NaN, NaT
    kind = _text_width(pa, typ)
    if kind is not None or t.is_fixed_size_binary(typ):
        fill: Any = "" if kind == "U" else b""
    elif t.is_boolean(typ):
        fill = False
    elif t.is_integer(typ):
        fill = 0
    else:
        return _numpy(pa, col, typ)  # the checks name what it is
    filled = _compute().fill_null(col, pa.scalar(fill, type=typ))
    return np.ma.MaskedArray(_numpy(pa, filled, typ), ~valid)


def _numpy(pa: Any, col: Any, typ: Any) -> Any:
    """A column without nulls as numpy (zero-copy for numbers; text as fixed width)."""
    kind = _text_width(pa, typ)
    if pa.types.is_fixed_size_binary(typ):
        kind = "S"
    values = col.to_numpy(zero_copy_only=False)
    if kind is not None:
        return values.astype(kind) if len(values) else np.empty(0, f"{kind}1")
    return values


def _coded(pa: Any, col: Any) -> Any:
    """A dictionary column as coded text (masked where its index is null)."""
    indices = col.indices
    dictionary = col.dictionary.to_numpy(zero_copy_only=False)
    values = dictionary.astype("U") if len(dictionary) else np.array([""])
    if indices.null_count:
        valid = indices.is_valid().to_numpy(zero_copy_only=False)
        filled = _compute().fill_null(indices, 0).to_numpy(zero_copy_only=False)
        return Masked(Coded(filled.astype(np.int64), values), valid)
    return Coded(indices.to_numpy(zero_copy_only=False).astype(np.int64), values)


def _cells(pa: Any, col: Any, what: str) -> np.ndarray:
    """A fixed_size_list column as an n-d numpy array of cells (no null cell or value)."""
    shape = []
    flat = col
    while pa.types.is_fixed_size_list(flat.type):
        if flat.null_count:
            raise SchemaError(f"{what}: {flat.null_count} missing cell(s); cells cannot be missing")
        shape.append(flat.type.list_size)
        flat = flat.flatten()
    if flat.null_count:
        raise SchemaError(f"{what}: {flat.null_count} missing value(s) inside cells")
    return flat.to_numpy(zero_copy_only=False).reshape(len(col), *shape)
