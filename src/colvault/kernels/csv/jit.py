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

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numba
import numpy as np
from numba.core import types

from .. import compiling
from ..wordops import KERNEL

try:
    import fcntl
except ImportError:  # Windows: no lock files, so no helper process (see background)
    fcntl = None  # type: ignore[assignment]

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

#: Every :class:`Kernel` by name (``module.function``), for a helper process to compile them.
KERNELS: dict[str, Kernel] = {}


class Kernel:
    """``fn`` (a Numba dispatcher) compiled for the one signature ``sig`` on the first call.

    While a helper process compiles kernels beside an import (:mod:`.background`), each
    compile here first takes the kernel's lock file: a kernel the helper is compiling is then
    waited for and loaded from Numba's cache instead of compiled twice."""

    def __init__(self, fn: Any, *sig: Any) -> None:
        self.generic = fn
        self.sig = sig
        self.py_func = getattr(fn, "py_func", fn)
        self.name = f"{self.py_func.__module__}.{self.py_func.__qualname__}"
        self._compiled: Callable[..., Any] | None = None
        self._lock = threading.Lock()
        self._cached = False  # known to be in Numba's cache
        KERNELS.setdefault(self.name, self)

    def __call__(self, *args: Any) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self.compiled()
        return compiled(*args)

    def compiled(self) -> Callable[..., Any]:
        """The compiled kernel: loaded from Numba's cache, or compiled (and cached)."""
        with self._lock:
            if self._compiled is None:
                with _claim(self.name):
                    self._compiled = self.compile_here()
            return self._compiled

    def compile_here(self) -> Callable[..., Any]:
        """A new dispatcher compiled for ``sig`` (or loaded from the cache), without the lock
        file: a helper process takes that itself."""
        if self.py_func is self.generic:  # NUMBA_DISABLE_JIT: the plain function
            return self.generic
        return numba.njit(self.sig, cache=True, nogil=True, **KERNEL)(self.py_func)

    def cached(self) -> bool:
        """Whether calling the kernel costs no compile: done in this process, or in Numba's
        cache for this machine and this source (read from the cache's index, not loaded)."""
        if self._compiled is not None or self._cached or self.py_func is self.generic:
            return True
        # unknown (Numba's private cache API changed): assume nothing to compile
        self._cached = compiling.cached_index(self.py_func, self.sig) is not False
        return self._cached


#: The lock files' folder while a helper process compiles kernels (:mod:`.background`).
_claims: str | None = None


@contextlib.contextmanager
def _claim(name: str) -> Iterator[None]:
    folder = _claims
    if folder is None or fcntl is None:
        yield
        return
    try:
        f = open(lock_path(folder, name), "a+b")  # noqa: SIM115 - closed below
    except OSError:  # the helper has just stopped and its folder is gone
        yield
        return
    with f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released with the file
        yield


def lock_path(folder: str, name: str) -> str:
    """The lock file of kernel ``name`` in ``folder``: whoever holds it compiles the kernel."""
    return os.path.join(folder, name + ".lock")


def set_claims(folder: str | None) -> None:
    """Compile each kernel under its lock file in ``folder`` from now on (None: no more)."""
    global _claims
    _claims = folder


_small_files = 0  # imports of small files under way (small_file)
_cold: set[str] = set()  # kernels found neither compiled nor cached by in_python
_small_lock = threading.Lock()


def small_file(on: bool) -> None:
    """Count an import of a small file (at most :data:`.compiling.SMALL` rows) in or out: while
    one is under way, :func:`in_python` may choose Python versions of kernels."""
    global _small_files
    with _small_lock:
        _small_files += 1 if on else -1


def in_python(kernel: Kernel, nfields: int) -> bool:
    """Whether to read ``nfields`` fields in Python, where a module has a Python version of a
    kernel (:mod:`.text`, ISO dates): during the import of a small file (:func:`small_file`), at
    most :data:`.compiling.SMALL` fields, and ``kernel`` would have to be compiled first (not in
    this process, nor in Numba's cache). A Python loop takes 0.5-3 us a field, compiling one
    kernel 0.5-1 s: a new user's first, small, file is read sooner. (A large file's blocks take
    the kernels: in Python they would cost more than the compile, and hold the GIL.)"""
    return nfields <= compiling.SMALL and in_numpy(kernel)


def in_numpy(kernel: Kernel | Any, *args: Any) -> bool:
    """Whether to take a numpy version of ``kernel`` (the tokenizer, the integer parser, the
    block scan), vectorized and exact: during the import of a small file (:func:`small_file`),
    while the kernel would have to be compiled first. A small file's block takes a few
    milliseconds in numpy, compiling one of these kernels 0.2-0.8 s. ``kernel`` is a
    :class:`Kernel`, or a plain dispatcher called with ``args``."""
    if _small_files <= 0:
        return False
    if not isinstance(kernel, Kernel):
        return compiling.would_compile(kernel, *args)
    if kernel.name in _cold:  # known: no need to read the cache's index again
        return True
    if kernel.cached():
        return False
    _cold.add(kernel.name)
    return True


def block(buf: np.ndarray) -> np.ndarray:
    """``buf`` as the kernels' canonical block type (a copy only if it is read-only or strided)."""
    if buf.flags.writeable and buf.flags.c_contiguous:
        return buf
    return np.array(buf, np.uint8, order="C")


def mask(na: np.ndarray | None) -> np.ndarray:
    """``na`` as the kernels take it: ``NO_NA`` for None."""
    return NO_NA if na is None else na
