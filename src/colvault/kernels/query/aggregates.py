"""Streaming aggregates: count, sum, mean, std, min, max, histogram and group-by, chunk by chunk.

The query pipeline feeds one chunk of one column at a time (a 1-d array of up to ~131072 values,
optionally with the int64 ``positions`` a filter selected in it; ``None`` takes every row). Every
aggregate is a small state updated in place per chunk and finalized once, so memory is bounded by
the state, whatever the table size. States of two workers merge (``stats_merge``,
``group_merge``), so threads can each keep their own and combine at the end.

Semantics are numpy's, so every answer can be checked against numpy: NaN is skipped (the ``nan*``
functions), and so is NaT (datetime64/timedelta64 columns are passed as their int64 view with
``nat=True``). ``std`` has ddof 0. Integer sums wrap like ``np.sum`` (int64 for signed columns,
uint64 for unsigned). Float columns, float32 included, are summed in float64: float32 results are
therefore those of numpy on ``values.astype(np.float64)``, not numpy's float32 accumulation.

Accuracy. A chunk is summed pairwise: blocks of 128 values summed on SIMD lanes of partial sums
(as ``np.add.reduce`` does with 8 accumulators), block sums combined as a binary tree; chunk sums
are combined with Neumaier's compensated sum. ``std`` merges (count, sum, M2) per chunk with Chan
et al.'s parallel formula, M2 of a chunk being the two-pass sum of squared deviations from the
chunk mean, so it does not lose digits to cancellation as ``E[x²] - E[x]²`` would. Both agree
with numpy to ~1e-15 relative on well-conditioned data; ``mean`` is ``sum / count``, as
``np.nanmean`` computes it, so infinities come out as numpy's (``[inf, -inf]`` sums to NaN,
``[inf]`` has std NaN, an overflowing sum gives std inf). Group-by accumulates each group with
Neumaier sums (values, then squared deviations from the group's chunk mean) and Chan's merge.

Speed, per 131072-value chunk on the 2-core benchmark machine (one thread, best of 40): column
statistics 60-115 µs (numpy's nansum + nanstd + nanmin + nanmax: 230-540 µs); histogram
~390 µs (``np.histogram``: 1.1-1.8 ms); dense group-by over 100 groups 480-630 µs; hashed
group-by 0.75-1 ms over 100 distinct keys, ~2.3 ms over 10 000 (half of it the hash probes).
With ``positions``, the selected rows are first gathered into a contiguous array
(bounds-checked), then processed as a whole chunk.

Layouts are documented at :data:`STATS_SLOTS` (one 64-byte int64 buffer for column statistics)
and :class:`GroupState` (accumulator rows indexed by group, shared by the dense and the hashed
group-by). Bool columns work as they are (sums count True, as ``np.sum`` does); float16 columns
must be converted to float32 first (Numba has no float16 arithmetic).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import aggcore
from .aggcore import (
    COUNT,
    FCOMP,
    FSUM,
    ISUM,
    KIND_FLOAT,
    KIND_SIGNED,
    KIND_UNSIGNED,
    M2,
    MAX,
    MIN,
    NAN,
    STATS_LEN,
    STATS_SLOTS,
    chunk_state,
    kind_of,
)

NAT = np.iinfo(np.int64).min


# --- column statistics -----------------------------------------------------------------------


def new_stats_state(dtype: Any = None) -> np.ndarray:
    """A fresh stats state (see :data:`STATS_SLOTS`); the same layout serves every dtype, so
    ``dtype`` is only checked (TypeError for columns without aggregates)."""
    if dtype is not None:
        kind_of(dtype)
    return np.zeros(STATS_LEN, np.int64)


def stats_merge(state: np.ndarray, other: np.ndarray, kind: int) -> None:
    """Fold the stats state ``other`` into ``state``; ``kind`` is KIND_* of the column.

    Chan et al.: M2 = M2a + M2b + (mean_b - mean_a)² · na·nb / (na + nb). A few scalar steps
    per chunk, so plain Python (Python floats are IEEE doubles: the same arithmetic a kernel
    would do, without one to compile).
    """
    nb = int(other[COUNT])
    na = int(state[COUNT])
    nan = int(state[NAN]) + int(other[NAN])
    if nb == 0:
        state[NAN] = nan
        return
    if na == 0:
        state[:] = other
        state[NAN] = nan
        return
    fs = state.view(np.float64).tolist()
    fo = other.view(np.float64).tolist()
    sa = compensated(fs[FSUM], fs[FCOMP])
    sb = compensated(fo[FSUM], fo[FCOMP])
    delta = sb / nb - sa / na
    m2 = fs[M2] + fo[M2] + delta * delta * (float(na) * float(nb) / float(na + nb))
    s, c = neumaier(fs[FSUM], fs[FCOMP], fo[FSUM])
    s, c = neumaier(s, c, fo[FCOMP])
    acc = aggcore.ACC_TYPE[kind]
    mine = state[MIN : MAX + 1].view(acc)
    theirs = other[MIN : MAX + 1].view(acc)
    lo = theirs[0] if theirs[0] < mine[0] else mine[0]
    hi = theirs[1] if theirs[1] > mine[1] else mine[1]
    mine[0] = lo
    mine[1] = hi
    state[COUNT] = na + nb
    state[NAN] = nan
    state[ISUM : ISUM + 1] += other[ISUM : ISUM + 1]  # an array add: wraps, as int64 sums do
    state[FSUM : M2 + 1].view(np.float64)[:] = (s, c, m2)


def chunk_stats(values: np.ndarray, positions: np.ndarray | None, nat: bool) -> np.ndarray:
    """Stats state (see :data:`STATS_SLOTS`) of one chunk alone; merge it with
    :func:`stats_merge`. Arguments as :func:`stats_update`."""
    return chunk_state(values, positions, nat)


def stats_update(
    state: np.ndarray, values: np.ndarray, positions: np.ndarray | None, nat: bool
) -> None:
    """Fold one chunk into the stats state ``state`` (see :data:`STATS_SLOTS`).

    ``values``: a 1-d numeric chunk (datetimes as their int64 view); ``positions``: int64 rows of
    the chunk to take, or None for all; ``nat``: int64 min is NaT (missing).

    >>> state = new_stats_state(np.float64)
    >>> stats_update(state, np.array([1.0, np.nan, 7.0]), np.array([0, 1]), False)
    >>> stats_update(state, np.array([3.0, 5.0]), None, False)
    >>> r = stats_result(state, np.float64)
    >>> r["count"], r["nan_count"], float(r["min"]), float(r["sum"]), float(r["std"])
    (3, 1, 1.0, 9.0, 1.632993161855452)
    """
    stats_merge(state, chunk_state(values, positions, nat), kind_of(values.dtype))


# The merge runs in Python on floats: the kernels' own compensated-sum steps, uncompiled.
neumaier = getattr(aggcore.neumaier, "py_func", aggcore.neumaier)
compensated = getattr(aggcore.compensated, "py_func", aggcore.compensated)


def _std(m2: float, total: float, count: int) -> float:
    """sqrt(M2 / count), or what numpy gets once the sum overflowed: its mean is then ±inf, so
    every deviation is infinite (std inf), or NaN when a value was infinite (M2 is NaN then)."""
    if m2 != m2:
        return math.nan
    if not math.isfinite(total):
        return math.inf
    return math.sqrt(m2 / count)


def stats_result(state: np.ndarray, dtype: Any) -> dict[str, Any]:
    """Final statistics of a stats state for a column of ``dtype``.

    Keys ``count``, ``nan_count`` (ints), ``min``, ``max`` (numpy scalars of ``dtype``, None when
    count is 0), ``sum`` (int64 for signed, uint64 for unsigned columns, float64 for floats; 0 when
    count is 0), ``mean``, ``std`` (float64, NaN when count is 0). Datetime and timedelta columns
    get None for sum, mean and std.
    """
    dtype = np.dtype(dtype)
    kind = kind_of(dtype)
    f = state.view(np.float64)
    count = int(state[COUNT])
    out: dict[str, Any] = {"count": count, "nan_count": int(state[NAN])}
    if count == 0:
        out["min"] = out["max"] = None
    else:
        acc = {KIND_FLOAT: np.float64, KIND_UNSIGNED: np.uint64, KIND_SIGNED: np.int64}[kind]
        bits = state[MIN : MAX + 1].view(acc)
        if dtype.kind in "Mm":
            lo, hi = bits.view(dtype)
        else:
            lo, hi = bits.astype(dtype)
        out["min"], out["max"] = lo, hi
    if dtype.kind in "Mm":
        out["sum"] = out["mean"] = out["std"] = None
        return out
    total = compensated(float(f[FSUM]), float(f[FCOMP]))
    if kind == KIND_FLOAT:
        out["sum"] = np.float64(total)
    elif kind == KIND_UNSIGNED:
        out["sum"] = state[ISUM : ISUM + 1].view(np.uint64)[0]
    else:
        out["sum"] = state[ISUM]
    if count == 0:
        out["mean"] = out["std"] = np.float64(np.nan)
    else:
        out["mean"] = np.float64(total / count)
        out["std"] = np.float64(_std(float(f[M2]), total, count))
    return out


# The public face of the aggregate kernels (histogram and group-by live in their own modules).
from .grouping import (  # noqa: E402
    MAX_LOAD,
    GroupState,
    HashGroupBy,
    group_by_dense_update,
    group_by_hash_update,
    group_merge,
    group_result,
    hash_assign,
    hash_insert,
    new_group_state,
)
from .histogram import histogram_edges, histogram_update  # noqa: E402

__all__ = [
    "KIND_FLOAT",
    "KIND_SIGNED",
    "KIND_UNSIGNED",
    "MAX_LOAD",
    "NAT",
    "STATS_SLOTS",
    "GroupState",
    "HashGroupBy",
    "chunk_stats",
    "group_by_dense_update",
    "group_by_hash_update",
    "group_merge",
    "group_result",
    "hash_assign",
    "hash_insert",
    "histogram_edges",
    "histogram_update",
    "kind_of",
    "new_group_state",
    "new_stats_state",
    "stats_merge",
    "stats_result",
    "stats_update",
]
