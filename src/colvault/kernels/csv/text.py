"""Text out of tokenized CSV fields: UTF-8 decoding, dictionary encoding and NA tokens.

Why: a text or category column of a CSV block is a list of byte slices of the block (see
:mod:`colvault.kernels.csv.tokens` for the data model: ``starts``, ``ends``, ``flags``). Making a
Python ``str`` per field would cost more than the whole tokenizer, so these kernels work on the
slices directly:

* :func:`fields_to_ucs4` decodes UTF-8 (strictly: no overlongs, surrogates or code points past
  U+10FFFF, as Python's ``bytes.decode``) into a numpy ``U<n>`` array: one Numba pass checks the
  bytes and measures the values, a second writes code points into a zeroed (nfields, n) uint32
  array that is then viewed as ``U<n>``;
* :func:`dictionary_encode_fields` numbers the distinct values by hashing the slices (FNV-1a into
  an open-addressing table that doubles when half full), so the caller decodes only one field per
  distinct value (a ``category`` column, or the test whether a column has few enough distinct
  values to be one); values of at most 8 bytes are first looked up in a small direct-mapped cache
  keyed by their bytes as one word (``ok``/``fault``: 12 -> 4 ns/field);
* :func:`match_tokens` marks the fields that are exactly one of a few tokens (the NA values),
  rejecting most by their length and first byte.

On a machine whose Numba cache lacks a kernel, at most :data:`.compiling.SMALL` fields go through
a Python version instead (same results, the tests compare them): compiling the three kernels
costs about 2 s of CPU, more than Python takes on the fields of a small file (a new user's
first import).

All three see a field's *value*: for fields with the ``ESCAPED`` flag the bytes are first unescaped
(:func:`unescape_into`: within the quoted part ``""`` is ``"`` and a lone quote ends the quoted
part, after which bytes are literal, as pandas reads ``"ab"c`` as ``abc``). A quoted empty field is
the empty value (pandas counts ``""`` as NA, like an empty unquoted field). The index arrays may be
strided views (``starts[c::ncols]``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from typing import NamedTuple

import numba
import numpy as np
from numba.core import types

from ..wordops import AHEAD, HELPER, KERNEL, load8, prefetch
from . import jit
from .jit import BOOL, BUF, FLAGS, I64, OFFSETS, OUT_BOOL, OUT_I64, Kernel, block
from .tokens import ESCAPED


def _values(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, flags: np.ndarray,
            quotechar: int) -> list[bytes]:  # fmt: skip
    """The fields' values as bytes (unescaped), for the Python versions."""
    out = [buf[s:e].tobytes() for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    for i in np.flatnonzero(flags & ESCAPED).tolist():
        out[i] = unescape_bytes(out[i], quotechar)
    return out


@numba.njit(cache=True, nogil=True, **HELPER)
def unescape_into(buf, start, end, quotechar, out):
    """Write the value of an ``ESCAPED`` field ``buf[start:end]`` into ``out`` (which must hold
    ``end - start`` bytes); returns its length."""
    m = 0
    quoted = True
    p = start
    while p < end:
        b = buf[p]
        if quoted and b == quotechar:
            if p + 1 < end and buf[p + 1] == quotechar:
                out[m] = b
                m += 1
                p += 2
            else:
                quoted = False  # the closing quote of a field with text after it
                p += 1
        else:
            out[m] = b
            m += 1
            p += 1
    return m


def unescape_bytes(raw: bytes, quotechar: int = 34) -> bytes:
    """The value of an ``ESCAPED`` field's bytes (Python version of :func:`unescape_into`)."""
    q = bytes([quotechar])
    parts = []
    src = raw
    while (i := src.find(q)) >= 0:
        parts.append(src[:i])
        if src[i + 1 : i + 2] != q:  # the closing quote: the rest is literal
            src = src[i + 1 :]
            break
        parts.append(q)
        src = src[i + 2 :]
    parts.append(src)
    return b"".join(parts)


@numba.njit(cache=True, nogil=True, **HELPER)
def _decode(src, s, e, out, row, write):
    """Number of code points in UTF-8 ``src[s:e]`` (written to ``out[row]`` if ``write``), or -1
    for invalid UTF-8 (a bad lead byte, a bad or missing continuation, an overlong form, a
    surrogate, or a code point past U+10FFFF)."""
    m = 0
    p = s
    while p < e:
        b0 = np.int64(src[p])
        if b0 < 0x80:
            cp = b0
            p += 1
        elif b0 < 0xC2:
            return -1
        elif b0 < 0xE0:
            if p + 1 >= e:
                return -1
            b1 = np.int64(src[p + 1])
            if (b1 & 0xC0) != 0x80:
                return -1
            cp = ((b0 & 0x1F) << 6) | (b1 & 0x3F)
            p += 2
        elif b0 < 0xF0:
            if p + 2 >= e:
                return -1
            b1 = np.int64(src[p + 1])
            b2 = np.int64(src[p + 2])
            lo = 0xA0 if b0 == 0xE0 else 0x80
            hi = 0x9F if b0 == 0xED else 0xBF
            if b1 < lo or b1 > hi or (b2 & 0xC0) != 0x80:
                return -1
            cp = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)
            p += 3
        elif b0 < 0xF5:
            if p + 3 >= e:
                return -1
            b1 = np.int64(src[p + 1])
            b2 = np.int64(src[p + 2])
            b3 = np.int64(src[p + 3])
            lo = 0x90 if b0 == 0xF0 else 0x80
            hi = 0x8F if b0 == 0xF4 else 0xBF
            if b1 < lo or b1 > hi or (b2 & 0xC0) != 0x80 or (b3 & 0xC0) != 0x80:
                return -1
            cp = ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F)
            p += 4
        else:
            return -1
        if write:
            out[row, m] = cp
        m += 1
    return m


