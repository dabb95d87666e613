"""Per-chunk statistics (zone maps), computed in one pass while a chunk is cut.

A zone map is (min, max, nan_count, sorted). Queries use it to skip chunks, to take chunks whole,
and to answer ``min``/``max`` without decompressing. ``nan_count`` counts NaN for floats and NaT
for datetimes (passed here as int64 with ``nat`` set). ``sorted`` means non-decreasing with no NaN.
When every value is NaN, min and max are meaningless and ``valid`` is 0.
"""

from __future__ import annotations

import numba
import numpy as np

NAT = np.iinfo(np.int64).min


@numba.njit(cache=True, nogil=True)
def chunk_stats(values, nat):
    """Return (min, max, nan_count, is_sorted, valid) of a 1-d array in one pass.

    ``nat``: treat int64 minimum as a missing value (datetime64/timedelta64 viewed as int64).
    """
    n = values.shape[0]
    lo = values[0]
    hi = values[0]
    nan_count = 0
    valid = 0
    is_sorted = True
    prev = values[0]
    for i in range(n):
        x = values[i]
        if x != x or (nat and x == NAT):
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
