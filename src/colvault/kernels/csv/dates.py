"""CSV date-time kernels: ISO 8601 and strptime-like formats, parsed to int64 nanoseconds (UTC).

Why: timestamps are the most common typed text in instrument exports, and making a Python
``datetime`` per field costs microseconds. These kernels read fields straight out of the block of
bytes (the contract of :mod:`colvault.kernels.csv.numbers`: ``buf`` uint8, ``starts``/``ends``
int64 offsets, possibly strided views; ``na`` a bool mask of missing fields, empty for none, or
None in the wrappers) and write nanoseconds since 1970-01-01T00:00Z into an int64 array, NaT
(``int64 min``) for missing fields.
They return the index of the first field that does not parse, or -1, instead of raising; a value
outside the datetime64[ns] range (1677-09-21T00:12:43.145224193 .. 2262-04-11T23:47:16.854775807)
counts as not parsing.

ISO 8601 (:func:`parse_iso_datetime`), as ``pandas.to_datetime(format="ISO8601", utc=True)``
reads it (pandas 3.1), restricted to the unambiguous forms:

* ``YYYY-MM-DD``, optionally followed by ``T`` or one space and ``HH:MM``, ``HH:MM:SS`` or
  ``HH:MM:SS.f`` (any number of fraction digits: digits beyond the ninth are truncated, as pandas
  does; ``"10:20:30."`` with no digit is accepted, as pandas does);
* after a time, optionally spaces then ``Z`` or an offset ``+HH:MM``, ``+HHMM``, ``+HH`` (or
  ``-``), converted to UTC; offset hours 0-23, minutes 0-59;
* ranges checked: months 1-12, days of the month with leap years (1900-02-29 is invalid,
  2000-02-29 valid), hours < 24, minutes and seconds < 60 (no leap second);
* ASCII whitespace around the text is ignored.

Where this differs from pandas: pandas also reads ``YYYY``, ``YYYY-MM``, ``YYYYMMDD``, one-digit
fields (``2020-1-1``, ``T1:20``), an hour alone (``T10``) and sloppy offsets (``+5``, ``+05:3``,
``+053``); these are rejected here, because a column of years or of ``YYYYMMDD`` numbers must be
inferred as integers, not dates, and a lone ``+5`` is more likely a typo than an offset. Pandas
rejects trailing whitespace after a date without time (``"2020-01-01 "``); here it is trimmed
like all surrounding whitespace. Pandas rejects fractions of more than 18 digits; here they are
truncated like the others.

Formats (:func:`compile_format` + :func:`parse_format_datetime`) follow Python's
``datetime.strptime`` in the C locale, directive for directive: the same regular expressions
(``%m`` is ``1[0-2]|0[1-9]|[1-9]``, ``%d`` also accepts a space then a digit, ``%S`` matches 60
and 61 which then fail the range check, ...), matched with the same ordered backtracking and not
anchored at the end (the first match must then consume the whole field, else the field is bad);
literal letters match in any case (Python compiles with IGNORECASE); a run of whitespace in the
format matches one or more whitespace characters; a missing year is 1900, a missing month or day 1;
``%y`` 00-68 is 20xx, 69-99 19xx; ``%I`` without ``%p`` is AM; ``%j`` sets the date from the year
and the day of the year (day 366 of a common year is January 1 of the next, as in Python); ``%z``
is ``Z`` or ``±HH[:]MM[[:]SS[.ffffff]]`` with consistent colons and an offset under 24 hours,
converted to UTC. Supported: ``%Y %m %d %H %M %S %f %y %j %b %B %p %I %z %%``; anything else is a
``ValueError`` naming the directive at compile time, as is a repeated directive (Python's regex
refuses those too). Differences from Python: ``%f`` takes 1 to 9 digits (nanoseconds, as pandas'
``to_datetime`` does; Python stops at 6); digits and whitespace are ASCII only (Python's ``\\d``
and ``\\s`` also match other Unicode digits and spaces); non-ASCII literal characters match
byte for byte, without case folding.

A compiled format is an int64 array of ``(opcode, argument)`` rows, interpreted per field by a
backtracking matcher whose choice points are the alternatives of each directive, in the order the
regular expression tries them.

Speed (one thread): ISO fields of the usual shapes (``YYYY-MM-DD[T ]HH:MM:SS.ffffff``, no
offset) take a fast path of a few 8-byte loads checked against templates (see
:func:`parse_iso_datetime_kernel`): ~9 ns/field per 4 MiB block of the mixed benchmark file (26-byte
timestamps), ~40 ns/field for the general path (``pandas.to_datetime`` with ``format="ISO8601"``:
~300-500); ``%d/%m/%Y %H:%M:%S`` ~115 ns/field (pandas: ~1600). Every column kernel prefetches
the bytes of the field :data:`.numbers.AHEAD` places on: the block is mostly out of the caches
by the time a column is parsed (without it the ISO fast path took 28 ns/field there, 8 when the
block is in the cache). As in :mod:`.numbers`, the per-field helpers are compiled with
``_nrt=False`` (``njit_field``), so that passing the block to them costs no reference counting.
"""

