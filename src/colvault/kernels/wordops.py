"""Word-at-a-time primitives shared by the CSV kernels: an unaligned 8-byte load, count of
trailing zeros, a prefetch (Numba intrinsics), the zero-byte bit trick, and the decorator for
per-field helpers that must not pay reference counting.

Why here: the tokenizer, the number, date and text kernels all read fields a word at a time
and prefetch the fields ahead of them; one module keeps the LLVM-level code in one place. The
intrinsics assume little-endian loads (with a byte-swap on big-endian machines).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

_F = TypeVar("_F", bound=Callable[..., Any])


def njit_field(fn: _F) -> _F:
    """``numba.njit(cache=True, nogil=True)`` with Numba's private ``_nrt=False``, for per-field
    helpers that take the block but never allocate: no reference counting on every call. Only
    kernels call them: no Python or C wrapper is compiled (:data:`HELPER`)."""
    return numba.njit(cache=True, nogil=True, _nrt=False, **HELPER)(fn)  # type: ignore[call-overload]


#: Options of kernels that are called from Python (or other kernels) but never passed as
#: first-class functions: Numba's C-callable wrapper, generated and optimized with every
#: compile otherwise, is left out (about a quarter of a small kernel's compile time).
KERNEL: dict[str, Any] = {"no_cfunc_wrapper": True}
#: Options of helpers that only other kernels call: no Python wrapper either.
HELPER: dict[str, Any] = {"no_cfunc_wrapper": True, "no_cpython_wrapper": True}


# --- word-at-a-time helpers (also used by the tokenizer and the date kernels) --------------------

_BIG_ENDIAN = sys.byteorder == "big"


def _load8(typingctx: Any, buf: Any, p: Any) -> Any:
    """``buf[p:p + 8]`` as a little-endian uint64 (byte ``p`` in the low bits), one unaligned
    load for a C-contiguous ``buf``. The caller checks ``p + 8 <= len(buf)``; ``p`` is not
    wrapped around when negative."""
    if not (
        isinstance(buf, types.Array)
        and buf.ndim == 1
        and buf.dtype == types.uint8
        and isinstance(p, types.Integer)
    ):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        i64 = ir.IntType(64)
        if aryty.layout == "C":
            ptr = builder.bitcast(builder.gep(ary.data, [idx]), i64.as_pointer())
            word = builder.load(ptr, align=1)
            return builder.bswap(word) if _BIG_ENDIAN else word
        shape = cgutils.unpack_tuple(builder, ary.shape, 1)
        strides = cgutils.unpack_tuple(builder, ary.strides, 1)
        word = ir.Constant(i64, 0)
        for k in range(8):
            pos = builder.add(idx, ir.Constant(idx.type, k))
            ptr = cgutils.get_item_pointer2(
                context, builder, ary.data, shape, strides, aryty.layout, [pos]
            )
            byte = builder.zext(builder.load(ptr), i64)
            word = builder.or_(word, builder.shl(byte, ir.Constant(i64, 8 * k)))
        return word

    return types.uint64(buf, p), codegen


def _cttz(typingctx: Any, x: Any) -> Any:
    """Trailing zero bits of a uint64 (64 for 0), as int64."""
    if x != types.uint64:
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.int64(x), codegen


def _prefetch(typingctx: Any, buf: Any, p: Any) -> Any:
    """Hint that ``buf[p]`` will be read soon (LLVM's prefetch: no fault, whatever ``p``)."""
    if not (isinstance(buf, types.Array) and buf.ndim == 1 and isinstance(p, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        if aryty.layout == "C":
            offset = builder.mul(
                idx, ir.Constant(idx.type, context.get_abi_sizeof(ary.data.type.pointee))
            )
        else:
            offset = builder.mul(idx, cgutils.unpack_tuple(builder, ary.strides, 1)[0])
        raw = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        ptr = builder.gep(raw, [offset])
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(buf, p), codegen


# (assigned, not decorated: mypy would see the intrinsic's typing signature)
load8: Any = intrinsic(_load8)
cttz: Any = intrinsic(_cttz)
prefetch: Any = intrinsic(_prefetch)

#: Fields ahead whose bytes the column kernels prefetch: the block is mostly out of the caches when
#: a column is parsed, and each field's bytes are only known once its offset is loaded, so the
#: loads would otherwise wait for memory one or two fields at a time (ISO dates on the mixed
#: benchmark file: 28 ns/field without, 9 with).
AHEAD = 32

ONES = np.uint64(0x0101010101010101)
HIGHS = np.uint64(0x8080808080808080)


def _select_flags(typingctx: Any, out: Any, n: Any) -> Any:
    """The last ``n`` bytes of ``out[:n]`` (C-contiguous int64, at least ``n`` long) as a uint8
    array: where a ``select`` kernel keeps one flag per row. An intrinsic: a view is built in
    place (Numba's ``.view`` and slicing would compile helper functions into every kernel)."""
    if not (
        isinstance(out, types.Array)
        and out.ndim == 1
        and out.layout == "C"
        and out.dtype == types.int64
        and isinstance(n, types.Integer)
    ):
        return None
    flags = types.Array(types.uint8, 1, "C")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        count = context.cast(builder, args[1], sig.args[1], types.intp)
        raw = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        data = builder.gep(raw, [builder.mul(count, ir.Constant(count.type, 7))])
        view = context.make_array(sig.return_type)(context, builder)
        one = context.get_constant(types.intp, 1)
        populate_array(
            view, data=data, shape=[count], strides=[one], itemsize=one,
            meminfo=ary.meminfo, parent=ary.parent,
        )  # fmt: skip
        # llvmlite's struct proxy has no public accessor for the value it built
        return impl_ret_borrowed(context, builder, sig.return_type, view._getvalue())  # noqa: SLF001

    return flags(out, n), codegen


select_flags: Any = intrinsic(_select_flags)


@numba.njit(cache=True, nogil=True, **HELPER)
def compact_flags(out, n):
    """Write the positions of the set flags of :func:`select_flags` ``(out, n)`` to the start of
    ``out`` and return their count: the second pass of every ``select`` kernel.

    The flags are read eight at a time, skipping words without a set flag (most of them in a
    selective query). In place: while flag i is read, slot m <= i is written, bytes below
    8 * i + 8, and the unread flags start at byte 7 * n + i + 1; 8 * i + 8 > 7 * n + i + 1 would
    need i > n - 1. Word w (flags w..w+7) is loaded before its positions are written, which end
    below byte 8 * w + 64, and the next word starts at 7 * n + w + 8 > 8 * w + 63 for every
    w <= n - 8. Benchmark condition (3.5 % of rows), 153 chunks on one thread: 35.6 -> 31.0 ms
    against one position test per row.
    """
    flags = select_flags(out, n)
    m = 0
    w = 0
    while w + 8 <= n:
        v = load8(flags, w)
        while v:
            out[m] = w + (cttz(v) >> 3)
            m += 1
            v &= v - np.uint64(1)
        w += 8
    for i in range(w, n):
        f = flags[i]
        out[m] = i
        m += f
    return m


@numba.njit(cache=True, nogil=True, inline="always")
def zero_bytes(v):
    """0x80 in each zero byte of ``v`` up to and including the first (higher ones may also be
    marked, after a zero byte): ``cttz`` of the result is exact, a zero result means none."""
    return (v - ONES) & ~v & HIGHS


def check_fields(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, na: np.ndarray | None
) -> None:
    """The arguments every field kernel's wrapper takes, checked before a kernel sees them."""
    if buf.dtype != np.uint8 or buf.ndim != 1:
        raise TypeError("buf must be a 1-d uint8 array")
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError("starts and ends must be 1-d arrays of the same length")
    if na is not None and na.shape != starts.shape:
        raise ValueError("na must have one flag per field")
