"""numpy indexing along the row axis, turned into what the reader needs.

A key becomes either a contiguous range plus a step to apply after reading, or an array of row
numbers (sorted and unique, with the permutation that restores the caller's order).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RowRange:
    start: int
    stop: int
    post: slice  # applied to rows [start, stop) after reading
    scalar: bool = False


@dataclass(frozen=True)
class RowList:
    unique: np.ndarray  # sorted unique rows to read
    inverse: np.ndarray  # result = read(unique)[inverse]


def row_number(i: int, n: int, what: str) -> int:
    """Row ``i`` of ``n`` counted from the start (negative: from the end); IndexError beyond."""
    if not -n <= i < n:
        raise IndexError(f"row {i} is out of range for {what} with {n} rows")
    return i % n


def resolve(key: Any, n: int, what: str) -> RowRange | RowList:
    """Resolve an int, slice, int array or boolean mask over ``n`` rows."""
    if isinstance(key, slice):
        r = range(*key.indices(n))
        if len(r) == 0:
            return RowRange(0, 0, slice(None))
        if r.step == 1:
            return RowRange(r.start, r.stop, slice(None))
        lo = min(r[0], r[-1])
        return RowRange(lo, max(r[0], r[-1]) + 1, slice(r[0] - lo, None, r.step))
    if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
        i = row_number(operator.index(key), n, what)
        return RowRange(i, i + 1, slice(None), scalar=True)
    arr = np.asarray(key)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(
                f"boolean index of shape {arr.shape} does not match {n} rows of {what}"
            )
        rows = np.flatnonzero(arr)
        return RowList(rows, np.arange(len(rows)))
    if arr.dtype.kind in "iu" and arr.ndim == 1:
        rows = arr.astype(np.int64)
        if len(rows) and (rows.min() < -n or rows.max() >= n):
            bad = rows[(rows < -n) | (rows >= n)][0]
            raise IndexError(f"row {bad} is out of range for {what} with {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        unique, inverse = np.unique(rows, return_inverse=True)
        return RowList(unique, inverse)
    if arr.ndim == 1 and arr.size == 0:
        return RowList(np.empty(0, np.int64), np.empty(0, np.int64))
    raise IndexError(
        f"{what} rows are selected by an int, a slice, an int array or a boolean mask, not {key!r}"
    )
