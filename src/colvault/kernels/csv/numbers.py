"""CSV number kernels: integers, floats and booleans parsed straight out of a block of bytes.

Why: the CSV importer tokenizes a block into field offsets (:mod:`colvault.kernels.csv.tokens`);
making a Python string per field would cost more than the whole parse. These kernels read the
fields where they lie and report failures instead of raising, so the caller can name the line,
the column and the text in its error, or widen the column's type.

Contract (shared with the tokenizer):

* ``buf`` is a 1-d ``uint8`` array of UTF-8 bytes; field ``i`` is ``buf[starts[i]:ends[i]]``
  (int64 offsets, end exclusive, quotes excluded). ``starts``/``ends`` may be strided views such
  as ``starts[c::ncols]``: the wrappers call one specialization of each kernel, compiled for
  layout ``'A'``, whatever the caller passes (:mod:`.jit`).
* ``na`` is a bool array over the fields: ``True`` marks a missing value (the caller matched its
  ``na_values``); an empty array means none (the wrappers take ``None`` for that). Missing fields
  are skipped: 0 / ``False`` in integer and bool outputs (the caller decides the promotion), NaN
  in float outputs.
* Every kernel returns the index of the first field that does not parse, or ``-1``; integer
  kernels return a status that is either such an index (``>= 0``) or one of ``FITS_INT64``,
  ``NEEDS_UINT64``, ``NEEDS_FLOAT64``.
* ``decimal`` and ``thousands`` are ASCII byte values; ``thousands=-1`` means none.

Syntax is that of ``pandas.read_csv`` (C engine, defaults), checked against pandas 3.1:

* Integers: ASCII whitespace (space, ``\\t\\n\\v\\f\\r``) around the number, an optional ``+``
  or ``-``, ASCII digits (leading zeros allowed). The thousands separator may appear anywhere
  after the first digit, repeated or trailing, as pandas' ``str_to_int64`` skips it:
  ``"1,234,567"``, ``"12,34"``, ``"1,,2"`` and ``"123,"`` are integers, ``",123"`` is not.
* Floats: whitespace around, optional sign, digits with at most one thousands separator after
  each digit of the integer part (``"1,,2.5"`` is not a float although ``"1,,2"`` is an integer),
  an optional decimal point with optional digits (``".5"`` and ``"5."``; at least one digit in
  all), an optional exponent ``e``/``E`` with optional sign and at least one digit. ``inf``,
  ``infinity`` with an optional sign, any case and no surrounding whitespace, are infinities.
  ``nan`` is *not* a float spelling: pandas reads NaN only through ``na_values``.
* Booleans: ``true``/``false`` in any case (``"tRUE"`` too), no whitespace; ``1``/``0`` are
  integers, not booleans.

Integer range: a value that fits int64 gives ``FITS_INT64``; all non-negative with some beyond
int64 but all within uint64 gives ``NEEDS_UINT64`` (``values.view(np.uint64)`` is then the
column); negative values beyond int64, values beyond uint64, or a mix of negative and beyond-int64
values give ``NEEDS_FLOAT64`` (pandas reads the first two as Python ints in an ``object`` column
and the mix as strings; here they are floats, as the type lattice says).

Floats are correctly rounded: every value equals Python's ``float()`` of the text (decimal comma
replaced, separators removed) bit for bit, ``-0.0``, subnormals, ``1e400 -> inf`` and ``1e-400 ->
0.0`` included. Three exact paths run in the kernel: Clinger's (significand ``w <= 2**53`` and
``|q| <= 22``: one IEEE multiplication or division of exact operands; ``q`` up to 37 when
``w * 10**(q-22)`` is still ``<= 2**53``), then Eisel-Lemire (any significand of up to 19
digits, ``q`` in [-342, 308]: a 64x128-bit product with a truncated power of five, which either
proves its rounding or gives up). What remains (subnormal or overflowing results, the rare
ambiguous roundings, more than 19 digits, leading zeros included, exponents beyond the table)
is listed in ``slow_index`` and fixed by :func:`fix_slow_floats` with Python's ``float``.

Where pandas 3.1 is not followed: with a thousands separator set, pandas parses floats with its
own ``xstrtod``, which is not correctly rounded (``661e50`` comes out one ulp off) and accepts
whitespace between ``e`` and the exponent digits (``9e +8``); here rounding stays correct and the
exponent must follow the ``e``. Pandas' uint64 path refuses trailing whitespace and falls back to
float64 (``"9223372036854775809 "`` becomes ``2.0**63``); here it is the exact uint64.

Type inference (:func:`classify`, :func:`infer_type`): the lattice is ``bool -> int64 -> uint64
-> float64`` (ARCHITECTURE.md, "CSV import"); a sample takes the first type all its non-missing
fields parse as, and an int or bool column with any missing value becomes float64 (issue 5,
item 3: NaN marks the missing values). Such a column is parsed with :func:`parse_float64_py`, or
with :func:`parse_int64` and cast: an integer converts to the same double as its text. Anything
that is none of these is text or a date.

Speed (one thread of the 2-core benchmark machine): fields of at most 8 bytes that are an
optional ``-``, digits and at most one decimal point (most numbers in CSV files) take a fast path:
one unaligned 8-byte load, bit tricks to find the point and check the digits, three
multiplications to combine them (SWAR), then Clinger's division; any other field, or one these
refuse, is parsed by the general per-field functions, whose results the fast path reproduces bit
for bit (the tests compare the two). Per 4 MiB block of the benchmark's numeric file, as the
importer calls them: 3-digit integers ~4 ns/field (general path ~9), ``12.345``-like floats ~7
ns/field (~14); shortest-repr doubles with 17 significant digits ~40-50 ns (Eisel-Lemire).
``pandas.read_csv`` takes 50-70 ns/field for one such column in all.
While the integer kernel is not compiled, a small file's integers are read by a numpy version
of it (:func:`parse_int64_numpy`: the same values and status), not compiled for (~0.8 s).
The per-field helpers that take the block are compiled with Numba's ``_nrt=False``
(:func:`.wordops.njit_field`: no reference counting; they never allocate): otherwise every call pays
atomic incref/decref pairs on ``buf`` (floats took 26 ns/field that way, ints 21, the date
formats of :mod:`.dates` 3x longer). The flag is private to Numba; were it gone, only speed
would change.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..wordops import (
    AHEAD,
    HELPER,
    HIGHS,
    KERNEL,
    ONES,
    check_fields,
    cttz,
    load8,
    njit_field,
    prefetch,
    zero_bytes,
)
from . import jit
from .jit import (
    BOOL,
    BUF,
    I64,
    MASK,
    OFFSETS,
    OUT_BOOL,
    OUT_F64,
    OUT_I64,
    OUT_U64,
    Kernel,
    block,
    mask,
)

# --- statuses and classification bits --------------------------------------------------------

FITS_INT64 = -1  # every field parsed and fits int64
NEEDS_UINT64 = -2  # all non-negative, some beyond int64, all within uint64
NEEDS_FLOAT64 = -3  # some value fits neither int64 nor uint64 (or the mix fits neither)

IS_BOOL = 1
IS_INT64 = 2
IS_UINT64 = 4
IS_FLOAT64 = 8

NO_THOUSANDS = -1

# --- constants (module globals are frozen into the kernels with their numpy types) ------------

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_U10 = np.uint64(10)
_U32 = np.uint64(32)
_U63 = np.uint64(63)
_M32 = np.uint64(0xFFFFFFFF)
_M9 = np.uint64(0x1FF)
_U64_DIV10 = np.uint64(np.iinfo(np.uint64).max // 10)  # 1844674407370955161
_I64_MAX_U = np.uint64(np.iinfo(np.int64).max)
_2_63 = np.uint64(2**63)
_2_52 = np.uint64(2**52)
_2_53 = np.uint64(2**53)
_MAX_SIG = 19  # decimal digits that always fit a uint64

CODE_OK = 0  # parsed; the value is exact
CODE_SLOW = 1  # valid syntax; integers: beyond uint64; floats: outside the exact paths
CODE_BAD = 2  # not a number

P10 = np.array([10.0**k for k in range(23)])  # exact doubles
_P10_U = np.array([10**k for k in range(20)], dtype=np.uint64)

# lowercase spellings, as bytes (Numba strings would allocate)
_INFINITY = np.frombuffer(b"infinity", np.uint8)
_TRUE = np.frombuffer(b"true", np.uint8)
_FALSE = np.frombuffer(b"false", np.uint8)

_Q_MIN = -342
_Q_MAX = 308


def _powers_of_five() -> tuple[np.ndarray, np.ndarray]:
    """128-bit truncations of ``5**q`` for q in [_Q_MIN, _Q_MAX], normalized so the top bit is set:
    (high 64 bits, low 64 bits). Truncation (rounding down) is what Eisel-Lemire's bounds assume."""
    hi = np.empty(_Q_MAX - _Q_MIN + 1, np.uint64)
    lo = np.empty_like(hi)
    for q in range(_Q_MIN, _Q_MAX + 1):
        if q >= 0:
            v = 5**q
            b = v.bit_length()
            v = v >> (b - 128) if b > 128 else v << (128 - b)
        else:
            d = 5**-q
            v = (1 << (d.bit_length() + 127)) // d
        hi[q - _Q_MIN] = v >> 64
        lo[q - _Q_MIN] = v & (2**64 - 1)
    return hi, lo


