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

Accuracy. A chunk is summed pairwise (blocks of 128 values on 8 accumulators, block sums combined
as a binary tree), like ``np.add.reduce``; chunk sums are combined with Neumaier's compensated
sum. ``std`` merges (count, sum, M2) per chunk with Chan et al.'s parallel formula, M2 of a chunk
being the two-pass sum of squared deviations from the chunk mean, so it does not lose digits to
cancellation as ``E[x²] - E[x]²`` would. Both agree with numpy to ~1e-15 relative on
well-conditioned data; ``mean`` is ``sum / count`` exactly as ``np.nanmean`` computes it, so
infinities come out as numpy's (``[inf, -inf]`` sums to NaN, ``[inf]`` has std NaN).

Layouts are documented at :data:`STATS_SLOTS` (one 64-byte int64 buffer for column statistics)
and :class:`GroupState` (accumulator rows indexed by group, shared by the dense and the hashed
group-by). Bool and float16 columns are not handled (view bool as uint8 and pass ``bool`` as the
dtype to the result functions).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import overload

NAT = np.iinfo(np.int64).min

# --- statistics state ------------------------------------------------------------------------

#: Slots of the stats state, an int64 array of length ``STATS_LEN`` (one cache line). Slots 0-4
#: are integers; MIN and MAX hold the bits of the *accumulation type* of the column (int64 for
#: signed and datetime columns, uint64 for unsigned, float64 for floats); FSUM, FCOMP and M2 hold
#: float64 bits (read them through ``state.view(np.float64)``).
STATS_SLOTS = {
    "COUNT": 0,  # non-missing values
    "NAN": 1,  # NaN (floats) or NaT (``nat``) values
    "ISUM": 2,  # exact integer sum, wrapping; uint64 columns: the same bits read as uint64
    "MIN": 3,  # meaningful only when COUNT > 0
    "MAX": 4,
    "FSUM": 5,  # float64 sum of the values (Neumaier: running sum ...)
    "FCOMP": 6,  # ... and its compensation; the sum is FSUM + FCOMP while FSUM is finite
    "M2": 7,  # float64 sum of squared deviations from the mean
}
COUNT, NAN, ISUM, MIN, MAX, FSUM, FCOMP, M2 = range(8)
STATS_LEN = 8

# Kind of accumulation type, a run-time argument where the value type is not at hand (merges).
KIND_SIGNED, KIND_UNSIGNED, KIND_FLOAT = 0, 1, 2

_BLOCK = 128  # values summed on 8 accumulators before the pairwise tree takes over


def _kind_of(dtype: np.dtype) -> int:
    kind = np.dtype(dtype).kind
    if kind == "f":
        return KIND_FLOAT
    if kind in "ub":
        return KIND_UNSIGNED
    if kind in "iMm":
        return KIND_SIGNED
    raise TypeError(f"no aggregates for dtype {dtype}")


# --- type-directed helpers (resolved at compile time) ----------------------------------------


def _is_missing(x, nat):  # pragma: no cover - replaced by the overload inside kernels
    raise NotImplementedError


@overload(_is_missing)
def _is_missing_impl(x, nat):
    """NaN for floats; NaT (int64 min) for signed integers when ``nat``; never for unsigned."""
    if isinstance(x, types.Float):
        return lambda x, nat: x != x
    if x in types.signed_domain:
        return lambda x, nat: nat and x == NAT
    return lambda x, nat: False


def _acc_view(state, values):  # pragma: no cover
    raise NotImplementedError


@overload(_acc_view)
def _acc_view_impl(state, values):
    """``state`` viewed as the accumulation type of ``values`` (for MIN and MAX)."""
    dt = values.dtype
    if isinstance(dt, types.Float):
        return lambda state, values: state.view(np.float64)
    if dt in types.unsigned_domain:
        return lambda state, values: state.view(np.uint64)
    return lambda state, values: state


def _kind(values):  # pragma: no cover
    raise NotImplementedError


