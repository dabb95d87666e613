"""Decimal encoding of float chunks: values that are short decimals are stored as integers.

The idea of ALP (Afroozeh & Boncz, SIGMOD 2024). A value ``v`` is stored as the integer ``k`` with

- float64: ``v == float64(k) / P[e]``
- float32: ``v == float32(float64(k) / P[e])`` (one division in float64, then one rounding)

where ``P[e] = 10**e`` is an exact float64 (``e <= 18`` for float64, ``e <= 10`` for float32). The
formula is fixed, so a query can compare scaled integers instead of floats. With ``|k| <= 2**53``
both operands are exact and IEEE division rounds once (Clinger's fast path), so ``k / 10**3``
gives back the very double that ``round(x, 3)`` produced.

Encoding takes ``k = rint(v * P[e])`` (in float64) and keeps it only if decoding gives the same bits
as ``v``; everything else is an *exception* (NaN, ±inf, -0.0, values one ulp off a decimal,
subnormals, ``|k| > 2**53``), stored apart by the caller and patched in after decoding.

"Same bits" is tested as ``decoded == v`` plus "``v`` is not -0.0": for non-NaN floats ``==``
differs from bit equality only on ±0, a NaN is never equal to anything (and never decoded), and
``k == 0`` decodes to +0.0. Since a verified ``rint(v * P[e])`` is an integer of at most 2**53 it
equals ``float64(k)`` exactly, so the check needs no float->int->float round trip and vectorizes.

Measured on the benchmark columns (128 Ki-value chunks, 2 cores): ``value`` takes e = 3 in every
chunk (its only exceptions are the -0.0 that ``np.round`` makes of small negatives), and k - kmin
as uint32 compresses (LZ4, bitshuffle) to 34.4 MB against 135 MB for the raw doubles; ``temp``
takes e = 6 with no exceptions but does not shrink (float32 in [16, 32) are spaced 2**-19, so six
decimals name each one, and the integers are as noisy as the floats). Choosing, encoding and
decoding each cost about 0.1 ms per chunk, bound by the float64 division.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..selects import greater, lesser, where
from ..wordops import HELPER, KERNEL

#: Largest exponent by itemsize of the float type.
MAX_EXPONENT = {8: 18, 4: 10}

#: ``P[e] == 10**e`` exactly (int -> float conversion is correctly rounded; exact up to e = 22).
P = np.array([float(10**e) for e in range(MAX_EXPONENT[8] + 1)], dtype=np.float64)

#: How many values :func:`choose_exponent` looks at per exponent before it scans the whole chunk.
SAMPLE = 1024

_K_LIMIT = float(2**53)
_BIG = np.int64(np.iinfo(np.int64).max)
_HOLE = np.int64(
    np.iinfo(np.int64).min
)  # marks an exception during encoding; no valid k is this small


def pow10(e: int) -> float:
    """``10**e`` as the exact float64 the kernels divide by.

    >>> pow10(3)
    1000.0
    """
    return float(P[e])


# The kernels below take float64 values (float32 chunks are widened exactly by the callers) and
# ``f4``, whether the float32 formula applies: one compiled specialization serves both types.
# Scratch arrays come from the callers too (an ``np.empty`` in a kernel is one more compile).


@numba.njit(cache=True, nogil=True, **HELPER)
def _scaled(v, p, f4):
    """(rint(v * p), whether it decodes to exactly ``v``); ``f4``: the float32 formula."""
    f = np.rint(v * p)
    d = f / p
    if f4:
        d = np.float64(np.float32(d))
    ok = (abs(f) <= _K_LIMIT) & (d == v) & ((v != 0.0) | (math.copysign(1.0, v) > 0.0))
    return f, ok


@numba.njit(cache=True, nogil=True, **HELPER)
def _count_exceptions(values, e, f4):
    """(exceptions with exponent ``e``, those of them another exponent might take).

    NaN, ±inf and -0.0 are exceptions whatever the exponent; when they are the only ones, trying
    a second exponent is wasted work (np.round gives -0.0 for small negatives: common).
    """
    p = P[e]
    bad = 0
    fixable = 0
    for i in range(values.shape[0]):
        v = values[i]
        miss = not _scaled(v, p, f4)[1]
        lost = (not (abs(v) < np.inf)) | ((v == 0.0) & (math.copysign(1.0, v) < 0.0))
        bad += miss
        fixable += miss & (not lost)
    return bad, fixable


@numba.njit(cache=True, nogil=True, **HELPER)
def _sampled(values, f4, sample, counts):
    """(smallest e with the fewest exceptions on an evenly spaced sample, their number, the
    sample's size); ``counts[e]`` gets the sample's exception count per exponent ``e`` (its
    length is the largest exponent tried + 1), ``sample`` holds at least :data:`SAMPLE`."""
    n = values.shape[0]
    m = n if n < SAMPLE else SAMPLE
    for j in range(m):
        sample[j] = values[j * n // m]
    head = sample[:m]
    best = m + 1
    e0 = 0
    for e in range(counts.shape[0]):
        c = _count_exceptions(head, e, f4)[0]
        counts[e] = c
        if c < best:
            best = c
            e0 = e
    return e0, best, m


@numba.njit(cache=True, nogil=True, **HELPER)
def _runner_up(counts, e0, best):
    """The next exponent after ``e0`` tied with it on the sample, or -1."""
    for e1 in range(e0 + 1, counts.shape[0]):
        if counts[e1] == best:
            return e1
    return -1


def _wide(values: np.ndarray) -> np.ndarray:
    """``values`` as contiguous float64 (float32 widened exactly; a signalling NaN becomes a
    quiet one, still NaN: an exception either way, kept bit for bit by the caller)."""
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(values, np.float64)


def _prepared(
    values: np.ndarray, max_exponent: int
) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    """(values as float64, whether the float32 formula applies, sample scratch, per-exponent
    counts for ``0..min(max_exponent, MAX_EXPONENT)``)."""
    if max_exponent < 0:
        raise ValueError("max_exponent must be >= 0")
    f4 = values.dtype.itemsize == 4
    top = min(int(max_exponent), MAX_EXPONENT[values.dtype.itemsize])
    wide = _wide(values)
    return wide, f4, np.empty(SAMPLE, np.float64), np.zeros(top + 1, np.int64)


@numba.njit(cache=True, nogil=True, **KERNEL)
def _choose(values, f4, sample, counts):
    e0, best, m = _sampled(values, f4, sample, counts)
    full, fixable = _count_exceptions(values, e0, f4)
    if fixable == 0 or best == m:
        return e0, full
    e1 = _runner_up(counts, e0, best)
    if e1 >= 0:
        other = _count_exceptions(values, e1, f4)[0]
        if other < full:
            return e1, other
    return e0, full


def choose_exponent(values: np.ndarray, max_exponent: int) -> tuple[int, int]:
    """(e, exceptions in the chunk) for the ``e`` in ``0..max_exponent`` with fewest exceptions.

    Every exponent is tried on an evenly spaced sample (cheap); the smallest ``e`` with the fewest
    sample exceptions (smaller ``e``, smaller integers) is then counted over the whole chunk. If
    that finds exceptions other than NaN, ±inf and -0.0, the next exponent tied on the sample is
    counted too and wins only with strictly fewer: rare values with one more digit than the sample
    showed. At most two passes over the chunk. ``max_exponent`` is capped at ``MAX_EXPONENT``.
    """
    wide, f4, sample, counts = _prepared(values, max_exponent)
    if wide.shape[0] == 0:
        return 0, 0
    e, full = _choose(wide, f4, sample, counts)
    return int(e), int(full)


@numba.njit(cache=True, nogil=True, **KERNEL)
def _encode_chunk(values, f4, ints, exc_pos, sample, counts):
    e0, best, m = _sampled(values, f4, sample, counts)
    full, kmin, kmax = _encode(values, e0, f4, ints, exc_pos)
    if full == 0:
        return e0, full, kmin, kmax, _ascending(ints)
    if best == m:
        return e0, full, kmin, kmax, False
    fixable = 0
    for j in range(full):
        v = values[exc_pos[j]]
        fixable += (abs(v) < np.inf) & ((v != 0.0) | (math.copysign(1.0, v) > 0.0))
    e1 = _runner_up(counts, e0, best) if fixable else -1
    if e1 >= 0 and _count_exceptions(values, e1, f4)[0] < full:
        n1, kmin, kmax = _encode(values, e1, f4, ints, exc_pos)
        return e1, n1, kmin, kmax, n1 == 0 and _ascending(ints)
    return e0, full, kmin, kmax, False


def encode_chunk(
    values: np.ndarray, max_exponent: int, ints: np.ndarray, exc_pos: np.ndarray
) -> tuple[int, int, np.int64, np.int64, bool]:
    """:func:`choose_exponent` and :func:`decimal_encode` in one: (e, exceptions, kmin, kmax,
    ascending), the last whether the values never decrease, when there are no exceptions
    (else False): with ``kmin`` and ``kmax`` it gives the chunk's zone map without a pass over
    the floats.

    The same ``e`` is chosen, but the chunk is encoded with the sample's exponent at once and
    its exceptions counted from what the encoding left out; a second exponent is tried only
    when they include values another exponent might take (one pass fewer in the common case).
    """
    wide, f4, sample, counts = _prepared(values, max_exponent)
    if wide.shape[0] == 0:
        return 0, 0, np.int64(0), np.int64(0), True
    _check_encode_arrays(wide, ints, exc_pos)
    e, nexc, kmin, kmax, ascending = _encode_chunk(wide, f4, ints, exc_pos, sample, counts)
    return int(e), int(nexc), np.int64(kmin), np.int64(kmax), bool(ascending)


@numba.njit(cache=True, nogil=True, **HELPER)
def _ascending(ints):
    """Whether ``ints`` never decrease (branch-free)."""
    down = False
    for i in range(1, ints.shape[0]):
        down |= ints[i] < ints[i - 1]
    return not down


@numba.njit(cache=True, nogil=True, **KERNEL)
def _encode(values, e, f4, ints, exc_pos):
    """:func:`decimal_encode` of float64 ``values`` (``f4``: the float32 formula)."""
    n = values.shape[0]
    p = P[e]
    bad = 0
    kmin = _BIG
    kmax = -_BIG
    for i in range(n):
        f, ok = _scaled(values[i], p, f4)
        k = np.int64(where(ok, f, 0.0))
        ints[i] = where(ok, k, _HOLE)
        bad += not ok
        kmin = lesser(where(ok, k, _BIG), kmin)
        kmax = greater(where(ok, k, -_BIG), kmax)
    if bad == n:
        kmin = kmax = np.int64(0)
    if bad == 0:
        return 0, kmin, kmax
    prev = np.int64(0)
    for i in range(n):
        if ints[i] != _HOLE:
            prev = ints[i]
            break
    j = 0
    for i in range(n):
        if ints[i] == _HOLE:
            ints[i] = prev
            if j < exc_pos.shape[0]:
                exc_pos[j] = i
            j += 1
        else:
            prev = ints[i]
    return bad, kmin, kmax


def _check_encode_arrays(values: np.ndarray, ints: np.ndarray, exc_pos: np.ndarray) -> None:
    if ints.shape[0] != values.shape[0]:
        raise ValueError("ints must have the length of values")
    if ints.dtype != np.int64 or exc_pos.dtype != np.int64:
        raise TypeError("ints and exc_pos must be int64 arrays")


def decimal_encode(
    values: np.ndarray, e: int, ints: np.ndarray, exc_pos: np.ndarray
) -> tuple[int, np.int64, np.int64]:
    """Fill ``ints`` with k per value; return (exceptions, kmin, kmax) over the valid ks.

    Exception positions go to ``exc_pos[:exceptions]`` (ascending) and their slot in ``ints`` gets
    the previous valid k (the first valid k before any), so every entry of ``ints`` lies in
    ``[kmin, kmax]`` and ``ints - kmin`` narrows without wrapping. No valid value: all zeros,
    ``kmin == kmax == 0``. A first branch-free pass marks exceptions; only chunks that have any
    take the second, sequential pass.
    """
    if e < 0 or e > MAX_EXPONENT[values.dtype.itemsize]:
        raise ValueError("exponent out of range for this float type")
    wide = _wide(values)
    _check_encode_arrays(wide, ints, exc_pos)
    bad, kmin, kmax = _encode(wide, int(e), values.dtype.itemsize == 4, ints, exc_pos)
    if exc_pos.shape[0] < bad:
        raise ValueError("exc_pos is shorter than the number of exceptions")
    return int(bad), np.int64(kmin), np.int64(kmax)


@numba.njit(cache=True, nogil=True, **KERNEL)
def decimal_decode(ints, base, e, out):
    """out[i] = decode(int64(ints[i]) + base, e) for float32 or float64 ``out``.

    ``ints`` may be any integer width (the engine stores ``k - base`` narrowed to unsigned); the
    sum wraps in int64, so uint64 offsets work too. Exceptions are patched in by the caller.
    """
    if out.shape[0] != ints.shape[0]:
        raise ValueError("out must have the length of ints")
    if e < 0 or e > (10 if out.itemsize == 4 else 18):
        raise ValueError("exponent out of range for this float type")
    p = P[e]
    b = np.int64(base)
    for i in range(ints.shape[0]):
        out[i] = np.float64(np.int64(ints[i]) + b) / p