_POW5_HI, _POW5_LO = _powers_of_five()


# --- field parsers -----------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, **HELPER)
def _is_space(c):
    """ASCII whitespace as C's ``isspace``: space, tab, LF, VT, FF, CR."""
    return c == 32 or (c >= 9 and c <= 13)


@njit_field
def int_field(buf, s, e, tsep):
    """(magnitude uint64, negative, code) of one integer field; code CODE_SLOW: beyond uint64.
    (Trimming is written out here and in :func:`float_field`: a helper returning the trimmed
    bounds as a tuple made the kernels 50% slower.)"""
    while s < e and _is_space(buf[s]):
        s += 1
    while e > s and _is_space(buf[e - 1]):
        e -= 1
    neg = False
    if s < e:
        c = buf[s]
        if c == 45:
            neg = True
            s += 1
        elif c == 43:
            s += 1
    if s >= e or buf[s] < 48 or buf[s] > 57:
        return _U0, neg, CODE_BAD
    mag = _U0
    if e - s <= _MAX_SIG:  # at most 19 digits: no overflow possible
        for p in range(s, e):
            c = buf[p]
            if c >= 48 and c <= 57:
                mag = mag * _U10 + np.uint64(c - 48)
            elif c != tsep:
                return mag, neg, CODE_BAD
        return mag, neg, CODE_OK
    code = CODE_OK
    for p in range(s, e):
        c = buf[p]
        if c >= 48 and c <= 57:
            d = np.uint64(c - 48)
            if mag > _U64_DIV10 or (mag == _U64_DIV10 and d > _U5):
                code = CODE_SLOW
            elif code == CODE_OK:
                mag = mag * _U10 + d
        elif c != tsep:
            return mag, neg, CODE_BAD
    return mag, neg, code