@overload(_kind)
def _kind_impl(values):
    dt = values.dtype
    if isinstance(dt, types.Float):
        return lambda values: KIND_FLOAT
    if dt in types.unsigned_domain:
        return lambda values: KIND_UNSIGNED
    return lambda values: KIND_SIGNED


def _int_term(x):  # pragma: no cover
    raise NotImplementedError


@overload(_int_term)
def _int_term_impl(x):
    """``x`` as an int64 addend of the exact sum (bit-cast for uint64); 0 for floats."""
    if isinstance(x, types.Float):
        return lambda x: np.int64(0)
    return lambda x: np.int64(x)


def _bin_type(values, x):  # pragma: no cover
    raise NotImplementedError


@overload(_bin_type)
def _bin_type_impl(values, x):
    """``x`` in the type np.histogram bins ``values`` in: float32 stays float32, rest float64."""
    if values.dtype == types.float32:
        return lambda values, x: np.float32(x)
    return lambda values, x: np.float64(x)


def _bin_empty(values, n):  # pragma: no cover
    raise NotImplementedError


@overload(_bin_empty)
def _bin_empty_impl(values, n):
    """An uninitialized array of ``n`` values of the bin type of ``values``."""
    if values.dtype == types.float32:
        return lambda values, n: np.empty(n, np.float32)
    return lambda values, n: np.empty(n, np.float64)


# --- generic chunk helpers -------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _selected(values, positions):
    """Number of rows taken from the chunk."""
    if positions is None:
        return values.shape[0]
    return positions.shape[0]


@numba.njit(cache=True, nogil=True)
def _row(positions, j):
    """Row of the chunk holding the j-th selected value."""
    if positions is None:
        return j
    return positions[j]


@numba.njit(cache=True, nogil=True)
def _count_missing(values, positions, nat):
    """Missing values among the selected rows (a separate pass: it vectorizes)."""
    missing = 0
    for j in range(_selected(values, positions)):
        missing += _is_missing(values[_row(positions, j)], nat)
    return missing


@numba.njit(cache=True, nogil=True)
def _term(values, positions, j, nat, skip, center, square):
    """The j-th addend as float64: the value or its squared deviation; 0 when missing."""
    x = values[_row(positions, j)]
    d = np.float64(x) - center
    t = d * d if square else d
    if skip and _is_missing(x, nat):
        return 0.0
    return t


@numba.njit(cache=True, nogil=True)
def _pairwise(values, positions, nat, skip, center, square):
    """Pairwise float64 sum of ``x - center`` (or its square) over the selected values.

    Blocks of 128 values go on 8 independent accumulators (error and speed of ``np.add.reduce``);
    block sums are merged as a binary counter does, so the error grows with log2(blocks) only.
    ``skip`` counts missing values as 0.
    """
    n = _selected(values, positions)
    stack = np.empty(64, np.float64)
    top = 0
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in range(nblocks):
        j = b * _BLOCK
        stop = min(j + _BLOCK, n)
        r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = 0.0
        while j + 8 <= stop:
            r0 += _term(values, positions, j, nat, skip, center, square)
            r1 += _term(values, positions, j + 1, nat, skip, center, square)
            r2 += _term(values, positions, j + 2, nat, skip, center, square)
            r3 += _term(values, positions, j + 3, nat, skip, center, square)
            r4 += _term(values, positions, j + 4, nat, skip, center, square)
            r5 += _term(values, positions, j + 5, nat, skip, center, square)
            r6 += _term(values, positions, j + 6, nat, skip, center, square)
            r7 += _term(values, positions, j + 7, nat, skip, center, square)
            j += 8
        s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while j < stop:
            s += _term(values, positions, j, nat, skip, center, square)
            j += 1
        k = b + 1
        while k & 1 == 0:
            top -= 1
            s = stack[top] + s
            k >>= 1
        stack[top] = s
        top += 1
    total = 0.0
    while top > 0:
        top -= 1
        total = stack[top] + total
    return total