from __future__ import annotations

import sys
from typing import Any

import numba
import numpy as np
from numba.core import types

from ..wordops import AHEAD, HELPER, KERNEL, check_fields, load8, njit_field, prefetch
from . import jit
from .jit import BOOL, BUF, MASK, OFFSETS, OUT_I64, Kernel, block, mask
from .numbers import swar_digits

NAT = np.iinfo(np.int64).min

_NS_PER_S = 1_000_000_000
_S_PER_DAY = 86400
_MAX_S = 9223372036  # floor((2**63 - 1) / 1e9)
_MAX_NS_REM = 854775807  # (2**63 - 1) - _MAX_S * 1e9
_MIN_S = -9223372037  # floor(-2**63 / 1e9)
_MIN_NS_REM = 145224192  # -2**63 - _MIN_S * 1e9: that value itself is NaT

# --- calendar ----------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _days_in_month(y, m):
    if m == 2:
        return 29 if _is_leap(y) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


@numba.njit(cache=True, nogil=True, inline="always")
def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@numba.njit(cache=True, nogil=True, **HELPER)
def _civil_from_days(z):
    """(year, month, day) of a day number since 1970-01-01 (Hinnant's algorithm)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return y, m, d


@numba.njit(cache=True, nogil=True, inline="always")
def _to_ns(days, seconds, frac_ns):
    """(nanoseconds, ok) of ``days * 86400 + seconds`` s plus ``0 <= frac_ns < 1e9`` ns; not ok
    outside the datetime64[ns] range (NaT, int64 min, excluded)."""
    sec = days * _S_PER_DAY + seconds
    if sec > _MAX_S or sec < _MIN_S:
        return NAT, False
    if sec == _MAX_S and frac_ns > _MAX_NS_REM:
        return NAT, False
    if sec == _MIN_S and frac_ns <= _MIN_NS_REM:
        return NAT, False
    if sec >= 0:
        return sec * _NS_PER_S + frac_ns, True
    return (sec + 1) * _NS_PER_S + (frac_ns - _NS_PER_S), True


# --- ISO 8601 ----------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, **HELPER)
def _is_space(c):
    return c == 32 or (c >= 9 and c <= 13)


@njit_field
def _digits(buf, p, n):
    """Value of the ``n`` ASCII digits at ``buf[p:]`` (the caller checked the length), or -1."""
    v = 0
    for k in range(p, p + n):
        c = buf[k]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


@njit_field
def iso_field(buf, s, e):
    """(nanoseconds UTC, ok) of one ISO 8601 field."""
    while s < e and _is_space(buf[s]):
        s += 1
    while e > s and _is_space(buf[e - 1]):
        e -= 1
    if e - s < 10 or buf[s + 4] != 45 or buf[s + 7] != 45:
        return NAT, False
    # the counts as int64, not literals: Numba compiles _digits once (not per literal)
    two = np.int64(2)
    y = _digits(buf, s, np.int64(4))
    mo = _digits(buf, s + 5, two)
    d = _digits(buf, s + 8, two)
    if y < 0 or mo < 1 or mo > 12 or d < 1 or d > _days_in_month(y, mo):
        return NAT, False
    p = s + 10
    seconds = 0
    frac = 0
    if p < e:
        if (buf[p] != 84 and buf[p] != 32) or e - p < 6 or buf[p + 3] != 58:
            return NAT, False
        h = _digits(buf, p + 1, two)
        mi = _digits(buf, p + 4, two)
        if h < 0 or h > 23 or mi < 0 or mi > 59:
            return NAT, False
        p += 6
        sec = 0
        if p < e and buf[p] == 58:
            if e - p < 3:
                return NAT, False
            sec = _digits(buf, p + 1, two)
            if sec < 0 or sec > 59:
                return NAT, False
            p += 3
            if p < e and buf[p] == 46:
                p += 1
                nf = 0
                while p < e and buf[p] >= 48 and buf[p] <= 57:
                    if nf < 9:
                        frac = frac * 10 + (buf[p] - 48)
                        nf += 1
                    p += 1
                for _ in range(nf, 9):
                    frac *= 10
        seconds = h * 3600 + mi * 60 + sec
        while p < e and buf[p] == 32:
            p += 1
        if p < e:
            c = buf[p]
            if c == 90:  # Z
                p += 1
            elif c == 43 or c == 45:
                if e - p < 3:
                    return NAT, False
                oh = _digits(buf, p + 1, two)
                if oh < 0 or oh > 23:
                    return NAT, False
                om = 0
                q = p + 3
                if q < e:
                    if buf[q] == 58:
                        q += 1
                    if e - q < 2:
                        return NAT, False
                    om = _digits(buf, q, two)
                    if om < 0 or om > 59:
                        return NAT, False
                    q += 2
                offset = oh * 3600 + om * 60
                seconds -= offset if c == 43 else -offset
                p = q
            if p != e:
                return NAT, False
    return _to_ns(_days_from_civil(y, mo, d), seconds, frac)


def _iso_python(raw: bytes) -> tuple[int, bool]:
    """:func:`iso_field` of a field's bytes, in Python (see :func:`parse_iso_datetime`)."""

    def digits(p: int, n: int) -> int:
        part = raw[p : p + n]
        return int(part) if part.isdigit() and part.isascii() else -1

    s, e = 0, len(raw)
    while s < e and (raw[s] == 32 or 9 <= raw[s] <= 13):
        s += 1
    while e > s and (raw[e - 1] == 32 or 9 <= raw[e - 1] <= 13):
        e -= 1
    if e - s < 10 or raw[s + 4] != 45 or raw[s + 7] != 45:
        return NAT, False
    y, mo, d = digits(s, 4), digits(s + 5, 2), digits(s + 8, 2)
    if y < 0 or mo < 1 or mo > 12 or d < 1 or d > _month_days(y, mo):
        return NAT, False
    p = s + 10
    seconds = frac = 0
    if p < e:
        if raw[p] not in b"T " or e - p < 6 or raw[p + 3] != 58:
            return NAT, False
        h, mi = digits(p + 1, 2), digits(p + 4, 2)
        if h < 0 or h > 23 or mi < 0 or mi > 59:
            return NAT, False
        p += 6
        sec = 0
        if p < e and raw[p] == 58:
            if e - p < 3:
                return NAT, False
            sec = digits(p + 1, 2)
            if sec < 0 or sec > 59:
                return NAT, False
            p += 3
            if p < e and raw[p] == 46:
                p += 1
                q = p
                while q < e and 48 <= raw[q] <= 57:
                    q += 1
                frac = int((raw[p:q][:9] or b"0").ljust(9, b"0"))
                p = q
        seconds = h * 3600 + mi * 60 + sec
        while p < e and raw[p] == 32:
            p += 1
        if p < e:
            c = raw[p]
            if c == 90:  # Z
                p += 1
            elif c == 43 or c == 45:
                if e - p < 3:
                    return NAT, False
                oh = digits(p + 1, 2)
                if oh < 0 or oh > 23:
                    return NAT, False
                om = 0
                q = p + 3
                if q < e:
                    if raw[q] == 58:
                        q += 1
                    if e - q < 2:
                        return NAT, False
                    om = digits(q, 2)
                    if om < 0 or om > 59:
                        return NAT, False
                    q += 2
                offset = oh * 3600 + om * 60
                seconds -= offset if c == 43 else -offset
                p = q
            if p != e:
                return NAT, False
    days = _python(_days_from_civil)(y, mo, d)
    ns, ok = _python(_to_ns)(days, seconds, frac)
    return int(ns), bool(ok)