@numba.njit(cache=True, nogil=True, **HELPER)
def _mul128(a, b):
    """(high, low) 64-bit halves of the 128-bit product of two uint64."""
    a_lo = a & _M32
    a_hi = a >> _U32
    b_lo = b & _M32
    b_hi = b >> _U32
    ll = a_lo * b_lo
    lh = a_lo * b_hi
    hl = a_hi * b_lo
    hh = a_hi * b_hi
    mid = (ll >> _U32) + (lh & _M32) + (hl & _M32)
    lo = (mid << _U32) | (ll & _M32)
    hi = hh + (lh >> _U32) + (hl >> _U32) + (mid >> _U32)
    return hi, lo


@numba.njit(cache=True, nogil=True, **HELPER)
def _clz(x):
    """Leading zero bits of a non-zero uint64."""
    n = 0
    for k in (32, 16, 8, 4, 2, 1):
        if x >> np.uint64(64 - k) == _U0:
            x = x << np.uint64(k)
            n += k
    return n


@numba.njit(cache=True, nogil=True, **HELPER)
def _eisel_lemire(w, q):
    """(the double nearest ``w * 10**q``, ok) for 0 < w < 2**64, q in [_Q_MIN, _Q_MAX]; ok is
    False when the rounding cannot be proved here or the result is subnormal or infinite.
    After Lemire, "Number parsing at a gigabyte per second" (2021), as in fast_double_parser."""
    exponent = ((217706 * q) >> 16) + 1087
    lz = _clz(w)
    w = w << np.uint64(lz)
    k = q - _Q_MIN
    upper, lower = _mul128(w, _POW5_HI[k])
    if (upper & _M9) == _M9 and lower + w < lower:
        mid2, low = _mul128(w, _POW5_LO[k])
        middle = lower + mid2
        if middle < lower:
            upper += _U1
        if middle + _U1 == _U0 and (upper & _M9) == _M9 and low + w < low:
            return 0.0, False
        lower = middle
    upperbit = upper >> _U63
    mantissa = upper >> (upperbit + _U9)
    lz += 1 - np.int64(upperbit)
    if lower == _U0 and (upper & _M9) == _U0 and (mantissa & _U3) == _U1:
        return 0.0, False  # possibly halfway between two doubles
    mantissa += mantissa & _U1
    mantissa = mantissa >> _U1
    if mantissa >= _2_53:
        mantissa = _2_52
        lz -= 1
    real_exponent = exponent - lz
    if real_exponent < 1 or real_exponent > 2046:
        return 0.0, False
    # mantissa (53 bits, leading one included) is exact as a double, and so is the scaling
    return math.ldexp(np.float64(mantissa), real_exponent - 1075), True


@njit_field
def _is_inf_word(buf, s, e):
    """Sign (+1/-1) if buf[s:e] is inf/infinity with optional sign in any case, else 0."""
    sign = 1
    if s < e and (buf[s] == 43 or buf[s] == 45):
        if buf[s] == 45:
            sign = -1
        s += 1
    n = e - s
    if n != 3 and n != 8:
        return 0
    for j in range(n):
        if (buf[s + j] | 32) != _INFINITY[j]:
            return 0
    return sign


@njit_field
def _exponent(buf, p, e):
    """(value, end, ok) of the exponent digits after an 'e' at ``buf[p - 1]``: optional sign, at
    least one digit; the value saturates at +-100000, which is beyond every double anyway."""
    neg = False
    if p < e and (buf[p] == 45 or buf[p] == 43):
        neg = buf[p] == 45
        p += 1
    nexp = 0
    ev = 0
    while p < e and buf[p] >= 48 and buf[p] <= 57:
        if ev < 100000:
            ev = ev * 10 + (buf[p] - 48)
        nexp += 1
        p += 1
    return (-ev if neg else ev), p, nexp > 0


@njit_field
def _to_double(w, q, neg):
    """(value, code) of ``w * 10**q`` (``w`` of at most 19 digits) from the exact paths."""
    if w == _U0:
        return -0.0 if neg else 0.0, CODE_OK
    v = 0.0
    if w <= _2_53:  # Clinger: exact operands, one rounding
        if q >= 0 and q <= 22:
            v = np.float64(w) * P10[q]
            return -v if neg else v, CODE_OK
        if q < 0 and q >= -22:
            v = np.float64(w) / P10[-q]
            return -v if neg else v, CODE_OK
        if q > 22 and q <= 22 + 15 and w <= _2_53 // _P10_U[q - 22]:
            v = np.float64(w * _P10_U[q - 22]) * P10[22]
            return -v if neg else v, CODE_OK
    if q < _Q_MIN or q > _Q_MAX:
        return 0.0, CODE_SLOW
    v, ok = _eisel_lemire(w, q)
    if not ok:
        return 0.0, CODE_SLOW
    return -v if neg else v, CODE_OK