@numba.njit(cache=True, nogil=True, **KERNEL)
def ucs4_kernel(buf, starts, ends, flags, quotechar, scratch, out, write):
    """Decode every field; with ``write`` into ``out`` rows (an (nfields, width) uint32 array of
    zeros, width at least the longest value in characters), else only counting. Returns (the
    longest value in characters, at least 1; index of the first invalid field or -1).
    ``scratch`` holds the longest ``ESCAPED`` field. (The caller allocates: Numba's allocation
    code is then not compiled for this kernel.)"""
    m = starts.shape[0]
    width = 1
    zero = np.int64(0)  # not the literal: Numba compiles _decode once
    for f in range(m):
        prefetch(buf, starts[min(f + AHEAD, m - 1)])
        if flags[f] & ESCAPED:
            size = unescape_into(buf, starts[f], ends[f], quotechar, scratch)
            count = _decode(scratch, zero, size, out, f, write)
        else:
            count = _decode(buf, starts[f], ends[f], out, f, write)
        if count < 0:
            return width, f
        width = max(width, count)
    return width, -1


_U32_2D = types.Array(types.uint32, 2, "C")
_ucs4 = Kernel(ucs4_kernel, BUF, OFFSETS, OFFSETS, FLAGS, I64, BUF, _U32_2D, BOOL)
_NO_POINTS = np.zeros((1, 1), np.uint32)


def fields_to_ucs4(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, flags: np.ndarray, quotechar: int = 34
) -> tuple[np.ndarray, int]:
    """The fields' values as a ``U<n>`` array (``n`` the longest value in characters, at least
    1), and -1; or, if a field is not valid UTF-8, an empty array and that field's index (the
    first one). Like every numpy ``U`` array, values lose trailing NUL characters."""
    if jit.in_python(_ucs4, starts.shape[0]):
        return _ucs4_python(_values(buf, starts, ends, flags, quotechar))
    buf = block(buf)
    escaped = flags & ESCAPED != 0
    longest = int((ends - starts)[escaped].max()) if escaped.any() else 0
    scratch = np.empty(longest, np.uint8)
    q = np.int64(quotechar)
    width, bad = _ucs4(buf, starts, ends, flags, q, scratch, _NO_POINTS, False)  # widths
    if bad >= 0:
        return np.zeros(0, "U1"), int(bad)
    points = np.zeros((starts.shape[0], width), np.uint32)
    _ucs4(buf, starts, ends, flags, q, scratch, points, True)
    text = points.view(np.dtype(f"U{width}"))
    return text.reshape(points.shape[0]), -1


def _ucs4_python(values: list[bytes]) -> tuple[np.ndarray, int]:
    """:func:`fields_to_ucs4` of the values in Python (the same strict UTF-8)."""
    texts = []
    for i, raw in enumerate(values):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return np.zeros(0, "U1"), i
    width = max([1, *map(len, texts)])
    return np.array(texts, np.dtype(f"U{width}")).reshape(len(texts)), -1


@numba.njit(cache=True, nogil=True, **HELPER)
def _hash(src, s, e):
    h = np.uint64(14695981039346656037)
    for p in range(s, e):
        h = (h ^ np.uint64(src[p])) * np.uint64(1099511628211)
    h ^= h >> np.uint64(33)  # FNV-1a's low bits (the slot) need mixing with the high ones
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return h