def _month_days(y: int, m: int) -> int:
    """:func:`_days_in_month` in Python."""
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _python(fn: Any) -> Any:
    """The Python function of a jitted one that calls no other (called as it is, no compile)."""
    return getattr(fn, "py_func", fn)


def _word(text: bytes) -> np.uint64:
    """8 bytes as the little-endian uint64 :func:`load8` reads."""
    return (
        np.frombuffer(text, np.uint64)[0]
        if sys.byteorder == "little"
        else np.uint64(int.from_bytes(text, "little"))
    )


def _mask(text: bytes, chars: bytes) -> np.uint64:
    """0xFF in the bytes of the word of ``text`` that are among ``chars``, 0 elsewhere."""
    return np.uint64(sum(0xFF << (8 * k) for k, c in enumerate(text) if c in chars))


# Templates of the 8-byte words of "YYYY-MM-DD HH:MM:SS.fffffffff": the digit positions ('0')
# and the fixed bytes; the byte at 10 may be 'T' or ' ' (masked out, checked on its own).
_W0 = _word(b"0000-00-")  # bytes 0-7
_W1 = _word(b"00T00:00")  # bytes 8-15
_W2 = _word(b":00.0000")  # bytes 16-23
_D0 = _mask(b"0000-00-", b"0")
_F0 = _mask(b"0000-00-", b"-")
_D1_DATE = _mask(b"00______", b"0")
_D1 = _mask(b"00T00:00", b"0")
_F1 = _mask(b"__T__:__", b":")
_D2_SEC = _mask(b":00_____", b"0")
_F2_SEC = _mask(b":_______", b":")
_F2_FRAC = _mask(b"___.____", b".")
_HI = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_THREES = np.uint64(0x3333333333333333)
_U4 = np.uint64(4)
_U8 = np.uint64(8)
_U255 = np.uint64(255)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_P10_NS = np.array([10 ** (9 - k) for k in range(10)], np.int64)  # ns per unit of k digits


