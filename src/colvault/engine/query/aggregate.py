"""Streaming aggregates over a table, optionally filtered: ``stats`` and ``histogram``.

Each chunk's statistics are computed in the thread pool and folded in row order, so memory is
bounded by a few chunks and the result does not depend on thread timing. Semantics are numpy's
nan-functions (kernels/aggregates.py says exactly how sums are accumulated).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...kernels import aggregates as agg
from ..schema import ColumnSpec
from .execute import Plan

if TYPE_CHECKING:
    from ..table import Table


def _numeric(table: Table, column: str, what: str) -> ColumnSpec:
    spec = table._schema.column(column)
    if spec.shape or spec.is_category or spec.dtype.kind not in "biufMm":
        raise QueryError(f"{what} needs a numeric scalar column; {column!r} is {spec.dtype}")
    return spec


def _kernel_view(values: np.ndarray) -> tuple[np.ndarray, bool]:
    if values.dtype.kind in "Mm":
        return values.view(np.int64), True
    if values.dtype.kind == "b":
        return values.view(np.uint8), False
    return values, False


def _selected(
    table: Table, spec: ColumnSpec, where: str | None, condvars: Mapping[str, Any] | None
) -> tuple[Any, list[int], Any]:
    """(plan or None, chunk positions, a function giving (values, positions or None) of one)."""
    state = table._state()
    src = table._source()
    plan = Plan(table, where, condvars) if where is not None else None
    if plan is not None:
        state, src = plan.state, plan.source

    def chunk(pos: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        if plan is None:
            return src.read_chunk(spec, state.columns[spec.id][pos]), None
        hits, decoded = plan.select_decoded(pos)
        if not len(hits):
            return None
        values = decoded.get(spec.name)  # decoded for the condition already: not again
        if values is None:
            values = src.read_chunk(spec, state.columns[spec.id][pos])
        return values, hits

    chunks = plan.chunks() if plan is not None else list(range(len(state.starts)))
    return plan, chunks, (src, chunk)


def stats(
    table: Table, column: str, where: str | None = None, condvars: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """count, nan_count, min, max, sum, mean and std (NaN skipped, ddof 0) of one column, over
    the rows that satisfy ``where`` (all rows when None)."""
    spec = _numeric(table, column, "stats()")
    _, positions, (src, chunk) = _selected(table, spec, where, condvars)

    def part(pos: int) -> np.ndarray | None:
        got = chunk(pos)
        if got is None:
            return None
        values, nat = _kernel_view(got[0])
        return agg.chunk_stats(values, got[1], nat)

    state = agg.new_stats_state()
    kind = agg.kind_of(spec.dtype)
    for i in range(0, len(positions), 8):
        for s in src._map(part, positions[i : i + 8]):
            if s is not None:
                agg.stats_merge(state, s, kind)
    return agg.stats_result(state, spec.dtype)


def histogram(
    table: Table, column: str, bins: int = 10, range: tuple[float, float] | None = None,
    where: str | None = None, condvars: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(counts, edges) as ``numpy.histogram(values, bins, range)`` gives them for the column's
    values (rows satisfying ``where``); with ``range=None`` the data's min and max, as numpy."""
    spec = _numeric(table, column, "histogram()")
    if spec.dtype.kind in "Mm":
        raise QueryError(f"histogram() of datetime column {column!r} is not supported")
    if range is None:
        s = stats(table, column, where, condvars)
        if s["nan_count"]:
            raise QueryError(
                f"column {column!r} has NaN values: give range=(lo, hi), as numpy.histogram needs"
            )
        # numpy scalars, not floats: numpy bins a float32 column in float32 when it finds the
        # range itself, and so must we to give the same counts
        lo, hi = (0.0, 1.0) if s["count"] == 0 else (s["min"], s["max"])
    else:
        lo, hi = float(range[0]), float(range[1])
    try:
        edges = agg.histogram_edges(np.empty(0, spec.dtype), int(bins), lo, hi)
    except ValueError as exc:
        raise QueryError(f"histogram() of {column!r}: {exc}") from None
    _, positions, (src, chunk) = _selected(table, spec, where, condvars)

    def part(pos: int) -> np.ndarray | None:
        got = chunk(pos)
        if got is None:
            return None
        values, _ = _kernel_view(got[0])
        counts = np.zeros(int(bins), np.int64)
        agg.histogram_update(counts, values, got[1], lo, hi)
        return counts

    total = np.zeros(int(bins), np.int64)
    for i in builtins.range(0, len(positions), 8):
        for c in src._map(part, positions[i : i + 8]):
            if c is not None:
                total += c
    return total, edges
