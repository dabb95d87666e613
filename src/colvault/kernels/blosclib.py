"""libblosc2 through ctypes: the library the ``blosc2`` wheel ships, one decompression context
per thread, and reads of a few items of a frame.

python-blosc2 decompresses whole frames only. A frame is cut into blocks (16 KiB in the chunks
colvault writes, see ``engine.codec.BLOCK_BYTES``), each compressed on its own, and the C
library's ``blosc2_getitem_ctx`` decompresses just the blocks holding the items asked for: a
point read or a short slice then costs a block per column, not a chunk. The jitted scans
(:mod:`.query.native`) call the same library by symbol name with these contexts.

Importing this module loads neither Numba nor blosc2 (``import colvault`` stays light): the
library is loaded on the first :func:`load`. Where it is missing, :data:`LIB` stays None and
callers decompress whole frames with python-blosc2.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

#: The loaded library, or None (then :data:`REASON` says why).
LIB: Any = None
REASON = ""
#: Its path (the jitted scans load it into LLVM's symbol table too).
PATH = ""

_local = threading.local()


class _DParams(ctypes.Structure):
    """``blosc2_dparams`` passed by value: ``nthreads`` first, every other field zero (its
    default), padded beyond the struct's size in any release so far."""

    _fields_ = [("nthreads", ctypes.c_int16), ("rest", ctypes.c_int64 * 8)]


def load() -> Any:
    """The library, loaded on first use; None when it cannot be (:data:`REASON` says why)."""
    if LIB is None and not REASON:
        with _loading:
            if LIB is None and not REASON:
                _load()
    return LIB


_loading = threading.Lock()


def _load() -> None:
    global LIB, REASON, PATH
    try:
        import blosc2

        path = os.path.join(os.path.dirname(blosc2.__file__), "lib", "libblosc2.so")
        lib = ctypes.CDLL(path)
        lib.blosc2_init()
        lib.blosc2_create_dctx.restype = ctypes.c_void_p
        lib.blosc2_create_dctx.argtypes = [_DParams]
        lib.blosc2_free_ctx.argtypes = [ctypes.c_void_p]
        # int blosc2_getitem_ctx(ctx, const void* src, int32 srcsize, int start, int nitems,
        # void* dest, int32 destsize): bytes written, negative on an error
        lib.blosc2_getitem_ctx.restype = ctypes.c_int
        lib.blosc2_getitem_ctx.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_int32,
        ]  # fmt: skip
    except (ImportError, OSError, AttributeError) as exc:
        REASON = f"{type(exc).__name__}: {exc}"
        return
    LIB, PATH = lib, path


class _Context:
    """One thread's blosc2 decompression context (contexts are not shared between threads)."""

    def __init__(self) -> None:
        params = _DParams()
        params.nthreads = 1
        self.address = int(LIB.blosc2_create_dctx(params) or 0)
        if not self.address:
            raise MemoryError("blosc2_create_dctx failed")

    def __del__(self) -> None:
        if self.address and LIB is not None:
            LIB.blosc2_free_ctx(self.address)


def thread_context() -> int:
    """The address of this thread's decompression context (created on first use)."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _local.ctx = _Context()
    return ctx.address


def getitem(src: int, srcsize: int, start: int, nitems: int, dest: int, destsize: int) -> int:
    """Items ``[start, start + nitems)`` of the frame of ``srcsize`` bytes at address ``src``
    into ``destsize`` bytes at ``dest``: the bytes written, negative when blosc2 refuses (a
    damaged frame, items beyond it). The caller keeps both buffers alive."""
    ctx = thread_context()
    return int(LIB.blosc2_getitem_ctx(ctx, src, srcsize, start, nitems, dest, destsize))
