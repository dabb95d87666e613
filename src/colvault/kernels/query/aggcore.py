"""The shared parts of the aggregate kernels: the stats state layout, type-directed helpers
resolved at compile time, and the pairwise/compensated passes over a chunk."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload

from .. import compiling
from ..selects import greater, lesser, missing, where
from ..wordops import HELPER, KERNEL

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

_BLOCK = 128  # values summed on SIMD lanes before the pairwise tree takes over


def kind_of(dtype: Any) -> int:
    """KIND_* of a column dtype, the ``kind`` argument of :func:`stats_merge`."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return KIND_FLOAT
    if kind == "u":
        return KIND_UNSIGNED
    if kind in "iMmb":
        return KIND_SIGNED
    raise TypeError(f"no aggregates for dtype {dtype}")


# --- type-directed helpers (resolved at compile time) ----------------------------------------


def is_missing(x, nat):  # pragma: no cover - replaced by the overload inside kernels
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(is_missing)
def _is_missing_impl(x, nat):
    """NaN for floats; NaT (int64 min) for signed integers when ``nat``; never for unsigned."""
    if isinstance(x, types.Float):
        return lambda x, nat: x != x
    if x in types.signed_domain:
        return lambda x, nat: nat and x == NAT
    return lambda x, nat: False


def int_term(x):  # pragma: no cover
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(int_term)
def _int_term_impl(x):
    """``x`` as an int64 addend of the exact sum (bit-cast for uint64); 0 for floats."""
    if isinstance(x, types.Float):
        return lambda x: np.int64(0)
    return lambda x: np.int64(x)


def bin_type(values, x):  # pragma: no cover
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(bin_type)
def _bin_type_impl(values, x):
    """``x`` in the type np.histogram bins ``values`` in: float32 stays float32, rest float64."""
    if values.dtype == types.float32:
        return lambda values, x: np.float32(x)
    return lambda values, x: np.float64(x)


def bin_empty(values, n):  # pragma: no cover
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(bin_empty)
def _bin_empty_impl(values, n):
    """An uninitialized array of ``n`` values of the bin type of ``values``."""
    if values.dtype == types.float32:
        return lambda values, n: np.empty(n, np.float32)
    return lambda values, n: np.empty(n, np.float64)


# --- chunk passes (contiguous chunks: the public kernels gather selected rows first) -----------


@numba.njit(cache=True, nogil=True, **HELPER)
def take(values, positions):
    """The selected rows as a contiguous array (bounds-checked), or ``values`` itself.

    Gathering once costs less than indexing through ``positions`` in every pass, lets each pass
    vectorize, and halves what is compiled: the passes only ever see contiguous chunks.
    """
    if positions is None:
        return values
    return values[positions]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, **HELPER)
def _block_sum(block, nat):
    """(float64 sum, count) of the non-missing values of a block of at most 128.

    ``reassoc`` lets LLVM vectorize, i.e. sum on a few SIMD lanes of partial sums, which is what
    ``np.add.reduce`` does by hand with 8 accumulators: same error bound, ~2.5x faster than a
    strict left-to-right loop. Only additions inside the block are reordered (hence a function
    of its own: the flag applies to a whole function).
    """
    s = 0.0
    c = 0
    for j in range(block.shape[0]):
        x = block[j]
        ok = not missing(x, nat)
        s += where(ok, np.float64(x), 0.0)
        c += ok
    return s, c


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, **HELPER)
def _block_sq(block, nat, center):
    """Sum of squared deviations from ``center`` of the non-missing values of a block."""
    s = 0.0
    for j in range(block.shape[0]):
        x = block[j]
        d = np.float64(x) - center
        s += where(missing(x, nat), 0.0, d * d)
    return s


@numba.njit(cache=True, nogil=True, **KERNEL)
def _chunk_passes(part, fpart, acc, stack, values, nat, ints):
    """Fill the zeroed stats state ``part`` with the statistics of a contiguous chunk.

    ``fpart`` is ``part`` viewed as float64, ``acc`` as the accumulation type of ``values``
    (views are taken by the caller: one type signature per value dtype, and no view code to
    compile here); ``stack`` is float64 scratch of 64; ``ints``: the values are integers (the
    exact integer sum is taken).

    Passes, each vectorizing: first valid value, min/max, pairwise sum, pairwise squared
    deviations from the chunk mean (the two-pass M2), exact integer sum. One function rather
    than one per pass: Numba compiles each jitted function on its own and again inlined into
    its callers, so the passes written out here compile in a fraction of the time.

    Min/max replace missing values by the first valid one (neutral for both), so the selects
    never see a NaN and LLVM vectorizes the loop (see :data:`lesser`; 8 explicit lanes did as
    well and cost Numba twice the compile time). Sums: blocks of 128 summed on SIMD lanes,
    block sums combined as a binary tree (a stack of partial sums, as a binary counter
    carries), so the error grows with log2(blocks), as in ``np.add.reduce``.
    """
    n = values.shape[0]
    first = 0
    while first < n and missing(values[first], nat):
        first += 1
    if first == n:
        part[NAN] = n
        return
    f = values[first]
    lo = f
    hi = f
    for j in range(n):
        x = values[j]
        x = where(missing(x, nat), f, x)
        lo = lesser(x, lo)
        hi = greater(x, hi)
    acc[MIN] = lo
    acc[MAX] = hi

    blocks = (n + _BLOCK - 1) // _BLOCK
    count = 0
    center = 0.0
    for sq in range(2):  # the sum, then the squared deviations from the mean it gives
        top = 0
        for b in range(blocks):
            block = values[b * _BLOCK : (b + 1) * _BLOCK]
            if sq:
                s = _block_sq(block, nat, center)
            else:
                s, c = _block_sum(block, nat)
                count += c
            k = b + 1
            while k & 1 == 0:
                top -= 1
                s = stack[top] + s
                k >>= 1
            stack[top] = s
            top += 1
        r = 0.0
        while top > 0:
            top -= 1
            r = stack[top] + r
        if sq:
            fpart[M2] = r
        else:
            part[COUNT] = count
            part[NAN] = n - count
            fpart[FSUM] = r
            fpart[FCOMP] = 0.0
            center = r / count

    if ints:  # the exact (wrapping) int64 sum; uint64 bit-cast
        t = np.int64(0)
        for j in range(n):
            x = values[j]
            t += where(missing(x, nat), np.int64(0), np.int64(x))
        part[ISUM] = t


