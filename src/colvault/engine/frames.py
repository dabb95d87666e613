"""DataFrames in: their columns, their index and their time zones, by duck typing.

The engine never imports pandas; a DataFrame is recognized by its attributes and read through
its own methods. What pandas keeps beside the values is kept too: a time zone goes into the
column's schema (values are stored as UTC), and an index that carries data (anything but the
default ``RangeIndex``) is stored as columns named in the table's schema, so that
``to_pandas`` can give it back as the index. This follows pyarrow's ``preserve_index=None``:
an unnamed index level is named ``index`` (``level_<i>`` in a MultiIndex, or when a column is
already called ``index``), as ``DataFrame.reset_index`` names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import SchemaError
from .coded import Coded
from .masked import Masked, is_missing

_TZ_DTYPE = re.compile(r"^datetime64\[(\w+),\s*(.+)\]$")
_FIXED_OFFSET = re.compile(r"^UTC[+-]\d\d:\d\d$")


def is_frame(data: Any) -> bool:
    """A pandas (or pandas-like) DataFrame, recognized without importing pandas."""
    return (
        not isinstance(data, np.ndarray | Mapping)
        and hasattr(data, "columns")
        and hasattr(data, "dtypes")
        and hasattr(data, "index")
    )


def tz_dtype(dtype: Any, what: str) -> tuple[np.dtype, str] | None:
    """``(datetime64 dtype, zone)`` for a zone-aware timestamp type: pandas' DatetimeTZDtype or
    its spelling ``"datetime64[ns, Europe/Paris]"``; None for anything else. ``what`` names
    the column in errors."""
    if not isinstance(dtype, str) and getattr(dtype, "tz", None) is None:
        return None
    m = _TZ_DTYPE.match(str(dtype))
    if m is None:
        return None
    try:
        unit = np.dtype(f"M8[{m.group(1)}]")
    except TypeError:
        raise SchemaError(f"{what}: {m.group(1)!r} in {dtype} is not a time unit") from None
    return unit, check_tz(m.group(2).strip(), what)


def check_tz(name: str, what: str) -> str:
    """``name`` if it is a time zone every reader can rebuild: IANA names and UTC offsets."""
    if name == "UTC" or _FIXED_OFFSET.match(name):
        return name
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SchemaError(
            f"{what}: time zone {name!r} is not an IANA time zone name (such as "
            "'Europe/Paris') or a UTC offset ('UTC+01:00')"
        ) from None
    return name


def series_tz(series: Any) -> str | None:
    """The time zone of a Series or Index, or None when it is naive (or not timestamps)."""
    tz = getattr(getattr(series, "dtype", None), "tz", None)
    return None if tz is None else str(tz)


def index_levels(frame: Any, columns: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """The index levels of ``frame`` worth storing, as ``(column name, Index)`` pairs (the
    level's own ``name`` may be None): none for the default ``RangeIndex``; unnamed levels
    take the column names ``reset_index`` would give them."""
    index = frame.index
    if _default_range(index):
        return []
    names = list(index.names)
    taken = set(map(str, frame.columns)) | set(columns)
    out = []
    for i, name in enumerate(names):
        if name is None:
            name = "index" if len(names) == 1 and "index" not in taken else f"level_{i}"
        out.append((str(name), index.get_level_values(i)))
    return out


def frame_arrays(
    frame: Any, columns: Sequence[Any], index: Sequence[str], where: object
) -> dict[str, Any]:
    """The values of ``frame`` for the table columns ``columns`` (ColumnSpecs), by name: from
    its columns, or from its index levels for the table's ``index`` columns. Zone-aware
    timestamps are checked against the column's zone and given as UTC."""
    by_name: dict[str, Any] = {str(name): frame[name] for name in frame.columns}
    table_columns = {spec.name for spec in columns}
    if index and frame.index.nlevels == len(index):
        # the table keeps an index: the frame's fills it level by level (as HDFStore's tables
        # do, a default RangeIndex too) where the level is unnamed or named as the column
        for i, column in enumerate(index):
            level = frame.index.get_level_values(i)
            if column not in by_name and (level.name is None or str(level.name) == column):
                by_name[column] = level
    elif not _default_range(frame.index):
        for name, level in index_levels(frame, list(by_name)):
            if name in table_columns and name not in by_name:
                by_name[name] = level  # a level named as a column of the table
            elif name not in index and _carries_data(level):
                raise SchemaError(
                    f"{where}: the frame's index {name!r} is not a column of the table: "
                    "reset_index() keeps it as a column, reset_index(drop=True) drops it"
                )
    out: dict[str, Any] = {}
    for spec in columns:  # the index columns by their name; the rest must be columns
        if spec.name not in by_name:
            continue  # the caller names what is missing
        out[spec.name] = _values(by_name[spec.name], spec, where)
    out.update((k, v.to_numpy()) for k, v in by_name.items() if k not in out)
    return out


def _default_range(index: Any) -> bool:
    """pandas' default index: an unnamed RangeIndex from 0 in steps of 1 (row positions)."""
    return (
        type(index).__name__ == "RangeIndex"
        and index.name is None
        and index.start == 0
        and index.step == 1
    )


def _carries_data(level: Any) -> bool:
    """An index level that is more than row positions: named, or timestamps."""
    return level.name is not None or getattr(level.dtype, "kind", "") == "M"


def _values(series: Any, spec: Any, where: object) -> Any:
    zone = series_tz(series)
    tz = getattr(spec, "tz", None)
    if tz is None and zone is not None:
        raise SchemaError(
            f"{where}: column {spec.name!r} holds timestamps in time zone {zone}, the table's "
            "column has no time zone: tz_convert(None) gives naive UTC"
        )
    if tz is not None:
        if zone is None:
            raise SchemaError(
                f"{where}: column {spec.name!r} is in time zone {tz}; the frame's timestamps "
                f"have none: tz_localize({tz!r}) says which they are"
            )
        if zone != tz:
            raise SchemaError(
                f"{where}: column {spec.name!r} is in time zone {tz}, the frame's is {zone}: "
                f"tz_convert({tz!r}) first"
            )
        if hasattr(series, "dt"):  # a Series
            naive = series.dt.tz_convert("UTC").dt.tz_localize(None)
        else:  # an index level
            naive = series.tz_convert("UTC").tz_localize(None)
        return naive.to_numpy()
    return _plain_values(series, spec)


def _plain_values(series: Any, spec: Any) -> Any:
    """A column's values as numpy gives them; where pandas marks values missing, a masked
    array (masked = missing) that the column's coercion checks against its schema."""
    dtype = series.dtype
    if str(dtype) == "category":
        return _category_values(series)
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and getattr(dtype, "na_value", None) is not None:
        kind = np.dtype(numpy_dtype).kind
        if kind in "biuf":  # pandas' masked arrays: values and a mask, no objects
            fill = np.nan if kind == "f" else 0
            missing = np.asarray(series.isna())
            data = series.to_numpy(dtype=numpy_dtype, na_value=fill)
            return np.ma.MaskedArray(data, missing) if kind != "f" and missing.any() else data
    if type(dtype).__name__ == "StringDtype" or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        values = series.to_numpy(dtype=object)
        missing = _missing_mask(values)
        if missing.any():
            values = np.where(missing, "", values)
            return np.ma.MaskedArray(values, missing)
        return values
    return series.to_numpy()


def _category_values(series: Any) -> Any:
    """A Categorical as coded text (its codes and categories, no string per row), masked where
    its code is -1 (missing); object values when its categories are not text."""
    categories = series.cat.categories
    if not all(isinstance(c, str) for c in categories):
        return series.to_numpy()
    codes = np.asarray(series.cat.codes)
    text = np.array(list(categories) or [""], dtype=str)
    valid = codes >= 0
    coded = Coded(np.where(valid, codes, 0).astype(np.int32), text)
    return coded if valid.all() else Masked(coded, valid)


#: pandas' nullable float dtypes: stored as numpy floats, missing as NaN.
_NULLABLE_FLOATS = {"Float32": np.dtype("<f4"), "Float64": np.dtype("<f8")}


def frame_column(series: Any, dtype: Any) -> tuple[Any, bool, str | None]:
    """``(dtype, nullable, pandas)`` for a DataFrame column (or index level): the column's
    dtype (numpy's, ``"category"``, a zone-aware spelling, or fixed text sized to the data),
    whether its pandas dtype can hold missing values (decided by the dtype, not the data, so
    that later frames with missing values fit), and a JSON note of what ``to_pandas`` needs to
    give the same dtype back (None when the default does)."""
    what = f"column {series.name!r}"
    name = str(dtype)
    if name == "category":
        return "category", True, _categories_note(dtype)
    if tz_dtype(dtype, what) is not None:
        return dtype, False, None
    if name in _NULLABLE_FLOATS:
        return _NULLABLE_FLOATS[name], False, json.dumps({"dtype": name})
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    masked = numpy_dtype is not None and getattr(dtype, "na_value", None) is not None
    if masked and np.dtype(numpy_dtype).kind in "biu":  # Int8..UInt64, boolean
        return np.dtype(numpy_dtype), True, None
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        return dtype, False, None
    text = type(dtype).__name__ == "StringDtype"
    if not (text or isinstance(dtype, np.dtype)):
        raise SchemaError(
            f"{what}: pandas dtype {dtype} has no colvault type (bool, numbers, text, "
            "category, timestamps; nullable Int*/UInt*/boolean/Float*)"
        )
    values = series.to_numpy(dtype=object)
    missing = _missing_mask(values)
    present = values[~missing]
    kinds = sorted({type(v).__name__ for v in present})
    if kinds not in ([], ["str"]):
        raise SchemaError(
            f"{what}: Python objects of types {', '.join(kinds)} have no colvault type; give "
            "the column one type (astype) or store it as text"
        )
    width = max([1, *(len(v) for v in present)])
    note = None
    if not text:
        note = json.dumps({"dtype": "object"})
    elif name == "string":  # pd.NA for missing; "str" (NaN) is pandas' default for text
        note = json.dumps({"dtype": "string", "storage": str(getattr(dtype, "storage", ""))})
    return np.dtype(f"<U{width}"), True, note


def _categories_note(dtype: Any) -> str | None:
    """The categories of a pandas Categorical, kept so ``to_pandas`` gives the same ones (in
    their order, unused ones too); None unless they are text."""
    categories = list(getattr(dtype, "categories", []))
    if not all(isinstance(c, str) for c in categories):
        return None
    return json.dumps({"categories": categories, "ordered": bool(dtype.ordered)})


def _missing_mask(values: np.ndarray) -> np.ndarray:
    """Where an object array holds None, NaN, NaT or pandas' NA (known by its type's name)."""
    return np.fromiter((is_missing(v) for v in values.tolist()), bool, len(values))