@numba.njit(cache=True, nogil=True, **HELPER)
def _same(a, s1, e1, b, s2, e2):
    if e1 - s1 != e2 - s2:
        return False
    for t in range(e1 - s1):  # noqa: SIM110 - a loop is what Numba compiles well
        if a[s1 + t] != b[s2 + t]:
            return False
    return True


_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_U56 = np.uint64(56)
_RECENT = 256  # entries of the cache of short values in front of the hash table


@numba.njit(cache=True, nogil=True, **KERNEL)
def _dict_run(
    buf, side, vs, ve, starts, ends, flags, f, count, slots, hashes, first, codes, limit, recent,
    rehash,
):  # fmt: skip
    """Encode fields from ``f`` on; returns (next field, count, status): 0 all done, 1 the table
    is half full (the caller gives a larger empty one and ``rehash``: the ``count`` values so
    far are put in it first, then encoding resumes), 2 a value beyond ``limit`` distinct ones.

    ``recent`` caches values of at most 8 bytes (unescaped fields, not within 8 bytes of the
    block's end) seen so far, direct-mapped by their bytes as one word: rows (word, length,
    code). A hit gives the code without hashing or comparing the bytes; it only ever holds
    values already numbered, so the codes are those of the table. Values of ``ESCAPED`` fields
    are compared unescaped, as ``side[vs[f]:ve[f]]``."""
    m = starts.shape[0]
    n = buf.shape[0]
    mask = slots.shape[0] - 1
    if rehash:
        for c in range(count):
            s = np.int64(hashes[c] & np.uint64(mask))
            while slots[s] >= 0:
                s = (s + 1) & mask
            slots[s] = c
    while f < m:
        prefetch(buf, starts[min(f + AHEAD, m - 1)])
        esc = (flags[f] & ESCAPED) != 0
        size = ends[f] - starts[f]
        short = not esc and size <= 8 and starts[f] + 8 <= n
        key = np.uint64(0)
        slot = np.int64(0)
        if short:
            if size > 0:
                key = load8(buf, starts[f]) & (_ALL >> np.uint64(64 - 8 * size))
            slot = np.int64(((key + np.uint64(size)) * _GOLDEN) >> _U56)
            if recent[slot, 1] == size and np.uint64(recent[slot, 0]) == key:
                codes[f] = recent[slot, 2]
                f += 1
                continue
        h = _hash(side, vs[f], ve[f]) if esc else _hash(buf, starts[f], ends[f])
        s = np.int64(h & np.uint64(mask))
        grown = False
        while True:
            c = slots[s]
            if c < 0:
                if count == limit:
                    return f, count, 2
                slots[s] = count
                hashes[count] = h
                first[count] = f
                codes[f] = count
                count += 1
                grown = 2 * count > mask
                break
            if hashes[c] == h:
                g = first[c]
                g_esc = (flags[g] & ESCAPED) != 0
                if esc:
                    if g_esc:
                        same = _same(side, vs[f], ve[f], side, vs[g], ve[g])
                    else:
                        same = _same(side, vs[f], ve[f], buf, starts[g], ends[g])
                elif g_esc:
                    same = _same(buf, starts[f], ends[f], side, vs[g], ve[g])
                else:
                    same = _same(buf, starts[f], ends[f], buf, starts[g], ends[g])
                if same:
                    codes[f] = c
                    break
            s = (s + 1) & mask
        if short:
            recent[slot, 0] = np.int64(key)
            recent[slot, 1] = size
            recent[slot, 2] = codes[f]
        f += 1
        if grown:
            return f, count, 1
    return f, count, 0


@numba.njit(cache=True, nogil=True, **KERNEL)
def _unescape_fields(buf, starts, ends, flags, quotechar, side, vs, ve):
    """The values of the ``ESCAPED`` fields, one after the other into ``side``; field ``f``'s
    at ``side[vs[f]:ve[f]]``. (A kernel of its own: compiled only for files that escape.)"""
    used = 0
    for f in range(starts.shape[0]):
        if flags[f] & ESCAPED:
            vs[f] = used
            used += unescape_into(buf, starts[f], ends[f], quotechar, side[used:])
            ve[f] = used