@numba.njit(cache=True, nogil=True, inline="always")
def _digits_at(w, digits):
    """Whether the bytes of ``w`` where ``digits`` has 0xFF are ASCII digits."""
    return ((w & _HI) | (((w + _SIXES) & _HI) >> _U4)) & digits == _THREES & digits


@numba.njit(cache=True, nogil=True, inline="always")
def _pair(w, k):
    """Value of the two ASCII digits at bytes k, k + 1 of ``w``."""
    return (
        np.int64((w >> np.uint64(8 * k)) & _U255) * 10
        + np.int64((w >> np.uint64(8 * k + 8)) & _U255)
        - 528
    )


@njit_field
def iso_datetime_fast(buf, s, e, last0, last1, last_days):
    """(nanoseconds UTC, ok, last0, last1, last_days) of one ISO 8601 field by the fast path;
    not ok: the field is for :func:`iso_field`.

    Fast path: ``YYYY-MM-DD``, then optionally ``[T ]HH:MM``, ``:SS`` and ``.`` with 1-9 digits,
    no blanks and no offset, at least 32 bytes before the block's end: three or four unaligned
    8-byte loads checked against templates with bit tricks. ``last*`` are the last valid
    date's bytes 0-7, 8-9 and day number (``_ALL, _ALL, 0`` at first): timestamps in a file
    mostly share their date with the previous one. Its results are :func:`iso_field`'s."""
    n = buf.shape[0]
    size = e - s
    if s + 32 <= n and (size == 10 or size == 16 or size == 19 or 21 <= size <= 29):
        w0 = load8(buf, s)
        w1 = load8(buf, s + 8)
        date1 = w1 & np.uint64(0xFFFF)
        ok = True
        if w0 == last0 and date1 == last1:
            days = last_days
        else:
            ok = (w0 ^ _W0) & _F0 == 0 and _digits_at(w0, _D0) and _digits_at(w1, _D1_DATE)
            days = 0
            if ok:
                y = _pair(w0, 0) * 100 + _pair(w0, 2)
                mo = _pair(w0, 5)
                d = _pair(w1, 0)
                ok = mo >= 1 and mo <= 12 and d >= 1 and d <= _days_in_month(y, mo)
                if ok:
                    days = _days_from_civil(y, mo, d)
                    last0 = w0
                    last1 = date1
                    last_days = days
        seconds = 0
        frac = 0
        if ok and size > 10:
            sep = (w1 >> np.uint64(16)) & _U255
            ok = (
                (sep == np.uint64(84) or sep == np.uint64(32))
                and (w1 ^ _W1) & _F1 == 0
                and _digits_at(w1, _D1)
            )
            if ok:
                h = _pair(w1, 3)
                mi = _pair(w1, 6)
                ok = h <= 23 and mi <= 59
                seconds = h * 3600 + mi * 60
            if ok and size > 16:
                w2 = load8(buf, s + 16)
                ok = (w2 ^ _W2) & _F2_SEC == 0 and _digits_at(w2, _D2_SEC)
                if ok:
                    sec = _pair(w2, 1)
                    ok = sec <= 59
                    seconds += sec
                if ok and size > 19:
                    nfd = size - 20  # 1 .. 9 fraction digits
                    x = load8(buf, s + 20)
                    take = min(nfd, 8)
                    keep = _ALL >> np.uint64(64 - 8 * take)
                    ok = (w2 ^ _W2) & _F2_FRAC == 0
                    v = swar_digits(x & keep, take) if ok else -1
                    ok = v >= 0
                    if ok and nfd == 9:
                        c = int(buf[s + 28]) - 48
                        ok = c >= 0 and c <= 9
                        v = v * 10 + c
                    if ok:
                        frac = v * _P10_NS[nfd]
        if ok:
            ns, ok = _to_ns(days, seconds, frac)
            if ok:
                return ns, True, last0, last1, last_days
    return NAT, False, last0, last1, last_days


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_iso_datetime_kernel(buf, starts, ends, na, out, fast=True):
    """ISO 8601 fields to nanoseconds UTC in ``out`` (NaT where ``na``); first bad index or -1.
    Each field goes through :func:`iso_datetime_fast`, then :func:`iso_field` if refused
    (``fast=False``: :func:`iso_field` alone; the tests compare both)."""
    last0 = _ALL
    last1 = _ALL
    last_days = np.int64(0)  # not the literal 0: one specialization of iso_datetime_fast
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = NAT
            continue
        s = starts[i]
        e = ends[i]
        ok = False
        if fast:
            v, ok, last0, last1, last_days = iso_datetime_fast(buf, s, e, last0, last1, last_days)
        if not ok:
            v, ok = iso_field(buf, s, e)
        if not ok:
            return i
        out[i] = v
    return -1


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_iso_fast_kernel(buf, starts, ends, na, out, pad):
    """:func:`parse_iso_datetime_kernel` by the fast path alone: the first field it refuses
    (the caller goes on from there with that kernel), or -1. A field within 32 bytes of the
    block's end is copied into ``pad`` (64 bytes) first, so the last one of a block is no
    reason to compile the general parser: most files never need it."""
    last0 = _ALL
    last1 = _ALL
    last_days = np.int64(0)  # not the literal 0: one specialization of iso_datetime_fast
    zero = np.int64(0)
    n = buf.shape[0]
    m = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(m):
        prefetch(buf, starts[min(i + AHEAD, m - 1)])
        if nna != 0 and na[i]:
            out[i] = NAT
            continue
        s = starts[i]
        e = ends[i]
        if s + 32 <= n:
            v, ok, last0, last1, last_days = iso_datetime_fast(buf, s, e, last0, last1, last_days)
        else:
            size = e - s
            if size > 29:
                return i
            for k in range(size):
                pad[k] = buf[s + k]
            v, ok, last0, last1, last_days = iso_datetime_fast(
                pad, zero, size, last0, last1, last_days
            )
        if not ok:
            return i
        out[i] = v
    return -1


