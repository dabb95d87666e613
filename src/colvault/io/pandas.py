"""pandas DataFrames out of tables (``Table.to_pandas``).

The engine takes DataFrames in by duck typing and never imports pandas; getting one out needs
pandas itself, so it lives here, in ``io``, and is attached to :class:`~colvault.Table` when
colvault is imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..engine.table import Table


def to_pandas(
    table: Table,
    columns: list[str] | None = None,
    *,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
    start: int | None = None,
    stop: int | None = None,
    progress: bool | None = None,
) -> Any:
    """Committed rows ``[start:stop]`` (those satisfying ``where``, with ``condvars``, as in
    ``read_where``) as a ``pandas.DataFrame`` (cells of n-d columns become arrays per row),
    read from one snapshot. Category columns come back as pandas Categoricals (their
    categories: those of the DataFrame the table was made from, in their order, then any other
    values present, sorted), zone-aware timestamp columns in their zone, and the
    index of the DataFrame the table was created from is the index again (when all of its
    columns are read). ``progress`` shows a bar of the rows read, as ``Table.read`` does
    (:mod:`colvault.progress`: by default in a terminal or notebook after a second).

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"sensor": "i4", "value": "f8"})
    ...     t.append({"sensor": [1, 2], "value": [0.5, 1.5]})
    ...     _ = store.commit()  # the new commit's id
    ...     t.to_pandas()
       sensor  value
    0       1    0.5
    1       2    1.5
    """
    _pandas("to_pandas")
    names = table.colnames if columns is None else list(columns)
    specs = table.column_specs(names)
    if where is None:
        got = table.read_columns(
            names, start, stop, progress=progress, desc=f"to_pandas {table.path}"
        )
        arrays = [got[name] for name in names]
    else:
        rows = table.read_where(where, condvars, columns=names, start=start, stop=stop)
        arrays = [rows[name] for name in names]
    frame = columns_frame(specs, arrays)
    index = table.frame_index
    if index and all(column in names for column, _ in index):
        frame = frame.set_index([column for column, _ in index])
        frame.index.names = [name for _, name in index]
    return frame


def columns_frame(specs: list[Any], arrays: list[np.ndarray]) -> Any:
    """A ``pandas.DataFrame`` of columns read from a table (``specs`` from
    ``column_specs``, arrays masked where values are missing), each in the pandas dtype
    ``to_pandas`` gives it; a default ``RangeIndex``."""
    pd = _pandas("to_pandas")
    data = {
        spec.name: _column(pd, spec, values) for spec, values in zip(specs, arrays, strict=True)
    }
    return pd.DataFrame(data, columns=[spec.name for spec in specs])


def _pandas(what: str) -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs pandas: pip install pandas") from None
    return pd


def _column(pd: Any, spec: Any, values: np.ndarray) -> Any:
    """One column's values as pandas holds them: missing values (numpy's mask) as pandas marks
    them in the column's pandas dtype, the dtype a DataFrame gave the column when its schema
    notes it (``ColumnSpec.pandas``)."""
    note = json.loads(spec.pandas) if spec.pandas else {}
    mask = np.ma.getmaskarray(values) if isinstance(values, np.ma.MaskedArray) else None
    data = np.ma.getdata(values)
    if data.ndim > 1:
        return list(values)
    if spec.tz is not None:
        return pd.DatetimeIndex(data, tz="UTC").tz_convert(spec.tz)
    if "dtype" in note and note["dtype"].startswith("Float"):
        return pd.array(data, dtype=note["dtype"])  # NaN is pandas' NA there
    if spec.nullable and data.dtype.kind in "iu":
        return pd.arrays.IntegerArray(data, _mask(mask, data))
    if spec.nullable and data.dtype.kind == "b":
        return pd.arrays.BooleanArray(data, _mask(mask, data))
    if spec.is_category:
        categories = note.get("categories")
        if categories is not None:
            present = np.unique(data if mask is None else data[~mask])
            extra = sorted(set(present.tolist()) - set(categories))
            categories = [*categories, *extra]
        return pd.Categorical(
            _objects(data, mask), categories=categories, ordered=bool(note.get("ordered"))
        )
    if spec.nullable:  # text
        objects = _objects(data, mask)
        if note.get("dtype") == "object":
            return pd.Series(objects, dtype=object)  # a Series: not inferred as str
        if note.get("dtype") == "string":
            return pd.array(objects, dtype=pd.StringDtype(note.get("storage") or None))
        return _default_text(pd, objects)
    return data


def _default_text(pd: Any, objects: np.ndarray) -> Any:
    """Missing-able text as pandas holds it by default: its ``str`` dtype (NaN for missing) where
    there is one (pandas 2.3 and later); else object values with None (pandas 2's ``"str"`` is
    numpy text, which would spell a missing value ``"None"``)."""
    try:
        dtype = pd.StringDtype(na_value=np.nan)
    except TypeError:  # pandas before 2.3
        return pd.Series(objects, dtype=object)
    return pd.array(objects, dtype=dtype)


def _mask(mask: np.ndarray | None, data: np.ndarray) -> np.ndarray:
    return np.zeros(len(data), bool) if mask is None else mask


def _objects(data: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Text as Python objects, None where missing."""
    out = data.astype(object)
    if mask is not None:
        out[mask] = None
    return out
