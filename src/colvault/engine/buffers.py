"""Per-thread scratch buffers: chunk-sized memory reused from one chunk to the next.

A fresh 1 MiB ``np.empty`` per chunk and column costs page faults and cache misses each time
(on this VM a first touch costs microseconds per page), and the faults of two threads contend
for the process's memory map. Buffers here belong to the calling thread and are keyed by a
*slot* name, so two columns decoded for the same chunk never share memory. Whatever lives in a
scratch buffer is valid only until the same thread asks for the same slot again: callers copy
out anything they return.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable

import numpy as np
from numpy.typing import DTypeLike

_local = threading.local()
_MIN_BYTES = 1 << 20


def scratch_array(slot: Hashable, dtype: DTypeLike, shape: int | tuple[int, ...]) -> np.ndarray:
    """An uninitialised array of ``shape`` in this thread's buffer for ``slot``.

    >>> a = scratch_array("doc", np.int64, 4)
    >>> b = scratch_array("doc", np.int64, 2)
    >>> np.shares_memory(a, b)
    True
    """
    dt = np.dtype(dtype)
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = dt.itemsize * math.prod(dims)
    pool: dict[Hashable, np.ndarray] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    buf = pool.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = pool[slot] = np.empty(max(nbytes, _MIN_BYTES), np.uint8)
    return buf[:nbytes].view(dt).reshape(dims)