# --- strptime-like formats ---------------------------------------------------------------------

OP_LITERAL = 0  # argument: the byte; + 256 when it is an ASCII letter matched in any case
OP_SPACE = 1  # one or more whitespace characters
OP_Y = 2
OP_y = 3
OP_m = 4
OP_d = 5
OP_H = 6
OP_I = 7
OP_M = 8
OP_S = 9
OP_f = 10
OP_j = 11
OP_b = 12
OP_B = 13
OP_p = 14
OP_z = 15

_DIRECTIVES = {
    "Y": OP_Y,
    "y": OP_y,
    "m": OP_m,
    "d": OP_d,
    "H": OP_H,
    "I": OP_I,
    "M": OP_M,
    "S": OP_S,
    "f": OP_f,
    "j": OP_j,
    "b": OP_b,
    "B": OP_B,
    "p": OP_p,
    "z": OP_z,
}

_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def _name_table(names: list[str]) -> np.ndarray:
    """Names as rows of a uint8 table: column 0 holds the length, then the lowercase bytes."""
    table = np.zeros((len(names), 1 + max(map(len, names))), np.uint8)
    for k, name in enumerate(names):
        table[k, 0] = len(name)
        table[k, 1 : 1 + len(name)] = np.frombuffer(name.encode(), np.uint8)
    return table


_FULL_MONTHS = _name_table(_MONTHS)
_ABBR_MONTHS = _name_table([m[:3] for m in _MONTHS])
_AM_PM = _name_table(["am", "pm"])
_MAX_FRAC = 9  # digits of %f


@njit_field
def _digit(buf, p, e):
    """The ASCII digit at ``buf[p]`` as an int, -1 if there is none."""
    if p >= e:
        return -1
    c = buf[p]
    if c < 48 or c > 57:
        return -1
    return c - 48


@numba.njit(cache=True, nogil=True, **HELPER)
def _is_regex_space(c):
    """Python's ``\\s`` on ASCII: space, \\t \\n \\v \\f \\r and the separators \\x1c-\\x1f."""
    return c == 32 or (c >= 9 and c <= 13) or (c >= 28 and c <= 31)


@njit_field
def _name_at(table, buf, p, e):
    """Row of the name in ``table`` at ``buf[p:]`` (any case), -1 if none."""
    for k in range(table.shape[0]):
        n = table[k, 0]
        if e - p < n:
            continue
        ok = True
        for j in range(n):
            if (buf[p + j] | 32) != table[k, 1 + j]:
                ok = False
                break
        if ok:
            return k
    return -1


@njit_field
def _name_length(op, buf, p, e):
    """Length of the month name (%b, %B) or AM/PM (%p) at ``buf[p:]``, 0 if there is none."""
    table = _ABBR_MONTHS if op == OP_b else (_FULL_MONTHS if op == OP_B else _AM_PM)
    k = _name_at(table, buf, p, e)
    return 0 if k < 0 else np.int64(table[k, 0])


@njit_field
def _two_digits(buf, p, e, lo, hi, first_max):
    """Two digits at ``buf[p:]`` whose first is <= first_max and value in [lo, hi]?"""
    d0 = _digit(buf, p, e)
    d1 = _digit(buf, p + 1, e)
    if d0 < 0 or d1 < 0 or d0 > first_max:
        return False
    v = d0 * 10 + d1
    return v >= lo and v <= hi


