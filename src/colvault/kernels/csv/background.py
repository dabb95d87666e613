"""A helper process that compiles CSV kernels beside an import, on a machine whose Numba cache
lacks them.

Why: a first import on a fresh machine spends most of its time compiling kernels one after
another (Numba compiles under one lock per process, so the import's threads cannot share that
work). A second process on another core compiles the kernels the import will need last, last
first, while the import compiles from the first on; each kernel the helper finishes is written
to Numba's cache, and the import loads it from there when it gets to it.

A lock file per kernel (:func:`.jit.lock_path`) keeps the two from compiling the same one:
the helper skips a kernel whose lock the import holds; the import waits for one the helper
holds, then loads it. The helper ends with the import (:meth:`Helper.stop`), or on its own when
its parent process is gone. ``COLVAULT_COMPILE_HELPER=0`` turns it off.

A helper takes a second to start (Python, numpy, Numba). A session that writes a table on a
fresh machine starts one early, at its first compile of a zone-map kernel (:func:`start_early`,
called by :mod:`.compiling`): it compiles the kernels every import calls (:data:`EARLY`) while
the session compiles its own, then waits for the import's list (:meth:`Helper.send`). Query
sessions, which import no files, start none.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence, Set

from . import jit

#: Set to "0" to never start a helper process.
ENV = "COLVAULT_COMPILE_HELPER"
#: The modules whose kernels a helper may compile (each registers its kernels in :mod:`.jit`).
MODULES = ("tokens", "text", "numbers", "dates")
#: A helper costs a process start (~0.5 s of CPU): worth it from this many kernels to compile.
MIN_KERNELS = 3

#: Kernels the helper compiles before any other: those the import calls right after the
#: tokenizer's, which the helper finishes while the import compiles the tokenizer (~2.5 s).
AHEAD = 2
#: In the helper's list, where the work of the module that started it goes (see :func:`start`).
BETWEEN = "-"
#: Last in a helper's list: it then reads more lists from its stdin, one JSON line each.
MORE = "+"

_lock = threading.Lock()
_running: Helper | None = None


class Helper:
    """A running helper process; :meth:`stop` ends it (the kernels it finished stay cached)."""

    def __init__(self, proc: subprocess.Popen[bytes], folder: str) -> None:
        self.proc, self.folder = proc, folder

    @property
    def waiting(self) -> bool:
        """Whether the helper takes more work (:meth:`send`): one started early."""
        return self.proc.stdin is not None and self.proc.poll() is None

    def send(
        self, names: Sequence[str], module: str = __name__, before: Sequence[str] = ()
    ) -> bool:
        """Hand kernels ``names`` (in the helper's order, :data:`BETWEEN` included) to a helper
        started early; ``module.between(before)`` makes the work done at :data:`BETWEEN`.
        False when the helper is gone."""
        if self.proc.stdin is None:
            return False
        job = {"module": module, "before": list(before), "names": list(names)}
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:  # it has ended
            return False
        return True

    def stop(self) -> None:
        """End the helper process (the import is done) and remove its scratch folder."""
        global _running
        with _lock:
            if _running is self:
                _running = None
                jit.set_claims(None)
        if self.proc.poll() is None:
            self.proc.terminate()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _names(module: str, *functions: str) -> list[str]:
    return [f"{__package__}.{module}.{fn}" for fn in functions]


def kernels_for(columns: Sequence[Set[str]], missing: bool, few: bool = False) -> list[str]:
    """The kernels an import calls, in the order it first calls them, for columns whose values
    look like ``columns[j]`` ("number", "float", "long", "date", "bool", "text"; see
    :func:`colvault.io.csv.sniff.column_kinds`), with missing-value texts to look for when
    ``missing``. Types are inferred column by column, then the columns are converted. ``few``:
    no block has more than :data:`.compiling.SMALL` rows, which the text kernels and the ISO
    dates read in Python while their kernels are not compiled (they are left out). (The
    tokenizer's kernels and the integer parser stay in: numpy reads a small file without them
    (:func:`.jit.in_numpy`), and the helper compiles them for the larger files of later
    sessions.)"""
    names = _names("tokens", "special_masks", "_fast", "_uniform")
    if missing and not few:
        names += _names("text", "match_kernel")
    for kinds in columns:
        if kinds & {"number", "date"}:  # tried as integers, then floats
            names += _names("numbers", "parse_int64_kernel")
        if "float" in kinds:  # not for dates: the float wrapper refuses their first field
            names += _names("numbers", "parse_float64_fast_kernel")
        if "long" in kinds:  # numbers of more than 8 bytes: the general float parser
            names += _names("numbers", "parse_float64_kernel")
        if "bool" in kinds:
            names += _names("numbers", "parse_bool_kernel")
        if "date" in kinds and not few:
            names += _names("dates", "parse_iso_fast_kernel")
        if "text" in kinds and not few:
            names += _names("text", "_dict_run")
    if any("text" in kinds for kinds in columns) and not few:
        names += _names("text", "ucs4_kernel")
    return list(dict.fromkeys(names))


def helper_order(todo: Sequence[str], ahead: int = AHEAD) -> list[str]:
    """The order the helper compiles the kernels ``todo`` (in the order the import calls them):
    ``ahead`` of those after the tokenizer's, then its module's own work (:data:`BETWEEN`),
    then the rest, last first (the import compiles from the first on; they meet between).
    A helper already running when the import starts takes none ahead (``ahead=0``)."""
    tokenizer = set(_names("tokens", "special_masks", "_fast", "_uniform"))
    first = [n for n in todo if n not in tokenizer][:ahead]
    return [*first, BETWEEN, *reversed([n for n in todo if n not in first])]


def load_kernels() -> None:
    """Import the modules whose kernels a helper compiles (they register in :mod:`.jit`)."""
    for name in MODULES:
        importlib.import_module(f"{__package__}.{name}")


def cold(names: Sequence[str]) -> list[str]:
    """Those of the kernels ``names`` that calling would compile (in the order given)."""
    load_kernels()
    kernels = jit.KERNELS
    return [n for n in names if n in kernels and not kernels[n].cached()]


def start(
    names: Sequence[str], module: str = __name__, before: Sequence[str] = ()
) -> Helper | None:
    """Start a helper compiling those of the kernels ``names`` (in the order the import calls
    them) that are not cached, in :func:`helper_order`. None when it is not worth one (fewer
    than :data:`MIN_KERNELS` to compile), one is already running, or it is turned off. A helper
    started early (:func:`start_early`) is handed the work instead, and returned.

    The helper runs ``python -m module *before FOLDER PARENT KERNEL...``: a module of a higher
    layer takes its own arguments, then calls :func:`main` with the rest and its own work as
    ``between``; it also has ``between(before)``, which makes that work for :meth:`Helper.send`."""
    if not _allowed():
        return None
    todo = cold(names)
    with _lock:
        running = _running
    if running is not None:
        if todo and running.waiting and running.send(helper_order(todo, 0), module, before):
            return running
        return None
    if len(todo) < MIN_KERNELS or not cache_writable(todo[0]):
        return None
    return _spawn([sys.executable, "-m", module, *before], helper_order(todo), more=False)


#: The kernels a helper started early compiles, in the order an import calls them: those
#: every import calls (the tokenizer's, and the integer parser, the first one tried on every
#: column of numbers or dates). Not the missing-value matcher: a small file does without it.
EARLY = [
    *_names("tokens", "special_masks", "_fast", "_uniform"),
    *_names("numbers", "parse_int64_kernel"),
]
_early_tried = False


def start_early() -> Helper | None:
    """Start a helper that compiles :data:`EARLY` now and then waits for an import's list
    (:func:`start` hands it over); once per process, when they are not cached. It ends with the
    import, or when this process exits."""
    global _early_tried
    with _lock:
        if _early_tried or _running is not None:
            return None
        _early_tried = True
    if not _allowed():
        return None
    todo = cold(EARLY)
    if not todo or not cache_writable(todo[0]):
        return None
    helper = _spawn([sys.executable, "-m", __name__], todo, more=True)
    if helper is not None:
        atexit.register(helper.stop)
    return helper


def waiting() -> bool:
    """Whether a helper started early waits for an import's list."""
    running = _running
    return running is not None and running.waiting


def _allowed() -> bool:
    if jit.fcntl is None or os.environ.get(ENV) == "0":
        return False
    # not in an embedding program, whose sys.executable would not run a module
    return (
        not getattr(sys, "frozen", False) and "python" in os.path.basename(sys.executable).lower()
    )


def _spawn(command: list[str], order: list[str], more: bool) -> Helper | None:
    """Run ``command FOLDER PARENT *order`` (then :data:`MORE`, reading more work from a pipe,
    when ``more``) as the helper, unless one is running."""
    global _running
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
                [*command, folder, str(os.getpid()), *order, *([MORE] if more else [])],
                stdin=subprocess.PIPE if more else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is the import's to handle
            )
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        jit.set_claims(folder)
        _running = Helper(proc, folder)
        return _running