@njit_field
def float_field(buf, s, e, dec, tsep):
    """(value, code) of one float field; code CODE_SLOW: valid, for :func:`fix_slow_floats`.
    Up to 19 digits, the significand is accumulated without checks (it cannot overflow);
    longer ones (leading zeros included) are only checked, and left to the slow path."""
    s0 = s
    e0 = e
    while s < e and _is_space(buf[s]):
        s += 1
    while e > s and _is_space(buf[e - 1]):
        e -= 1
    neg = False
    if s < e:
        c = buf[s]
        if c == 45:
            neg = True
            s += 1
        elif c == 43:
            s += 1
    w = _U0
    nd = 0
    p = s
    while p < e:
        c = buf[p]
        if c < 48 or c > 57:
            break
        w = w * _U10 + np.uint64(c - 48)
        nd += 1
        p += 1
        if p < e and buf[p] == tsep:
            p += 1
    nint = nd
    if p < e and buf[p] == dec:
        p += 1
        while p < e:
            c = buf[p]
            if c < 48 or c > 57:
                break
            w = w * _U10 + np.uint64(c - 48)
            nd += 1
            p += 1
    if nd == 0:
        inf = _is_inf_word(buf, s0, e0)
        if inf != 0:
            return inf * np.inf, CODE_OK
        return 0.0, CODE_BAD
    q = nint - nd
    if p < e and (buf[p] | 32) == 101:
        ev, p, ok = _exponent(buf, p + 1, e)
        if not ok:
            return 0.0, CODE_BAD
        q += ev
    if p != e:
        return 0.0, CODE_BAD
    if nd > _MAX_SIG:  # w wrapped around; rare enough for Python's float (one helper less to
        return 0.0, CODE_SLOW  # compile on a fresh machine, in every float kernel)
    return _to_double(w, q, neg)


@njit_field
def _bool_field(buf, s, e):
    """1 for true, 0 for false (any case, no whitespace), -1 otherwise."""
    n = e - s
    if n == 4:
        for j in range(4):
            if (buf[s + j] | 32) != _TRUE[j]:
                return -1
        return 1
    if n == 5:
        for j in range(5):
            if (buf[s + j] | 32) != _FALSE[j]:
                return -1
        return 0
    return -1


# --- fast paths: fields of at most 8 bytes, 8 bytes at a time ---------------------------------
#
# Most numbers in CSV files are short: an optional "-", digits, at most one decimal point. Those of
# at most 8 bytes (not within 8 bytes of the block's end) are parsed from one unaligned 8-byte
# load with bit tricks, branch-free but for the checks; every other field, and every field these
# refuse (a "+", whitespace, a separator, an exponent, no digit ...), goes to the general parsers
# above, so the results are theirs bit for bit (the tests compare both on random fields).

_ASCII0 = np.uint64(0x3030303030303030)
_X46 = np.uint64(0x4646464646464646)
_LOW_NIBS = np.uint64(0x0F0F0F0F0F0F0F0F)
_LOW_BYTES = np.uint64(0x00FF00FF00FF00FF)
_LOW_PAIRS = np.uint64(0x0000FFFF0000FFFF)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_U4 = np.uint64(4)
_U8 = np.uint64(8)
_U16 = np.uint64(16)
_U64 = np.uint64(64)
_U255 = np.uint64(255)
_MINUS = np.uint64(45)


@numba.njit(cache=True, nogil=True, inline="always")
def swar_digits(x, nd):
    """Value of the ``nd`` (1..8) bytes in the low end of ``x`` (first byte lowest, the others
    zero) if they are all ASCII digits, else -1."""
    # A byte b < 0x80 is a digit when b - 0x30 and b + 0x46 both stay below 0x80 (bytes from
    # 0x80 up fail one of them); a borrow or carry only reaches bytes above a failing one.
    shift = np.uint64(64 - 8 * nd)
    if ((x + _X46) | (x - _ASCII0)) & (HIGHS >> shift) != _U0:
        return np.int64(-1)
    z = x << shift  # leading zero bytes are leading zero digits
    z = ((z & _LOW_NIBS) * np.uint64(2561)) >> _U8
    z = ((z & _LOW_BYTES) * np.uint64(6553601)) >> _U16
    z = ((z & _LOW_PAIRS) * np.uint64(42949672960001)) >> _U32
    return np.int64(z)


@numba.njit(cache=True, nogil=True, inline="always")
def swar_int(buf, s, e):
    """(magnitude, negative) of an integer field ``-?[0-9]+`` of 1..8 bytes with ``s + 8 <=
    len(buf)``; magnitude -1 when the field is anything else."""
    nd = e - s
    x = load8(buf, s)
    neg = (x & _U255) == _MINUS
    if neg:
        x = x >> _U8
        nd -= 1
    if nd == 0:
        return np.int64(-1), neg
    return swar_digits(x & (_ALL >> np.uint64(64 - 8 * nd)), nd), neg


