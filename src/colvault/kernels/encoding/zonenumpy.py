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
    miss = np.isnan(values) if values.dtype.kind == "f" else (values == NAT if nat else None)
    count = int(np.count_nonzero(miss)) if miss is not None else 0
    if count == n:
        return values[0], values[0], count, False, 0
    if miss is not None and count:
        valid = values[~miss]
        return valid.min(), valid.max(), count, False, n - count
    in_order = not bool(np.any(values[1:] < values[:-1]))
    return values.min(), values.max(), 0, in_order, n
