"""The reads and queries a table answers from one committed snapshot (PyTables' names).

Mixed into :class:`~colvault.Table` and :class:`~colvault.engine.detached.DetachedTable`: each
call takes a :class:`~colvault.engine.records.TableView` (``_view()``) and hands it to the
query functions of :mod:`colvault.engine.query`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .query import aggregate as query_aggregate
from .query import api as query_api
from .query import describe as query_describe
from .query import groupby as query_groupby
from .records import TableView, pick_specs
from .schema import ColumnSpec, TableSchema

Condvars = Mapping[str, Any] | None


class TableReads(ABC):
    """Reads and queries over ``_view()``, a fresh snapshot per call."""

    @property
    @abstractmethod
    def _schema(self) -> TableSchema:
        """The columns (each class says where they come from)."""

    @abstractmethod
    def _view(self) -> TableView:
        """The table as of now, one snapshot (each class says how it gets one)."""

    @property
    def colnames(self) -> list[str]:
        """The column names, in order."""
        return self._schema.names

    def column_specs(self, columns: list[str] | None = None) -> list[ColumnSpec]:
        """The schema of the columns (all, or those named, in that order): each one's dtype,
        cell shape, time zone, whether it is nullable, and its pandas note."""
        return pick_specs(self._schema, columns)

    def iter_chunks(
        self, columns: list[str] | None = None, *, codes: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Committed rows chunk by chunk, from one snapshot, as dicts of arrays (masked for a
        nullable column): memory bounded by one chunk. ``codes=True`` gives each category
        column as the chunk's ``(codes, dictionary)`` as stored (``col(name, codes=True,
        chunk=i)``), no text decoded."""
        return self._view().iter_chunks(columns, codes=codes)

    # -- queries: condition strings as PyTables writes them ----------------------------------

    def read_where(
        self, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None,
        start: int | None = None, stop: int | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Committed rows that satisfy ``cond`` (within rows ``[start:stop]``) as a structured
        array, optionally only ``columns``; masked where a nullable column misses values.
        ``condvars`` names the variables ``cond`` uses (PyTables' name)."""
        return query_api.read_where(
            self._view(), cond, condvars, columns=columns, start=start, stop=stop
        )

    def iter_where(
        self, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Matching rows as dicts of arrays, chunk by chunk: memory bounded by a few chunks."""
        return query_api.iter_where(self._view(), cond, condvars, columns=columns)

    def where(
        self, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None
    ) -> Iterator[np.void]:
        """Matching rows one by one (numpy records), fed from chunk-sized batches."""
        return query_api.where(self._view(), cond, condvars, columns=columns)

    def count_where(self, cond: str, condvars: Condvars = None) -> int:
        """How many committed rows satisfy ``cond`` (whole chunks that zone maps decide are
        not read)."""
        return query_api.count_where(self._view(), cond, condvars)

    def get_where_list(
        self, cond: str, condvars: Condvars = None, *, start: int | None = None,
        stop: int | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Row numbers (int64, ascending) of the committed rows that satisfy ``cond``."""
        return query_api.get_where_list(self._view(), cond, condvars, start=start, stop=stop)

    # -- aggregates ------------------------------------------------------------------------

    def stats(self, column: str, where: str | None = None, condvars: Condvars = None) -> dict:
        """count, nan_count, null_count, min, max, sum, mean and std (NaN and missing values
        skipped, ddof 0) of one numeric column, over the rows that satisfy ``where`` (all rows
        when None). ``null_count``: the rows missing a value (nullable columns; 0 for others)."""
        return query_aggregate.stats(self._view(), column, where, condvars)

    def histogram(
        self, column: str, bins: int = 10, range: tuple[float, float] | None = None,
        where: str | None = None, condvars: Condvars = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(counts, edges) as ``numpy.histogram(values, bins, range)`` gives them for the
        column's values (rows satisfying ``where``), NaN skipped; with ``range=None`` the range
        is the min and max of the values that are not NaN ((0, 1) when there are none)."""
        return query_aggregate.histogram(self._view(), column, bins, range, where, condvars)

    def group_by(
        self, key: str, aggs: Mapping[str, Any], where: str | None = None,
        condvars: Condvars = None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Grouped aggregates: ``{"value": ["mean", "max"], "temp": "count"}`` gives arrays
        ``value_mean``, ``value_max``, ``temp_count`` beside the sorted keys under ``key``;
        rows missing their key are left out (pandas' ``dropna=True``)."""
        return query_groupby.group_by(self._view(), key, aggs, where, condvars)

    def describe(
        self, columns: list[str] | None = None, *, where: str | None = None,
        condvars: dict[str, Any] | None = None, progress: bool | None = None,
    ) -> Any:  # fmt: skip
        """Summary statistics of numeric columns as a ``pandas.DataFrame`` shaped as
        ``pandas.DataFrame.describe()`` gives it for the same rows: rows ``count``, ``mean``,
        ``std`` (ddof 1), ``min``, ``25%``, ``50%``, ``75%``, ``max``; a column per described
        column, float64. count, min, max and the quartiles are exactly pandas'; mean and std
        agree to rounding (they are summed in another order, and pandas sums float32 columns
        in float32). NaN is skipped; a column without values has count 0 and NaN elsewhere.

        Columns are the int, uint and float columns by default (bool is left out, as pandas does),
        or the ``columns`` named, which must be such columns. Left out, unlike pandas: datetime and
        timedelta columns (pandas' mean and quartiles of them go through float64 and cannot be
        matched exactly in a stream; ``t.stats()`` gives count, min and max), complex columns, and
        category, text and multi-dimensional columns (pandas describes text apart, with ``unique``,
        ``top`` and ``freq``). ``where`` (and ``condvars``) restricts the rows, as ``read_where``.

        Streamed in bounded memory: one pass for count, mean, std, min and max, then one to
        three for the quartiles (each column in turn), which are exact (equal to pandas' and
        ``numpy.quantile``'s linear interpolation), found by histogram refinement over the
        column (:mod:`colvault.engine.query.describe`). All passes read one committed snapshot.
        ``progress`` shows a bar (see :mod:`colvault.progress`). Needs pandas.

        >>> import colvault, tempfile, os
        >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
        ...     t = store.create_table("/t", {"sensor": "i4", "value": "f8", "ok": "?"})
        ...     t.append({"sensor": [1, 2, 3, 4], "value": [0.5, float("nan"), 2.5, 4.0],
        ...               "ok": [True, False, True, True]})
        ...     _ = store.commit()  # the new commit's id
        ...     t.describe()
                 sensor     value
        count  4.000000  3.000000
        mean   2.500000  2.333333
        std    1.290994  1.755942
        min    1.000000  0.500000
        25%    1.750000  1.500000
        50%    2.500000  2.500000
        75%    3.250000  3.250000
        max    4.000000  4.000000
        """
        return query_describe.describe(
            self._view(), columns, where=where, condvars=condvars, progress=progress
        )