@numba.njit(cache=True, nogil=True, inline="always")
def swar_decimal(buf, s, e, wdec):
    """(digits, fraction digits, negative) of a field ``-?[0-9]*(D[0-9]*)?`` with at least one
    digit, of 1..8 bytes with ``s + 8 <= len(buf)``; ``wdec`` is the decimal byte D times
    ``ONES``. Digits -1 when the field is anything else."""
    nd = e - s
    x = load8(buf, s)
    neg = (x & _U255) == _MINUS
    if neg:
        x = x >> _U8
        nd -= 1
    if nd == 0:
        return np.int64(-1), 0, neg
    keep = _ALL >> np.uint64(64 - 8 * nd)
    x &= keep
    point = zero_bytes(x ^ wdec) & keep
    nfrac = 0
    if point != _U0:
        at = np.uint64(cttz(point) - 7)  # bit offset of the point's byte
        x = (x & ((_U1 << at) - _U1)) | (((x >> at) >> _U8) << at)
        nd -= 1
        nfrac = nd - np.int64(at >> _U3)
        if nd == 0:
            return np.int64(-1), 0, neg
    return swar_digits(x, nd), nfrac, neg


# --- kernels -----------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_int64_kernel(buf, starts, ends, na, thousands, out, fast=True):
    """Parse integers into ``out`` (int64, uint64 bits when NEEDS_UINT64); return the status.
    ``fast=False`` turns the fast path off (the tests compare the two)."""
    any_neg = False
    any_big = False
    any_huge = False
    n = buf.shape[0]
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = 0
            continue
        s = starts[i]
        e = ends[i]
        if fast and e - s - 1 < 8 and e - s > 0 and s + 8 <= n:
            v, neg = swar_int(buf, s, e)
            if v >= 0:
                if neg:
                    out[i] = -v
                    any_neg |= v != 0
                else:
                    out[i] = v
                continue
        mag, neg, code = int_field(buf, s, e, thousands)
        if code == CODE_BAD:
            return i
        if code == CODE_SLOW:
            any_huge = True
            out[i] = 0
        elif neg:
            if mag > _2_63:
                any_huge = True
                out[i] = 0
            else:
                out[i] = np.int64(_U0 - mag)
                if mag != _U0:
                    any_neg = True
        else:
            out[i] = np.int64(mag)
            if mag > _I64_MAX_U:
                any_big = True
    if any_huge or (any_neg and any_big):
        return NEEDS_FLOAT64
    if any_big:
        return NEEDS_UINT64
    return FITS_INT64


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_uint64_kernel(buf, starts, ends, na, thousands, out, fast=True):
    """Parse unsigned integers into ``out`` (uint64); status FITS_INT64 (meaning: all fit
    uint64), NEEDS_FLOAT64 (a negative value or one beyond uint64) or a bad index."""
    outside = False
    n = buf.shape[0]
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = 0
            continue
        s = starts[i]
        e = ends[i]
        if fast and e - s - 1 < 8 and e - s > 0 and s + 8 <= n:
            v, neg = swar_int(buf, s, e)
            if v >= 0:
                out[i] = 0 if neg else v
                outside |= neg and v != 0
                continue
        mag, neg, code = int_field(buf, s, e, thousands)
        if code == CODE_BAD:
            return i
        if code == CODE_SLOW or (neg and mag != _U0):
            outside = True
            out[i] = 0
        else:
            out[i] = mag
    return NEEDS_FLOAT64 if outside else FITS_INT64


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_float64_kernel(buf, starts, ends, na, decimal, thousands, out, slow, fast=True):
    """Parse floats into ``out`` (NaN where ``na``); the indices of fields left for
    :func:`fix_slow_floats` go to ``slow[:nslow]``. Returns (nslow, first bad index or -1)."""
    nslow = 0
    n = buf.shape[0]
    wdec = np.uint64(decimal) * ONES
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = np.nan
            continue
        s = starts[i]
        e = ends[i]
        if fast and e - s - 1 < 8 and e - s > 0 and s + 8 <= n:
            w, nfrac, neg = swar_decimal(buf, s, e, wdec)
            if w >= 0:
                # Clinger's exact path of _to_double: w < 10**8, 0 <= nfrac <= 7
                v = np.float64(w) / P10[np.uint64(nfrac)]
                out[i] = -v if neg else v
                continue
        v, code = float_field(buf, s, e, decimal, thousands)
        if code == CODE_BAD:
            return nslow, i
        out[i] = v
        if code == CODE_SLOW:
            slow[nslow] = i
            nslow += 1
    return nslow, -1


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_float64_fast_kernel(buf, starts, ends, na, decimal, out, pad):
    """:func:`parse_float64_kernel` by its fast path alone (fields of 1..8 bytes
    ``-?[0-9]*(D[0-9]*)?``, exact): the first field it refuses (the caller goes on from there
    with that kernel), or -1. A field within 8 bytes of the block's end is copied into ``pad``
    (16 bytes) first. Files of short numbers never need the general parser."""
    n = buf.shape[0]
    wdec = np.uint64(decimal) * ONES
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    zero = np.int64(0)
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = np.nan
            continue
        s = starts[i]
        size = ends[i] - s
        if size - 1 >= 8 or size <= 0:
            return i
        src = buf
        if s + 8 > n:
            for k in range(size):
                pad[k] = buf[s + k]
            src = pad
            s = zero
        w, nfrac, neg = swar_decimal(src, s, s + size, wdec)
        if w < 0:
            return i
        v = np.float64(w) / P10[np.uint64(nfrac)]  # Clinger's exact path, as the kernel's
        out[i] = -v if neg else v
    return -1


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_bool_kernel(buf, starts, ends, na, out):
    """Parse booleans into ``out`` (False where ``na``); return the first bad index or -1."""
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = False
            continue
        b = _bool_field(buf, starts[i], ends[i])
        if b < 0:
            return i
        out[i] = b == 1
    return -1