@njit_field
def _z_candidate(buf, p, e, a):
    """Length of alternative ``a`` (0..30) of Python's %z regex at ``buf[p:]``: 0 if it does not
    match. ``[+-]\\d\\d:?[0-5]\\d(:?[0-5]\\d(\\.\\d{1,6})?)?|Z``, alternatives in the order the
    regex engine tries them (greedy optional parts first)."""
    if a == 30:
        return 1 if p < e and buf[p] == 90 else 0
    if p >= e or (buf[p] != 43 and buf[p] != 45):
        return 0
    if _digit(buf, p + 1, e) < 0 or _digit(buf, p + 2, e) < 0:
        return 0
    q = p + 3
    if a < 15:  # first colon present
        if q >= e or buf[q] != 58:
            return 0
        q += 1
    if _digit(buf, q, e) < 0 or _digit(buf, q, e) > 5 or _digit(buf, q + 1, e) < 0:
        return 0
    q += 2
    r = a % 15
    if r == 14:  # no seconds group
        return q - p
    if r < 7:  # second colon present
        if q >= e or buf[q] != 58:
            return 0
        q += 1
    if _digit(buf, q, e) < 0 or _digit(buf, q, e) > 5 or _digit(buf, q + 1, e) < 0:
        return 0
    q += 2
    nfrac = 6 - r % 7  # 6..1 digits, then 0: no fraction group
    if nfrac > 0:
        if q >= e or buf[q] != 46:
            return 0
        q += 1
        for k in range(nfrac):
            if _digit(buf, q + k, e) < 0:
                return 0
        q += nfrac
    return q - p


@njit_field
def _candidate(op, arg, buf, p, e, a):
    """Length (> 0) of alternative ``a`` of instruction (op, arg) at ``buf[p:]``; 0 if that
    alternative does not match there; -1 if there are no more alternatives."""
    if op == OP_LITERAL:
        if a > 0:
            return -1
        if p >= e:
            return 0
        c = buf[p]
        if arg >= 256:
            return 1 if (c | 32) == arg - 256 else 0
        return 1 if c == arg else 0
    if op == OP_SPACE:
        run = 0
        while p + run < e and _is_regex_space(buf[p + run]):
            run += 1
        return run - a if run - a >= 1 else -1
    if op in (OP_Y, OP_y):
        if a > 0:
            return -1
        n = 4 if op == OP_Y else 2
        for k in range(n):
            if _digit(buf, p + k, e) < 0:
                return 0
        return n
    if op == OP_f:
        if a >= _MAX_FRAC:
            return -1
        n = _MAX_FRAC - a
        for k in range(n):
            if _digit(buf, p + k, e) < 0:
                return 0
        return n
    if op == OP_z:
        if a > 30:
            return -1
        return _z_candidate(buf, p, e, a)
    if op in (OP_b, OP_B, OP_p):
        return -1 if a > 0 else _name_length(op, buf, p, e)
    # _two_digits' bounds are variables, not literals, so that Numba compiles it once
    lo, hi, top = 0, 61, 6  # %S: two-digit range, highest first digit
    if op == OP_j:
        if a == 0:
            d0 = _digit(buf, p, e)
            d1 = _digit(buf, p + 1, e)
            d2 = _digit(buf, p + 2, e)
            if d0 < 0 or d1 < 0 or d2 < 0:
                return 0
            v = d0 * 100 + d1 * 10 + d2
            return 3 if v >= 1 and v <= 366 else 0
        if a == 1:
            lo, hi, top = 1, 99, 9
            return 2 if _two_digits(buf, p, e, lo, hi, top) else 0
        if a == 2:
            return 1 if _digit(buf, p, e) >= 1 else 0
        return -1
    # one or two digits: (two-digit range, smallest one-digit value); %d also " [1-9]"
    if a == 0:
        if op in (OP_m, OP_I):
            lo, hi, top = 1, 12, 1
        elif op == OP_d:
            lo, hi, top = 1, 31, 3
        elif op == OP_H:
            lo, hi, top = 0, 23, 2
        elif op == OP_M:
            lo, hi, top = 0, 59, 5
        return 2 if _two_digits(buf, p, e, lo, hi, top) else 0
    if a == 1:
        lowest = 0 if op in (OP_H, OP_M, OP_S) else 1
        return 1 if _digit(buf, p, e) >= lowest else 0
    if a == 2 and op == OP_d:
        return 2 if p < e and buf[p] == 32 and _digit(buf, p + 1, e) >= 1 else 0
    return -1


