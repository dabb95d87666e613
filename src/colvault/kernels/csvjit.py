"""One compiled specialization per CSV kernel, compiled on its first call.

Why: Numba compiles a kernel once per distinct tuple of argument types, and on a machine with an
empty cache each compilation of a CSV kernel costs seconds (mostly Numba's typing and lowering,
not LLVM). Left to itself, one import compiled most kernels two or three times: once for field
offsets that are strided views (``starts[c::ncols]``, layout ``'A'``) and once for contiguous
ones, once with ``na=None`` and once with an array, once for a read-only block (``bytes``) and once
for a writable one, and every field helper under them again for each.

A :class:`Kernel` wraps a jitted function for the importer's wrappers: on its first call it
compiles the function for one fixed signature (or loads it from the cache) and from then on
Numba converts every call to it: a contiguous array goes to an ``'A'`` parameter, a writable
one to a read-only parameter. The kernel's module still exports the plain jitted function
(tests call it with other types, e.g. ``fast=False`` comparisons on strided blocks).

Canonical types (the wrappers make their arguments fit): the block ``buf`` is a writable
C-contiguous uint8 array (a read-only one is copied: only ``bytes`` given to a wrapper by a
caller); field offsets, flags and the missing-value mask are any 1-d arrays; a kernel that takes
``na`` gets a bool array, empty when there is no mask (:data:`NO_NA`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba.core import types

#: the block: writable, C-contiguous (the 8-byte loads of the fast paths need it)
BUF = types.Array(types.uint8, 1, "C")
#: field offsets (int64), flags (uint8) and the missing-value mask (bool): any layout, read only
OFFSETS = types.Array(types.int64, 1, "A", readonly=True)
FLAGS = types.Array(types.uint8, 1, "A", readonly=True)
MASK = types.Array(types.bool_, 1, "A", readonly=True)
#: outputs the wrappers allocate
OUT_I64 = types.Array(types.int64, 1, "C")
OUT_U64 = types.Array(types.uint64, 1, "C")
OUT_F64 = types.Array(types.float64, 1, "C")
OUT_BOOL = types.Array(types.bool_, 1, "C")
I64 = types.int64
BOOL = types.boolean

#: ``na`` for "no missing values" (an empty mask: the kernels then test no field)
NO_NA = np.zeros(0, np.bool_)
NO_NA.flags.writeable = False

_lock = threading.Lock()


class Kernel:
    """``fn`` (a Numba dispatcher) compiled for the one signature ``sig`` on the first call."""

    def __init__(self, fn: Any, *sig: Any) -> None:
        self.generic = fn
        self.sig = sig
        self._compiled: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        compiled = self._compiled
        if compiled is None:
            with _lock:
                if self._compiled is None:
                    fn = getattr(self.generic, "py_func", self.generic)  # NUMBA_DISABLE_JIT
                    self._compiled = numba.njit(self.sig, cache=True, nogil=True)(fn)
                compiled = self._compiled
        return compiled(*args)


def block(buf: np.ndarray) -> np.ndarray:
    """``buf`` as the kernels' canonical block type (a copy only if it is read-only or strided)."""
    if buf.flags.writeable and buf.flags.c_contiguous:
        return buf
    return np.array(buf, np.uint8, order="C")


def mask(na: np.ndarray | None) -> np.ndarray:
    """``na`` as the kernels take it: ``NO_NA`` for None."""
    return NO_NA if na is None else na
