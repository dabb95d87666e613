"""Integer packing: frame of reference and delta, with narrowing to the smallest width.

Integers (and datetimes, viewed as int64) are handled as unsigned bit patterns of their own
width, so every subtraction and addition wraps exactly: ``x - base`` of a chunk whose values span
``[base, base + span]`` (in the column's own order) is a non-negative number ``<= span``, and
adding ``base`` back restores ``x`` bit for bit, whether the column is signed or not.

Scalars (``base``, ``step``, ``first``) are first stored into a one-element array of the data's
own type, so that arithmetic stays in that type (Numba would mix uint64 with an int64 argument in
float64, losing bits).

Frame of reference stores ``x - min``; delta stores the difference to the previous value minus the
smallest difference (sorted chunks: timestamps with a fixed period become all zeros).
"""

from __future__ import annotations

import numba
import numpy as np


def narrow_dtype(span: int) -> np.dtype:
    """The smallest unsigned dtype that holds ``0..span``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if span <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


@numba.njit(cache=True, nogil=True)
def _as(like, x):
    """``x`` converted to the element type of array ``like``."""
    box = np.empty(1, like.dtype)
    box[0] = x
    return box[0]


@numba.njit(cache=True, nogil=True)
def for_encode(values_u, base, out):
    """out[i] = values_u[i] - base (wrapping), narrowed into ``out``'s unsigned type."""
    b = _as(values_u, base)
    for i in range(values_u.shape[0]):
        out[i] = values_u[i] - b


@numba.njit(cache=True, nogil=True)
def for_decode(narrow, base, out_u):
    """out_u[i] = narrow[i] + base (wrapping in ``out_u``'s unsigned type)."""
    b = _as(out_u, base)
    for i in range(narrow.shape[0]):
        out_u[i] = narrow[i] + b


@numba.njit(cache=True, nogil=True)
def delta_span(values_u):
    """(smallest, largest) step between neighbours of a sorted chunk, as unsigned numbers."""
    n = values_u.shape[0]
    steps = np.empty(n - 1, values_u.dtype)  # storing wraps back what small types promoted
    for i in range(1, n):
        steps[i - 1] = values_u[i] - values_u[i - 1]
    lo = steps[0]
    hi = steps[0]
    for i in range(1, n - 1):
        lo = min(lo, steps[i])
        hi = max(hi, steps[i])
    return lo, hi


@numba.njit(cache=True, nogil=True)
def delta_encode(values_u, step, out):
    """out[0] = 0; out[i] = (values_u[i] - values_u[i-1]) - step, narrowed into ``out``."""
    s = _as(values_u, step)
    out[0] = 0
    for i in range(1, values_u.shape[0]):
        out[i] = values_u[i] - values_u[i - 1] - s


@numba.njit(cache=True, nogil=True)
def delta_decode(narrow, first, step, out_u):
    """Inverse of :func:`delta_encode`: a running sum starting at ``first``."""
    acc = _as(out_u, first)
    s = _as(out_u, step)
    out_u[0] = acc
    for i in range(1, narrow.shape[0]):
        acc = acc + s + narrow[i]
        out_u[i] = acc


@numba.njit(cache=True, nogil=True)
def regular_at(first, step, rows, out_u):
    """out_u[k] = first + step * rows[k] in ``out_u``'s unsigned type: the rows of a delta chunk
    whose steps are all equal, computed without its frame. Each row number is first stored in
    ``out_u`` so the product wraps in that type, as the stored steps did."""
    f = _as(out_u, first)
    s = _as(out_u, step)
    for k in range(rows.shape[0]):
        out_u[k] = rows[k]
        out_u[k] = f + s * out_u[k]