@numba.njit(cache=True, nogil=True, **KERNEL)
def classify_kernel(buf, starts, ends, na, decimal, thousands, fast=True):
    """Bitmask of IS_BOOL, IS_INT64, IS_UINT64, IS_FLOAT64: the types every non-missing field
    parses as (all bits when every field is missing). A field the fast paths of the parsers
    take is an integer (no point) or a float (a point, which is not the thousands separator)
    and never a boolean; other fields are tried with each general parser."""
    can_bool = True
    can_int = True
    can_uint = True
    can_float = True
    any_neg = False
    any_big = False
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    n = buf.shape[0]
    wdec = np.uint64(decimal) * ONES
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            continue
        s = starts[i]
        e = ends[i]
        if fast and e - s - 1 < 8 and e - s > 0 and s + 8 <= n:
            v, neg = swar_int(buf, s, e)
            if v >= 0:
                can_bool = False
                if neg and v != 0 and (can_int or can_uint):
                    any_neg = True
                    can_uint = False
                if not (can_int or can_uint or can_float):
                    break
                continue
            w, _, _ = swar_decimal(buf, s, e, wdec)
            if w >= 0:
                can_bool = False
                can_int = False
                can_uint = False
                if not can_float:
                    break
                continue
        if can_bool and _bool_field(buf, s, e) < 0:
            can_bool = False
        if can_int or can_uint:
            mag, neg, code = int_field(buf, s, e, thousands)
            if code != CODE_OK:
                can_int = False
                can_uint = False
            elif neg:
                if mag > _2_63:
                    can_int = False
                if mag != _U0:
                    any_neg = True
            elif mag > _I64_MAX_U:
                any_big = True
            if any_big:
                can_int = False
            if any_neg:
                can_uint = False
        if can_float:
            _, code = float_field(buf, s, e, decimal, thousands)
            if code == CODE_BAD:
                can_float = False
        if not (can_bool or can_int or can_uint or can_float):
            break
    mask = 0
    if can_bool:
        mask |= IS_BOOL
    if can_int:
        mask |= IS_INT64
    if can_uint:
        mask |= IS_UINT64
    if can_float:
        mask |= IS_FLOAT64
    return mask


# --- typed Python wrappers ---------------------------------------------------------------------

_FIELDS = (BUF, OFFSETS, OFFSETS, MASK)
_parse_int64 = Kernel(parse_int64_kernel, *_FIELDS, I64, OUT_I64, BOOL)
_parse_uint64 = Kernel(parse_uint64_kernel, *_FIELDS, I64, OUT_U64, BOOL)
_parse_float64 = Kernel(parse_float64_kernel, *_FIELDS, I64, I64, OUT_F64, OUT_I64, BOOL)
_parse_float64_fast = Kernel(parse_float64_fast_kernel, *_FIELDS, I64, OUT_F64, BUF)
_parse_bool = Kernel(parse_bool_kernel, *_FIELDS, OUT_BOOL)
_classify = Kernel(classify_kernel, *_FIELDS, I64, I64, BOOL)


def _byte(value: int | str, name: str, allow_none: bool = False) -> int:
    """An ASCII byte value from a one-character string or an int (-1: none, where allowed)."""
    if isinstance(value, str):
        if len(value) != 1 or ord(value) >= 128:
            raise ValueError(f"{name} must be one ASCII character, not {value!r}")
        return ord(value)
    if value == -1 and allow_none:
        return -1
    if not 0 <= value < 128:
        raise ValueError(f"{name} must be an ASCII byte value, not {value}")
    return int(value)


def _separators(decimal: int | str, thousands: int | str | None) -> tuple[int, int]:
    dec = _byte(decimal, "decimal")
    tsep = -1 if thousands is None else _byte(thousands, "thousands", allow_none=True)
    if dec == tsep:
        raise ValueError("decimal and thousands separators must differ")
    if dec in b"0123456789+-eE" or (tsep >= 0 and tsep in b"0123456789+-eE"):
        raise ValueError("decimal and thousands separators cannot be digits, signs or e/E")
    return dec, tsep


def parse_int64(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    na: np.ndarray | None = None,
    thousands: int | str | None = NO_THOUSANDS,
) -> tuple[np.ndarray, int]:
    """Integers as int64 and a status: FITS_INT64, NEEDS_UINT64 (then ``values.view(np.uint64)``
    holds them), NEEDS_FLOAT64 (re-parse with :func:`parse_float64_py`) or a bad index >= 0."""
    check_fields(buf, starts, ends, na)
    tsep = -1 if thousands is None else _byte(thousands, "thousands", allow_none=True)
    out = np.empty(starts.shape[0], np.int64)
    if jit.in_numpy(_parse_int64):  # a small file's block: numpy, not a compile
        return out, parse_int64_numpy(buf, starts, ends, mask(na), tsep, out)
    status = _parse_int64(block(buf), starts, ends, mask(na), tsep, out, True)
    return out, int(status)