_dict = Kernel(
    _dict_run, BUF, BUF, OUT_I64, OUT_I64, OFFSETS, OFFSETS, FLAGS, I64, I64, OUT_I64,
    types.Array(types.uint64, 1, "C"), OUT_I64, types.Array(types.int32, 1, "C"), I64,
    types.Array(types.int64, 2, "C"), BOOL,
)  # fmt: skip
_unescape = Kernel(_unescape_fields, BUF, OFFSETS, OFFSETS, FLAGS, I64, BUF, OUT_I64, OUT_I64)
_NO_SIDE = np.zeros(0, np.uint8)
_NO_OFFSETS = np.zeros(0, np.int64)


class FieldDictionary(NamedTuple):
    """The distinct values of some fields: ``codes[i]`` numbers field ``i``'s value in order of
    first appearance, ``first[c]`` is the first field with value ``c``."""

    codes: np.ndarray  # int32 per field (only partly filled when overflow)
    first: np.ndarray  # int64 per distinct value: index of its first field
    overflow: bool  # True: more than max_distinct values (the search stopped there)


def dictionary_encode_fields(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    flags: np.ndarray,
    quotechar: int = 34,
    max_distinct: int = -1,
) -> FieldDictionary:
    """Number the fields' distinct values (compared as unescaped bytes). With ``max_distinct``
    >= 0 it stops early, ``overflow`` True, at the first value beyond that many. The dictionary
    as text is ``fields_to_ucs4(buf, starts[first], ends[first], flags[first])``."""
    if jit.in_python(_dict, starts.shape[0]):
        return _dictionary_python(_values(buf, starts, ends, flags, quotechar), max_distinct)
    buf = block(buf)
    m = starts.shape[0]
    side, vs, ve = _NO_SIDE, _NO_OFFSETS, _NO_OFFSETS
    escaped = flags & ESCAPED != 0
    if escaped.any():
        side = np.empty(int((ends - starts)[escaped].sum()), np.uint8)
        vs, ve = np.zeros(m, np.int64), np.zeros(m, np.int64)
        _unescape(buf, starts, ends, flags, np.int64(quotechar), side, vs, ve)
    cap = m if max_distinct < 0 else min(m, max_distinct + 1)
    codes = np.empty(m, np.int32)
    first = np.empty(cap, np.int64)
    hashes = np.empty(cap, np.uint64)
    slots = np.full(64, -1, np.int64)  # code of the value in the slot; the table grows
    recent = np.full((_RECENT, 3), -1, np.int64)  # (word, length, code) of short values
    at = count = 0
    rehash = False
    limit = np.int64(max_distinct)
    while True:
        at, count, status = _dict(
            buf, side, vs, ve, starts, ends, flags, np.int64(at), np.int64(count), slots,
            hashes, first, codes, limit, recent, rehash,
        )  # fmt: skip
        if status != 1:
            break
        slots = np.full(2 * slots.shape[0], -1, np.int64)
        rehash = True
    return FieldDictionary(codes, first[:count], status == 2)


def _dictionary_python(values: list[bytes], max_distinct: int) -> FieldDictionary:
    """:func:`dictionary_encode_fields` of the values in Python (a dict of bytes)."""
    codes = np.empty(len(values), np.int32)
    seen: dict[bytes, int] = {}
    first: list[int] = []
    for i, value in enumerate(values):
        code = seen.get(value)
        if code is None:
            if len(first) == max_distinct:
                return FieldDictionary(codes, np.array(first, np.int64), True)
            code = seen[value] = len(first)
            first.append(i)
        codes[i] = code
    return FieldDictionary(codes, np.array(first, np.int64), False)


@numba.njit(cache=True, nogil=True, **HELPER)
def _unescape_capped(buf, start, end, quotechar, out, cap):
    """:func:`unescape_into` that stops past ``cap`` bytes (``out`` holds ``cap + 1``): the
    value's length, or ``cap + 1`` when it is longer than ``cap``."""
    m = 0
    quoted = True
    p = start
    while p < end and m <= cap:
        b = buf[p]
        if quoted and b == quotechar:
            if p + 1 < end and buf[p + 1] == quotechar:
                out[m] = b
                m += 1
                p += 2
            else:
                quoted = False
                p += 1
        else:
            out[m] = b
            m += 1
            p += 1
    return m


_LEN_BITS = 64  # token lengths below this are kept in a bit mask


@numba.njit(cache=True, nogil=True, **HELPER)
def _match_one(src, s, e, tokens_buf, tokens_offsets):
    """Whether ``src[s:e]`` is one of the tokens."""
    for t in range(tokens_offsets.shape[0] - 1):
        if _same(src, s, e, tokens_buf, tokens_offsets[t], tokens_offsets[t + 1]):
            return True
    return False