@njit_field
def _match(program, buf, s, e, pos, alt):
    """Backtracking match of ``program`` at ``buf[s:]``: True and ``pos[k]..pos[k + 1]`` the
    span of instruction k for the first match in regex order (which may end before ``e``)."""
    m = program.shape[0]
    k = 0
    pos[0] = s
    alt[0] = 0
    while k >= 0:
        if k == m:
            return True
        op = program[k, 0]
        arg = program[k, 1]
        length = 0
        while True:
            length = _candidate(op, arg, buf, pos[k], e, alt[k])
            alt[k] += 1
            if length != 0:
                break
        if length > 0:
            pos[k + 1] = pos[k] + length
            k += 1
            if k < m:
                alt[k] = 0
        else:
            k -= 1
    return False


@njit_field
def _number(buf, a, b):
    """Value of the digits in ``buf[a:b]``, skipping spaces (``%d`` may match `` 5``)."""
    v = 0
    for p in range(a, b):
        c = buf[p]
        if c >= 48 and c <= 57:
            v = v * 10 + (c - 48)
    return v


@njit_field
def _format_field(program, buf, s, e, pos, alt):
    """(nanoseconds UTC, ok) of one field under a compiled format."""
    if not _match(program, buf, s, e, pos, alt):
        return NAT, False
    m = program.shape[0]
    if pos[m] != e:
        return NAT, False  # Python: "unconverted data remains"
    pm = -1
    for k in range(m):
        if program[k, 0] == OP_p:
            pm = _name_at(_AM_PM, buf, pos[k], pos[k + 1])
    year = -1
    month = 1
    day = 1
    hour = 0
    minute = 0
    second = 0
    frac = 0
    julian = -1
    offset_us = 0
    for k in range(m):
        op = program[k, 0]
        a = pos[k]
        b = pos[k + 1]
        if op == OP_Y:
            year = _number(buf, a, b)
        elif op == OP_y:
            year = _number(buf, a, b)
            year += 2000 if year <= 68 else 1900
        elif op == OP_m:
            month = _number(buf, a, b)
        elif op == OP_b:
            month = _name_at(_ABBR_MONTHS, buf, a, b) + 1
        elif op == OP_B:
            month = _name_at(_FULL_MONTHS, buf, a, b) + 1
        elif op == OP_d:
            day = _number(buf, a, b)
        elif op == OP_H:
            hour = _number(buf, a, b)
        elif op == OP_I:
            hour = _number(buf, a, b)
            if pm == 1:
                if hour != 12:
                    hour += 12
            elif hour == 12:
                hour = 0
        elif op == OP_M:
            minute = _number(buf, a, b)
        elif op == OP_S:
            second = _number(buf, a, b)
        elif op == OP_f:
            frac = _number(buf, a, b)
            for _ in range(b - a, _MAX_FRAC):
                frac *= 10
        elif op == OP_j:
            julian = _number(buf, a, b)
        elif op == OP_z:
            if b - a == 1:  # Z
                offset_us = 0
            else:
                colon = buf[a + 3] == 58
                q = a + 4 if colon else a + 3
                total = _number(buf, a + 1, a + 3) * 3600 + _number(buf, q, q + 2) * 60
                q += 2
                frac_us = 0
                if q < b:  # seconds, with a colon exactly when the first one was there
                    if (buf[q] == 58) != colon:
                        return NAT, False
                    if colon:
                        q += 1
                    total += _number(buf, q, q + 2)
                    q += 2
                    if q < b:  # '.' and 1-6 digits
                        frac_us = _number(buf, q + 1, b)
                        for _ in range(b - q - 1, 6):
                            frac_us *= 10
                offset_us = total * 1_000_000 + frac_us
                if buf[a] == 45:
                    offset_us = -offset_us
                if offset_us >= 86_400_000_000 or offset_us <= -86_400_000_000:
                    return NAT, False
    leap_fix = False
    if year < 0:
        if month == 2 and day == 29:
            year = 1904  # Python's stand-in leap year, reset to 1900 in the end
            leap_fix = True
        else:
            year = 1900
    if julian >= 0:
        days = _days_from_civil(year, 1, 1) + julian - 1
        if leap_fix:
            _, month, day = _civil_from_days(days)
            if month == 2 and day == 29:
                return NAT, False
            days = _days_from_civil(1900, month, day)
    else:
        if leap_fix or day > _days_in_month(year, month):
            return NAT, False
        days = _days_from_civil(year, month, day)
    if year < 1 or second > 59:
        return NAT, False
    seconds = hour * 3600 + minute * 60 + second
    # subtract the offset (microseconds) from seconds + frac (nanoseconds), keeping frac in range
    frac -= (offset_us % 1_000_000) * 1000
    seconds -= offset_us // 1_000_000
    if frac < 0:
        frac += _NS_PER_S
        seconds -= 1
    return _to_ns(days, seconds, frac)