#: Fields of at most this many bytes, ``-?[0-9]+``, are parsed by numpy's vectorized pass;
#: longer ones (up to 18 digits cannot overflow int64) and any others, field by field.
_NUMPY_INT_BYTES = 18
_C_SPACE = b" \t\n\v\f\r"


def parse_int64_numpy(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, na: np.ndarray, tsep: int,
    out: np.ndarray,
) -> int:  # fmt: skip
    """:func:`parse_int64_kernel` in numpy, for the blocks of a small file while the kernel is
    not compiled (:func:`.jit.in_numpy`): the same values in ``out`` (up to a bad field) and
    the same status. Fields ``-?[0-9]+`` of up to 18 bytes, most of a file's integers, are read
    by a vectorized pass (the digits of all fields, one column of bytes at a time); the others
    by :func:`_int_field_py`, one at a time."""
    m = starts.shape[0]
    if m == 0:
        return FITS_INT64
    s = np.asarray(starts, np.int64)
    size = np.asarray(ends, np.int64) - s
    take = ~na if na.shape[0] else np.ones(m, np.bool_)
    first = int(np.argmax(take))
    head = buf[s[first] : s[first] + size[first]].tobytes()
    if take[first] and _int_field_py(head, tsep)[2] == CODE_BAD:
        out[:first] = 0  # a column of no numbers (dates, text) fails here: no vectorized pass
        return first
    width = int(min(max(int(size.max()), 1), _NUMPY_INT_BYTES))
    cols = np.arange(width)
    at = s[:, None] + cols
    inside = (cols < size[:, None]) & (at < buf.shape[0])
    if buf.shape[0]:
        raw = np.where(inside, buf[np.minimum(at, buf.shape[0] - 1)], np.uint8(0))
    else:
        raw = np.zeros((m, width), np.uint8)
    neg = raw[:, 0] == 45
    digit_at = inside.copy()
    digit_at[:, 0] &= ~neg
    digits = raw - np.uint8(48)  # a byte below '0' wraps around, above 9
    simple = (
        take
        & (size >= 1 + neg)
        & (size <= _NUMPY_INT_BYTES)
        & ((digits < 10) | ~digit_at).all(axis=1)
    )
    value = np.zeros(m, np.int64)
    for k in range(width):
        value = np.where(digit_at[:, k], value * 10 + digits[:, k], value)
    out[:] = np.where(neg, -value, value)
    out[~take] = 0
    any_neg = bool((neg & simple & (value != 0)).any())
    any_big = any_huge = False
    for i in np.flatnonzero(take & ~simple).tolist():
        mag, negative, code = _int_field_py(buf[s[i] : s[i] + size[i]].tobytes(), tsep)
        if code == CODE_BAD:
            return i
        if code == CODE_SLOW or (negative and mag > 2**63):
            any_huge = True
            out[i] = 0
        elif negative:
            out[i] = -mag
            any_neg |= mag != 0
        else:
            out[i] = mag - 2**64 if mag >= 2**63 else mag
            any_big |= mag >= 2**63
    if any_huge or (any_neg and any_big):
        return NEEDS_FLOAT64
    if any_big:
        return NEEDS_UINT64
    return FITS_INT64


def _int_field_py(raw: bytes, tsep: int) -> tuple[int, bool, int]:
    """:func:`int_field` in Python: (magnitude, negative, code) of one integer field."""
    raw = raw.strip(_C_SPACE)
    neg = raw[:1] == b"-"
    if raw[:1] in (b"-", b"+"):
        raw = raw[1:]
    if not raw[:1].isdigit():
        return 0, neg, CODE_BAD
    if any(not 48 <= c <= 57 and c != tsep for c in raw):
        return 0, neg, CODE_BAD
    mag = int(bytes(c for c in raw if 48 <= c <= 57))
    return (0, neg, CODE_SLOW) if mag >= 2**64 else (mag, neg, CODE_OK)


def parse_uint64(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    na: np.ndarray | None = None,
    thousands: int | str | None = NO_THOUSANDS,
) -> tuple[np.ndarray, int]:
    """Integers as uint64 and a status: FITS_INT64 (all fit uint64), NEEDS_FLOAT64 (a negative
    value or one beyond uint64) or a bad index >= 0."""
    check_fields(buf, starts, ends, na)
    tsep = -1 if thousands is None else _byte(thousands, "thousands", allow_none=True)
    out = np.empty(starts.shape[0], np.uint64)
    status = _parse_uint64(block(buf), starts, ends, mask(na), tsep, out, True)
    return out, int(status)


