"""pandas DataFrames out of tables (``Table.to_pandas``).

The engine takes DataFrames in by duck typing and never imports pandas; getting one out needs
pandas itself, so it lives here, in ``io``, and is attached to :class:`~colvault.Table` when
colvault is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.table import Table


def to_pandas(
    table: Table, columns: list[str] | None = None, *, progress: bool | None = None
) -> Any:
    """Committed rows as a ``pandas.DataFrame`` (cells of n-d columns become arrays per row),
    read from one snapshot. ``progress`` shows a bar of the rows read, as ``Table.read`` does
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
    arrays = table._read_slice(slice(None), specs, progress, f"to_pandas {table.path}")
    data = {}
    for name, values in zip(names, arrays, strict=True):
        data[name] = list(values) if values.ndim > 1 else values
    return pd.DataFrame(data, columns=names)
