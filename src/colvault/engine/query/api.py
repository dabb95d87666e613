"""The query methods of :class:`~colvault.Table` (PyTables names where they exist)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..records import record_dtype, records
from .execute import Plan

if TYPE_CHECKING:
    from ..records import TableView

Condvars = Mapping[str, Any] | None


def read_where(
    view: TableView, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None,
    start: int | None = None, stop: int | None = None,
) -> np.ndarray:  # fmt: skip
    """Matching committed rows as a structured array (optionally only ``columns``)."""
    specs = view.specs(columns)
    plan = Plan(view, cond, condvars, start, stop)
    if not any(s.is_category or s.nullable for s in specs):
        return plan.read(specs, record_dtype(specs))
    # text widths differ by chunk, masks come per chunk: gather per chunk, then concatenate
    parts = [arrays for _, _, arrays in plan.batches(specs, window=None)]
    if not parts:
        empty = [_empty_column(s) for s in specs]
        return records(specs, empty)
    arrays = [_concatenated([p[j] for p in parts]) for j in range(len(specs))]
    return records(specs, arrays)


def _empty_column(spec: Any) -> np.ndarray:
    empty = np.empty((0, *spec.shape), _empty(spec))
    return np.ma.MaskedArray(empty, np.zeros(0, bool)) if spec.nullable else empty


def _concatenated(parts: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate``, keeping masks (``np.concatenate`` drops them)."""
    if isinstance(parts[0], np.ma.MaskedArray):
        return np.ma.concatenate(parts)
    return np.concatenate(parts)


def _empty(spec: Any) -> Any:
    return "U1" if spec.is_category else spec.dtype


def select(
    view: TableView, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(row numbers, columns) of the committed rows that satisfy ``cond``, from one scan:
    ``get_where_list`` and ``read_where`` together, each column its own array (masked for a
    nullable one)."""
    specs = view.specs(columns)
    plan = Plan(view, cond, condvars)
    parts = list(plan.batches(specs, window=None))
    if not parts:
        empty = {s.name: _empty_column(s) for s in specs}
        return np.empty(0, np.int64), empty
    rows = np.concatenate([first + hits for first, hits, _ in parts])
    arrays = {s.name: _concatenated([p[2][j] for p in parts]) for j, s in enumerate(specs)}
    return rows, arrays


def chunks_left(view: TableView, cond: str, condvars: Condvars = None) -> list[int]:
    """Positions of the chunks whose zone maps do not rule ``cond`` out (the condition is
    parsed and checked, so a bad one raises ``QueryError`` here)."""
    return Plan(view, cond, condvars).chunks()


def iter_where(
    view: TableView, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Matching rows as dicts of arrays, chunk by chunk: memory bounded by a few chunks."""
    specs = view.specs(columns)
    plan = Plan(view, cond, condvars)
    for _, _, arrays in plan.batches(specs):
        yield {s.name: a for s, a in zip(specs, arrays, strict=True)}


def where(
    view: TableView, cond: str, condvars: Condvars = None, *, columns: list[str] | None = None
) -> Iterator[np.void]:
    """Matching rows one by one (numpy records), fed from chunk-sized batches."""
    specs = view.specs(columns)
    plan = Plan(view, cond, condvars)
    for _, _, arrays in plan.batches(specs):
        yield from records(specs, arrays)


def count_where(view: TableView, cond: str, condvars: Condvars = None) -> int:
    """How many committed rows satisfy ``cond`` (whole chunks decided by zone maps are not read)."""
    plan = Plan(view, cond, condvars)
    return plan.count_all()


def get_where_list(
    view: TableView, cond: str, condvars: Condvars = None, *, start: int | None = None,
    stop: int | None = None,
) -> np.ndarray:  # fmt: skip
    """Row numbers (int64, ascending) of the committed rows that satisfy ``cond``."""
    plan = Plan(view, cond, condvars, start, stop)
    rows = [first + hits for first, hits, _ in plan.batches([], window=None)]
    return np.concatenate(rows) if rows else np.empty(0, np.int64)
