"""Table schemas: typed columns with optional multi-dimensional cells.

A schema is parsed once at the edge (``create_table``) into frozen :class:`ColumnSpec` objects;
everything after that works with these, never with the user's spelling.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import SchemaError
from .frames import frame_column, index_levels, is_frame, tz_dtype
from .names import check_column_name

#: Target uncompressed bytes per column chunk (ARCHITECTURE.md "Chunks").
CHUNK_BYTES = 1 << 20
MIN_CHUNK_ROWS = 1024

_KINDS = "biufcMmSU"
#: The in-memory marker dtype of ``"category"`` columns.
CATEGORY = np.dtype(object)


#: pandas' nullable dtype names and the numpy dtypes of their values.
PANDAS_NULLABLE = {
    **{f"Int{b}": np.dtype(f"<i{b // 8}") for b in (8, 16, 32, 64)},
    **{f"UInt{b}": np.dtype(f"<u{b // 8}") for b in (8, 16, 32, 64)},
    "boolean": np.dtype(bool),
}
#: The kinds of numpy dtype a column may be nullable of (floats and datetimes have NaN/NaT).
NULLABLE_KINDS = "biuSU"


def _is_category(dtype: Any) -> bool:
    """``"category"``, as written in a schema or as pandas' CategoricalDtype."""
    return (isinstance(dtype, str) and dtype == "category") or str(dtype) == "category"


#: Random parts of ids drawn from the OS a batch at a time: one ``os.urandom`` call per this
#: many ids, not one per id (creating 10,000 small tables made 50,000 calls, 0.18 s of 1.9 s).
_IDS_PER_DRAW = 256
_ids: list[str] = []
_ids_lock = threading.Lock()


def new_id() -> str:
    """A 128-bit id as 32 hex digits (the catalog names nodes and columns by it): the time in
    milliseconds (48 bits), then 80 random bits. Ids made one after another sort one after
    another, so the catalog's indexes keyed by them grow at one end, not at random places:
    a commit of 10,000 small tables inserted its 40,000 manifest rows in 0.15 s, not 0.20."""
    with _ids_lock:
        if not _ids:
            drawn = os.urandom(10 * _IDS_PER_DRAW).hex()
            _ids.extend(drawn[i : i + 20] for i in range(0, len(drawn), 20))
        return f"{time.time_ns() // 1_000_000:012x}{_ids.pop()}"


def _forked() -> None:
    """A forked child must not hand out the ids its parent will (nor wait on its lock)."""
    global _ids_lock
    _ids_lock = threading.Lock()
    _ids.clear()


os.register_at_fork(after_in_child=_forked)


