"""Fused predicate kernels, generated once per expression *shape* and cached on disk.

The engine lowers a typed condition into a small neutral description (nested tuples, below) in
which every operand already has numpy's loop dtype, constants are numbered arguments and columns
are numbered arguments. This module turns a description into the source of one Numba loop over
the rows of a chunk, writes it to a cache directory and imports it as a real module, so that
``cache=True`` lets a second process load machine code instead of compiling (ARCHITECTURE.md
"Queries"). Nothing user-written reaches the generated text: only argument positions, dtypes
from a fixed set and operators from a fixed table, all validated here.

Description nodes (``dt`` is a numpy ``dtype.str`` such as ``"<f8"``, ``"|b1"``, ``"<M8[ns]"``):

- ``("col", j, dt)``: column argument ``j`` (datetime64/timedelta64 columns arrive as int64
  views; int64 min is NaT; ``"<f2"`` values travel as float32, since Numba has no float16:
  every float16 operation is done in float32 and rounded to float16, as numpy's loops do).
  ``dt`` may also be ``"U"``/``"S"`` (fixed-width text) or ``"cat"`` (the integer codes of a
  category column).
- ``("const", j, dt)``: constant argument ``j``, a scalar of ``dt`` (``"U"``: a str, ``"S"``:
  bytes, ``"lut"``: a bool array indexed by category code, ``"set" + dt``: see ``isin``).
- ``("cast", dt, node)``: numpy's cast of ``node`` to ``dt`` (integers wrap; datetime units
  only ever get finer, so the cast multiplies, keeping NaT).
- ``(op, dt, node, ...)``: ``op`` applied to operands that already have the loop dtype, giving
  ``dt``. Ops: ``+ - * / // % **  neg abs sqrt exp log log10 sin cos tan arcsin arccos arctan
  floor ceil isnan isfinite  < <= > >= == !=  and or not``. The one mixed loop is numpy's
  int64-with-uint64 comparison (operands ``<i8`` and ``<u8`` in either order).
- ``("catcode", op, ("col", j, "cat"), ("const", k, "<i8"))``: ``==``/``!=`` of category codes
  with the chunk's code of a literal (``-1`` when the chunk lacks it).
- ``("catlut", ("col", j, "cat"), ("const", k, "lut"))``: ``lut[code]``, the comparison of the
  chunk's dictionary with a literal, for the ordering operators on categories.
- ``("isin", "|b1", node, ("const", k, "set" + dt))``: whether ``node`` (of dtype ``dt``) is
  one of the values of constant ``k``, an ascending array of distinct ``dt`` values without
  NaN or NaT (datetimes as int64): a binary search, so that a long ``or`` of equalities with
  one operand compiles as one operation.

Kernels (one module per shape holds all three; each compiles on first use)::

    select(n, c0, ..., k0, ..., out) -> count   # out[:count] = int64 positions where true
    count(n, c0, ..., k0, ...) -> count
    mask(n, c0, ..., k0, ..., out) -> count     # out[i] = predicate of row i (bool)

A kernel with ``masked`` columns takes their validity bits after the constants (``v0, ...``,
see :func:`generate_source`); a missing entry compares false, except with ``!=``, as NaN does,
and ``isna``/``notna`` test for it. Without ``masked`` the kernel is the plain one.

A negative count (:data:`ERR_NEGATIVE_POWER`) means an integer was raised to a negative integer
power in some row, which numpy refuses.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np

from . import exprcode, scancode
from .exprcode import (
    ERR_NEGATIVE_POWER,
    MODES,
    UNIT_AS,
    generate_source,
    shape_text,
    unit_factor,
    validate,
)
from .scancode import SCAN_MODES, scan_source

# The description's checks and code generation live in exprcode; callers use them from here.
__all__ = [
    "ERR_NEGATIVE_POWER",
    "MODES",
    "SCAN_MODES",
    "UNIT_AS",
    "default_cache_dir",
    "generate_source",
    "kernel",
    "module_name",
    "scan_loop",
    "scan_source",
    "shape_text",
    "unit_factor",
    "validate",
]

_lock = threading.Lock()
_modules: dict[tuple[str, str], Any] = {}


def _own_hash() -> str:
    """Hash of this generator's source and Numba's version: a new generator never reuses the
    modules (and machine code) of an older one."""
    sources = (__file__, exprcode.__file__, scancode.__file__)
    h = hashlib.sha256(b"".join(Path(str(f)).read_bytes() for f in sources))
    h.update(numba.__version__.encode())
    h.update(np.__version__.encode())
    return h.hexdigest()[:16]


_GENERATOR = _own_hash()


def default_cache_dir() -> Path:
    """Where generated kernel modules are written: ``COLVAULT_KERNEL_DIR`` when set, else
    ``colvault-kernels`` inside ``NUMBA_CACHE_DIR`` when that is set, else the user's cache
    dir. Numba files a module's machine code under the module's path, so a copy of a Numba
    cache directory serves only modules that stay where they were (``COLVAULT_KERNEL_DIR``
    outside it)."""
    return Path(_default_dir_text())


def _default_dir_text() -> str:
    """:func:`default_cache_dir` as normalized text, without pathlib: every query looks its
    kernel up by it (pathlib took 27 us of a 200 us query)."""
    own = os.environ.get("COLVAULT_KERNEL_DIR")
    if own:
        return os.path.normpath(own)
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return os.path.normpath(os.path.join(numba_dir, "colvault-kernels"))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.normpath(os.path.join(base, "colvault", "kernels"))


# ---------------------------------------------------------------------------------------------
# the on-disk module cache


def module_name(key: str) -> str:
    """Module name of a shape: generator hash + shape hash (a valid identifier)."""
    digest = hashlib.sha256(f"{_GENERATOR}\0{key}".encode()).hexdigest()[:24]
    return f"_colvault_kernel_{_GENERATOR}_{digest}"


def _publish(path: Path, text: str) -> None:
    """Write to a temporary name in the same directory, then link it into place, so no process
    ever imports a half-written module. The first writer wins: a file that is already there is
    left alone, because rewriting it would change its timestamp and make Numba discard the
    machine code cached for it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            if path.read_text(encoding="utf-8") != text:  # damaged: replace it
                os.replace(tmp, path)
        except OSError:  # no hard links here: an atomic rename will do
            os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _load_module(name: str, path: Path) -> Any:
    """Import ``path`` as module ``name`` and register it in ``sys.modules`` (Numba's cache
    locates a function's module through it)."""
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import kernel module {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def kernel(
    node: tuple[Any, ...],
    n_columns: int,
    n_constants: int,
    mode: str = "select",
    cache_dir: str | os.PathLike[str] | None = None,
    masked: tuple[int, ...] = (),
) -> Callable[..., int]:
    """The jitted ``mode`` kernel (``select``, ``count`` or ``mask``) of a description, with
    validity bits for the columns ``masked`` (ascending positions).

    Kernels are cached in this process by shape, and on disk (source and Numba's machine code)
    in ``cache_dir`` (default :func:`default_cache_dir`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    key = f"{n_columns}:{n_constants}:{shape_text(node)}"
    if masked:  # plain kernels keep their keys (and modules)
        key += f":masked{list(masked)}"
    mod = _module(key, lambda: generate_source(node, n_columns, n_constants, masked), cache_dir)
    fn: Callable[..., int] = getattr(mod, mode)
    return fn


def scan_loop(
    columns: list[tuple[str, ...]],
    constants: list[str],
    mode: str,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Callable[..., int]:
    """The batch loop ``scan_<mode>`` (``count`` or ``select``) for row kernels over columns
    with these buffer dtypes and constants of these dtypes (see :func:`scan_source`); cached
    like the kernels, and shared by every condition with those argument types."""
    if mode not in SCAN_MODES:
        raise ValueError(f"mode must be one of {SCAN_MODES}, not {mode!r}")
    key = f"scan:{mode}:{columns!r}:{constants!r}"
    mod = _module(key, lambda: scan_source(columns, constants, mode), cache_dir)
    fn: Callable[..., int] = getattr(mod, f"scan_{mode}")
    return fn


def _module(key: str, source: Callable[[], str], cache_dir: str | os.PathLike[str] | None) -> Any:
    """The generated module of ``key``: from this process's memo, else written (if missing)
    to the cache directory and imported."""
    where = os.path.normpath(os.fspath(cache_dir)) if cache_dir is not None else _default_dir_text()
    memo_key = (where, key)
    mod = _modules.get(memo_key)  # a dict lookup is atomic: the lock only for a miss
    if mod is not None:
        return mod
    directory = Path(where)
    with _lock:
        mod = _modules.get(memo_key)
        if mod is None:
            text = source()
            name = module_name(key)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{name}.py"
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                _publish(path, text)
            mod = _load_module(name, path)
            _modules[memo_key] = mod
    return mod
