"""numpy.histogram, streamed chunk by chunk with numpy's exact binning (see
:mod:`.aggregates`)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

from ..wordops import HELPER, KERNEL
from .aggcore import bin_empty, bin_type, take

NAT = np.iinfo(np.int64).min


# --- histogram -------------------------------------------------------------------------------


def _like(ref, x):  # pragma: no cover
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(_like)
def _like_impl(ref, x):
    """``x`` in the float type of ``ref``: float32 stays float32 (as numpy scalars compute), the
    rest is float64. One float64 operation on float32 operands rounded to float32 equals the
    float32 operation (53 >= 2 * 24 + 2 bits: double rounding is harmless)."""
    if ref == types.float32:
        return lambda ref, x: np.float32(x)
    return lambda ref, x: np.float64(x)


def _single(values, lo):  # pragma: no cover
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(_single)
def _single_impl(values, lo):
    """Whether numpy bins in float32 throughout: float32 values with float32 range scalars."""
    if values.dtype == types.float32 and lo == types.float32:
        return lambda values, lo: True
    return lambda values, lo: False


def _range_scalar(values, lo, x):  # pragma: no cover
    raise TypeError("a compile-time helper: callable only inside Numba kernels")


@overload(_range_scalar)
def _range_scalar_impl(values, lo, x):
    """``x`` as a range bound: float32 when numpy bins in float32 (see ``_single``), else float64
    (any other scalar is taken as the Python float it equals)."""
    if values.dtype == types.float32 and lo == types.float32:
        return lambda values, lo, x: np.float32(x)
    return lambda values, lo, x: np.float64(x)


@numba.njit(cache=True, nogil=True, **HELPER)
def _outer_edges(lo, hi):
    """numpy's checks of the range, and the widening of an empty one by 0.5 on both sides (in
    the type of ``lo``: float32 scalars stay float32, as numpy scalars do)."""
    if lo > hi:
        raise ValueError("max must be larger than min in range parameter.")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("range of the histogram is not finite")
    if lo == hi:
        return _like(lo, lo - 0.5), _like(hi, hi + 0.5)
    return _like(lo, lo), _like(hi, hi)


@numba.njit(cache=True, nogil=True, **KERNEL)
def histogram_edges(values, bins, lo, hi):
    """Bin edges exactly as ``np.histogram(values, bins, range=(lo, hi))`` makes them.

    ``lo``, ``hi`` Python floats: ``np.linspace`` in float64 (``i * step + lo``, or
    ``i / bins * delta + lo`` when the step underflows, last edge ``hi``), cast to the bin type:
    float32 for float32 values, else float64. ``lo``, ``hi`` float32 scalars with float32 values
    (``values.min()`` and ``values.max()``, what ``np.histogram(values, bins)`` uses without a
    range): the same formulas in float32. An empty range is widened by 0.5 on both sides; bad
    ranges and too many bins raise ValueError, as in numpy.
    """
    if bins < 1:
        raise ValueError("`bins` must be positive, when an integer")
    lo, hi = _outer_edges(_range_scalar(values, lo, lo), _range_scalar(values, lo, hi))
    edges = bin_empty(values, bins + 1)
    single = _single(values, lo)  # float32 throughout, else float64 cast to the bin type
    delta = _like(lo, hi - lo)
    step = _like(lo, delta / bins)
    for i in range(bins):
        if step == 0.0:
            y = _like(lo, _like(lo, float(i) / bins) * delta)
        else:
            y = _like(lo, float(i) * step)
        edges[i] = bin_type(values, _like(lo, y + lo) if single else float(y) + float(lo))
    edges[bins] = bin_type(values, hi)
    for i in range(bins):
        if edges[i] >= edges[i + 1]:
            raise ValueError("Too many bins for data range.")
    return edges


@numba.njit(cache=True, nogil=True, **KERNEL)
def histogram_update(counts, values, positions, lo, hi):
    """Add the selected values of a chunk to ``counts`` (int64, one per bin).

    The result matches ``np.histogram(all_values, len(counts), range=(lo, hi))`` bit for bit:
    equal-width bins, the last one closed on the right; values outside the range and NaN
    skipped. ``lo``, ``hi``: Python floats, or, for float32 columns, the float32 scalars numpy
    takes when no range is given (the column's min and max), with which numpy computes in float32
    (see :func:`histogram_edges`). numpy's fast path for uniform bins is replicated step by step:
    the range test and ``x - lo`` in the bin type (float32 for float32 columns, float64 otherwise,
    integers converted first), the index ``int((x - lo) / (hi - lo) * bins)`` in float64 (in
    float32 with float32 scalars), pulled back from ``bins``, then moved down if ``x`` lies below
    its left edge and up if it reaches its right edge (except in the last bin). Where numpy would
    index past its edges (float32 ranges rounded past a bin), the index is clamped instead.
    """
    edges = histogram_edges(values, counts.shape[0], lo, hi)
    lo, hi = _outer_edges(_range_scalar(values, lo, lo), _range_scalar(values, lo, hi))
    _histogram_chunk(counts, edges, take(values, positions), lo, hi)


@numba.njit(cache=True, nogil=True, **HELPER)
def _histogram_chunk(counts, edges, values, lo, hi):
    """The counting loop of :func:`histogram_update` over a contiguous chunk; ``lo``, ``hi``
    float64 (index in float64) or float32 (float32 values: index in float32)."""
    n = counts.shape[0]
    norm = hi - lo
    scale = _like(norm, n)
    first = bin_type(values, lo)
    last = bin_type(values, hi)
    for j in range(values.shape[0]):
        x = bin_type(values, values[j])
        if not (x >= first and x <= last):
            continue
        idx = np.int64(_like(norm, _like(norm, x - first) / norm) * scale)
        if idx >= n:
            idx = n - 1
        if idx > 0 and x < edges[idx]:
            idx -= 1
        if idx != n - 1 and x >= edges[idx + 1]:
            idx += 1
        counts[idx] += 1
