"""Comparing decimal-encoded chunks on their scaled integers, without decoding them.

A ``decimal`` chunk stores each value as a narrow unsigned integer ``u`` with value
``f(u) = float64(u + base) / 10**e`` (rounded once more to float32 in a float32 column). IEEE
division by a positive constant is monotone, so ``f`` is non-decreasing and every comparison of
the column with a constant is a comparison of ``u`` with an integer threshold: ``v > c`` holds
exactly when ``u > K``, ``K`` being the largest ``u`` with ``f(u) <= c``. The threshold is found per
chunk with a few evaluations of ``f`` (the exact formula the decoder uses), and the fused kernel
then reads the narrow integers, a half or a quarter of the float bytes, and never builds the
float column. Projections decode only the hit rows (:class:`Scaled`).

A column qualifies when every use of it in the condition is a comparison with a constant of its
own dtype (``value > 10``, not ``value * 2 > 10``). A chunk qualifies when it has no exceptions
(NaN, ±inf, -0.0 and off-decimal values are stored apart) and its integers are at most 32 bits
wide, so that the kernel compares them with int64 thresholds exactly. Other chunks are decoded
as before; both paths give numpy's answer bit for bit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...lazy import kernel_module
from ..buffers import scratch_array
from ..encodings import Decimal
from ..manifest import ChunkRef

if TYPE_CHECKING:
    from ...kernels.encoding import decimal as dec
else:
    dec = kernel_module("encoding.decimal")

#: Narrow widths whose integers compare exactly with an int64 threshold.
_NARROW = frozenset({"|u1", "<u2", "<u4"})
_FLOATS = frozenset({"<f8", "<f4"})
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


def scaled_comparisons(node: tuple[Any, ...]) -> dict[int, tuple[tuple[int, str], ...]]:
    """For each float column of a lowered condition used only in comparisons with a constant of
    its dtype: its kernel position -> ``(constant slot, operator)`` of each such comparison (a
    new dict: callers may change it)."""
    return dict(_scaled_comparisons(node))


@functools.lru_cache(maxsize=512)
def _scaled_comparisons(node: tuple[Any, ...]) -> dict[int, tuple[tuple[int, str], ...]]:
    found: dict[int, list[tuple[int, str]]] = {}
    other: set[int] = set()

    def walk(nd: Any) -> None:
        if not isinstance(nd, tuple) or not nd:
            return
        if (
            nd[0] in _COMPARISONS
            and len(nd) == 4
            and nd[2][0] == "col"
            and nd[3][0] == "const"
            and nd[2][2] in _FLOATS
            and nd[3][2] == nd[2][2]
        ):
            found.setdefault(nd[2][1], []).append((nd[3][1], nd[0]))
            return
        if nd[0] == "col":
            other.add(nd[1])
            return
        for child in nd[1:]:
            walk(child)

    walk(node)
    return {j: tuple(v) for j, v in found.items() if j not in other}


def _last(c: float, strict: bool, base: int, p: float, umax: int, f32: bool) -> int:
    """The largest ``u`` in ``[0, umax]`` with ``f(u) <= c`` (``< c`` when ``strict``), or -1.
    ``f(u)`` is ``(u + base) / p``, rising with ``u``: the answer is :func:`_largest`'s ``k``
    less ``base``, clamped, so one search serves every chunk (their bases differ)."""
    u = _largest(c, strict, p, f32) - base
    return -1 if u < 0 else min(u, umax)


#: Beyond any ``k`` a chunk's integers reach (``base`` is an int64, ``u`` at most 32 bits).
_BEYOND = 1 << 65


@functools.lru_cache(maxsize=1 << 12)
def _largest(c: float, strict: bool, p: float, f32: bool) -> int:
    """The largest integer ``k`` with ``k / p <= c`` (``< c`` when ``strict``; the quotient
    rounded to float32 when ``f32``), as the float arithmetic the decoded values come from
    gives it; ``±_BEYOND`` when every or no ``k`` in reach has it."""

    def ok(k: int) -> bool:
        v = float(k) / p
        if f32:
            v = float(np.float32(v))
        return v < c if strict else v <= c

    guess = c * p
    if not math.isfinite(guess) or abs(guess) >= _BEYOND / 2:
        return _BEYOND if guess > 0 else -_BEYOND
    g = math.floor(guess)
    lo, step = g - 2, 4
    while not ok(lo):  # the rounding of k / p moves the boundary by a few at most
        lo, step = lo - step, step * 2
    hi, step = g + 2, 4
    while ok(hi + 1):
        hi, step = hi + step, step * 2
    while lo < hi:  # ok(lo) holds; the answer is at most hi
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def threshold(op: str, c: float, base: int, e: int, width: int, f32: bool) -> int | None:
    """The int64 ``T`` with ``(f(u) op c) == (u op T)`` for every ``u`` of ``width`` bytes, or
    None when no single threshold exists (``==`` with several integers of value ``c``).

    >>> threshold(">", 10.0, base=0, e=3, width=4, f32=False)  # v > 10 <=> u > 10000
    10000
    >>> threshold("<", 20.5, base=-500, e=3, width=4, f32=False)  # u - 500 < 20500
    21000
    """
    p, umax = float(dec.P[e]), (1 << (8 * width)) - 1
    if op in (">", "<="):
        return _last(c, False, base, p, umax, f32)
    if op in (">=", "<"):
        return _last(c, True, base, p, umax, f32) + 1
    le, lt = _last(c, False, base, p, umax, f32), _last(c, True, base, p, umax, f32)
    if le == lt:
        return -1  # no integer has value c: u == -1 never holds
    return le if le - lt == 1 else None


@dataclass(frozen=True)
class Scaled:
    """A decimal chunk's narrow integers, standing in for its decoded values, and its exceptions
    (positions and values, or None)."""

    narrow: np.ndarray
    base: int
    e: int
    dtype: np.dtype
    where: np.ndarray | None = None
    exceptions: np.ndarray | None = None

    def comparable(self) -> bool:
        """Whether the integers compare as the values do: no exceptions, or only ±0.0, which
        compare like the integer of 0.0 (written over their slots here)."""
        if self.where is None or self.exceptions is None:
            return True
        zero = -self.base
        if not (0 <= zero <= np.iinfo(self.narrow.dtype).max) or np.any(self.exceptions != 0):
            return False
        self.narrow[self.where] = zero
        return True

    def values(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The decoded values (of ascending ``rows`` only, when given), bit for bit as the full
        decoder gives them."""
        ints = self.narrow if rows is None else self.narrow[rows]
        out = np.empty(len(ints), self.dtype)
        dec.decimal_decode(ints, np.int64(self.base), self.e, out)
        if self.where is not None and self.exceptions is not None:
            if rows is None:
                out[self.where] = self.exceptions
            else:
                at = np.minimum(np.searchsorted(rows, self.where), max(len(rows) - 1, 0))
                hit = (rows[at] == self.where) if len(rows) else np.zeros(0, bool)
                out[at[hit]] = self.exceptions[hit]
        return out