@numba.njit(cache=True, nogil=True)
def _minmax(values, positions, nat, skip):
    """(min, max) of the selected non-missing values; at least one must exist."""
    n = _selected(values, positions)
    if not skip:
        lo = hi = values[_row(positions, 0)]
        for j in range(1, n):
            x = values[_row(positions, j)]
            lo = x if x < lo else lo
            hi = x if x > hi else hi
        return lo, hi
    first = 0
    while _is_missing(values[_row(positions, first)], nat):
        first += 1
    lo = hi = values[_row(positions, first)]
    for j in range(first + 1, n):
        x = values[_row(positions, j)]
        if _is_missing(x, nat):
            continue
        lo = x if x < lo else lo
        hi = x if x > hi else hi
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _int_sum(values, positions, nat, skip):
    """Exact (wrapping) int64 sum of the selected non-missing values; 0 for floats."""
    s = np.int64(0)
    for j in range(_selected(values, positions)):
        x = values[_row(positions, j)]
        if skip and _is_missing(x, nat):
            continue
        s += _int_term(x)
    return s


@numba.njit(cache=True, nogil=True)
def _neumaier(s, c, x):
    """Add ``x`` to the compensated sum (s, c)."""
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


@numba.njit(cache=True, nogil=True)
def _compensated(s, c):
    """Value of a compensated sum (the compensation is meaningless once ``s`` is inf or NaN)."""
    return s + c if math.isfinite(s) else s


# --- column statistics -----------------------------------------------------------------------


def new_stats_state() -> np.ndarray:
    """A fresh stats state (see :data:`STATS_SLOTS`); the same layout serves every dtype."""
    return np.zeros(STATS_LEN, np.int64)


@numba.njit(cache=True, nogil=True)
def stats_merge(state, other, kind):
    """Fold the stats state ``other`` into ``state``; ``kind`` is KIND_* of the column.

    Chan et al.: M2 = M2a + M2b + (mean_b - mean_a)² · na·nb / (na + nb).
    """
    fs = state.view(np.float64)
    fo = other.view(np.float64)
    state[NAN] += other[NAN]
    nb = other[COUNT]
    if nb == 0:
        return
    na = state[COUNT]
    if na == 0:
        for slot in (COUNT, ISUM, MIN, MAX, FSUM, FCOMP, M2):
            state[slot] = other[slot]
        return
    sa = _compensated(fs[FSUM], fs[FCOMP])
    sb = _compensated(fo[FSUM], fo[FCOMP])
    delta = sb / nb - sa / na
    fs[M2] = fs[M2] + fo[M2] + delta * delta * (float(na) * float(nb) / float(na + nb))
    s, c = _neumaier(fs[FSUM], fs[FCOMP], fo[FSUM])
    s, c = _neumaier(s, c, fo[FCOMP])
    fs[FSUM] = s
    fs[FCOMP] = c
    state[COUNT] = na + nb
    state[ISUM] += other[ISUM]
    if kind == KIND_FLOAT:
        fs[MIN] = min(fs[MIN], fo[MIN])
        fs[MAX] = max(fs[MAX], fo[MAX])
    elif kind == KIND_UNSIGNED:
        us = state.view(np.uint64)
        uo = other.view(np.uint64)
        us[MIN] = min(us[MIN], uo[MIN])
        us[MAX] = max(us[MAX], uo[MAX])
    else:
        state[MIN] = min(state[MIN], other[MIN])
        state[MAX] = max(state[MAX], other[MAX])


@numba.njit(cache=True, nogil=True)
def chunk_stats(part, values, positions, nat):
    """Fill the zeroed stats state ``part`` with the statistics of one chunk."""
    missing = _count_missing(values, positions, nat)
    valid = _selected(values, positions) - missing
    part[NAN] = missing
    part[COUNT] = valid
    if valid == 0:
        return
    skip = missing > 0
    acc = _acc_view(part, values)
    lo, hi = _minmax(values, positions, nat, skip)
    acc[MIN] = lo
    acc[MAX] = hi
    part[ISUM] = _int_sum(values, positions, nat, skip)
    f = part.view(np.float64)
    s = _pairwise(values, positions, nat, skip, 0.0, False)
    f[FSUM] = s
    f[FCOMP] = 0.0
    f[M2] = _pairwise(values, positions, nat, skip, s / valid, True)


