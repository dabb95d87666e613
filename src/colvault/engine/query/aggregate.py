"""Streaming aggregates over a table, optionally filtered: ``stats`` and ``histogram``.

Each chunk's statistics are computed in the thread pool and folded in row order, so memory is
bounded by a few chunks and the result does not depend on thread timing. Semantics are numpy's
nan-functions (kernels/aggregates.py says exactly how sums are accumulated).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...lazy import kernel_module
from ..schema import ColumnSpec
from ..zonemaps import kernel_view
from .selection import Selection

if TYPE_CHECKING:
    from ...kernels.query import aggregates as agg
    from ..records import TableView
else:
    agg = kernel_module("query.aggregates")


def numeric_column(view: TableView, column: str, what: str) -> ColumnSpec:
    spec = view.schema.column(column)
    if spec.shape or spec.is_category or spec.dtype.kind not in "biufMm":
        raise QueryError(f"{what} needs a numeric scalar column; {column!r} is {spec.dtype}")
    return spec


def stats(
    view: TableView,
    column: str,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """count, nan_count, null_count, min, max, sum, mean and std (NaN and missing values
    skipped, ddof 0) of one column, over the rows that satisfy ``where`` (all rows when None).
    ``null_count``: the rows missing a value (nullable columns; 0 for others)."""
    spec = numeric_column(view, column, "stats()")
    return selection_stats(Selection(view, where, condvars), spec)


def selection_stats(sel: Selection, spec: ColumnSpec) -> dict[str, Any]:
    def part(pos: int) -> tuple[np.ndarray, int] | None:
        rows = sel.rows(pos)
        if rows is None:
            return None
        got, at, missing = sel.selected_counted(spec, pos, rows)
        values, nat = kernel_view(got)
        return agg.chunk_stats(values, at, nat), missing

    state = agg.new_stats_state()
    kind = agg.kind_of(spec.dtype)
    nulls = 0
    if sel.plan is not None:  # the selected values, scanned and gathered in batches
        for got, missing in sel.selected_values_counted(spec):
            values, nat = kernel_view(got)
            agg.stats_merge(state, agg.chunk_stats(values, None, nat), kind)
            nulls += missing
    else:
        for s, missing in sel.fold(part):
            agg.stats_merge(state, s, kind)
            nulls += missing
    out = agg.stats_result(state, spec.dtype)
    return {
        "count": out.pop("count"),
        "nan_count": out.pop("nan_count"),
        "null_count": nulls,
        **out,
    }


def histogram(
    view: TableView, column: str, bins: int = 10, range: tuple[float, float] | None = None,
    where: str | None = None, condvars: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(counts, edges) as ``numpy.histogram(values, bins, range)`` gives them for the column's
    values (rows satisfying ``where``), NaN skipped: with ``range=None`` the range is the min
    and max of the values that are not NaN, as ``numpy.histogram(values[~np.isnan(values)])``
    finds it ((0, 1) when there are none), where numpy itself would raise."""
    spec = numeric_column(view, column, "histogram()")
    if spec.dtype.kind in "Mm":
        raise QueryError(f"histogram() of datetime column {column!r} is not supported")
    sel = Selection(view, where, condvars)  # both passes read the same snapshot
    if range is None:
        s = selection_stats(sel, spec)  # its min and max skip NaN; so do the counts below
        # numpy scalars, not floats: numpy bins a float32 column in float32 when it finds the
        # range itself, and so must we to give the same counts
        lo, hi = (0.0, 1.0) if s["count"] == 0 else (s["min"], s["max"])
    else:
        lo, hi = float(range[0]), float(range[1])
    try:
        edges = agg.histogram_edges(np.empty(0, spec.dtype), int(bins), lo, hi)
    except ValueError as exc:
        raise QueryError(f"histogram() of {column!r}: {exc}") from None

    def part(pos: int) -> np.ndarray | None:
        rows = sel.rows(pos)
        if rows is None:
            return None
        got, at = sel.selected(spec, pos, rows)
        values, _ = kernel_view(got)
        counts = np.zeros(int(bins), np.int64)
        agg.histogram_update(counts, values, at, lo, hi)
        return counts

    if sel.plan is not None:
        counts = np.zeros(int(bins), np.int64)
        for got in sel.selected_values(spec):
            agg.histogram_update(counts, kernel_view(got)[0], None, lo, hi)
        return counts, edges
    return sum(sel.fold(part), np.zeros(int(bins), np.int64)), edges
