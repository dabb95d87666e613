"""Per-chunk statistics (zone maps), computed in one pass while a chunk is cut.

A zone map is (min, max, nan_count, sorted, valid). Queries use it to skip chunks, to take chunks
whole, and to answer ``min``/``max`` without decompressing. ``nan_count`` counts NaN for floats and
NaT for datetimes (passed as int64 with ``nat`` set). ``sorted`` means non-decreasing with no NaN.
When every value is missing, min and max are meaningless and ``valid`` is 0.

Two loops, because they compile to different machine code: the float loop skips NaN and keeps a
branch-free min/max; the integer loop has no NaN test and LLVM vectorizes it.
"""

from __future__ import annotations

import numba
import numpy as np

NAT = np.iinfo(np.int64).min


@numba.njit(cache=True, nogil=True)
def float_stats(values):
    """(min, max, nan_count, is_sorted, valid) of a 1-d float array."""
    n = values.shape[0]
    i = 0
    while i < n and values[i] != values[i]:
        i += 1
    if i == n:
        return values[0], values[0], n, False, 0
    nan_count = i
    lo = values[i]
    hi = values[i]
    prev = values[i]
    unsorted = False
    for j in range(i + 1, n):
        x = values[j]
        if x != x:
            nan_count += 1
            continue
        lo = min(lo, x)
        hi = max(hi, x)
        unsorted |= x < prev
        prev = x
    return lo, hi, nan_count, nan_count == 0 and not unsorted, n - nan_count


@numba.njit(cache=True, nogil=True)
def int_stats(values, nat):
    """(min, max, nan_count, is_sorted, valid) of a 1-d integer array; ``nat``: int64 min is NaT."""
    n = values.shape[0]
    lo = values[0]
    hi = values[0]
    nan_count = 0
    valid = 0
    is_sorted = True
    prev = values[0]
    for i in range(n):
        x = values[i]
        if nat and x == NAT:
            nan_count += 1
            is_sorted = False
            continue
        if valid == 0:
            lo = x
            hi = x
        else:
            if x < lo:
                lo = x
            if x > hi:
                hi = x
            if x < prev:
                is_sorted = False
        prev = x
        valid += 1
    return lo, hi, nan_count, is_sorted, valid
