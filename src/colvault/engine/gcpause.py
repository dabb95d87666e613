"""Pausing Python's cyclic garbage collector around bulk work that makes no cycles.

A commit of many small tables allocates tens of thousands of tuples and records, and each
full collection the allocations trigger walks every object of the process: with Numba
loaded (90,000 objects before the store's own), a commit of 10,000 small tables spent
0.15-0.3 s of its ~1 s in the collector, for no garbage. Mercurial's ``util.nogc`` does the
same for its bulk reads. The collector's state is put back as it was (a caller that turned
it off keeps it off), and the next allocation after the pause may collect as usual.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Pauses under way in this process (commits in several threads nest), and whether the
#: collector ran before the first of them.
_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Inside, the cyclic collector does not run (reference counting still frees); it runs
    again when the last pause of the process ends, if it ran before the first."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def _forked() -> None:
    """A child forked during a pause starts with no pause (and the collector as it was)."""
    global _lock, _depth
    _lock = threading.Lock()
    if _depth and _was_enabled:
        gc.enable()
    _depth = 0


os.register_at_fork(after_in_child=_forked)
