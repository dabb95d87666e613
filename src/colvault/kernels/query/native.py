"""C functions that jitted scans call without the GIL: blosc2's decompression and ISA-L's crc32.

A query that scans many chunks spends most of its time in three short native calls per chunk
and column (checksum, decompress, predicate). Called from Python, each call releases and retakes
the GIL; with two scanning threads every retake can wait for the other thread, and on a VM each
such handoff (a futex wake-up) costs tens of microseconds: two threads scanned the benchmark
table more slowly than one. Called from one jitted loop over a batch of chunks, the GIL is
released once per batch.

The functions are bound by symbol name (``numba.types.ExternalFunction``) from libraries loaded
into LLVM's symbol table here, so the kernels that use them still cache on disk: a new process
links the cached machine code to the symbols again. The libraries are the ones our Python
dependencies already ship: ``libblosc2.so`` from the ``blosc2`` wheel and the ISA-L code in the
``isal`` wheel (whose ``crc32`` :mod:`colvault.engine.checksum` uses: the same values as zlib's).
Where either is missing, :data:`AVAILABLE` is false and the engine reads chunks from Python.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from .. import blosclib
from ..encoding.decimal import P, decimal_decode
from ..wordops import HELPER, KERNEL

#: Whether the native functions loaded (the jitted scans can be used).
AVAILABLE = False
#: Why not, when they did not.
UNAVAILABLE_REASON = ""


def _load() -> None:
    global AVAILABLE, UNAVAILABLE_REASON
    if blosclib.load() is None:
        UNAVAILABLE_REASON = blosclib.REASON
        return
    try:
        import isal.isal_zlib
        from llvmlite import binding

        isal_lib = ctypes.CDLL(isal.isal_zlib.__file__)
        isal_lib.crc32_gzip_refl  # noqa: B018 - fails early if the symbol is not exported
        binding.load_library_permanently(blosclib.PATH)
        binding.load_library_permanently(isal.isal_zlib.__file__)
    except (ImportError, OSError, AttributeError, RuntimeError) as exc:
        UNAVAILABLE_REASON = f"{type(exc).__name__}: {exc}"
        return
    AVAILABLE = True


_load()

# int blosc2_decompress_ctx(blosc2_context*, const void* src, int32 srcsize, void* dest,
# int32 destsize); pointers travel as integers (the same registers in the C calling convention).
_decompress: Any = types.ExternalFunction(
    "blosc2_decompress_ctx",
    types.int32(types.intp, types.intp, types.int32, types.intp, types.int32),
)
# uint32 crc32_gzip_refl(uint32 init, const unsigned char* buf, uint64 len): zlib's crc32.
_crc32: Any = types.ExternalFunction(
    "crc32_gzip_refl", types.uint32(types.uint32, types.intp, types.uint64)
)

#: :func:`load_column` results besides 0 (loaded).
BAD_CRC = 1
BAD_FRAME = 2

#: How :func:`load_column` fills a column's buffer: decompress the frame into it (values, or
#: the packed integers of a decimal chunk compared as integers); or decompress the packed
#: integers and decode them: decimals into floats (exceptions patched in), frame-of-reference
#: or delta integers into the column's integers. A regular clock (delta chunk of equal steps)
#: loads as delta; gathers compute its rows.
PLAIN, DECIMAL, FOR, DELTA, REGULAR = 0, 1, 2, 3, 4
#: Fields of a column's ``info`` vector, in order. ``p0``/``p1``: ``base``/``e`` (decimal),
#: ``base`` (for; as a signed 64-bit number), ``first``/``step`` (delta; likewise); ``nexc``
#: and ``width``: a decimal chunk's exceptions and the byte width of their values.
INFO_FIELDS = ("kind", "address", "size", "frame", "crc", "p0", "p1", "nexc", "width")


#: This thread's blosc2 decompression context (the scans pass it to every call).
thread_context = blosclib.thread_context


@intrinsic
def _pointer_to(typingctx, address):
    """A ``uint8*`` from an address (to view mapped chunk bytes as an array)."""
    sig = types.CPointer(types.uint8)(types.intp)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


_bytes_at: Any = _pointer_to


@numba.njit(cache=True, nogil=True, **KERNEL)
def load_chunk(ctx, address, size, frame, crc, out, n):
    """Check the crc of the ``size`` bytes at ``address`` against ``crc``, then decompress the
    blosc2 frame of ``frame`` bytes there into ``out[:n]``: 0, :data:`BAD_CRC` or
    :data:`BAD_FRAME` (corrupt, or not exactly ``n`` items)."""
    if n > out.shape[0] or frame > size:
        return BAD_FRAME
    if _crc32(np.uint32(0), address, np.uint64(size)) != crc:
        return BAD_CRC
    want = n * out.itemsize
    got = _decompress(ctx, address, np.int32(frame), out.ctypes.data, np.int32(want))
    return 0 if got == want else BAD_FRAME


@numba.njit(cache=True, nogil=True, **KERNEL)
def load_column(ctx, info, values, packed, n):
    """Load one column chunk described by ``info`` (:data:`INFO_FIELDS`) into ``values[:n]``;
    packed chunks go through ``packed`` (their integers' width). Returns 0, :data:`BAD_CRC`
    or :data:`BAD_FRAME`."""
    kind, address, size, frame = info[0], info[1], info[2], info[3]
    if kind == PLAIN:
        return load_chunk(ctx, address, size, frame, info[4], values, n)
    s = load_chunk(ctx, address, size, frame, info[4], packed, n)
    if s != 0:
        return s
    if kind == FOR:  # int64 sums wrap as the stored unsigned sums did; stores truncate
        base = info[5]
        for i in range(n):
            values[i] = np.int64(packed[i]) + base
        return 0
    if kind in (DELTA, REGULAR):
        acc, step = info[5], info[6]
        values[0] = acc
        for i in range(1, n):
            acc = acc + step + np.int64(packed[i])
            values[i] = acc
        return 0
    decimal_decode(packed[:n], info[5], info[6], values[:n])
    return _patch_exceptions(address, size, frame, info[7], values, n)


@numba.njit(cache=True, nogil=True, inline="always")
def _u32_at(raw, at):
    """The little-endian uint32 at byte ``at`` of ``raw``, as int64."""
    row = np.int64(raw[at]) | (np.int64(raw[at + 1]) << 8)
    return row | (np.int64(raw[at + 2]) << 16) | (np.int64(raw[at + 3]) << 24)


@numba.njit(cache=True, nogil=True, **HELPER)
def _exception(info, x):
    """(chunk bytes, row, offset of the value) of exception ``x`` of the decimal chunk
    ``info`` describes (its bytes were checked by :func:`load_column`)."""
    address, size, frame, nexc, width = info[1], info[2], info[3], info[7], info[8]
    raw = numba.carray(_bytes_at(address), size)
    return raw, _u32_at(raw, frame + 4 * x), frame + 4 * nexc + x * width


@numba.njit(cache=True, nogil=True, **KERNEL)
def exception_at(info, x):
    """(row, value as float64) of exception ``x`` of a decimal chunk."""
    raw, row, src = _exception(info, x)
    if info[8] == 4:
        return row, np.float64(raw[src : src + 4].view(np.float32)[0])
    return row, raw[src : src + 8].view(np.float64)[0]


@numba.njit(cache=True, nogil=True, **KERNEL)
def exception_bits_at(info, x):
    """(row, raw bits) of exception ``x`` of a decimal chunk, to copy the value bit for bit
    (NaN payloads included)."""
    raw, row, src = _exception(info, x)
    bits = np.uint64(0)
    for b in range(info[8]):
        bits |= np.uint64(raw[src + b]) << np.uint64(8 * b)
    return row, bits


#: Comparison codes of :func:`forced_threshold`.
COMPARISON_CODES = {"<": 0, "<=": 1, ">": 2, ">=": 3, "==": 4, "!=": 5}


@numba.njit(cache=True, nogil=True, **KERNEL)
def forced_threshold(op, value, constant):
    """The integer threshold ``T`` with ``(0 op T) == (value op constant)``: how a kernel
    comparing a decimal chunk's integers evaluates an exception row (NaN, inf, -0.0 or an
    off-decimal value) exactly, its integer set to 0."""
    if op == 0:
        return 1 if value < constant else 0
    if op == 1:
        return 0 if value <= constant else -1
    if op == 2:
        return -1 if value > constant else 0
    if op == 3:
        return 0 if value >= constant else 1
    if op == 4:
        return 0 if value == constant else 1
    return 1 if value != constant else 0


@numba.njit(cache=True, nogil=True, **KERNEL)
def fix_positions(out, at, m, row, want):
    """Add ``row`` to (``want``) or remove it from the ascending positions ``out[at:at+m]``;
    the new count."""
    p = at + np.searchsorted(out[at : at + m], row)
    present = p < at + m and out[p] == row
    if want and not present:
        for q in range(at + m, p, -1):
            out[q] = out[q - 1]
        out[p] = row
        return m + 1
    if present and not want:
        for q in range(p, at + m - 1):
            out[q] = out[q + 1]
        return m - 1
    return m


@numba.njit(cache=True, nogil=True, **HELPER)
def _patch_exceptions(address, size, frame, nexc, values, n):
    """Write a decimal chunk's exceptions (uint32 rows, then raw values, after the frame) over
    the decoded values."""
    width = values.itemsize
    if frame + nexc * (4 + width) > size:
        return BAD_FRAME
    raw = numba.carray(_bytes_at(address), size)
    dst = values[:n].view(np.uint8)
    for x in range(nexc):
        at = frame + 4 * x
        row = _u32_at(raw, at)
        if row >= n:
            return BAD_FRAME
        src = frame + 4 * nexc + x * width
        for b in range(width):
            dst[row * width + b] = raw[src + b]
    return 0


@numba.njit(cache=True, nogil=True, **KERNEL)
def gather_chunks(ctx, info, rows, starts, counts, hits, values, packed, out):
    """For each chunk ``i`` of one column (``info[:, i]``, ``rows[i]`` rows; see
    :func:`load_column`), set ``out[x] = chunk[hits[x]]`` for ``x`` in ``starts[i] :
    starts[i] + counts[i]`` (ascending rows within the chunk). Frame-of-reference and decimal
    chunks decode only those rows; a regular clock's rows are computed from its parameters
    (nothing to read, as on the Python path); other chunks are loaded whole. Returns -1, or
    ``4 * i + result`` for the first chunk that fails to load."""
    for i in range(rows.shape[0]):
        k = counts[i]
        if k == 0:
            continue
        n, kind, lo, hi = rows[i], info[0, i], starts[i], starts[i] + k
        if kind == REGULAR:
            first, step = info[5, i], info[6, i]
            for x in range(lo, hi):
                out[x] = first + step * hits[x]
            continue
        if kind != FOR and kind != DECIMAL:
            s = load_column(ctx, info[:, i], values, packed, n)
            if s != 0:
                return 4 * i + s
            for x in range(lo, hi):
                out[x] = values[hits[x]]
            continue
        s = load_chunk(ctx, info[1, i], info[2, i], info[3, i], info[4, i], packed, n)
        if s != 0:
            return 4 * i + s
        base = info[5, i]
        if kind == FOR:
            for x in range(lo, hi):
                out[x] = np.int64(packed[hits[x]]) + base
            continue
        p = P[info[6, i]]
        for x in range(lo, hi):
            out[x] = np.float64(np.int64(packed[hits[x]]) + base) / p
        s = _patch_hit_exceptions(info[1, i], info[2, i], info[3, i], info[7, i], hits, lo, hi, out)
        if s != 0:
            return 4 * i + s
    return -1


@numba.njit(cache=True, nogil=True, **HELPER)
def _patch_hit_exceptions(address, size, frame, nexc, hits, lo, hi, out):
    """Write those of a decimal chunk's exceptions whose rows are among ``hits[lo:hi]`` over
    ``out[lo:hi]``."""
    width = out.itemsize
    if frame + nexc * (4 + width) > size:
        return BAD_FRAME
    raw = numba.carray(_bytes_at(address), size)
    for x in range(nexc):
        at = frame + 4 * x
        row = _u32_at(raw, at)
        slot = lo + np.searchsorted(hits[lo:hi], row)
        if slot < hi and hits[slot] == row:
            src = frame + 4 * nexc + x * width
            bits = raw[src : src + width].view(out.dtype)
            out[slot] = bits[0]
    return 0
