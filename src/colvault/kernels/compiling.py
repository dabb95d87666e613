"""Say once on stderr when compiling kernels holds a user up for more than a second.

On a fresh machine (an empty Numba cache) the first CSV import or the first statistics wait
for Numba to compile colvault's kernels; silence would look like a hang. The notice is given
once per process, only while a compile of one of our kernels is still running a second after
it began; later processes load the kernels from the cache and say nothing.

The first compile of a zone-map kernel (a session writing a table on a fresh machine) also
starts the CSV compile helper early (:func:`.csv.background.start_early`), so that it is ready,
with the kernels every import calls, when the session imports a file.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from numba.core import event

NOTICE_AFTER = 1.0  # seconds of compiling before the notice
NOTICE = (
    "colvault: compiling kernels for this machine; this happens once, they are cached "
    "(`colvault warmup` compiles all of them ahead, in parallel)"
)


#: Compiling a kernel of this module first starts the CSV compile helper early.
EARLY_HELPER_FROM = "colvault.kernels.encoding.zonemap"


def _module(dispatcher: Any) -> str:
    return getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""


def ours(dispatcher: Any) -> bool:
    """A colvault kernel: a fixed one, or one generated from a query condition."""
    return _module(dispatcher).startswith(("colvault.", "_colvault_kernel_"))


def _start_helper_early() -> None:
    from .csv import background

    background.start_early()


class CompileNotice(event.Listener):
    """Listens to Numba's compile events: the first compile of one of our kernels starts a
    timer of ``after`` seconds; if a compile of ours is still running when it fires, ``say``
    is called, once per process. ``timer(seconds, callback)`` makes the timer (threading's
    by default; tests fire it by hand)."""

    def __init__(
        self,
        after: float = NOTICE_AFTER,
        say: Any = None,
        timer: Any = threading.Timer,
        early: Any = _start_helper_early,
    ) -> None:
        self.after = after
        self.early: Any = early  # called at the first compile from EARLY_HELPER_FROM (once)
        self.say = say or (lambda: print(NOTICE, file=sys.stderr, flush=True))
        self.make_timer = timer
        self.lock = threading.Lock()
        self.running = 0  # compiles of our kernels under way
        self.timer: Any = None
        self.said = False

    def start_early(self) -> None:
        """Start the CSV helper now, if not started yet (once per process)."""
        if self.early is not None:
            early, self.early = self.early, None
            try:
                early()
            except Exception:  # no helper: the import compiles everything itself
                pass

    def on_start(self, ev: Any) -> None:
        if _module(ev.data["dispatcher"]) == EARLY_HELPER_FROM:
            self.start_early()
        if self.said or not ours(ev.data["dispatcher"]):
            return
        with self.lock:
            self.running += 1
            if self.timer is None:
                self.timer = self.make_timer(self.after, self.check)
                self.timer.daemon = True
                self.timer.start()

    def on_end(self, ev: Any) -> None:
        if not ours(ev.data["dispatcher"]):
            return
        with self.lock:
            self.running = max(self.running - 1, 0)

    def check(self) -> None:
        """The timer's end: say so if one of our compiles is still running."""
        with self.lock:
            self.timer = None  # the next compile starts a new count
            if self.said or not self.running:
                return
            self.said = True
        self.say()


#: Calls of at most this many values (fields, rows) may take a numpy or Python version of a
#: kernel that is not compiled yet (:func:`would_compile`, :func:`.csv.jit.in_python`), and so
#: may the blocks of a CSV file of at most this many rows (:func:`.csv.jit.in_numpy`): a new
#: user's first, small, file and table cost no compile for them. ``colvault warmup`` sets it
#: to 0, to compile every kernel.
SMALL = 32_768

_cold: dict[tuple[int, tuple[Any, ...]], bool] = {}


def cached_index(py_func: Any, sig: Any = None) -> bool | None:
    """Whether Numba's on-disk cache holds ``py_func`` compiled for ``sig`` on this machine
    (``sig`` None: for any signature), read from the cache's index, nothing loaded; None when
    that cannot be told (Numba's private cache API changed). The one place that reads it."""
    try:
        from numba.core.caching import FunctionCache
        from numba.core.registry import cpu_target

        cache = FunctionCache(py_func)
        index = cache._cache_file._load_index()
        if sig is None:
            return bool(index)
        return cache._index_key(sig, cpu_target.target_context.codegen()) in index
    except Exception:
        return None


def would_compile(dispatcher: Any, *args: Any) -> bool:
    """Whether calling ``dispatcher`` with ``args`` compiles it first: not compiled in this
    process for their types, nor in Numba's cache (False when that cannot be told). An answer
    True is kept for the process: small calls then stay on their numpy version."""
    overloads = getattr(dispatcher, "overloads", None)
    if overloads is None:  # NUMBA_DISABLE_JIT: a plain function
        return False
    sig = tuple(dispatcher.typeof_pyval(a) for a in args)
    if sig in overloads:
        return False
    key = (id(dispatcher), sig)
    cold = _cold.get(key)
    if cold is None:
        cold = cached_index(dispatcher.py_func, sig) is False  # unknown: take the kernel
        _cold[key] = cold
    return cold


#: Values a process may give the numpy version of one cold kernel (zone maps, stats passes,
#: a query condition) before it compiles the kernel after all: a new user's first, small, work
#: costs no compile, and work that repeats (a notebook's loop) soon runs at the kernel's speed.
NUMPY_BUDGET = 4_000_000

_budgets: dict[Any, int] = {}
_budget_lock = threading.Lock()


def spend_numpy(key: Any, n: int) -> bool:
    """Whether ``n`` more values fit the numpy budget of kernel ``key`` in this process (then
    they are spent), else False: the caller compiles the kernel."""
    with _budget_lock:
        left = _budgets.get(key, NUMPY_BUDGET)
        if n > left:
            _budgets[key] = 0
            return False
        _budgets[key] = left - n
        return True


def has_cache(dispatcher: Any) -> bool:
    """Whether Numba's cache holds any compiled version of ``dispatcher`` (or this process
    compiled one): generated kernels, whose argument types vary by chunk, are told cold this
    way (True when that cannot be told)."""
    if getattr(dispatcher, "overloads", None) is None or dispatcher.overloads:
        return True
    return cached_index(dispatcher.py_func) is not False  # unknown: take the kernel


_watching: CompileNotice | None = None
_watch_lock = threading.Lock()


def cold_start(module: str) -> None:
    """A kernel of ``module`` was not compiled, a numpy version taken instead: for the early
    CSV helper this is the same sign as its compile (a session writing a table on a fresh
    machine)."""
    if _watching is not None and module == EARLY_HELPER_FROM:
        _watching.start_early()


def watch() -> CompileNotice:
    """Listen to Numba's compile events in this process (once; later calls are free)."""
    global _watching
    with _watch_lock:
        if _watching is None:
            _watching = CompileNotice()
            event.register("numba:compile", _watching)
        return _watching