def check_dtype(dtype: Any, what: str) -> np.dtype:
    """``dtype`` as a little-endian numpy dtype that colvault supports, or ``SchemaError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise SchemaError(f"{what}: {dtype!r} is not a dtype ({exc})") from None
    if dt.subdtype is not None:
        raise SchemaError(f"{what}: give cell shapes as (dtype, shape), not {dt}")
    if dt.kind not in _KINDS or dt.itemsize == 0 or dt in (np.float16, np.longdouble):
        raise SchemaError(
            f"{what}: dtype {dt} is not supported (bool, int8-64, uint8-64, float32/64, "
            "complex64/128, datetime64, timedelta64, S<n>, U<n>)"
        )
    if dt.kind in "Mm" and np.datetime_data(dt)[0] == "generic":
        raise SchemaError(f"{what}: {dt} needs a unit, e.g. datetime64[ns]")
    return dt.newbyteorder("<") if dt.byteorder == ">" else dt


@dataclass(frozen=True)
class ColumnSpec:
    """One column: a stable id (the manifest's name for it), a name, a dtype and a cell shape;
    ``tz``: the time zone of a datetime64 column whose values are stored as UTC;
    ``nullable``: the column may hold missing values (a validity bitmap per chunk);
    ``pandas``: for a column made from a DataFrame, a JSON note of what ``to_pandas`` needs to
    give its pandas dtype back (text's dtype, a Categorical's categories) when the default
    would not."""

    id: str
    name: str
    dtype: np.dtype
    shape: tuple[int, ...] = ()
    tz: str | None = None
    nullable: bool = False
    pandas: str | None = None

    @property
    def cell_bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape)

    @property
    def is_category(self) -> bool:
        """Dictionary-encoded text (``"category"``): stored as codes plus a per-chunk dictionary,
        read back as fixed-width str arrays. Its ``dtype`` is ``object`` as a marker."""
        return self.dtype == CATEGORY

    @property
    def has_zone_map(self) -> bool:
        """Zone maps exist for scalar columns whose values order (not complex, not text)."""
        return not self.shape and self.dtype.kind in "biufMm"

    @property
    def type_name(self) -> str:
        """The column's type as written in a schema: ``"category"``,
        ``"datetime64[ns, Europe/Paris]"``, or numpy's name."""
        if self.is_category:
            return "category"
        if self.tz is not None:
            return f"datetime64[{np.datetime_data(self.dtype)[0]}, {self.tz}]"
        return str(self.dtype)

    @property
    def type_text(self) -> str:
        """:attr:`type_name`, with ``" nullable"`` after it for a nullable column (repr)."""
        return self.type_name + (" nullable" if self.nullable else "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "dtype": "category" if self.is_category else self.dtype.str,
            "shape": list(self.shape),
        }
        if self.tz is not None:  # older readers ignore it and read the UTC values
            out["tz"] = self.tz
        if self.nullable:  # omitted when false: schemas without missing values stay as they were
            out["nullable"] = True
        if self.pandas is not None:
            out["pandas"] = self.pandas
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ColumnSpec:
        dtype = CATEGORY if d["dtype"] == "category" else np.dtype(d["dtype"])
        return cls(
            d["id"],
            d["name"],
            dtype,
            tuple(d["shape"]),
            d.get("tz"),
            bool(d.get("nullable")),
            d.get("pandas"),
        )


@dataclass(frozen=True)
class TableSchema:
    """The columns of a table (or the single column of an array) and the rows per chunk;
    ``index``: the columns that hold a DataFrame's index, each with the level's own name
    (None for an unnamed one), so that ``to_pandas`` restores the index as it was."""

    columns: tuple[ColumnSpec, ...]
    chunk_rows: int
    index: tuple[tuple[str, str | None], ...] = ()

    @property
    def index_columns(self) -> tuple[str, ...]:
        """The names of the columns that hold the index, level by level."""
        return tuple(column for column, _ in self.index)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def dtype(self) -> np.dtype:
        """The numpy structured dtype of a row (a new one each time: numpy lets a caller
        rename a dtype's fields in place)."""
        return np.dtype([(c.name, c.dtype, c.shape) for c in self.columns])

    @property
    def row_bytes(self) -> int:
        return sum(c.cell_bytes for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"no column {name!r}; columns are {self.names}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "columns": [c.to_json() for c in self.columns],
            "chunk_rows": self.chunk_rows,
        }
        if self.index:  # older readers ignore it: the index is an ordinary column to them
            out["index"] = [list(pair) for pair in self.index]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TableSchema:
        columns = tuple(ColumnSpec.from_json(c) for c in d["columns"])
        index = tuple((str(column), name) for column, name in d.get("index", ()))
        return cls(columns, int(d["chunk_rows"]), index)


def _check_shape(shape: Any, what: str) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        shape = (int(shape),)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise SchemaError(f"{what}: cell shape {shape!r} is not a tuple of ints") from None
    if any(s <= 0 for s in out):
        raise SchemaError(f"{what}: cell shape {out} must have positive sizes")
    return out


def _frame_item(
    series: Any, dtype: Any, name: str, notes: dict[str, str]
) -> tuple[str, Any, tuple[int, ...]]:
    """A DataFrame column (or index level) as a schema item; its pandas note into ``notes``."""
    dtype, nullable, note = frame_column(series, dtype)
    if note is not None:
        notes[name] = note
    return name, Nullable(dtype) if nullable else dtype, ()


def parse_columns(schema: Any) -> list[ColumnSpec]:
    """Parse ``{name: dtype}``, ``{name: (dtype, shape)}`` or a structured dtype into columns."""
    items: list[tuple[str, Any, tuple[int, ...]]] = []
    notes: dict[str, str] = {}  # what to_pandas needs to give a DataFrame's dtypes back
    if is_frame(schema):
        for name, level in index_levels(schema):
            items.append(_frame_item(level, level.dtype, name, notes))
        for name, dtype in zip(schema.columns, schema.dtypes, strict=True):
            items.append(_frame_item(schema[name], dtype, str(name), notes))
    elif isinstance(schema, np.dtype | np.ndarray) or (
        not isinstance(schema, Mapping) and hasattr(schema, "names") and hasattr(schema, "fields")
    ):
        dt = schema.dtype if isinstance(schema, np.ndarray) else np.dtype(schema)
        if dt.names is None:
            raise SchemaError(f"a schema dtype must be structured, not {dt}")
        for name in dt.names:
            field = dt.fields[name][0]  # type: ignore[index]
            base, shape = (field.base, field.shape) if field.subdtype is not None else (field, ())
            items.append((name, base, shape))
    elif isinstance(schema, Mapping):
        for name, spec in schema.items():
            if isinstance(spec, tuple) and len(spec) == 2:
                items.append((name, spec[0], _check_shape(spec[1], f"column {name!r}")))
            elif isinstance(spec, Mapping):
                items.append(_dict_spec(name, spec))
            else:
                items.append((name, spec, ()))
    else:
        raise SchemaError(
            "schema must be a dict {name: dtype or (dtype, shape)} or a structured numpy dtype, "
            f"not {type(schema).__name__}"
        )
    if not items:
        raise SchemaError("a table needs at least one column")
    seen: set[str] = set()
    cols = []
    for name, dtype, shape in items:
        check_column_name(name)
        if name in seen:
            raise SchemaError(f"column {name!r} appears twice")
        seen.add(name)
        nullable = False
        if isinstance(dtype, Nullable):
            dtype, nullable = dtype.dtype, True
        elif isinstance(dtype, str) and dtype in PANDAS_NULLABLE:
            dtype, nullable = PANDAS_NULLABLE[dtype], True
        elif isinstance(dtype, str) and dtype in ("string", "str"):
            raise SchemaError(
                f"column {name!r}: text columns have a fixed width; give it as "
                "{'dtype': 'U20', 'nullable': True} for text that may be missing"
            )
        zoned = tz_dtype(dtype, f"column {name!r}")
        if _is_category(dtype):
            if shape:
                raise SchemaError(f"column {name!r}: category columns hold scalars, not cells")
            cols.append(ColumnSpec(new_id(), name, CATEGORY, nullable=nullable))
            continue
        if zoned is not None:
            if shape:
                raise SchemaError(f"column {name!r}: zone-aware timestamps hold scalars")
            spec = ColumnSpec(new_id(), name, zoned[0], (), zoned[1])
        else:
            spec = ColumnSpec(new_id(), name, check_dtype(dtype, f"column {name!r}"), shape)
        if nullable:
            if spec.shape or spec.dtype.kind not in NULLABLE_KINDS:
                raise SchemaError(
                    f"column {name!r}: only scalar bool, int, uint, text and category columns "
                    f"can be nullable, not {spec.type_name}"
                    + (f" cells of {spec.shape}" if spec.shape else "")
                    + " (floats and datetimes hold NaN and NaT)"
                )
            spec = ColumnSpec(spec.id, name, spec.dtype, nullable=True)
        cols.append(spec)
    return [replace(c, pandas=notes[c.name]) if c.name in notes else c for c in cols]


@dataclass(frozen=True)
class Nullable:
    """A dtype marked nullable while a schema is parsed (from ``{"dtype": ..., "nullable": True}``
    or a pandas nullable dtype)."""

    dtype: Any


_DICT_KEYS = frozenset(("dtype", "nullable", "shape", "tz"))


def _dict_spec(name: str, spec: Mapping[str, Any]) -> tuple[str, Any, tuple[int, ...]]:
    """A column given as ``{"dtype": ..., "nullable": bool, "shape": ..., "tz": ...}``."""
    what = f"column {name!r}"
    unknown = sorted(str(k) for k in spec if k not in _DICT_KEYS)
    if unknown:
        raise SchemaError(f"{what}: unknown key(s) {unknown}; a column takes {sorted(_DICT_KEYS)}")
    if "dtype" not in spec:
        raise SchemaError(f"{what}: a column given as a dict needs its 'dtype'")
    dtype = spec["dtype"]
    nullable = spec.get("nullable", False)
    if not isinstance(nullable, bool | np.bool_):
        raise SchemaError(f"{what}: 'nullable' must be True or False, not {nullable!r}")
    if isinstance(dtype, str) and dtype in PANDAS_NULLABLE:
        if not nullable and "nullable" in spec:
            raise SchemaError(f"{what}: {dtype} is nullable; give its numpy dtype otherwise")
        dtype, nullable = PANDAS_NULLABLE[dtype], True
    tz = spec.get("tz")
    if tz is not None:
        try:
            unit = np.datetime_data(np.dtype(dtype))[0] if np.dtype(dtype).kind == "M" else None
        except TypeError:
            unit = None
        if unit is None or unit == "generic":
            raise SchemaError(f"{what}: a time zone needs a datetime64 dtype with a unit")
        dtype = f"datetime64[{unit}, {tz}]"
    shape = _check_shape(spec["shape"], what) if spec.get("shape") not in (None, ()) else ()
    return name, Nullable(dtype) if nullable else dtype, shape


def default_chunk_rows(row_cell_bytes: int, expected_rows: int | None = None) -> int:
    """About :data:`CHUNK_BYTES` of the widest column, as a power of two shared by all columns."""
    rows = max(1, CHUNK_BYTES // max(1, row_cell_bytes))
    rows = 1 << (rows.bit_length() - 1)
    if expected_rows is not None and expected_rows > 0:
        small = max(MIN_CHUNK_ROWS, 1 << max(0, int(expected_rows - 1).bit_length()))
        rows = min(rows, small)
    return rows


def make_schema(
    columns: list[ColumnSpec],
    chunk_rows: int | None,
    expected_rows: int | None,
    index: tuple[tuple[str, str | None], ...] = (),
) -> TableSchema:
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(max(c.cell_bytes for c in columns), expected_rows)
    elif not isinstance(chunk_rows, int | np.integer) or chunk_rows <= 0:
        raise SchemaError(f"chunk_rows must be a positive int, not {chunk_rows!r}")
    return TableSchema(tuple(columns), int(chunk_rows), index)
