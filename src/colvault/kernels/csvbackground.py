"""A helper process that compiles CSV kernels beside an import, on a machine whose Numba cache
lacks them.

Why: a first import on a fresh machine spends most of its time compiling kernels one after
another (Numba compiles under one lock per process, so the import's threads cannot share that
work). A second process on another core compiles the kernels the import will need last, last
first, while the import compiles from the first on; each kernel the helper finishes is written
to Numba's cache, and the import loads it from there when it gets to it.

A lock file per kernel (:func:`.csvjit.lock_path`) keeps the two from compiling the same one:
the helper skips a kernel whose lock the import holds; the import waits for one the helper
holds, then loads it. The helper ends with the import (:meth:`Helper.stop`), or on its own when
its parent process is gone. ``COLVAULT_COMPILE_HELPER=0`` turns it off.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence, Set

from . import csvjit

#: Set to "0" to never start a helper process.
ENV = "COLVAULT_COMPILE_HELPER"
#: The modules whose kernels a helper may compile (each registers its kernels in csvjit).
MODULES = ("csvtokens", "csvtext", "csvnumbers", "csvdates")
#: A helper costs a process start (~0.5 s of CPU): worth it from this many kernels to compile.
MIN_KERNELS = 3

#: Kernels the helper compiles before any other: those the import calls right after the
#: tokenizer's, which the helper finishes while the import compiles the tokenizer (~2.5 s).
AHEAD = 2
#: In the helper's list, where the work of the module that started it goes (see :func:`start`).
BETWEEN = "-"

_lock = threading.Lock()
_running: Helper | None = None


class Helper:
    """A running helper process; :meth:`stop` ends it (the kernels it finished stay cached)."""

    def __init__(self, proc: subprocess.Popen[bytes], folder: str) -> None:
        self.proc, self.folder = proc, folder

    def stop(self) -> None:
        """End the helper process (the import is done) and remove its scratch folder."""
        global _running
        with _lock:
            if _running is self:
                _running = None
                csvjit.set_claims(None)
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _names(module: str, *functions: str) -> list[str]:
    return [f"{__package__}.{module}.{fn}" for fn in functions]


def kernels_for(columns: Sequence[Set[str]], missing: bool) -> list[str]:
    """The kernels an import calls, in the order it first calls them, for columns whose values
    look like ``columns[j]`` ("number", "float", "long", "date", "bool", "text"; see
    :func:`colvault.io.csvsniff.column_kinds`), with missing-value texts to look for when
    ``missing``. Types are inferred column by column, then the columns are converted."""
    names = _names("csvtokens", "special_masks", "_fast", "_uniform")
    if missing:
        names += _names("csvtext", "match_kernel")
    for kinds in columns:
        if kinds & {"number", "date"}:  # tried as integers, then floats
            names += _names("csvnumbers", "parse_int64_kernel")
        if "float" in kinds:  # not for dates: the float wrapper refuses their first field
            names += _names("csvnumbers", "parse_float64_fast_kernel")
        if "long" in kinds:  # numbers of more than 8 bytes: the general float parser
            names += _names("csvnumbers", "parse_float64_kernel")
        if "bool" in kinds:
            names += _names("csvnumbers", "parse_bool_kernel")
        if "date" in kinds:
            names += _names("csvdates", "parse_iso_fast_kernel")
        if "text" in kinds:
            names += _names("csvtext", "_dict_run")
    if any("text" in kinds for kinds in columns):
        names += _names("csvtext", "ucs4_kernel")
    return list(dict.fromkeys(names))


def helper_order(todo: Sequence[str]) -> list[str]:
    """The order the helper compiles the kernels ``todo`` (in the order the import calls them):
    :data:`AHEAD` of those after the tokenizer's, then its module's own work (:data:`BETWEEN`),
    then the rest, last first (the import compiles from the first on; they meet between)."""
    tokenizer = set(_names("csvtokens", "special_masks", "_fast", "_uniform"))
    ahead = [n for n in todo if n not in tokenizer][:AHEAD]
    return [*ahead, BETWEEN, *reversed([n for n in todo if n not in ahead])]


def load_kernels() -> None:
    """Import the modules whose kernels a helper compiles (they register in csvjit)."""
    for name in MODULES:
        importlib.import_module(f"{__package__}.{name}")


def cold(names: Sequence[str]) -> list[str]:
    """Those of the kernels ``names`` that calling would compile (in the order given)."""
    load_kernels()
    kernels = csvjit.KERNELS
    return [n for n in names if n in kernels and not kernels[n].cached()]


def start(
    names: Sequence[str], module: str = __name__, before: Sequence[str] = ()
) -> Helper | None:
    """Start a helper compiling those of the kernels ``names`` (in the order the import calls
    them) that are not cached, in :func:`helper_order`. None when it is not worth one (fewer
    than :data:`MIN_KERNELS` to compile), one is already running, or it is turned off.

    The helper runs ``python -m module *before FOLDER PARENT KERNEL...``: a module of a higher
    layer takes its own arguments, then calls :func:`main` with the rest and its own work as
    ``between``."""
    global _running
    if csvjit.fcntl is None or os.environ.get(ENV) == "0" or _running is not None:
        return None
    if getattr(sys, "frozen", False) or "python" not in os.path.basename(sys.executable).lower():
        return None  # an embedding program: sys.executable would not run a module
    todo = cold(names)
    if len(todo) < MIN_KERNELS or not cache_writable(todo[0]):
        return None
    from numba.core import config

    with _lock:
        if _running is not None:
            return None
        folder = tempfile.mkdtemp(prefix="colvault-compile-")
        env = dict(os.environ)
        cache_dir = getattr(config, "CACHE_DIR", "")  # maybe set by code, not the environment
        if cache_dir:
            env["NUMBA_CACHE_DIR"] = cache_dir
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    *before,
                    folder,
                    str(os.getpid()),
                    *helper_order(todo),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is the import's to handle
            )
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        csvjit.set_claims(folder)
        _running = Helper(proc, folder)
        return _running


def cache_writable(name: str) -> bool:
    """Whether Numba can write kernel ``name`` to a cache, in one of the folders it tries (the
    helper's work goes through it: without one, the import would wait for kernels it then
    compiles again)."""
    try:
        from numba.core.caching import FunctionCache

        cache = FunctionCache(csvjit.KERNELS[name].py_func)
        cache._impl.locator.ensure_cache_path()  # makes the folder, checks it is writable
    except Exception:
        return False
    return True


def main(argv: Sequence[str], between: Callable[[], None] | None = None) -> None:
    """The helper: compile kernels ``argv[2:]`` in that order, each under its lock file in
    folder ``argv[0]``, skipping those the import holds, and call ``between`` at
    :data:`BETWEEN`; stop when process ``argv[1]`` (the import's) is gone."""
    import fcntl

    folder, parent, names = argv[0], int(argv[1]), argv[2:]
    load_kernels()
    for name in names:
        if os.getppid() != parent:
            return
        if name == BETWEEN:
            if between is not None:
                try:
                    between()
                except Exception:  # the import does it itself and reports any error
                    pass
            continue
        kernel = csvjit.KERNELS[name]
        with open(csvjit.lock_path(folder, name), "a+b") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # the import is compiling it
            try:
                kernel.compile_here()  # written to the cache, or loaded if the import did it
            except Exception:  # the import compiles it itself and reports any error
                continue


if __name__ == "__main__":
    main(sys.argv[1:])