@numba.njit(cache=True, nogil=True)
def stats_update(state, values, positions, nat):
    """Fold one chunk into the stats state ``state`` (see :data:`STATS_SLOTS`).

    ``values``: a 1-d numeric chunk (datetimes as their int64 view); ``positions``: int64 rows of
    the chunk to take, or None for all; ``nat``: int64 min is NaT (missing).
    """
    part = np.zeros(STATS_LEN, np.int64)
    chunk_stats(part, values, positions, nat)
    stats_merge(state, part, _kind(values))


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
    kind = _kind_of(dtype)
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
    total = _compensated(float(f[FSUM]), float(f[FCOMP]))
    if kind == KIND_FLOAT:
        out["sum"] = np.float64(total)
    elif kind == KIND_UNSIGNED and dtype.kind != "b":
        out["sum"] = state[ISUM : ISUM + 1].view(np.uint64)[0]
    else:
        out["sum"] = state[ISUM]
    if count == 0:
        out["mean"] = out["std"] = np.float64(np.nan)
    else:
        out["mean"] = np.float64(total / count)
        out["std"] = np.float64(_std(float(f[M2]), total, count))
    return out


# --- histogram -------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def histogram_edges(values, bins, lo, hi):
    """Bin edges exactly as ``np.histogram(values, bins, range=(lo, hi))`` makes them.

    ``np.linspace`` in float64 (``i * step + lo``, or ``i / bins * delta + lo`` when the step
    underflows, last edge ``hi``), cast to the bin type: float32 for float32 values, else float64.
    An empty range is widened by 0.5 on both sides; bad ranges raise ValueError like numpy.
    """
    if bins < 1:
        raise ValueError("`bins` must be positive, when an integer")
    if lo > hi:
        raise ValueError("max must be larger than min in range parameter.")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("supplied range is not finite")
    if lo == hi:
        lo = lo - 0.5
        hi = hi + 0.5
    delta = hi - lo
    step = delta / bins
    edges = _bin_empty(values, bins + 1)
    for i in range(bins):
        y = (float(i) / bins) * delta + lo if step == 0.0 else float(i) * step + lo
        edges[i] = _bin_type(values, y)
    edges[bins] = _bin_type(values, hi)
    for i in range(bins):
        if edges[i] >= edges[i + 1]:
            raise ValueError("Too many bins for data range.")
    return edges


@numba.njit(cache=True, nogil=True)
def histogram_update(counts, values, positions, lo, hi):
    """Add the selected values of a chunk to ``counts`` (int64, one per bin).

    The result matches ``np.histogram(all_values, len(counts), range=(lo, hi))`` bit for bit, for
    ``lo`` and ``hi`` Python floats: equal-width bins, the last one closed on the right; values
    outside the range and NaN skipped. numpy's fast path for uniform bins is replicated step by
    step: the range test and ``x - lo`` in the bin type (float32 for float32 columns, float64
    otherwise, integers converted first), the index ``int((x - lo) / (hi - lo) * bins)`` in
    float64, pulled back from ``bins``, then moved down if ``x`` lies below its left edge and up if
    it reaches its right edge (except in the last bin). Where numpy would index out of its edges
    (float32 ranges rounded past a bin), the index is clamped instead.
    """
    n = counts.shape[0]
    edges = histogram_edges(values, n, lo, hi)
    if lo == hi:
        lo = lo - 0.5
        hi = hi + 0.5
    norm = hi - lo
    first = _bin_type(values, lo)
    last = _bin_type(values, hi)
    for j in range(_selected(values, positions)):
        x = _bin_type(values, values[_row(positions, j)])
        if not (x >= first and x <= last):
            continue
        idx = np.int64(np.float64(x - first) / norm * n)
        if idx >= n:
            idx = n - 1
        if idx > 0 and x < edges[idx]:
            idx -= 1
        if idx != n - 1 and x >= edges[idx + 1]:
            idx += 1
        counts[idx] += 1