def parse_float64(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    na: np.ndarray | None = None,
    decimal: int | str = ".",
    thousands: int | str | None = NO_THOUSANDS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(values, slow_index, bad_index): floats from the exact paths (NaN where ``na``), the
    fields still to be fixed by :func:`fix_slow_floats`, and the first bad index or -1."""
    check_fields(buf, starts, ends, na)
    dec, tsep = _separators(decimal, thousands)
    n = starts.shape[0]
    out = np.empty(n, np.float64)
    slow = np.empty(n, np.int64)
    buf, na = block(buf), mask(na)
    # The general kernel (~1.6 s to compile on a fresh machine) only when the fast path's
    # kernel refuses a field that may be a number: a field with a byte no number has is the
    # bad one, as the general kernel would find.
    first = int(np.argmin(na)) if na.shape[0] else 0
    if n == 0 or (na.shape[0] and na[first]):
        out[:] = np.nan
        return out, slow[:0], -1
    if not _may_be_float(buf, int(starts[first]), int(ends[first]), dec, tsep):
        return out, slow[:0], first
    i = 0
    if 1 <= ends[first] - starts[first] <= 8:
        i = int(_parse_float64_fast(buf, starts, ends, na, dec, out, np.zeros(16, np.uint8)))
        if i < 0:
            return out, slow[:0], -1
        if not _may_be_float(buf, int(starts[i]), int(ends[i]), dec, tsep):
            return out, slow[:0], i
    rest = na[i:] if na.shape[0] else na
    nslow, bad = _parse_float64(buf, starts[i:], ends[i:], rest, dec, tsep, out[i:], slow, True)
    return out, slow[:nslow] + i, int(bad) + i if bad >= 0 else -1


#: Bytes a float field may hold (digits, signs, exponent, blanks, the letters of infinity);
#: the decimal and thousands separators are added per call.
_FLOAT_BYTES = np.zeros(256, np.bool_)
_FLOAT_BYTES[list(b"0123456789+-eE \t\n\v\f\rinftyINFTY")] = True


def _may_be_float(buf: np.ndarray, s: int, e: int, dec: int, tsep: int) -> bool:
    """Whether ``buf[s:e]`` has only bytes a float field may hold, and signs only first or
    after the exponent's letter (``2024-01-01`` is no number)."""
    field = buf[s:e]
    ok = _FLOAT_BYTES[field] | (field == dec)
    if tsep >= 0:
        ok |= field == tsep
    if not ok.all():
        return False
    raw = field.tobytes().strip(b" \t\n\v\f\r")
    return not any(c in b"+-" and k and raw[k - 1] not in b"eE" for k, c in enumerate(raw))


def fix_slow_floats(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    slow_index: np.ndarray,
    values: np.ndarray,
    decimal: int | str = ".",
    thousands: int | str | None = NO_THOUSANDS,
) -> None:
    """Set ``values[i]`` for each ``i`` in ``slow_index`` to Python's correctly rounded
    ``float()`` of the field, after removing separators and replacing the decimal character
    (the kernel has checked the syntax, so what is left is a plain decimal literal)."""
    dec, tsep = _separators(decimal, thousands)
    remove = bytes([tsep]) if tsep >= 0 else b""
    for i in slow_index.tolist():
        text = buf[starts[i] : ends[i]].tobytes().strip(b" \t\n\v\f\r")
        if remove:
            text = text.replace(remove, b"")
        if dec != 46:
            text = text.replace(bytes([dec]), b".")
        values[i] = float(text)


def parse_float64_py(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    na: np.ndarray | None = None,
    decimal: int | str = ".",
    thousands: int | str | None = NO_THOUSANDS,
) -> tuple[np.ndarray, int]:
    """(values, bad_index): :func:`parse_float64` with the slow fields fixed, so every value is
    Python's ``float()`` of its text. On a bad field the values are incomplete."""
    values, slow, bad = parse_float64(buf, starts, ends, na, decimal, thousands)
    if bad < 0:
        fix_slow_floats(buf, starts, ends, slow, values, decimal, thousands)
    return values, bad


def parse_bool(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, na: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """(values, bad_index): ``true``/``false`` in any case; False where ``na``."""
    check_fields(buf, starts, ends, na)
    out = np.empty(starts.shape[0], np.bool_)
    bad = _parse_bool(block(buf), starts, ends, mask(na), out)
    return out, int(bad)


def classify(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    na: np.ndarray | None = None,
    decimal: int | str = ".",
    thousands: int | str | None = NO_THOUSANDS,
) -> int:
    """Bitmask of IS_BOOL, IS_INT64, IS_UINT64, IS_FLOAT64: the types that every non-missing
    field of the sample parses as (IS_INT64 and IS_UINT64 also require the values to fit)."""
    check_fields(buf, starts, ends, na)
    dec, tsep = _separators(decimal, thousands)
    return int(_classify(block(buf), starts, ends, mask(na), dec, tsep, True))


def infer_type(mask: int, has_missing: bool) -> np.dtype | None:
    """The first type of the lattice bool -> int64 -> uint64 -> float64 in ``mask``; float64
    instead of bool or an integer when the column has missing values; None: not a number."""
    if mask & (IS_BOOL | IS_INT64 | IS_UINT64) and has_missing:
        return np.dtype(np.float64)
    for bit, dtype in ((IS_BOOL, np.bool_), (IS_INT64, np.int64), (IS_UINT64, np.uint64)):
        if mask & bit:
            return np.dtype(dtype)
    if mask & IS_FLOAT64:
        return np.dtype(np.float64)
    return None