def cache_writable(name: str) -> bool:
    """Whether Numba can write kernel ``name`` to a cache, in one of the folders it tries (the
    helper's work goes through it: without one, the import would wait for kernels it then
    compiles again)."""
    try:
        from numba.core.caching import FunctionCache

        cache = FunctionCache(jit.KERNELS[name].py_func)
        cache._impl.locator.ensure_cache_path()  # makes the folder, checks it is writable
    except Exception:
        return False
    return True


def main(argv: Sequence[str], between: Callable[[], None] | None = None) -> None:
    """The helper: compile kernels ``argv[2:]`` in that order, each under its lock file in
    folder ``argv[0]``, skipping those the import holds, and call ``between`` at
    :data:`BETWEEN`; stop when process ``argv[1]`` (the import's) is gone. After a last
    :data:`MORE`, do the same for each JSON line on stdin (:meth:`Helper.send`) until its end."""
    folder, parent, names = argv[0], int(argv[1]), list(argv[2:])
    more = bool(names) and names[-1] == MORE
    load_kernels()
    if not _compile_all(folder, parent, names[:-1] if more else names, between) or not more:
        return
    for line in sys.stdin.buffer:
        job = json.loads(line)
        work = None
        if job["module"] != f"{__package__}.background":  # (this module runs as __main__)
            work = importlib.import_module(job["module"]).between(job["before"])
        if not _compile_all(folder, parent, job["names"], work):
            return
    shutil.rmtree(folder, ignore_errors=True)  # the import's process is gone


def _compile_all(
    folder: str, parent: int, names: Sequence[str], between: Callable[[], None] | None
) -> bool:
    """:func:`main`'s work on one list; False when the parent process is gone."""
    import fcntl

    for name in names:
        if os.getppid() != parent:
            return False
        if name == BETWEEN:
            if between is not None:
                try:
                    between()
                except Exception:  # the import does it itself and reports any error
                    pass
            continue
        kernel = jit.KERNELS[name]
        with open(jit.lock_path(folder, name), "a+b") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # the import is compiling it
            try:
                kernel.compile_here()  # written to the cache, or loaded if the import did it
            except Exception:  # the import compiles it itself and reports any error
                continue
    return True


if __name__ == "__main__":
    main(sys.argv[1:])