#: Accumulation type of MIN and MAX by dtype kind (see :data:`STATS_SLOTS`).
#: The type a state's min and max (and int sums) are kept in, by KIND_*.
ACC_TYPE = {KIND_SIGNED: np.int64, KIND_UNSIGNED: np.uint64, KIND_FLOAT: np.float64}


def chunk_state(values: np.ndarray, positions: np.ndarray | None, nat: bool) -> np.ndarray:
    """Stats state of one chunk (``positions``: rows to take, or None for all): the selected
    rows gathered by numpy (bounds-checked), then :func:`_chunk_passes` on them."""
    if positions is not None:
        values = values[positions]
    if values.dtype.kind == "b":
        values = values.view(np.uint8)
    values = np.ascontiguousarray(values)
    kind = values.dtype.kind
    if kind not in "iuf":
        raise TypeError(f"no aggregates for dtype {values.dtype}")
    part = np.zeros(STATS_LEN, np.int64)
    acc = part.view(ACC_TYPE[kind_of(values.dtype)])
    stack = np.empty(64, np.float64)
    args = (part, part.view(np.float64), acc, stack, values, bool(nat), kind != "f")
    if (
        compiling.SMALL
        and not getattr(_chunk_passes, "overloads", True)  # compiled here: no type lookups
        and compiling.would_compile(_chunk_passes, *args)
        and compiling.spend_numpy(_chunk_passes, len(values))
    ):
        _numpy_passes(*args)
    else:
        _chunk_passes(*args)
    return part


def _tree_sum(block_sums: np.ndarray) -> float:
    """Block sums combined as :func:`_chunk_passes` combines them (a binary counter's carries,
    then the stack from the top)."""
    stack: list[float] = []
    for b, s in enumerate(block_sums.tolist(), 1):
        k = b
        while k & 1 == 0:
            s = stack.pop() + s
            k >>= 1
        stack.append(s)
    r = 0.0
    while stack:
        r = stack.pop() + r
    return r


def _block_sums(terms: np.ndarray) -> np.ndarray:
    """Sums of blocks of :data:`_BLOCK` float64 terms (numpy's pairwise sum in each)."""
    n = len(terms)
    padded = np.zeros(-(-n // _BLOCK) * _BLOCK, np.float64)
    padded[:n] = terms
    return padded.reshape(-1, _BLOCK).sum(axis=1)


def _numpy_passes(part, fpart, acc, stack, values, nat, ints):
    """:func:`_chunk_passes` in numpy, for a process whose cache lacks the kernel (its compile
    costs about 0.5 s; these passes milliseconds). Counts, min, max and integer sums are the
    kernel's exactly; the float sums take the same blocks and tree, each block summed by numpy
    where the kernel sums on SIMD lanes: equal within the same error bound, maybe not to the
    last bit (as the kernel's own sums are not across machines of other vector widths)."""
    n = values.shape[0]
    if values.dtype.kind == "f":
        miss = np.isnan(values)
    elif nat:
        miss = values == np.iinfo(np.int64).min
    else:
        miss = np.zeros(n, bool)
    valid = values[~miss]
    if len(valid) == 0:
        part[NAN] = n
        return
    acc[MIN] = valid.min()
    acc[MAX] = valid.max()
    count = len(valid)
    terms = np.where(miss, 0.0, values.astype(np.float64))
    total = _tree_sum(_block_sums(terms))
    part[COUNT] = count
    part[NAN] = n - count
    fpart[FSUM] = total
    fpart[FCOMP] = 0.0
    center = total / count
    d = values.astype(np.float64) - center
    deviations = np.where(miss, 0.0, d * d)
    fpart[M2] = _tree_sum(_block_sums(deviations))
    if ints:  # the exact (wrapping) int64 sum; uint64 bit-cast
        with np.errstate(over="ignore"):
            part[ISUM] = np.where(miss, 0, values.astype(np.int64)).sum(dtype=np.int64)


@numba.njit(cache=True, nogil=True, **HELPER)
def neumaier(s, c, x):
    """Add ``x`` to the compensated sum (s, c)."""
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


@numba.njit(cache=True, nogil=True, **HELPER)
def compensated(s, c):
    """Value of a compensated sum (the compensation is meaningless once ``s`` is inf or NaN)."""
    return s + c if math.isfinite(s) else s