def scale_raw(values: np.ndarray, width: str, slot: Hashable) -> tuple[Decimal, Scaled] | None:
    """A raw float chunk (a table's short last one) put in the scaled form its decimal
    neighbours have, so the query runs one kernel specialization, not two (each costs a compile
    in a fresh process); None when its values are not decimals narrow enough for ``width``."""
    n = len(values)
    if n == 0:
        return None
    ints = np.empty(n, np.int64)
    where = np.empty(n, np.int64)
    # one call: the exponent and the encoding (float32 chunks widened once, not twice)
    e, nexc, kmin, kmax, _ = dec.encode_chunk(
        values, dec.MAX_EXPONENT[values.itemsize], ints, where
    )
    if e < 0:
        return None
    narrow_dt = np.dtype(width)
    if nexc > n // 16 or int(kmax) - int(kmin) > np.iinfo(narrow_dt).max:
        return None
    narrow = scratch_array(slot, narrow_dt, n)
    np.subtract(ints, kmin, out=narrow, casting="unsafe")
    exc = values[where[:nexc]].copy() if nexc else None
    got = Scaled(narrow, int(kmin), int(e), values.dtype, where[:nexc] if nexc else None, exc)
    return Decimal(int(e), int(kmin), narrow_dt.str, 0, int(nexc)), got


def scalable(ref: ChunkRef) -> Decimal | None:
    """The encoding of a chunk whose integers a kernel can compare (``decimal``, at most 32
    bits wide), else None."""
    enc = ref.encoding
    return enc if isinstance(enc, Decimal) and enc.w in _NARROW else None


def chunk_thresholds(
    params: Decimal,
    dtype: np.dtype,
    comparisons: tuple[tuple[int, str], ...],
    constants: Mapping[int, Any],
) -> dict[int, np.int64] | None:
    """The thresholds replacing the comparisons' constants for a chunk with ``params``, or None
    when one has none (a NaN constant, ``==`` with several integers of that value)."""
    width = np.dtype(params.w).itemsize
    f32 = dtype == np.float32
    overrides: dict[int, np.int64] = {}
    for slot_index, op in comparisons:
        c = float(constants[slot_index])
        if math.isnan(c):
            return None
        t = threshold(op, c, int(params.base), int(params.e), width, f32)
        if t is None:
            return None
        overrides[slot_index] = np.int64(t)
    return overrides
