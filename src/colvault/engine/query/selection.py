"""The rows an aggregate folds: every row, or those a condition selects, chunk by chunk.

Aggregates and group-by read their columns through this, so a column the condition already
decoded for a chunk is not decoded a second time, and the thread-pool window is written once.
Missing entries of nullable columns are left out of what it gives (aggregates skip them, as
pandas' do), and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..masked import unpack
from ..schema import ColumnSpec
from .execute import Plan
from .kernel import Decoded
from .scaled import Scaled

if TYPE_CHECKING:
    from ..records import TableView

T = TypeVar("T")
WINDOW = 8


class Selection:
    """One snapshot of a table and, when ``where`` is given, the compiled condition over it."""

    def __init__(
        self, view: TableView, where: str | None, condvars: Mapping[str, Any] | None
    ) -> None:
        self.plan = Plan(view, where, condvars) if where is not None else None
        self.state = self.plan.state if self.plan is not None else view.state
        self.source = self.plan.source if self.plan is not None else view.source
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
        return np.ma.getdata(got)

    def validity(self, spec: ColumnSpec, pos: int) -> np.ndarray | None:
        """Which rows of chunk ``pos`` have a value in column ``spec`` (bool), or None when
        none is missing."""
        ref = self.state.columns[spec.id][pos]
        if not spec.nullable or not ref.nulls:
            return None
        bits = self.source.read_validity(spec, ref)
        if bits is None:
            return None
        return unpack(bits, ref.nrows)

    def selected(
        self, spec: ColumnSpec, pos: int, rows: tuple[np.ndarray | None, Mapping[str, Decoded]]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Column ``spec`` of chunk ``pos`` for the selected ``rows`` that have a value:
        (values, positions to take from them), or (values of the selected rows only, None)
        where that saves decoding the whole chunk (scaled decimals, ``for`` chunks, regular
        clocks)."""
        values, at, _ = self.selected_counted(spec, pos, rows)
        return values, at

    def selected_counted(
        self, spec: ColumnSpec, pos: int, rows: tuple[np.ndarray | None, Mapping[str, Decoded]]
    ) -> tuple[np.ndarray, np.ndarray | None, int]:
        """:meth:`selected`, and how many selected rows are missing a value."""
        hits, decoded = rows
        got = decoded.get(spec.name)
        at: np.ndarray | None = None
        if hits is None:
            values = self.values(spec, pos, decoded)
        elif isinstance(got, Scaled):
            values = got.values(hits)
        elif got is not None:
            values, at = got, hits
        else:
            ref = self.state.columns[spec.id][pos]
            values = np.ma.getdata(self.source.read_at(spec, ref, hits))
        valid = self.validity(spec, pos)
        if valid is None:
            return values, at, 0
        if hits is None:  # the whole chunk
            at = np.flatnonzero(valid)
            return values, at, len(valid) - len(at)
        keep = valid[hits]
        missing = len(keep) - int(np.count_nonzero(keep))
        if at is not None:
            return values, at[keep], missing
        return values[keep], None, missing

    def selected_values(self, spec: ColumnSpec) -> Iterator[np.ndarray]:
        """Column ``spec`` at the selected rows that have a value (a condition is needed),
        chunk by chunk in row order, scanned and gathered by the batch kernels 2 *
        :data:`WINDOW` chunks at a time."""
        for values, _ in self.selected_values_counted(spec):
            yield values

    def selected_values_counted(self, spec: ColumnSpec) -> Iterator[tuple[np.ndarray, int]]:
        """:meth:`selected_values`, each with how many selected rows miss a value."""
        if self.plan is None:
            raise ValueError("selected_values needs a condition")
        for _, _, arrays in self.plan.batches([spec], window=2 * WINDOW):
            got = arrays[0]
            if isinstance(got, np.ma.MaskedArray):
                missing = np.ma.getmaskarray(got)
                yield np.ma.getdata(got)[~missing], int(np.count_nonzero(missing))
            else:
                yield got, 0

    def fold(self, part: Callable[[int], T | None]) -> Iterator[T]:
        """``part(pos)`` over the chunks, in the pool a window at a time, in row order."""
        for i in range(0, len(self.chunks), WINDOW):
            for result in self.source.map(part, self.chunks[i : i + WINDOW]):
                if result is not None:
                    yield result
