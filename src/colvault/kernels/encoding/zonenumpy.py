"""Zone maps in numpy alone: this module never imports Numba (see :func:`stats`)."""

from __future__ import annotations

from typing import Any

import numpy as np

NAT = np.iinfo(np.int64).min


def stats(values: np.ndarray, nat: bool) -> tuple[Any, Any, int, bool, int]:
    """The zone map kernel's answer (:mod:`.zonemap`) in numpy: for a process whose cache
    lacks the kernel (a few passes over a chunk cost far less than its compile, 0.25 s per
    specialization), and for small chunks (no Numba import for a store of small tables).
    Bounds are equal as numbers (which of -0.0 and 0.0 is taken is unspecified in both)."""
    n = len(values)
    lo, hi = np.minimum.reduce(values), np.maximum.reduce(values)  # no wrappers: small chunks
    miss = None  # no missing value can hide behind finite bounds: NaN propagates, NaT is least
    if values.dtype.kind == "f" and (lo != lo or hi != hi):
        miss = np.isnan(values)
    elif nat and lo == NAT:
        miss = values == NAT
    if miss is None:  # sorted: first the least and last the greatest, then every step
        ordered = values[0] == lo and values[-1] == hi
        return lo, hi, 0, bool(ordered and not np.less(values[1:], values[:-1]).any()), n
    count = int(np.count_nonzero(miss))
    if count == n:
        return values[0], values[0], count, False, 0
    valid = values[~miss]
    return valid.min(), valid.max(), count, False, n - count
