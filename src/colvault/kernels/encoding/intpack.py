"""Integer packing: frame of reference and delta, with narrowing to the smallest width.

Integers (and datetimes, viewed as int64) are handled as unsigned bit patterns of their own
width, so every subtraction and addition wraps exactly: ``x - base`` of a chunk whose values span
``[base, base + span]`` (in the column's own order) is a non-negative number ``<= span``, and
adding ``base`` back restores ``x`` bit for bit, whether the column is signed or not.

Scalars (``base``, ``step``, ``first``) are first converted to the data's own type (``_as``), so
that arithmetic stays in that type (Numba would mix uint64 with an int64 argument in float64,
losing bits).

Frame of reference stores ``x - min``; delta stores the difference to the previous value minus the
smallest difference (sorted chunks: timestamps with a fixed period become all zeros).

The encoders take numpy for chunks of at most :data:`.compiling.SMALL` values while their kernel
is not compiled (the same wrapping arithmetic; the tests compare both): a new user's first
tables then cost no compile for them.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

from .. import compiling
from ..selects import greater, lesser
from ..wordops import KERNEL


def narrow_dtype(span: int) -> np.dtype:
    """The smallest unsigned dtype that holds ``0..span``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if span <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _as_typer(typingctx: Any, like: Any, x: Any) -> Any:
    """``x`` converted to the element type of array ``like`` (integers wrap, as a store into
    the array would). An intrinsic: no helper to compile and no one-element array to allocate."""
    if not isinstance(like, types.Array) or not isinstance(x, types.Integer):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return context.cast(builder, args[1], sig.args[1], sig.return_type)

    return like.dtype(like, x), codegen


_as: Any = intrinsic(_as_typer)


def _same_type(values_u: np.ndarray, x: Any) -> Any:
    """``x`` as the element type of ``values_u`` (wrapping, as :func:`_as` converts)."""
    return np.asarray(x).astype(values_u.dtype, casting="unsafe")[()]


def for_encode(values_u: np.ndarray, base: Any, out: np.ndarray) -> None:
    """out[i] = values_u[i] - base (wrapping), narrowed into ``out``'s unsigned type."""
    if len(values_u) <= compiling.SMALL and compiling.would_compile(
        _for_encode, values_u, base, out
    ):
        np.subtract(values_u, _same_type(values_u, base), out=out, casting="unsafe")
    else:
        _for_encode(values_u, base, out)


def delta_span(values_u: np.ndarray) -> tuple[Any, Any]:
    """(smallest, largest) step between neighbours of a sorted chunk (at least two values), as
    unsigned numbers of the chunk's type (each step wraps back into it)."""
    if len(values_u) <= compiling.SMALL and compiling.would_compile(_delta_span, values_u):
        steps = np.diff(values_u)
        return int(steps.min()), int(steps.max())
    return _delta_span(values_u)


def delta_encode(values_u: np.ndarray, step: Any, out: np.ndarray) -> None:
    """out[0] = 0; out[i] = (values_u[i] - values_u[i-1]) - step, narrowed into ``out``."""
    if len(values_u) <= compiling.SMALL and compiling.would_compile(
        _delta_encode, values_u, step, out
    ):
        out[0] = 0
        np.subtract(np.diff(values_u), _same_type(values_u, step), out=out[1:], casting="unsafe")
    else:
        _delta_encode(values_u, step, out)


@numba.njit(cache=True, nogil=True, **KERNEL)
def _for_encode(values_u, base, out):
    """:func:`for_encode`'s kernel."""
    b = _as(values_u, base)
    for i in range(values_u.shape[0]):
        out[i] = values_u[i] - b


@numba.njit(cache=True, nogil=True, **KERNEL)
def for_decode(narrow, base, out_u):
    """out_u[i] = narrow[i] + base (wrapping in ``out_u``'s unsigned type)."""
    b = _as(out_u, base)
    for i in range(narrow.shape[0]):
        out_u[i] = narrow[i] + b


@numba.njit(cache=True, nogil=True, **KERNEL)
def _delta_span(values_u):
    """:func:`delta_span`'s kernel."""
    lo = hi = _as(values_u, values_u[1] - values_u[0])
    for i in range(2, values_u.shape[0]):
        d = _as(values_u, values_u[i] - values_u[i - 1])
        lo = lesser(d, lo)
        hi = greater(d, hi)
    return lo, hi


@numba.njit(cache=True, nogil=True, **KERNEL)
def _delta_encode(values_u, step, out):
    """:func:`delta_encode`'s kernel."""
    s = _as(values_u, step)
    out[0] = 0
    for i in range(1, values_u.shape[0]):
        out[i] = values_u[i] - values_u[i - 1] - s


@numba.njit(cache=True, nogil=True, **KERNEL)
def delta_decode(narrow, first, step, out_u):
    """Inverse of :func:`delta_encode`: a running sum starting at ``first``."""
    acc = _as(out_u, first)
    s = _as(out_u, step)
    out_u[0] = acc
    for i in range(1, narrow.shape[0]):
        acc = acc + s + narrow[i]
        out_u[i] = acc


@numba.njit(cache=True, nogil=True, **KERNEL)
def regular_at(first, step, rows, out_u):
    """out_u[k] = first + step * rows[k] in ``out_u``'s unsigned type: the rows of a delta chunk
    whose steps are all equal, computed without its frame. Each row number is first stored in
    ``out_u`` so the product wraps in that type, as the stored steps did."""
    f = _as(out_u, first)
    s = _as(out_u, step)
    for k in range(rows.shape[0]):
        out_u[k] = rows[k]
        out_u[k] = f + s * out_u[k]
