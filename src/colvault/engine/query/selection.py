"""The rows an aggregate folds: every row, or those a condition selects, chunk by chunk.

Aggregates and group-by read their columns through this, so a column the condition already
decoded for a chunk is not decoded a second time, and the thread-pool window is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..schema import ColumnSpec
from .execute import Plan
from .kernel import Decoded
from .scaled import Scaled

if TYPE_CHECKING:
    from ..table import Table

T = TypeVar("T")
WINDOW = 8


class Selection:
    """One snapshot of a table and, when ``where`` is given, the compiled condition over it."""

    def __init__(self, table: Table, where: str | None, condvars: Mapping[str, Any] | None) -> None:
        self.plan = Plan(table, where, condvars) if where is not None else None
        self.state = self.plan.state if self.plan is not None else table._state()
        self.source = self.plan.source if self.plan is not None else table._source()
        n = len(self.state.starts)
        self.chunks = self.plan.chunks() if self.plan is not None else list(range(n))

    def rows(self, pos: int) -> tuple[np.ndarray | None, dict[str, Decoded]] | None:
        """(positions within chunk ``pos``, or None for all rows; columns already decoded), or
        None when the chunk has no selected row."""
        if self.plan is None:
            return None, {}
        hits, decoded = self.plan.select_decoded(pos)
        return (hits, decoded) if len(hits) else None

    def values(self, spec: ColumnSpec, pos: int, decoded: Mapping[str, Decoded]) -> np.ndarray:
        """Column ``spec`` of chunk ``pos`` (reusing the condition's reading when it has it)."""
        got = decoded.get(spec.name)
        if isinstance(got, Scaled):
            return got.values()
        if got is None:
            got = self.source.read_chunk(spec, self.state.columns[spec.id][pos])
        return got

    def selected(
        self, spec: ColumnSpec, pos: int, rows: tuple[np.ndarray | None, Mapping[str, Decoded]]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Column ``spec`` of chunk ``pos`` for the selected ``rows``: (values, positions to
        take from them), or (values of the selected rows only, None) where that saves decoding
        the whole chunk (scaled decimals, ``for`` chunks, regular clocks)."""
        hits, decoded = rows
        got = decoded.get(spec.name)
        if hits is None:
            return self.values(spec, pos, decoded), None
        if isinstance(got, Scaled):
            return got.values(hits), None
        if got is not None:
            return got, hits
        return self.source.read_at(spec, self.state.columns[spec.id][pos], hits), None

    def selected_values(self, spec: ColumnSpec) -> Iterator[np.ndarray]:
        """Column ``spec`` at the selected rows (a condition is needed), chunk by chunk in row
        order, scanned and gathered by the batch kernels 2 * :data:`WINDOW` chunks at a time."""
        if self.plan is None:
            raise ValueError("selected_values needs a condition")
        for _, _, arrays in self.plan.batches([spec], window=2 * WINDOW):
            yield arrays[0]

    def fold(self, part: Callable[[int], T | None]) -> Iterator[T]:
        """``part(pos)`` over the chunks, in the pool a window at a time, in row order."""
        for i in range(0, len(self.chunks), WINDOW):
            for result in self.source._map(part, self.chunks[i : i + WINDOW]):
                if result is not None:
                    yield result
