"""Per-chunk statistics (zone maps), computed while a chunk is cut.

A zone map is (min, max, nan_count, sorted, valid). Queries use it to skip chunks, to take chunks
whole, and to answer ``min``/``max`` without decompressing. ``nan_count`` counts NaN for floats and
NaT for datetimes (passed as int64 with ``nat`` set). ``sorted`` means non-decreasing with no NaN.
When every value is missing, min and max are meaningless and ``valid`` is 0.

Measured on the benchmark columns: one loop that tests every value for NaN/NaT cannot be
vectorized, while counting missing values first (a vectorized pass) and then running a branch-free
min/max/sorted loop is 1.7-4.9x faster. Chunks with missing values take the slower loop.

A process whose Numba cache lacks the kernel computes zone maps with numpy instead, for its
first :data:`.compiling.NUMPY_BUDGET` values (a new user's first session: the two
specializations cost 0.5 s of compile; numpy passes over a chunk cost milliseconds); then it
compiles the kernel, as ``colvault warmup`` does ahead.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .. import compiling
from ..selects import greater, lesser, missing, where
from ..wordops import KERNEL
from . import zonenumpy

NAT = zonenumpy.NAT


@numba.njit(cache=True, nogil=True, **KERNEL)
def _stats(values, nat):
    """Zone map of a chunk of int64, uint64 or float64 values (see :func:`float_stats`).

    Missing values are counted first (a pass that vectorizes); a chunk without any then takes
    a branch-free min/max/order loop, one with some a min/max loop that puts the first valid
    value in place of the missing ones. Selects are intrinsics (no branches): Numba compiles
    this in a fraction of the time that branches and calls to ``min``/``max`` cost.
    """
    n = values.shape[0]
    count = 0
    for i in range(n):
        count += missing(values[i], nat)
    lo = values[0]
    hi = values[0]
    if count == 0:
        unsorted = False
        for i in range(1, n):
            x = values[i]
            lo = lesser(x, lo)
            hi = greater(x, hi)
            unsorted |= x < values[i - 1]
        return lo, hi, 0, not unsorted, n
    first = 0
    while first < n and missing(values[first], nat):
        first += 1
    if first < n:
        lo = hi = values[first]
    for i in range(first + 1, n):
        x = values[i]
        x = where(missing(x, nat), lo, x)
        lo = lesser(x, lo)
        hi = greater(x, hi)
    return lo, hi, count, False, n - count


def _zone_stats(wide: np.ndarray, nat: bool) -> tuple[Any, Any, int, bool, int]:
    if (
        compiling.SMALL
        and not getattr(_stats, "overloads", True)  # compiled here already: no type lookups
        and compiling.would_compile(_stats, wide, nat)
        and compiling.spend_numpy(_stats, len(wide))
    ):
        compiling.cold_start(__name__)
        return zonenumpy.stats(wide, nat)
    return _stats(wide, nat)


def float_stats(values: np.ndarray) -> tuple[Any, Any, int, bool, int]:
    """(min, max, nan_count, is_sorted, valid) of a 1-d float array (min and max as float64,
    which holds every float32 and float16 exactly: one compiled kernel serves all three)."""
    with np.errstate(invalid="ignore"):  # a signalling NaN widens to a quiet one: still NaN
        wide = np.ascontiguousarray(values, np.float64)
    return _zone_stats(wide, False)


def int_stats(values: np.ndarray, nat: bool) -> tuple[Any, Any, int, bool, int]:
    """(min, max, nan_count, is_sorted, valid) of a 1-d integer array; ``nat``: int64 min is NaT.
    Integers narrower than 64 bits are widened to int64 (exactly): one kernel for them all,
    and one for uint64."""
    wide = np.uint64 if values.dtype == np.uint64 else np.int64
    return _zone_stats(np.ascontiguousarray(values, wide), bool(nat))
