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
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Inside, the cyclic collector does not run (reference counting still frees)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