# --- group-by --------------------------------------------------------------------------------

# Rows of ``GroupState.ints`` (int64) and ``GroupState.floats`` (float64); columns are groups.
G_COUNT, G_NAN, G_ISUM, G_LCOUNT = range(4)
G_FSUM, G_FCOMP, G_M2, G_LSUM, G_LCOMP, G_LMEAN, G_LM2, G_LM2C = range(8)
G_INT_ROWS, G_FLOAT_ROWS = 4, 8


class GroupState(NamedTuple):
    """Accumulators of a group-by, one column per group (a dense key code or a hash group id).

    ``ints`` (int64, 4 x groups): G_COUNT non-missing values, G_NAN missing values, G_ISUM the
    exact wrapping integer sum (uint64 bits for unsigned columns), G_LCOUNT per-chunk scratch.
    ``floats`` (float64, 8 x groups): G_FSUM + G_FCOMP the compensated float64 sum, G_M2 the sum
    of squared deviations; rows G_LSUM.. are per-chunk scratch, zero between calls.
    ``vmin``, ``vmax`` (the column's dtype): meaningful only where G_COUNT > 0.
    """

    ints: np.ndarray
    floats: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray


def new_group_state(groups: int, dtype: Any) -> GroupState:
    """Zeroed accumulators for ``groups`` groups of a column of ``dtype`` (datetimes: int64)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "Mm":
        dtype = np.dtype(np.int64)
    return GroupState(
        np.zeros((G_INT_ROWS, groups), np.int64),
        np.zeros((G_FLOAT_ROWS, groups), np.float64),
        np.zeros(groups, dtype),
        np.zeros(groups, dtype),
    )


@numba.njit(cache=True, nogil=True)
def _group_core(codes, values, positions, nat, ints, floats, vmin, vmax):
    """Fold a chunk into per-group accumulators; ``codes[row]`` is the group of each row.

    Two passes per chunk: per-group count, compensated sum, min and max, then the squared
    deviations from each group's chunk mean; the chunk's (count, sum, M2) per group is then merged
    into the totals with Chan et al.'s formula. Only the groups the chunk touched are visited.
    """
    groups = ints.shape[1]
    m = _selected(values, positions)
    touched = np.empty(min(m, groups), np.int64)
    nt = 0
    for j in range(m):
        i = _row(positions, j)
        k = codes[i]
        if k < 0 or k >= groups:
            raise IndexError("group code out of range")
        x = values[i]
        if _is_missing(x, nat):
            ints[G_NAN, k] += 1
            continue
        c = ints[G_LCOUNT, k]
        if c == 0:
            touched[nt] = k
            nt += 1
            if ints[G_COUNT, k] == 0:
                vmin[k] = x
                vmax[k] = x
        ints[G_LCOUNT, k] = c + 1
        ints[G_ISUM, k] += _int_term(x)
        s, cc = _neumaier(floats[G_LSUM, k], floats[G_LCOMP, k], np.float64(x))
        floats[G_LSUM, k] = s
        floats[G_LCOMP, k] = cc
        if x < vmin[k]:
            vmin[k] = x
        if x > vmax[k]:
            vmax[k] = x
    for t in range(nt):
        k = touched[t]
        floats[G_LMEAN, k] = _compensated(floats[G_LSUM, k], floats[G_LCOMP, k]) / ints[G_LCOUNT, k]
    for j in range(m):
        i = _row(positions, j)
        x = values[i]
        if _is_missing(x, nat):
            continue
        k = codes[i]
        d = np.float64(x) - floats[G_LMEAN, k]
        s, cc = _neumaier(floats[G_LM2, k], floats[G_LM2C, k], d * d)
        floats[G_LM2, k] = s
        floats[G_LM2C, k] = cc
    for t in range(nt):
        k = touched[t]
        nb = ints[G_LCOUNT, k]
        na = ints[G_COUNT, k]
        m2b = _compensated(floats[G_LM2, k], floats[G_LM2C, k])
        if na == 0:
            floats[G_FSUM, k] = floats[G_LSUM, k]
            floats[G_FCOMP, k] = floats[G_LCOMP, k]
            floats[G_M2, k] = m2b
        else:
            sa = _compensated(floats[G_FSUM, k], floats[G_FCOMP, k])
            delta = floats[G_LMEAN, k] - sa / na
            floats[G_M2, k] += m2b + delta * delta * (float(na) * float(nb) / float(na + nb))
            s, cc = _neumaier(floats[G_FSUM, k], floats[G_FCOMP, k], floats[G_LSUM, k])
            s, cc = _neumaier(s, cc, floats[G_LCOMP, k])
            floats[G_FSUM, k] = s
            floats[G_FCOMP, k] = cc
        ints[G_COUNT, k] = na + nb
        ints[G_LCOUNT, k] = 0
        for r in (G_LSUM, G_LCOMP, G_LMEAN, G_LM2, G_LM2C):
            floats[r, k] = 0.0


@numba.njit(cache=True, nogil=True)
def group_by_dense_update(key_codes, values, positions, nat, ints, floats, vmin, vmax):
    """Fold one chunk into a dense group-by: ``key_codes`` (int64, aligned with ``values``) are
    group numbers in [0, groups), e.g. ``key - min_key``. The four state arrays are a
    :class:`GroupState` (call as ``group_by_dense_update(codes, values, pos, nat, *state)``).
    ``positions`` and ``nat`` as in :func:`stats_update`; a code out of range raises IndexError.
    """
    _group_core(key_codes, values, positions, nat, ints, floats, vmin, vmax)


@numba.njit(cache=True, nogil=True)
def group_merge(ints, floats, vmin, vmax, o_ints, o_floats, o_vmin, o_vmax, target):
    """Fold the accumulators of another group-by (``o_*``) into this one: group ``g`` of the
    other goes to group ``target[g]`` here (``np.arange`` for dense states of equal size)."""
    for g in range(o_ints.shape[1]):
        k = target[g]
        ints[G_NAN, k] += o_ints[G_NAN, g]
        nb = o_ints[G_COUNT, g]
        if nb == 0:
            continue
        na = ints[G_COUNT, k]
        ints[G_ISUM, k] += o_ints[G_ISUM, g]
        if na == 0:
            floats[G_FSUM, k] = o_floats[G_FSUM, g]
            floats[G_FCOMP, k] = o_floats[G_FCOMP, g]
            floats[G_M2, k] = o_floats[G_M2, g]
            vmin[k] = o_vmin[g]
            vmax[k] = o_vmax[g]
        else:
            sa = _compensated(floats[G_FSUM, k], floats[G_FCOMP, k])
            sb = _compensated(o_floats[G_FSUM, g], o_floats[G_FCOMP, g])
            delta = sb / nb - sa / na
            w = float(na) * float(nb) / float(na + nb)
            floats[G_M2, k] += o_floats[G_M2, g] + delta * delta * w
            s, cc = _neumaier(floats[G_FSUM, k], floats[G_FCOMP, k], o_floats[G_FSUM, g])
            s, cc = _neumaier(s, cc, o_floats[G_FCOMP, g])
            floats[G_FSUM, k] = s
            floats[G_FCOMP, k] = cc
            vmin[k] = min(vmin[k], o_vmin[g])
            vmax[k] = max(vmax[k], o_vmax[g])
        ints[G_COUNT, k] = na + nb


def group_result(state: GroupState, dtype: Any, groups: int | None = None) -> dict[str, np.ndarray]:
    """Per-group results (arrays over the first ``groups`` groups, default all).

    ``count``, ``nan_count`` (int64); ``sum`` (int64 / uint64 / float64 as :func:`stats_result`;
    None for datetimes); ``mean``, ``std`` (float64, NaN where count is 0; None for datetimes);
    ``min``, ``max`` (the column's dtype; where count is 0 they hold NaN for floats, NaT for
    datetimes and 0 for integers: mask them with ``count``).
    """
    dtype = np.dtype(dtype)
    g = state.ints.shape[1] if groups is None else groups
    ints, floats = state.ints[:, :g], state.floats[:, :g]
    count = ints[G_COUNT].copy()
    empty = count == 0
    out: dict[str, Any] = {"count": count, "nan_count": ints[G_NAN].copy()}
    vmin, vmax = state.vmin[:g].copy(), state.vmax[:g].copy()
    if dtype.kind in "Mm":
        vmin[empty] = NAT
        vmax[empty] = NAT
        out["min"], out["max"] = vmin.view(dtype), vmax.view(dtype)
        out["sum"] = out["mean"] = out["std"] = None
        return out
    if dtype.kind == "f":
        vmin[empty] = np.nan
        vmax[empty] = np.nan
    else:
        vmin[empty] = 0
        vmax[empty] = 0
    out["min"], out["max"] = vmin.astype(dtype), vmax.astype(dtype)
    s, c = floats[G_FSUM], floats[G_FCOMP]
    total = np.where(np.isfinite(s), s + c, s)
    if dtype.kind == "f":
        out["sum"] = total
    elif dtype.kind == "u":
        out["sum"] = ints[G_ISUM].view(np.uint64).copy()
    else:
        out["sum"] = ints[G_ISUM].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean"] = np.where(empty, np.nan, total / np.maximum(count, 1))
        std = np.sqrt(floats[G_M2] / np.maximum(count, 1))
        std[~np.isfinite(total) & ~np.isnan(std)] = np.inf  # as in _std
        out["std"] = np.where(empty, np.nan, std)
    return out


# --- hashed group-by -------------------------------------------------------------------------

_FIB = np.uint64(0x9E3779B97F4A7C15)
MAX_LOAD = 0.7


@numba.njit(cache=True, nogil=True)
def _slot(key, shift):
    """Home slot of an int64 key: Fibonacci hashing (multiply, keep the top bits)."""
    return np.int64((np.uint64(key) * _FIB) >> np.uint64(shift))


@numba.njit(cache=True, nogil=True)
def _shift(capacity):
    bits = 0
    while (1 << bits) < capacity:
        bits += 1
    return 64 - bits


@numba.njit(cache=True, nogil=True)
def hash_find_or_insert(table, gkeys, meta, key):
    """Group id of ``key`` in the open-addressing table, inserting it if new; -1 when full.

    ``table`` (int64, 2 x capacity, capacity a power of two): row 0 the key, row 1 its group id or
    -1 for an empty slot; linear probing. ``gkeys[g]`` is the key of group ``g``; ``meta[0]`` the
    number of groups, which may not exceed ``len(gkeys)`` (70% of capacity: then -1 is returned).
    """
    capacity = table.shape[1]
    mask = capacity - 1
    s = _slot(key, _shift(capacity))
    while True:
        g = table[1, s]
        if g < 0:
            ng = meta[0]
            if ng >= gkeys.shape[0]:
                return -1
            table[0, s] = key
            table[1, s] = ng
            gkeys[ng] = key
            meta[0] = ng + 1
            return ng
        if table[0, s] == key:
            return g
        s = (s + 1) & mask


@numba.njit(cache=True, nogil=True)
def group_by_hash_update(
    keys, values, positions, nat, table, gkeys, meta, ints, floats, vmin, vmax
):
    """Fold one chunk into a hashed group-by; False (nothing folded) when the table must grow.

    ``keys``: int64 group keys aligned with ``values`` (any integer key column viewed as int64).
    ``table``, ``gkeys``, ``meta`` as in :func:`hash_find_or_insert`; the accumulators are a
    :class:`GroupState` over ``len(gkeys)`` groups, indexed by group id. Group ids are assigned
    for the whole chunk before anything is added, so on False the caller grows the table (keys
    already inserted stay valid) and calls again with the same chunk; :class:`HashGroupBy` does
    this. Keys whose values are all missing still form a group (count 0).
    """
    gid = np.empty(values.shape[0], np.int64)
    shift = _shift(table.shape[1])
    mask = table.shape[1] - 1
    limit = gkeys.shape[0]
    ng = meta[0]
    for j in range(_selected(values, positions)):
        i = _row(positions, j)
        key = keys[i]
        s = _slot(key, shift)
        while True:
            g = table[1, s]
            if g < 0:
                if ng >= limit:
                    meta[0] = ng
                    return False
                table[0, s] = key
                table[1, s] = ng
                gkeys[ng] = key
                g = ng
                ng += 1
                break
            if table[0, s] == key:
                break
            s = (s + 1) & mask
        gid[i] = g
    meta[0] = ng
    _group_core(gid, values, positions, nat, ints, floats, vmin, vmax)
    return True


@numba.njit(cache=True, nogil=True)
def _rehash(table, gkeys, ngroups):
    """Insert the first ``ngroups`` keys of ``gkeys`` (ids 0..) into the empty ``table``."""
    shift = _shift(table.shape[1])
    mask = table.shape[1] - 1
    for g in range(ngroups):
        s = _slot(gkeys[g], shift)
        while table[1, s] >= 0:
            s = (s + 1) & mask
        table[0, s] = gkeys[g]
        table[1, s] = g


class HashGroupBy:
    """A group-by over int64 keys of any range: :func:`group_by_hash_update` plus growth.

    Memory is bounded by the number of distinct keys (the table holds at most 70% of its slots,
    the accumulators one column per group).
    """

    def __init__(self, dtype: Any, capacity: int = 1024) -> None:
        self.dtype = np.dtype(dtype)
        capacity = max(16, 1 << (int(capacity) - 1).bit_length())
        self.table = np.full((2, capacity), -1, np.int64)
        self.gkeys = np.empty(int(capacity * MAX_LOAD), np.int64)
        self.meta = np.zeros(1, np.int64)
        self.state = new_group_state(len(self.gkeys), self.dtype)

    @property
    def ngroups(self) -> int:
        return int(self.meta[0])

    def _grow(self) -> None:
        capacity = self.table.shape[1] * 2
        groups = int(capacity * MAX_LOAD)
        ng = self.ngroups
        self.table = np.full((2, capacity), -1, np.int64)
        gkeys = np.empty(groups, np.int64)
        gkeys[:ng] = self.gkeys[:ng]
        self.gkeys = gkeys
        _rehash(self.table, self.gkeys, ng)
        old = self.state
        new = new_group_state(groups, self.dtype)
        new.ints[:, :ng] = old.ints[:, :ng]
        new.floats[:, :ng] = old.floats[:, :ng]
        new.vmin[:ng] = old.vmin[:ng]
        new.vmax[:ng] = old.vmax[:ng]
        self.state = new

    def update(
        self, keys: np.ndarray, values: np.ndarray, positions: np.ndarray | None, nat: bool
    ) -> None:
        """Fold one chunk (``keys`` int64 aligned with ``values``), growing the table as needed."""
        while not group_by_hash_update(
            keys, values, positions, nat, self.table, self.gkeys, self.meta, *self.state
        ):
            self._grow()

    def merge(self, other: HashGroupBy) -> None:
        """Fold another worker's group-by over the same column into this one."""
        ng = other.ngroups
        target = np.empty(ng, np.int64)
        for g in range(ng):
            while True:
                t = hash_find_or_insert(self.table, self.gkeys, self.meta, other.gkeys[g])
                if t >= 0:
                    break
                self._grow()
            target[g] = t
        o = other.state
        group_merge(*self.state, o.ints[:, :ng], o.floats[:, :ng], o.vmin[:ng], o.vmax[:ng], target)

    def result(self) -> dict[str, np.ndarray]:
        """:func:`group_result` with the groups sorted by key, keys under ``"key"``."""
        ng = self.ngroups
        out = group_result(self.state, self.dtype, ng)
        order = np.argsort(self.gkeys[:ng], kind="stable")
        res = {k: (None if v is None else v[order]) for k, v in out.items()}
        res["key"] = self.gkeys[:ng][order].copy()
        return res