@numba.njit(cache=True, nogil=True, **KERNEL)
def match_kernel(
    buf, starts, ends, flags, tokens_buf, tokens_offsets, quotechar, longest, lengths, first,
    scratch, out,
):  # fmt: skip
    """out[i] (False on entry): field i's value equals one of the tokens
    ``tokens_buf[off[t]:off[t + 1]]`` (at least one).

    Most fields are rejected without comparing: a field is compared with the tokens only when
    some token has its length (``lengths``, bit k: some token has k < 64 bytes; ``longest``
    bytes at most) and, unless it is empty, some token starts with its first byte (``first``, a
    256-entry table). Only ``ESCAPED`` fields are unescaped, into ``scratch``, one byte longer
    than the longest token. (See :func:`match_tokens`, which works these out.)"""
    m = starts.shape[0]
    for f in range(m):
        s = starts[f]
        e = ends[f]
        if (flags[f] & ESCAPED) != 0:
            size = _unescape_capped(buf, s, e, quotechar, scratch, longest)
            if size <= longest and (size == 0 or first[scratch[0]]):
                out[f] = _match_one(scratch, np.int64(0), size, tokens_buf, tokens_offsets)
            continue
        size = e - s
        if size > longest:
            continue
        if size < _LEN_BITS and (lengths >> np.uint64(size)) & np.uint64(1) == 0:
            continue
        if size > 0:
            # Fields whose length some token has are likely followed by more such fields:
            # fetch the bytes of the one AHEAD on (the block is mostly out of the caches).
            prefetch(buf, starts[min(f + AHEAD, m - 1)])
            if not first[buf[s]]:
                continue
        out[f] = _match_one(buf, s, e, tokens_buf, tokens_offsets)


# tokens_buf as writable as buf: _same then has one specialization for both kernels
_match = Kernel(
    match_kernel, BUF, OFFSETS, OFFSETS, FLAGS, BUF, OFFSETS, I64, I64, types.uint64,
    types.Array(types.bool_, 1, "C", readonly=True), BUF, OUT_BOOL,
)  # fmt: skip


@functools.lru_cache(maxsize=16)
def _token_facts(offsets: bytes, first_bytes: bytes) -> tuple[int, np.uint64, np.ndarray]:
    """(longest token, lengths mask, first-byte table) of a token set, for match_kernel."""
    sizes = np.diff(np.frombuffer(offsets, np.int64))
    lengths = 0
    for size in sizes[sizes < _LEN_BITS].tolist():
        lengths |= 1 << size
    table = np.zeros(256, np.bool_)
    table[np.frombuffer(first_bytes, np.uint8)] = True
    table.flags.writeable = False
    return int(sizes.max()), np.uint64(lengths), table


def pack_tokens(tokens: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens_buf, tokens_offsets) for :func:`match_tokens`: the UTF-8 bytes of the tokens one
    after the other, and the int64 offsets where each starts (plus the end)."""
    encoded = [t.encode("utf-8") for t in tokens]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


def match_tokens(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    flags: np.ndarray,
    tokens_buf: np.ndarray,
    tokens_offsets: np.ndarray,
    quotechar: int = 34,
) -> np.ndarray:
    """Boolean per field: its value (unescaped, not stripped) is exactly one of the tokens given
    by :func:`pack_tokens` — the NA test of ``pandas.read_csv(na_values=...)``, where a quoted
    ``"NA"`` and a quoted empty field count as much as unquoted ones."""
    out = np.zeros(starts.shape[0], np.bool_)
    if tokens_offsets.shape[0] <= 1:
        return out
    tokens = block(tokens_buf)
    offsets = np.ascontiguousarray(tokens_offsets, np.int64)
    sizes = np.diff(offsets)
    if jit.in_python(_match, starts.shape[0]):
        # only fields of a token's length, or escaped ones, can be one
        maybe = np.flatnonzero(np.isin(ends - starts, sizes) | (flags & ESCAPED != 0))
        values = _values(buf, starts[maybe], ends[maybe], flags[maybe], quotechar)
        bounds = offsets.tolist()
        known = {tokens[a:b].tobytes() for a, b in itertools.pairwise(bounds)}
        out[maybe] = [v in known for v in values]
        return out
    heads = tokens[offsets[:-1][sizes > 0]]
    longest, lengths, table = _token_facts(offsets.tobytes(), heads.tobytes())
    scratch = np.empty(longest + 1, np.uint8)
    _match(
        block(buf), starts, ends, flags, tokens, offsets, np.int64(quotechar), np.int64(longest),
        lengths, table, scratch, out,
    )  # fmt: skip
    return out
