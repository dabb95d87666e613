"""Validate an ``append`` batch against a schema and cast it without losing information.

The whole batch is checked before any of it is buffered, so a bad batch leaves nothing behind.
Casts are allowed only when every value survives them: ints into a range that holds them, floats
that round-trip exactly, strings that fit. Everything else is a ``SchemaError`` naming the column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import SchemaError
from . import arrowin
from .coded import Coded
from .frames import frame_arrays, is_frame
from .masked import Masked, is_missing
from .schema import NULLABLE_KINDS, ColumnSpec


def _describe(a: np.ndarray, bad: np.ndarray) -> str:
    idx = (
        np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
        if bad.ndim > 1
        else np.flatnonzero(bad)
    )
    i = int(idx[0])
    return f"{idx.size} value(s), first at row {i}: {a[i]!r}"


def _roundtrip_mismatch(src: np.ndarray, out: np.ndarray) -> np.ndarray:
    back = out.astype(src.dtype)
    if src.dtype.kind in "fc":
        return ~((back == src) | (np.isnan(back) & np.isnan(src)))
    if src.dtype.kind in "Mm":
        return back.view(np.int64) != src.view(np.int64)
    return back != src


def _lossless_cast(arr: np.ndarray, dst: np.dtype, what: object) -> np.ndarray:
    if np.can_cast(arr.dtype, dst, "safe"):
        return arr.astype(dst)
    with np.errstate(all="ignore"):
        out = arr.astype(dst)
        bad = _roundtrip_mismatch(arr, out)
    if bad.any():
        raise SchemaError(
            f"{what}: {arr.dtype} values change when cast to {dst}: {_describe(arr, bad)}; "
            "cast explicitly if that is intended"
        )
    return out


def _int_cast(arr: np.ndarray, dst: np.dtype, what: object) -> np.ndarray:
    if arr.dtype.kind == "b" or np.can_cast(arr.dtype, dst, "safe") or arr.size == 0:
        return arr.astype(dst)
    info = np.iinfo(dst)
    lo, hi = arr.min(), arr.max()
    if lo < info.min or hi > info.max:
        bad = (arr < info.min) | (arr > info.max)
        raise SchemaError(
            f"{what}: values out of range for {dst} [{info.min}, {info.max}]: {_describe(arr, bad)}"
        )
    return arr.astype(dst)


def _datetime_cast(arr: np.ndarray, dst: np.dtype, what: object) -> np.ndarray:
    if arr.dtype.kind in "UO" or (arr.dtype.kind == "S" and dst.kind == "M"):
        try:
            arr = arr.astype(f"{dst.kind}8") if arr.dtype.kind != "O" else np.array(list(arr), dst)
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"{what}: cannot read values as {dst}: {exc}") from None
    if arr.dtype.kind != dst.kind:
        raise SchemaError(f"{what}: expected {dst} values, got {arr.dtype}")
    if np.datetime_data(arr.dtype)[0] == "generic":
        return arr.astype(dst)
    return _lossless_cast(arr, dst, what)


def _text_cast(arr: np.ndarray, dst: np.dtype, what: object) -> np.ndarray:
    if arr.dtype.kind != dst.kind:
        want = "bytes (S)" if dst.kind == "S" else "str (U)"
        raise SchemaError(f"{what}: expected {want} values for {dst}, got {arr.dtype}")
    if arr.dtype.itemsize > dst.itemsize and arr.size:
        limit = dst.itemsize // (4 if dst.kind == "U" else 1)
        lengths = np.char.str_len(arr)
        bad = lengths > limit
        if bad.any():
            raise SchemaError(
                f"{what}: strings longer than {limit} characters for {dst}: {_describe(arr, bad)}"
            )
    return arr.astype(dst)


def _objects_to_text(arr: np.ndarray, dst: np.dtype, what: object) -> np.ndarray:
    """Object arrays of str (pandas' string columns) become fixed-width text."""
    want = str if dst.kind == "U" else bytes
    flat = arr.reshape(-1)
    bad = [i for i, v in enumerate(flat) if not isinstance(v, want)]
    if bad:
        raise SchemaError(
            f"{what}: expected {want.__name__} values, got {flat[bad[0]]!r} at row {bad[0]}"
        )
    return np.array(flat.tolist(), dtype=dst.kind).reshape(arr.shape)


def _category(arr: np.ndarray, what: object) -> np.ndarray:
    """Text for a category column: str arrays as they are, objects only if all are str
    (:class:`~colvault.engine.coded.Coded` text is checked before it gets here)."""
    if arr.ndim != 1:
        raise SchemaError(f"{what}: category values must be a 1-d sequence of str")
    if arr.dtype.kind == "U":
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "O":
        return _objects_to_text(arr, np.dtype("U1"), what)
    raise SchemaError(f"{what}: category values must be str, got {arr.dtype}")


class Lazy:
    """Text for error messages, made only when one is raised: a node's path (the ``where`` of
    an append) costs a catalog read, which every appended batch would otherwise pay."""

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make

    def __str__(self) -> str:
        return self._make()

    def __format__(self, spec: str) -> str:
        return format(self._make(), spec)


def _missing_objects(arr: np.ndarray) -> np.ndarray | None:
    """Where a 1-d object array holds missing values, or None when it holds none."""
    if arr.ndim != 1:
        return None
    flat = arr.tolist()
    missing = np.fromiter((is_missing(v) for v in flat), bool, len(flat))
    return missing if missing.any() else None


def _not_nullable(what: object, missing: np.ndarray) -> SchemaError:
    rows = np.flatnonzero(missing.reshape(len(missing), -1).any(axis=1))
    return SchemaError(
        f"{what}: {len(rows)} missing value(s) (None, NaN, pd.NA or masked), first at row "
        f"{int(rows[0])}, in a column that is not nullable; create it nullable "
        "(e.g. {'dtype': 'i4', 'nullable': True} or 'Int32') or fill them first"
    )


def _harmless(values: Any, valid: np.ndarray, spec: ColumnSpec, what: object) -> Any:
    """``values`` with each missing slot holding the first valid value (zero-like when none
    is valid), so that the casts check only real values; Python objects for an int or bool
    column become a typed array."""
    if isinstance(values, Coded):
        codes = np.array(values.codes, copy=True)
        codes[~valid] = codes[int(np.argmax(valid))] if valid.any() else 0
        return Coded(codes, values.values if len(values.values) else np.array([""]))
    arr = np.array(values, copy=True)
    if valid.any():
        arr[~valid] = arr[int(np.argmax(valid))]
    elif arr.dtype.kind == "O":
        kind = "U" if spec.is_category else spec.dtype.kind
        arr[:] = {"U": "", "S": b"", "b": False}.get(kind, 0)
    else:
        arr[:] = np.zeros(1, arr.dtype)[0]
    if arr.dtype.kind == "O" and spec.dtype.kind in "biu":
        return _typed(arr, what)
    return arr


def _typed(arr: np.ndarray, what: object) -> np.ndarray:
    """An object array of Python scalars as numpy's array of them (for the casts to check)."""
    try:
        return np.asarray(arr.tolist())
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{what}: values do not form an array ({exc})") from None


def _split_missing(values: Any, spec: ColumnSpec, what: object) -> tuple[Any, np.ndarray | None]:
    """``(values, valid)``: the values with missing slots made harmless and where they are
    (None when none is missing), from a Masked, a numpy masked array, or a sequence holding
    None, NaN or pd.NA (NaN: in a float array meant for an int or bool column). A missing
    value for a column that is not nullable is a ``SchemaError``."""
    if isinstance(values, Masked):
        valid = values.valid
        if valid is None:  # a producer that found no missing value
            return values.values, None
        if not isinstance(valid, np.ndarray) or valid.dtype != bool or valid.ndim != 1:
            raise SchemaError(f"{what}: the validity of masked values must be a 1-d bool array")
        if len(valid) != len(values.values):
            raise SchemaError(
                f"{what}: {len(values.values)} values but a validity of {len(valid)} rows"
            )
        missing = ~valid
        inner = values.values
    elif isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        inner = np.ma.getdata(values)
        missing = np.asarray(mask.reshape(len(mask), -1).any(axis=1) if mask.ndim > 1 else mask)
    else:
        if not spec.nullable and not (spec.is_category or spec.dtype.kind in NULLABLE_KINDS):
            return values, None  # floats and datetimes hold NaN and NaT themselves
        if spec.nullable and isinstance(values, list | tuple):
            arr = np.empty(len(values), object)  # as given: no NaN turned into the text "nan"
            try:
                arr[:] = values
            except (ValueError, TypeError) as exc:
                raise SchemaError(f"{what}: values do not form an array ({exc})") from None
        elif isinstance(values, np.ndarray):
            arr = values
        else:
            return values, None
        if arr.dtype.kind == "O":
            found = _missing_objects(arr)
        elif spec.nullable and arr.dtype.kind == "f" and spec.dtype.kind in "biu":
            found = np.isnan(arr)
            found = found if found.any() else None
        else:
            found = None
        if found is None:
            if arr is not values and isinstance(values, list | tuple):
                return values, None  # no missing value: the list is read as before
            if arr.dtype.kind == "O" and spec.dtype.kind in "biu":
                return _typed(arr, what), None
            return arr, None
        missing, inner = found, arr
    if not missing.any():
        return inner, None
    if not spec.nullable:
        raise _not_nullable(what, missing)
    return _harmless(inner, ~missing, spec, what), ~missing


def coerce_column(values: Any, spec: ColumnSpec, where: object) -> Any:
    """Return ``values`` as a contiguous array of ``spec``'s dtype and shape (coded text for a
    category column as given), or raise; for a nullable column with missing values, a
    :class:`Masked` of such values and their validity."""
    if (
        type(values) is np.ndarray  # the common case, as _coerce_values returns it
        and values.dtype == spec.dtype
        and values.dtype.kind != "O"  # a category column's objects are coded
        and values.ndim == 1
        and not spec.shape
        and not spec.nullable
        and len(values)
        and values.flags.c_contiguous
    ):
        return values
    what = Lazy(lambda: f"{where}: column {spec.name!r}")
    if spec.nullable or isinstance(values, Masked | np.ma.MaskedArray):
        values, valid = _split_missing(values, spec, what)
        if valid is not None:
            return Masked(_coerce_values(values, spec, what), valid)
        return _coerce_values(values, spec, what)
    try:
        return _coerce_values(values, spec, what)
    except SchemaError:
        found = None  # values that do not fit: say so if it is because some are missing
        if spec.is_category or (spec.dtype.kind in NULLABLE_KINDS and not spec.shape):
            found = _missing_in(values)
        if found is not None:
            raise _not_nullable(what, found) from None
        raise


def _missing_in(values: Any) -> np.ndarray | None:
    """Where a 1-d sequence holds missing values (None when it holds none or is no such
    sequence): only on the error path, for the message."""
    if not isinstance(values, np.ndarray | list | tuple) or np.ndim(values) != 1:
        return None
    arr = np.empty(len(values), object)
    try:
        arr[:] = values
    except (ValueError, TypeError):
        return None
    return _missing_objects(arr)


def _coerce_values(values: Any, spec: ColumnSpec, what: object) -> np.ndarray:
    """``values`` (none missing) as a contiguous array of ``spec``'s dtype and shape."""
    if isinstance(values, Coded):
        if not spec.is_category:
            raise SchemaError(f"{what}: coded text is for category columns, not {spec.dtype}")
        return values.checked(what)  # type: ignore[return-value]
    try:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{what}: values do not form an array ({exc})") from None
    if arr.ndim == 0:
        raise SchemaError(f"{what}: expected a sequence of rows, got a scalar {arr!r}")
    if len(arr) == 0:
        return np.empty((0, *spec.shape), spec.dtype)
    if arr.shape[1:] != spec.shape:
        raise SchemaError(f"{what}: cells of shape {arr.shape[1:]}, schema says {spec.shape}")
    dst = spec.dtype
    if spec.is_category:
        return _category(arr, what)
    if arr.dtype.kind == "O" and dst.kind in "US":
        arr = _objects_to_text(arr, dst, what)
    src = arr.dtype
    if src == dst:
        out = arr
    elif dst.kind == "b":
        if src.kind != "b":
            raise SchemaError(f"{what}: expected bool values, got {src}")
        out = arr.astype(dst)
    elif dst.kind in "iu" and spec.nullable and src.kind == "f":
        out = _lossless_cast(arr, dst, what)  # pandas' nullable ints come as floats with NaN
    elif dst.kind in "iu":
        if src.kind not in "biu":
            raise SchemaError(f"{what}: {src} values cannot be stored in integer column ({dst})")
        out = _int_cast(arr, dst, what)
    elif dst.kind in "fc":
        if src.kind not in "biuf" + ("c" if dst.kind == "c" else ""):
            raise SchemaError(f"{what}: {src} values cannot be stored in a {dst} column")
        out = _lossless_cast(arr, dst, what)
    elif dst.kind in "Mm":
        out = _datetime_cast(arr, dst, what)
    else:
        out = _text_cast(arr, dst, what)
    return np.ascontiguousarray(out)


def _rows_to_columns(rows: Sequence[Any], ncols: int, where: object) -> list[Any]:
    for i, row in enumerate(rows):
        if isinstance(row, str | bytes) or not isinstance(row, Sequence | np.void | np.ndarray):
            raise SchemaError(f"{where}: row {i} is {type(row).__name__}, expected a tuple")
        width = len(row)  # type: ignore[arg-type]
        if width != ncols:
            raise SchemaError(f"{where}: row {i} has {width} values, the table has {ncols}")
    return [[row[j] for row in rows] for j in range(ncols)]


def coerce_batch(
    data: Any, columns: Sequence[ColumnSpec], where: object, index: Sequence[str] = ()
) -> tuple[int, list[np.ndarray]]:
    """Validate a whole batch (dict of arrays, structured array, list of row tuples, or a
    DataFrame, whose index levels fill the table's ``index`` columns, or a pyarrow Table or
    RecordBatch)."""
    names = [c.name for c in columns]
    raw: list[Any]
    if is_frame(data):
        data = frame_arrays(data, columns, index, where)
    elif arrowin.is_arrow(data):
        if not arrowin.in_memory(data):
            raise SchemaError(f"{where}: an Arrow stream is appended batch by batch (append)")
        data = arrowin.batch_arrays(data, columns, where)
    if isinstance(data, np.ndarray) and data.dtype.names is not None:
        missing = [n for n in names if n not in data.dtype.names]
        extra = [n for n in data.dtype.names if n not in names]
        _check_names(missing, extra, where)
        raw = [data[n] for n in names]
    elif isinstance(data, Mapping):
        missing = [n for n in names if n not in data]
        extra = [str(k) for k in data if k not in names]
        _check_names(missing, extra, where)
        raw = [data[n] for n in names]
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        raw = _rows_to_columns(data, len(names), where)
    else:
        raise SchemaError(
            f"{where}: append takes a dict of arrays, a structured array or a list of row tuples, "
            f"not {type(data).__name__}"
        )
    arrays = [coerce_column(v, c, where) for v, c in zip(raw, columns, strict=True)]
    lengths = {c.name: len(a) for c, a in zip(columns, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"{where}: columns have unequal lengths {lengths}")
    return (len(arrays[0]) if arrays else 0), arrays


def _check_names(missing: list[str], extra: list[str], where: object) -> None:
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}")
    if extra:
        raise SchemaError(f"{where}: unknown column(s) {extra}")
