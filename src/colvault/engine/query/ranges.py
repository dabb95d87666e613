"""Range conditions on a sorted column: the matching rows of a chunk are one run, found by
binary search (or, for a fixed-step clock, by arithmetic) instead of a scan.

A condition qualifies when it is a conjunction of comparisons of one column with constants
(``(t >= lo) & (t < hi)``, ``10 < v <= 20``). Zone-map pruning has already decided which chunks
hold none or all of the rows; for the others whose zone map says *sorted* and holds no NaN/NaT,
the rows are ``[first, last)`` of the chunk: regular ``delta`` chunks (``first + step * i``)
compute the bounds from their params without reading a byte, others decode the column and
``np.searchsorted`` it. Constants are used only when they convert to the column's dtype exactly
(a finer datetime unit or a fraction against an integer column falls back to the kernel).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..encodings import Delta
from ..manifest import ChunkRef
from .expr import SWAPPED, Col, Const, Expr, Op

_OPS = frozenset({"<", "<=", ">", ">=", "=="})


@dataclass(frozen=True)
class Bound:
    op: str  # the column is on the left: column <op> value
    value: int | float  # in the column's own representation (datetimes as int64)


@dataclass(frozen=True)
class SortedRange:
    """A conjunction of comparisons of column ``column`` with constants."""

    column: str
    dtype: np.dtype
    bounds: tuple[Bound, ...]

    def run(self, values: np.ndarray) -> tuple[int, int]:
        """``[first, last)``: the rows of ascending ``values`` that satisfy every bound."""
        return self._clip(
            len(values),
            lambda v: (
                int(np.searchsorted(values, v, "left")),
                int(np.searchsorted(values, v, "right")),
            ),
        )

    def regular_run(self, first: int, step: int, n: int) -> tuple[int, int]:
        """``run`` over the virtual values ``first + step * i`` (``step > 0``), exactly."""
        return self._clip(
            n,
            lambda v: (
                min(max(-((first - int(v)) // step), 0), n),  # first i with value >= v
                min(max((int(v) - first) // step + 1, 0), n),  # first i with value > v
            ),
        )

    def _clip(self, n: int, edges: Callable[[int | float], tuple[int, int]]) -> tuple[int, int]:
        """The run of ``n`` sorted rows inside every bound; ``edges(v)`` gives the first row
        ``>= v`` and the first row ``> v``."""
        lo, hi = 0, n
        for b in self.bounds:
            left, right = edges(b.value)
            if b.op == ">":
                lo = max(lo, right)
            elif b.op == ">=":
                lo = max(lo, left)
            elif b.op == "<":
                hi = min(hi, left)
            elif b.op == "<=":
                hi = min(hi, right)
            else:  # ==
                lo, hi = max(lo, left), min(hi, right)
        return lo, max(lo, hi)


def _exact(value: Any, dtype: np.dtype) -> int | float | None:
    """``value`` in ``dtype``'s representation when it converts exactly, else None."""
    try:
        if dtype.kind in "Mm":
            v = np.asarray(value)
            if v.dtype.kind != dtype.kind:
                return None
            cast = v.astype(dtype)
            if np.isnat(cast) or cast.astype(v.dtype) != v:
                return None
            return int(cast.view(np.int64))
        if dtype.kind in "iu":
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                return None
            info = np.iinfo(dtype)
            return int(value) if info.min <= int(value) <= info.max else None
        if dtype.kind == "f" and isinstance(value, int | float | np.integer | np.floating):
            f = dtype.type(value)
            return float(f) if not np.isnan(f) and float(f) == value else None
    except (OverflowError, ValueError, TypeError):
        return None
    return None


@functools.lru_cache(maxsize=512)
def sorted_range(expr: Expr) -> SortedRange | None:
    """The condition as a range over one column, or None when it is anything else (kept per
    typed tree: the answer is immutable)."""
    leaves: list[Op] = []

    def walk(e: Expr) -> bool:
        if isinstance(e, Op) and e.op == "and":
            return all(walk(a) for a in e.args)
        if isinstance(e, Op) and e.op in _OPS and len(e.args) == 2:
            leaves.append(e)
            return True
        return False

    if not walk(expr) or not leaves:
        return None
    column: Col | None = None
    bounds = []
    for leaf in leaves:
        a, b = leaf.args
        op = leaf.op
        if isinstance(a, Const) and isinstance(b, Col):
            a, b, op = b, a, SWAPPED[op]
        if not (isinstance(a, Col) and isinstance(b, Const)):
            return None
        if column is None:
            column = a
        elif a.name != column.name:
            return None
        if a.dtype.kind not in "iufMm":
            return None
        v = _exact(b.value, a.dtype)
        if v is None:
            return None
        bounds.append(Bound(op, v))
    assert column is not None
    return SortedRange(column.name, column.dtype, tuple(bounds))


def regular_params(ref: ChunkRef, dtype: np.dtype) -> tuple[int, int] | None:
    """(first, step) of a sorted, regular ``delta`` chunk with a positive step, else None."""
    enc = ref.encoding
    if not isinstance(enc, Delta) or not enc.regular or not ref.zone.sorted:
        return None
    bits = 8 * dtype.itemsize
    first, step = int(enc.first), int(enc.step)
    if dtype.kind in "iMm" and first >= 1 << (bits - 1):  # stored unsigned: back to signed
        first -= 1 << bits
    return (first, step) if 0 < step < 1 << (bits - 1) else None
