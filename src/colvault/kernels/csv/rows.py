"""Row parser: a block of plain CSV records parsed in one pass, numbers and dates as they are met.

Why: the general path tokenizes a block into field offsets (:mod:`.tokens`), then each
column's kernel reads its offsets back and parses the fields. For a block of plain records,
which is most blocks of most files, writing and re-reading the offsets is about half the work:
this kernel finds each field's end (the next delimiter, line end or comment byte, searched 8
bytes at a time) and parses it right away with the same per-field functions the column kernels
use, so the values are bit for bit theirs. Text fields only get their offsets,
for the text kernels.

The kernel stops at the first record it does not handle, and returns how far it got (rows, and
the byte where that record starts), so the caller takes the general path for the rest of the
block. It handles records of exactly ``width`` unquoted fields ending with LF or CRLF, each
field parsing as its column's kind without the slow paths: ints within int64, floats on the
exact paths, ISO 8601 times (text fields may be empty). Anything else stops it: a quote at a
field's start, an empty number or time (a missing value), a blank or comment line, a line
starting with a blank, a bare CR, a ragged row, a value that does not parse or needs a wider
type, a record cut by the block's end; and, when asked (``exact_ints``), an integer text in a
float column whose double is 2**53 or more in magnitude, which float64 may round (the importer
looks at its text: ``colvault.io.csv.columns``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types

from ..wordops import ONES, cttz, load8, zero_bytes
from .dates import iso_datetime_fast, iso_field
from .jit import BOOL, BUF, I64, Kernel, block
from .numbers import (
    CODE_BAD,
    CODE_OK,
    P10,
    float_field,
    int_field,
    swar_decimal,
    swar_int,
)

#: Field kinds (one per field position of a row).
SKIP = 0  # a column not imported
INT64 = 1
FLOAT64 = 2
DATETIME = 3  # ISO 8601, nanoseconds UTC
TEXT = 4  # offsets only

_LF = 10
#: The byte the row kernel's ``cr`` argument names (None: the block holds none).
CR = 13
_SP = 32
_TAB = 9
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_WLF = np.uint64(_LF) * ONES
_WCR = np.uint64(CR) * ONES
_I64_MAX = np.uint64(0x7FFFFFFFFFFFFFFF)
_2_63 = np.uint64(0x8000000000000000)
_EXACT = 2.0**53  # float64 holds every integer up to this magnitude


@numba.njit(cache=True, nogil=True)
def parse_rows_kernel(
    buf, i, r, delimiter, quotechar, comment, cr, kinds, slots, decimal, thousands, ints,
    floats, stamps, tstarts, tends, exact_ints=False,
):  # fmt: skip
    """Parse rows from byte ``i`` (a record's start) of ``buf`` into rows ``r`` on of the
    outputs (column ``slots[p]`` of the array of field ``p``'s kind), until a record it does not
    handle, the end of ``buf`` or the outputs' capacity (their second dimension). Returns
    (rows filled, byte where the next record starts).

    ``quotechar`` and ``comment`` are bytes or None, and ``cr`` is ``13`` or None. None promises
    that ``buf`` holds no such byte (a plain block has no quote character; most files have no CR
    and no comment character): Numba compiles a None argument's tests out, and the field-end
    search, the hottest loop, looks for two bytes instead of four.

    ``exact_ints``: stop at an integer text of a float field whose double is 2**53 or more in
    magnitude (a look at the field's bytes only then; no field of the fast path is one): the
    caller's general path checks that float64 holds it. Off, it is read as the float it is."""
    n = buf.shape[0]
    width = kinds.shape[0]
    cap = ints.shape[1]
    wdec = np.uint64(decimal) * ONES
    wdelim = np.uint64(delimiter) * ONES
    wcomment = np.uint64(_LF if comment is None else comment) * ONES
    last0 = _ALL
    last1 = _ALL
    last_days = np.int64(0)  # not the literal 0: one specialization of iso_datetime_fast
    while i < n and r < cap:
        c0 = buf[i]
        if c0 == _LF or c0 == CR or c0 == _SP or c0 == _TAB:  # noqa: SIM109
            break
        if comment is not None and c0 == comment:
            break
        j = i
        rec_end = -1
        for p in range(width):
            if j >= n:
                break
            if quotechar is not None and buf[j] == quotechar:
                break
            # the field's end: the next delimiter, LF, CR or comment, 8 bytes at a time
            k = j
            while k + 8 <= n:
                y = load8(buf, k)
                m = zero_bytes(y ^ wdelim) | zero_bytes(y ^ _WLF)
                if cr is not None:
                    m |= zero_bytes(y ^ _WCR)
                if comment is not None:
                    m |= zero_bytes(y ^ wcomment)
                if m != 0:
                    k += cttz(m) >> 3
                    break
                k += 8
            else:
                while k < n and not (
                    buf[k] == delimiter
                    or buf[k] == _LF
                    or (cr is not None and buf[k] == CR)
                    or (comment is not None and buf[k] == comment)
                ):
                    k += 1
                if k >= n:
                    break
            c = buf[k]
            if p < width - 1:
                if c != delimiter:
                    break
            elif c == _LF:
                rec_end = k + 1
            elif c == CR and k + 1 < n and buf[k + 1] == _LF:
                rec_end = k + 2
            else:
                break
            s = j
            e = k
            kind = kinds[p]
            slot = slots[p]
            if e == s and kind != TEXT and kind != SKIP:
                rec_end = -1  # a missing value: the general path matches na_values
                break
            if kind == INT64:
                v = np.int64(-1)
                neg = False
                if e - s - 1 < 8 and s + 8 <= n:
                    v, neg = swar_int(buf, s, e)
                if v >= 0:
                    ints[slot, r] = -v if neg else v
                else:
                    mag, neg, code = int_field(buf, s, e, thousands)
                    if code != CODE_OK or mag > (_2_63 if neg else _I64_MAX):
                        rec_end = -1
                        break
                    ints[slot, r] = np.int64(np.uint64(0) - mag) if neg else np.int64(mag)
            elif kind == FLOAT64:
                w = np.int64(-1)
                nfrac = 0
                neg = False
                if e - s - 1 < 8 and s + 8 <= n:
                    w, nfrac, neg = swar_decimal(buf, s, e, wdec)
                if w >= 0:
                    x = np.float64(w) / P10[np.uint64(nfrac)]
                    floats[slot, r] = -x if neg else x
                else:
                    x, code = float_field(buf, s, e, decimal, thousands)
                    if code != CODE_OK:
                        rec_end = -1
                        break
                    if (
                        exact_ints
                        and not abs(x) < _EXACT
                        and int_field(buf, s, e, thousands)[2] != CODE_BAD
                    ):
                        rec_end = -1  # an integer float64 may round
                        break
                    floats[slot, r] = x
            elif kind == DATETIME:
                ns, ok, last0, last1, last_days = iso_datetime_fast(
                    buf, s, e, last0, last1, last_days
                )
                if not ok:
                    ns, ok = iso_field(buf, s, e)
                if not ok:
                    rec_end = -1
                    break
                stamps[slot, r] = ns
            elif kind == TEXT:
                tstarts[slot, r] = s
                tends[slot, r] = e
            j = k + 1
        if rec_end < 0:
            break
        r += 1
        i = rec_end
    return r, i


_INDEX = types.Array(types.int64, 1, "A", readonly=True)
_INTS = types.Array(types.int64, 2, "C")
_FLOATS = types.Array(types.float64, 2, "C")
#: the row kernel compiled for each (comment character, CR) variant met: None arguments
_variants: dict[tuple[bool, bool], Kernel] = {}


def parse_rows(
    buf: np.ndarray, i: int, r: int, delimiter: int, comment: int, cr: bool, kinds: np.ndarray,
    slots: np.ndarray, decimal: int, thousands: int, ints: np.ndarray, floats: np.ndarray,
    stamps: np.ndarray, tstarts: np.ndarray, tends: np.ndarray, exact_ints: bool,
) -> tuple[int, int]:  # fmt: skip
    """:func:`parse_rows_kernel` on a plain block (no quote character; ``comment`` -1: none;
    ``cr``: the block may hold a CR), compiled once per variant: (rows filled, next byte)."""
    key = (comment >= 0, cr)
    kernel = _variants.get(key)
    if kernel is None:
        none = types.none
        sig = (BUF, I64, I64, I64, none, I64 if key[0] else none, I64 if cr else none,
               _INDEX, _INDEX, I64, I64, _INTS, _FLOATS, _INTS, _INTS, _INTS, BOOL)  # fmt: skip
        kernel = _variants.setdefault(key, Kernel(parse_rows_kernel, *sig))
    rows, end = kernel(
        block(buf), i, r, delimiter, None, comment if comment >= 0 else None, CR if cr else None,
        kinds, slots, decimal, thousands, ints, floats, stamps, tstarts, tends, exact_ints,
    )  # fmt: skip
    return int(rows), int(end)
