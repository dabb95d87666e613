"""pandas DataFrames out of tables (``Table.to_pandas``).

The engine takes DataFrames in by duck typing and never imports pandas; getting one out needs
pandas itself, so it lives here, in ``io``, and is attached to :class:`~colvault.Table` when
colvault is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
    categories: the values present, sorted), zone-aware timestamp columns in their zone, and the
    index of the DataFrame the table was created from is the index again (when all of its
    columns are read). ``progress`` shows a bar of the rows read, as ``Table.read`` does
    (:mod:`colvault.progress`: by default in a terminal or notebook after a second).

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"sensor": "i4", "value": "f8"})
    ...     t.append({"sensor": [1, 2], "value": [0.5, 1.5]})
    ...     store.commit()
    ...     t.to_pandas()
       sensor  value
    0       1    0.5
    1       2    1.5
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas needs pandas: pip install pandas") from None
    names = table.colnames if columns is None else list(columns)
    specs = table._specs(names)
    if where is None:
        arrays = table._read_slice(slice(start, stop), specs, progress, f"to_pandas {table.path}")
    else:
        rows = table.read_where(where, condvars, columns=names, start=start, stop=stop)
        arrays = [rows[name] for name in names]
    data: dict[str, Any] = {}
    for spec, values in zip(specs, arrays, strict=True):
        if values.ndim > 1:
            data[spec.name] = list(values)
        elif spec.tz is not None:
            data[spec.name] = pd.DatetimeIndex(values, tz="UTC").tz_convert(spec.tz)
        elif spec.is_category:
            data[spec.name] = pd.Categorical(values)
        else:
            data[spec.name] = values
    frame = pd.DataFrame(data, columns=names)
    index = table.frame_index
    if index and all(column in names for column, _ in index):
        frame = frame.set_index([column for column, _ in index])
        frame.index.names = [name for _, name in index]
    return frame