@numba.njit(cache=True, nogil=True, **KERNEL)
def parse_format_datetime_kernel(buf, starts, ends, na, program, out):
    """Fields under a compiled format to nanoseconds UTC in ``out`` (NaT where ``na``); first bad
    index or -1."""
    m = program.shape[0]
    pos = np.empty(m + 1, np.int64)
    alt = np.empty(max(m, 1), np.int64)
    nfields = starts.shape[0]
    nna = na.shape[0]  # 0: no missing values
    for i in range(nfields):
        prefetch(buf, starts[min(i + AHEAD, nfields - 1)])
        if nna != 0 and na[i]:
            out[i] = NAT
            continue
        v, ok = _format_field(program, buf, starts[i], ends[i], pos, alt)
        if not ok:
            return i
        out[i] = v
    return -1


# --- typed Python wrappers ---------------------------------------------------------------------

_PROGRAM = types.Array(types.int64, 2, "C", readonly=True)
_parse_iso = Kernel(parse_iso_datetime_kernel, BUF, OFFSETS, OFFSETS, MASK, OUT_I64, BOOL)
_parse_iso_fast = Kernel(parse_iso_fast_kernel, BUF, OFFSETS, OFFSETS, MASK, OUT_I64, BUF)
_parse_format = Kernel(parse_format_datetime_kernel, BUF, OFFSETS, OFFSETS, MASK, _PROGRAM, OUT_I64)


def parse_iso_datetime(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, na: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """(int64 nanoseconds UTC, NaT where ``na``; index of the first bad field or -1).

    The fast path's kernel goes first; the general one (compiled on first need) takes over
    from the first field the fast path refuses. At most :data:`.compiling.SMALL` fields are read
    in Python (:func:`_iso_python`, the same rules) while the fast path's kernel is not
    compiled."""
    check_fields(buf, starts, ends, na)
    out = np.empty(starts.shape[0], np.int64)
    buf, na = block(buf), mask(na)
    if jit.in_python(_parse_iso_fast, starts.shape[0]):  # small: no kernel compiled
        missing = na.tolist() if na.shape[0] else [False] * starts.shape[0]
        bounds = zip(starts.tolist(), ends.tolist(), missing, strict=True)
        for i, (s, e, gone) in enumerate(bounds):
            v, ok = (NAT, True) if gone else _iso_python(buf[s:e].tobytes())
            if not ok:
                return out, i
            out[i] = v
        return out, -1
    i = int(_parse_iso_fast(buf, starts, ends, na, out, np.zeros(64, np.uint8)))
    if i < 0:
        return out, -1
    rest = na[i:] if na.shape[0] else na
    bad = int(_parse_iso(buf, starts[i:], ends[i:], rest, out[i:], True))
    return out, bad + i if bad >= 0 else -1


def compile_format(fmt: str) -> np.ndarray:
    """The int64 ``(opcode, argument)`` program of a strptime-like format; ValueError on an
    unsupported, stray or repeated directive."""
    ops: list[tuple[int, int]] = []
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            if i + 1 == len(fmt):
                raise ValueError(f"stray % at the end of format {fmt!r}")
            d = fmt[i + 1]
            i += 2
            if d == "%":
                ops.append((OP_LITERAL, ord("%")))
                continue
            if d not in _DIRECTIVES:
                supported = " ".join("%" + k for k in _DIRECTIVES)
                raise ValueError(
                    f"unsupported directive %{d} in format {fmt!r} (supported: {supported} %%)"
                )
            if d in seen:
                raise ValueError(f"directive %{d} appears twice in format {fmt!r}")
            seen.add(d)
            ops.append((_DIRECTIVES[d], 0))
        elif ch.isspace():
            while i < len(fmt) and fmt[i].isspace():
                i += 1
            ops.append((OP_SPACE, 0))
        else:
            i += 1
            if ch.isascii() and ch.isalpha():
                ops.append((OP_LITERAL, 256 + ord(ch.lower())))
            else:
                ops.extend((OP_LITERAL, byte) for byte in ch.encode())
    return np.array(ops, np.int64).reshape(len(ops), 2)


def parse_format_datetime(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    na: np.ndarray | None,
    program: np.ndarray,
) -> tuple[np.ndarray, int]:
    """(int64 nanoseconds UTC, NaT where ``na``; index of the first bad field or -1) of fields
    under a program from :func:`compile_format`."""
    check_fields(buf, starts, ends, na)
    if program.dtype != np.int64 or program.ndim != 2 or program.shape[1] != 2:
        raise TypeError("program must come from compile_format")
    out = np.empty(starts.shape[0], np.int64)
    bad = _parse_format(block(buf), starts, ends, mask(na), program, out)
    return out, int(bad)
