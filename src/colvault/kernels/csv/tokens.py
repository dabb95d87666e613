"""Quote-aware CSV tokenizer: a block of bytes in, field offsets and row boundaries out.

Why: the CSV importer streams a file in blocks of a few MiB. Each block is tokenized here into
byte offsets only (no strings are made); the number, date and text kernels then parse the fields
they need straight out of the block. The importer carries ``buf[consumed:]`` (an incomplete last
record) over to the front of the next block.

Contract (the same data model as :mod:`colvault.kernels.csv.numbers`):

* ``buf`` is a 1-d ``uint8`` array of UTF-8 bytes (a BOM already stripped by the caller).
* Field ``f`` is ``buf[starts[f]:ends[f]]`` with the surrounding quotes excluded; ``flags[f]`` bit 0
  (``QUOTED``) says the field was quoted, bit 1 (``ESCAPED``) that its bytes must be unescaped
  (:func:`.text.unescape_bytes`): inside the quoted part ``""`` stands for ``"``.
  Bit 2 (``TRAILING``) marks a field with text after its closing quote, which pandas keeps:
  ``"ab"c`` is ``abc``. Such a field's slice runs from after the opening quote to the end of the
  field, closing quote included, and it also has bits 0 and 1 set; the unescape rule covers it
  (within the quoted part ``""`` is ``"`` and a lone ``"`` ends the quoted part; after that every
  byte is literal). So a kernel that reads slices as they are must send fields with bit 1 set to
  a slower path (pandas reads ``"12"3`` as the number 123).
* Row ``r`` holds fields ``row_first[r] .. row_first[r + 1] - 1``; ``np.diff(row_first)`` (or
  :func:`fields_per_row`) gives the field counts. ``row_line[r]`` is the 0-based physical line on
  which row ``r`` starts, counting every CR, LF or CRLF (inside quoted fields too, and blank or
  comment lines), relative to the start of ``buf``.

Semantics follow ``pandas.read_csv`` (C engine) with its defaults, checked against pandas 3.1:
RFC 4180 quotes with ``""`` escapes and line ends (CR, LF, CRLF, mixed) inside quoted fields; a
quote inside an unquoted field is literal (``a"b`` is ``a"b``); text after a closing quote joins the
field (``"ab"c`` is ``abc``; the one byte right after the closing quote is literal even when it is
the comment character, as in pandas); blank lines yield no row, nor do lines of only spaces and
tabs (unless the delimiter is one of them: then such a line is a row of empty fields, as in
pandas); a trailing delimiter gives an extra empty field; the comment character (outside quotes)
ends the record, and a line that starts with it yields no row (a comment after leading blanks,
``"  #x"``, leaves a row with the field ``"  "``, as in pandas). One deliberate difference: pandas
drops a delimiter that starts the line right after a CR-terminated blank or comment line
(``"a\\r\\r,b\\r"`` gives ``["b", ""]``); here it is ``["", "b"]``, as with LF line ends.

Streaming: with ``final=False`` only records that end with a line end are emitted, and a CR as the
last byte never counts as one (it may be the first half of a CRLF). With ``final=True`` the last
line needs no line end, and an open quote at the end is error ``UNTERMINATED_QUOTE``. Tokenizing a
file in blocks with carry-over gives the same fields as tokenizing it at once, since every record
is tokenized from its own first byte. A record longer than the block gives ``consumed == 0``: the
caller must read more before calling again.

Errors: an unterminated quote (final only) stops the block there: the rows before it are returned
and ``consumed`` is the start of the broken record. Text after a closing quote is no error (see
``TRAILING``), so there is no second error code.

The kernel first marks, in one bit per byte, the bytes that end an unquoted field (delimiter, LF,
CR, comment character): a vectorized pass of ~0.1 ns/byte (:func:`special_masks`). A fast path
then reads the common records by jumping from set bit to set bit (count trailing zeros): fields
unquoted, or quoted with no line end inside and nothing after the closing quote (searched 8 bytes
at a time), records ending with a line end. Any other record (a comment, a blank or whitespace
line, a line end inside quotes, text after a closing quote, a record reaching the end of the
block) is read from its first byte by an explicit state machine that skips unquoted and quoted
runs with 256-entry tables of the bytes that stop them; the fast path resumes after it. The
fast path is a kernel of its own (``_fast``): a block it reads to its end (or to a last record
that is incomplete, or simple) never calls the state machine, so a file without quoted line
ends, comments or blank lines never compiles it (about half the tokenizer's compile time).
``tokenize_kernel(..., fast=False)`` runs the state machine alone, and the tests check that both
give the same output. The output arrays start at one field per 4 bytes and one row per 16; when
they are full the kernel returns at the last record boundary, the arrays are doubled (in Python, by
:func:`_drive`) and it resumes (growing them inside the loop made it five times slower). The
returned arrays are views of those buffers. Measured on one core, 4 MiB blocks of the 2 M-row
benchmark files: ~25 ms for the numeric file (38 MB, ``int,float,float`` rows: ~1.5 GB/s; the state
machine alone ~70 ms) when the output arrays' memory is reused and cached, ~40 ms in the importer's
order (the output written to memory out of the caches), ~58 ms when malloc also hands the freed
arrays back to the system (page faults on the new ones); the mixed file ~1.1-2 GB/s.

While these kernels are not compiled, the plain blocks of a small file (no quote, comment or CR,
no blank line) are tokenized by numpy instead (:func:`tokenize_numpy`, the same output).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numba
import numpy as np
from numba.core import types

from ..wordops import HELPER, KERNEL, ONES, cttz, load8, zero_bytes
from . import jit
from .jit import BOOL, BUF, I64, OFFSETS, OUT_I64, OUT_U64, Kernel, block

QUOTED = 1
ESCAPED = 2
TRAILING = 4

OK = 0
UNTERMINATED_QUOTE = 1
# Code 2 (text after a closing quote) is never produced: pandas keeps the text (see TRAILING).

_LF = 10
_CR = 13
_SP = 32
_TAB = 9
_U1 = np.uint64(1)
_U255 = np.uint64(255)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_WLF = np.uint64(_LF) * ONES
_WCR = np.uint64(_CR) * ONES


class Tokens(NamedTuple):
    """What :func:`tokenize` found in one block (offsets are relative to that block)."""

    starts: np.ndarray  # int64 per field: first byte (after an opening quote)
    ends: np.ndarray  # int64 per field: end, exclusive (at the closing quote)
    flags: np.ndarray  # uint8 per field: QUOTED | ESCAPED | TRAILING
    row_first: np.ndarray  # int64, nrows + 1: first field of each row, then the field count
    row_line: np.ndarray  # int64 per row: physical line (0-based, in the block) it starts on
    consumed: int  # bytes covered by complete records (and skipped lines): carry the rest over
    lines: int  # physical line ends in buf[:consumed]
    error: int  # OK or UNTERMINATED_QUOTE
    error_pos: int  # byte offset of the opening quote of the unterminated field, else -1
    error_line: int  # physical line (in the block) of that quote, else -1

    @property
    def nrows(self) -> int:
        return int(self.row_first.shape[0] - 1)


@numba.njit(cache=True, nogil=True, **HELPER)
def _line_end(buf, p, final):
    """Position after the line end at ``p`` (LF, CR or CRLF); -1 if a CR ends a non-final buf."""
    if buf[p] == _LF:
        return p + 1
    if p + 1 < buf.shape[0]:
        return p + 2 if buf[p + 1] == _LF else p + 1
    return p + 1 if final else -1


@numba.njit(cache=True, nogil=True, **HELPER)
def _to_line_end(buf, p):
    """First LF or CR at or after ``p`` (``len(buf)`` if none)."""
    n = buf.shape[0]
    while p < n and buf[p] != _LF and buf[p] != _CR:
        p += 1
    return p


_MAGIC = np.uint64(0x0102040810204080)  # gathers the low bits of 8 bytes into the top byte
_U56 = np.uint64(56)


@numba.njit(cache=True, nogil=True, **KERNEL)
def special_masks(buf, delimiter, comment, out, flags):
    """Into ``out`` (zeros, :func:`mask_words` of them): bit ``p & 63`` of word ``p >> 6`` set
    when ``buf[p]`` ends an unquoted field (the delimiter, LF, CR or the comment character, -1:
    none). The comparisons are vectorized into ``flags``, a scratch of 64 bytes, as 0/1 bytes
    packed 8 at a time with one multiplication: ~0.1 ns/byte. (The arrays are allocated by the
    caller: Numba's allocation code is then compiled for one kernel less.)"""
    n = buf.shape[0]
    d = np.uint8(delimiter)
    c = np.uint8(comment if comment >= 0 else _LF)
    full = n // 64
    for b in range(full):
        base = b * 64
        for k in range(64):
            x = buf[base + k]
            flags[k] = (x == d) | (x == _LF) | (x == _CR) | (x == c)
        m = np.uint64(0)
        for w in range(8):
            m |= ((load8(flags, w * 8) * _MAGIC) >> _U56) << np.uint64(8 * w)
        out[b] = m
    for p in range(full * 64, n):
        x = buf[p]
        if x == d or x == _LF or x == _CR or x == c:  # noqa: SIM109
            out[full] |= np.uint64(1) << np.uint64(p - full * 64)


def mask_words(n: int) -> np.ndarray:
    """Zeroed words for :func:`special_masks` of a block of ``n`` bytes."""
    return np.zeros((n + 63) // 64, np.uint64)


_DONE = 0  # the end of buf, or an incomplete last record
_FULL_FIELDS = 1  # the field arrays are full: grow them and resume at the returned position
_FULL_ROWS = 2
_BROKEN = 3  # an unterminated quote at the end of a final buf


@numba.njit(cache=True, nogil=True, **KERNEL)
def _fast(buf, i, line, delimiter, quotechar, lead, starts, ends, flags, row_first, row_line, nf,
          nr, masks):  # fmt: skip
    """The fast path of :func:`_run`, a kernel of its own: records whose fields are unquoted, or
    quoted without line ends or text after the closing quote, ending with a line end (no
    comment), from ``i`` (a record boundary on physical line ``line``). It walks the set bits of
    ``masks`` (see special_masks) from special byte to special byte, and stops at the first
    record it cannot finish (a comment, a line ``lead`` flags, a line end inside quotes, a
    record that reaches the end of buf, full arrays), which the state machine of :func:`_run`
    then reads from its first byte. (Unsigned indices: no wraparound code.)

    Returns (i, line, nf, nr, status): ``_FULL_FIELDS`` or ``_FULL_ROWS`` when it stopped at
    full arrays, else ``_DONE``. A block that this kernel reads to its end (or to an incomplete
    last record) needs no state machine (:func:`_drive`), which is then never compiled.
    """
    n = buf.shape[0]
    fcap = starts.shape[0]
    rcap = row_line.shape[0]
    nchunk = masks.shape[0]
    wquote = np.uint64(quotechar if quotechar >= 0 else _LF) * ONES
    udelim = np.uint64(delimiter)  # as uint64, compared with bytes from words
    uquote = np.uint64(quotechar)  # (-1: none, never a byte)
    status = _DONE
    while i < n and nr < rcap and lead[buf[np.uint64(i)]] == 0:
        nf0 = nf
        j = i
        rec_end = -1
        cb = j >> 6
        bits = masks[np.uint64(cb)] & (_ALL << np.uint64(j & 63))  # specials at >= j
        while nf < fcap and j < n:
            fl = 0
            fs = j
            if np.uint64(buf[np.uint64(j)]) == uquote:
                # A quoted field, searched 8 bytes at a time for the quote, LF or CR.
                fs = j + 1
                fl = QUOTED
                k = fs
                closed = False
                while k + 8 <= n:
                    y = load8(buf, k)
                    m = zero_bytes(y ^ wquote) | zero_bytes(y ^ _WLF) | zero_bytes(y ^ _WCR)
                    if m == 0:
                        k += 8
                        continue
                    t = cttz(m)
                    k += t >> 3
                    c = (y >> np.uint64(t - 7)) & _U255
                    if c != uquote or k + 1 >= n:
                        break  # a line end inside the quotes, or the end of buf
                    if np.uint64(buf[np.uint64(k + 1)]) != uquote:
                        closed = True
                        break
                    fl = QUOTED | ESCAPED
                    k += 2
                if not closed:
                    break
                fe = k
                k += 1
                c = np.uint64(buf[np.uint64(k)])
                if c != udelim and c != _LF and c != _CR:
                    break  # text after the closing quote, or a comment
                cb = k >> 6
                bits = masks[np.uint64(cb)] & (_ALL << np.uint64(k & 63))
            else:
                # An unquoted field (a quote inside is literal): to the next special.
                while bits == 0 and cb + 1 < nchunk:
                    cb += 1
                    bits = masks[np.uint64(cb)]
                if bits == 0:
                    break
                k = (cb << 6) + cttz(bits)
                c = np.uint64(buf[np.uint64(k)])
                fe = k
            # k: the delimiter, line end or comment after the field; bits' lowest set bit
            if c == udelim:
                starts[np.uint64(nf)] = fs
                ends[np.uint64(nf)] = fe
                flags[np.uint64(nf)] = fl
                nf += 1
                bits &= bits - _U1
                j = k + 1
                continue
            if c == _LF:
                rec_end = k + 1
            elif c == _CR and k + 1 < n:
                rec_end = k + 2 if buf[np.uint64(k + 1)] == _LF else k + 1
            else:
                break  # a comment, or a CR at the end of buf
            starts[np.uint64(nf)] = fs
            ends[np.uint64(nf)] = fe
            flags[np.uint64(nf)] = fl
            nf += 1
            break
        if rec_end < 0:
            if nf >= fcap:
                status = _FULL_FIELDS
            nf = nf0
            break
        row_line[np.uint64(nr)] = line
        nr += 1
        row_first[np.uint64(nr)] = nf
        line += 1
        i = rec_end
    if status == _DONE and nr == rcap and i < n:
        status = _FULL_ROWS
    return i, line, nf, nr, status


@numba.njit(cache=True, nogil=True, **KERNEL)
def _run(
    buf,
    i,
    line,
    delimiter,
    quotechar,
    comment,
    final,
    tables,
    starts,
    ends,
    flags,
    row_first,
    row_line,
    nf,
    nr,
    fast,
    masks,
):
    """Tokenize records from ``i`` (a record boundary on physical line ``line``) into the arrays
    from field ``nf`` and row ``nr`` on, until the end of buf or until they are full.

    Returns (i, line, nf, nr, status, error_pos, error_line); ``i`` is again a record boundary.
    The arrays are never reallocated here: the caller grows them and resumes, which keeps this
    loop free of reference counting (reallocating inside it made it five times slower).
    """
    n = buf.shape[0]
    stop = tables[0]  # ends an unquoted run: delimiter, LF, CR, comment
    qstop = tables[1]  # interrupts a quoted run: quote, LF, CR
    start = tables[2]  # at a field's start: 1 quote, 2 delimiter, LF, CR or comment (empty field)
    lead = tables[3]  # at a line's start, may yield no row: LF, CR, comment, blanks (not delimiter)
    fcap = starts.shape[0]
    rcap = row_line.shape[0]
    while i < n:
        # The fast path (a kernel of its own, see _fast), then the record it stopped at.
        if fast:
            i, line, nf, nr, _ = _fast(
                buf, i, line, delimiter, quotechar, lead, starts, ends, flags, row_first,
                row_line, nf, nr, masks,
            )  # fmt: skip
        if i >= n:
            break
        c = buf[i]
        if lead[c] != 0:
            # Lines that yield no row: blank, comment, or only blanks that are not the delimiter.
            p = i  # the skipped line's line end (n: none; -1: not a skipped line)
            if c == comment:
                p = _to_line_end(buf, i + 1)
            elif c != _LF and c != _CR:
                p = i + 1
                while p < n and (buf[p] == _SP or buf[p] == _TAB) and buf[p] != delimiter:
                    p += 1
                if p < n and buf[p] != _LF and buf[p] != _CR:
                    p = -1  # blanks, then text: a record starting with the blanks
            if p >= 0:
                if p == n:
                    if final:
                        i = n
                    break
                nxt = _line_end(buf, p, final)
                if nxt < 0:
                    break
                line += 1
                i = nxt
                continue

        # A record: one field per iteration, j at the field's first byte.
        if nr == rcap:
            return i, line, nf, nr, _FULL_ROWS, -1, -1
        rec_line = line
        nf0 = nf
        rec_end = -1  # stays -1 if the record is incomplete (or broken)
        j = i
        while True:
            if nf == fcap:
                return i, rec_line, nf0, nr, _FULL_FIELDS, -1, -1
            if j >= n:  # after a delimiter at the very end
                if final:
                    starts[nf] = n
                    ends[nf] = n
                    flags[nf] = 0
                    nf += 1
                    rec_end = n
                break
            kind = start[buf[j]]
            fl = 0
            if kind == 0:
                fs = j
                k = j + 1
                while k < n and stop[buf[k]] == 0:
                    k += 1
                fe = k
            elif kind == 2:
                fs = j
                fe = j
                k = j
            else:
                fs = j + 1
                fl = QUOTED
                k = j + 1
                qline = line
                closed = False
                while True:
                    while k < n and qstop[buf[k]] == 0:
                        k += 1
                    if k >= n:
                        break
                    b = buf[k]
                    if b == _LF:
                        line += 1
                        k += 1
                    elif b == _CR:
                        line += 1
                        k += 2 if k + 1 < n and buf[k + 1] == _LF else 1
                    elif k + 1 < n and buf[k + 1] == quotechar:
                        fl |= ESCAPED
                        k += 2
                    else:
                        closed = True
                        break
                if not closed:
                    if final:
                        return i, rec_line, nf0, nr, _BROKEN, j, qline
                    break
                fe = k
                k += 1
                if k < n:
                    b = buf[k]
                    if b != delimiter and b != _LF and b != _CR:
                        # Text after the closing quote: the first byte is literal, then unquoted.
                        fl |= QUOTED | ESCAPED | TRAILING
                        k += 1
                        while k < n and stop[buf[k]] == 0:
                            k += 1
                        fe = k
            # The field ends at k: a delimiter, a line end, a comment, or the end of buf.
            if k >= n:
                if final:
                    starts[nf] = fs
                    ends[nf] = fe
                    flags[nf] = fl
                    nf += 1
                    rec_end = n
                break
            starts[nf] = fs
            ends[nf] = fe
            flags[nf] = fl
            nf += 1
            b = buf[k]
            if b == delimiter:
                j = k + 1
                continue
            if b != _LF and b != _CR:  # the comment character: skip the rest of the line
                k = _to_line_end(buf, k + 1)
                if k >= n:
                    rec_end = n if final else -1
                    break
            rec_end = _line_end(buf, k, final)
            if rec_end >= 0:
                line += 1
            break

        if rec_end < 0:
            return i, rec_line, nf0, nr, _DONE, -1, -1
        row_line[nr] = rec_line
        nr += 1
        row_first[nr] = nf
        i = rec_end
    return i, line, nf, nr, _DONE, -1, -1


@functools.lru_cache(maxsize=64)
def _tables(delimiter: int, quotechar: int, comment: int) -> np.ndarray:
    """The byte tables of :func:`_run` (read only: shared by every block of an import)."""
    tables = np.zeros((4, 256), np.uint8)
    tables[:, _LF] = 1
    tables[:, _CR] = 1
    tables[0, delimiter] = 1
    tables[2, delimiter] = 2
    tables[2, _LF] = 2
    tables[2, _CR] = 2
    if comment >= 0:
        tables[0, comment] = 1
        tables[2, comment] = 2
        tables[3, comment] = 1
    if quotechar >= 0:
        tables[1, quotechar] = 1
        tables[2, quotechar] = 1
    for blank in (_SP, _TAB):
        if blank != delimiter:
            tables[3, blank] = 1
    tables.flags.writeable = False
    return tables


_NO_MASKS = np.zeros(0, np.uint64)


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty(size, a.dtype)
    out[: len(a)] = a
    return out


def _drive(run: Any, fast_run: Any, masks_of: Any, buf: np.ndarray, delimiter: int,
           quotechar: int, comment: int, final: bool, fast: bool) -> tuple[Any, ...]:  # fmt: skip
    """Tokenize a block with ``fast_run`` (:func:`_fast`), then, from the first record it cannot
    read, with ``run`` (:func:`_run`), each compiled for the caller's types: the output arrays
    are allocated here and doubled when a kernel reports them full. (In Python rather than in a
    kernel: one kernel less to compile on a fresh machine, for a few microseconds per block.)
    ``run`` is not called (nor compiled) when ``fast_run`` reads the block to its end, or to a
    last record that is incomplete, or simple (:func:`_last_record`)."""
    n = buf.shape[0]
    tables = _tables(int(delimiter), int(quotechar), int(comment))
    starts = np.empty(n // 4 + 16, np.int64)
    ends = np.empty(n // 4 + 16, np.int64)
    flags = np.empty(n // 4 + 16, np.uint8)
    row_first = np.empty(n // 16 + 17, np.int64)
    row_line = np.empty(n // 16 + 16, np.int64)
    row_first[0] = 0
    masks = _NO_MASKS
    if fast:
        masks = mask_words(n)
        masks_of(buf, delimiter, comment, masks, np.zeros(64, np.uint8))
    i = line = nf = nr = 0
    general = not fast
    error_pos = error_line = -1
    while True:
        if general:
            i, line, nf, nr, status, error_pos, error_line = run(
                buf, i, line, delimiter, quotechar, comment, final, tables, starts, ends, flags,
                row_first, row_line, nf, nr, fast, masks,
            )  # fmt: skip
        else:
            i, line, nf, nr, status = fast_run(
                buf, i, line, delimiter, quotechar, tables[3], starts, ends, flags, row_first,
                row_line, nf, nr, masks,
            )  # fmt: skip
            if status == _DONE and i < n:
                last = _last_record(buf, i, delimiter, quotechar, comment, final, tables[3])
                if last is None:
                    general = True  # the state machine reads the rest
                    continue
                if len(last[0]):
                    need = nf + len(last[0])
                    if need > starts.shape[0]:
                        starts, ends = _grown(starts, need), _grown(ends, need)
                        flags = _grown(flags, need)
                    if nr + 1 > row_line.shape[0]:
                        row_first, row_line = _grown(row_first, nr + 2), _grown(row_line, nr + 1)
                    starts[nf:need], ends[nf:need], flags[nf:need] = last[0], last[1], 0
                    row_line[nr] = line
                    nf, nr, i = need, nr + 1, n
                    row_first[nr] = nf
        if status == _FULL_FIELDS:
            size = 2 * starts.shape[0]
            starts, ends, flags = _grown(starts, size), _grown(ends, size), _grown(flags, size)
        elif status == _FULL_ROWS:
            size = 2 * row_line.shape[0]
            row_first, row_line = _grown(row_first, size + 1), _grown(row_line, size)
        else:
            break
    error = UNTERMINATED_QUOTE if status == _BROKEN else OK
    return (
        starts[:nf],
        ends[:nf],
        flags[:nf],
        row_first[: nr + 1],
        row_line[:nr],
        i,
        line,
        error,
        error_pos,
        error_line,
    )


def _last_record(
    buf: np.ndarray,
    i: int,
    delimiter: int,
    quotechar: int,
    comment: int,
    final: bool,
    lead: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """What the state machine of :func:`_run` makes of ``buf[i:]`` when it holds no line end:
    nothing (``consumed`` stays ``i``) unless ``final``; when final and it is one record of
    unquoted fields without a comment, their (starts, ends); None for anything else (the
    state machine reads it)."""
    tail = buf[i:]
    if (tail == _LF).any() or (tail == _CR).any():
        return None
    empty = np.zeros(0, np.int64)
    if not final:
        return empty, empty
    if lead[tail[0]] or (quotechar >= 0 and (tail == quotechar).any()):
        return None
    if comment >= 0 and (tail == comment).any():
        return None
    cuts = i + np.flatnonzero(tail == delimiter)
    return np.append(np.int64(i), cuts + 1), np.append(cuts, np.int64(buf.shape[0]))


def tokenize_kernel(
    buf: np.ndarray, delimiter: int, quotechar: int, comment: int, final: bool, fast: bool = True
) -> tuple[Any, ...]:
    """Tokenize a block; see the module docstring. Returns the fields of :class:`Tokens`.
    ``fast=False`` turns the fast path off (the tests compare the two). The kernels are
    compiled for the arguments' types (:func:`tokenize` calls their one compiled form)."""
    return _drive(_run, _fast, special_masks, buf, delimiter, quotechar, comment, final, fast)


_TABLES = types.Array(types.uint8, 2, "C", readonly=True)
_MASKS = types.Array(types.uint64, 1, "C", readonly=True)
_OUT_U8 = types.Array(types.uint8, 1, "C")
_run_canonical = Kernel(
    _run, BUF, I64, I64, I64, I64, I64, BOOL, _TABLES, OUT_I64, OUT_I64, _OUT_U8, OUT_I64,
    OUT_I64, I64, I64, BOOL, _MASKS,
)  # fmt: skip
_LEAD = types.Array(types.uint8, 1, "C", readonly=True)
_fast_canonical = Kernel(
    _fast, BUF, I64, I64, I64, I64, _LEAD, OUT_I64, OUT_I64, _OUT_U8, OUT_I64, OUT_I64, I64, I64,
    _MASKS,
)  # fmt: skip
_masks_canonical = Kernel(special_masks, BUF, I64, I64, OUT_U64, _OUT_U8)


def _as_bytes_array(buf: np.ndarray | bytes | bytearray | memoryview) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        if buf.dtype != np.uint8 or buf.ndim != 1:
            raise TypeError(f"buf must be a 1-d uint8 array, not {buf.dtype} with {buf.ndim} dims")
        return block(buf)
    return block(np.frombuffer(buf, np.uint8))


def tokenize(
    buf: np.ndarray | bytes | bytearray | memoryview,
    delimiter: int,
    quotechar: int = 34,
    comment: int = -1,
    final: bool = True,
) -> Tokens:
    """Tokenize ``buf`` (see the module docstring). ``delimiter``, ``quotechar`` and ``comment``
    are ASCII byte values, distinct, not CR or LF; ``quotechar=-1`` turns quoting off and
    ``comment=-1`` (the default) means no comment character."""
    data = _as_bytes_array(buf)
    specials = [("delimiter", delimiter), ("quotechar", quotechar), ("comment", comment)]
    for name, value in specials:
        if not -1 <= value < 128 or (name == "delimiter" and value < 0):
            raise ValueError(f"{name} must be an ASCII byte value, not {value}")
        if value in (_LF, _CR):
            raise ValueError(f"{name} cannot be a line end")
    used = [v for _, v in specials if v >= 0]
    if len(set(used)) != len(used):
        raise ValueError("delimiter, quotechar and comment must differ")
    d, q, c = int(delimiter), int(quotechar), int(comment)
    out = None
    if jit.in_numpy(_fast_canonical) or jit.in_numpy(_masks_canonical):
        out = tokenize_numpy(data, d, q, c, bool(final))
    if out is None:
        out = _drive(
            _run_canonical, _fast_canonical, _masks_canonical, data, d, q, c, bool(final), True
        )
    starts, ends, flags, row_first, row_line, consumed, lines, error, epos, eline = out
    return Tokens(
        starts,
        ends,
        flags,
        row_first,
        row_line,
        int(consumed),
        int(lines),
        int(error),
        int(epos),
        int(eline),
    )


def tokenize_numpy(
    buf: np.ndarray, delimiter: int, quotechar: int, comment: int, final: bool
) -> tuple[Any, ...] | None:
    """:func:`tokenize_kernel`'s output for a block of plain records, found by numpy: no quote
    character, comment character or CR in ``buf``, and no line starting with a byte that may
    make it yield no row (a blank line, a blank that is not the delimiter). Then every
    delimiter and LF ends a field, every LF a record. None for any other block (the kernels
    read it). Vectorized, a few nanoseconds a field: the small file of a session on a machine
    whose Numba cache lacks the tokenizer's kernels is read without compiling them (~0.7 s)."""
    n = buf.shape[0]
    if (buf == _CR).any():
        return None
    if quotechar >= 0 and (buf == quotechar).any():
        return None
    if comment >= 0 and (buf == comment).any():
        return None
    lfs = np.flatnonzero(buf == _LF)
    tail = int(lfs[-1]) + 1 if len(lfs) else 0  # where the line without a line end starts
    lead = _tables(delimiter, quotechar, comment)[3]
    line_starts = np.concatenate(([0], lfs[:-1] + 1)) if len(lfs) else lfs
    if lead[buf[line_starts]].any() or (tail < n and lead[buf[tail]]):
        return None
    last = final and tail < n  # a last record without a line end
    end = n if last else tail
    region = buf[:end]
    ends = np.flatnonzero((region == delimiter) | (region == _LF))
    if last:
        ends = np.append(ends, np.int64(n))
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    row_end = np.ones(len(ends), np.bool_)
    row_end[: len(ends) - last] = region[ends[: len(ends) - last]] == _LF
    row_first = np.concatenate(([0], np.flatnonzero(row_end) + 1)).astype(np.int64)
    nrows = len(row_first) - 1
    flags = np.zeros(len(ends), np.uint8)
    row_line = np.arange(nrows, dtype=np.int64)
    return starts, ends, flags, row_first, row_line, end, len(lfs), OK, -1, -1


def fields_per_row(row_first: np.ndarray) -> np.ndarray:
    """Number of fields of each row (``np.diff(row_first)``)."""
    return np.diff(row_first)


@numba.njit(cache=True, nogil=True, **KERNEL)
def _uniform(row_first):
    width = row_first[1] - row_first[0]
    for r in range(1, row_first.shape[0] - 1):
        if row_first[r + 1] - row_first[r] != width:
            return -1
    return width


_uniform_canonical = Kernel(_uniform, OFFSETS)


def uniform_width(row_first: np.ndarray) -> int:
    """The common field count when every row has the same one (then column ``c`` is
    ``starts[c::width]``); -1 for ragged rows; 0 when there are no rows."""
    if row_first.shape[0] < 2:
        return 0
    if jit.in_numpy(_uniform_canonical):  # a small file's block: numpy, not a compile
        counts = np.diff(row_first)
        return int(counts[0]) if (counts == counts[0]).all() else -1
    return int(_uniform_canonical(row_first))
