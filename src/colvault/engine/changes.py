"""A store's change counter: one 8-byte word in shared memory that every catalog write moves.

A read whose snapshot is current needs no catalog statement: each process caches the node
index and the manifests it read, stamped with the counter's value read before them, and trusts
them while the counter still shows that value (one load from a mapping, well under a
microsecond; ``PRAGMA data_version`` would be a statement per call).

The word is the first 8 bytes of the store's ``LOCK`` file, which every open store holds open
read-write and ``mode="w"`` never deletes. It works like a sequence lock. A writer, inside its
catalog write transaction, makes it odd (a value no reader stamped) before the COMMIT and even
after it, whether the COMMIT landed or not. A reader reads the word, then the catalog, and
stamps what it read with that value only if it was even: a commit landing meanwhile moves the
word past the stamp, so the next call reads the catalog again. A writer that dies between the
two moves leaves the word odd: readers then read the catalog on every call, as without the
counter, until the next write makes it even. Where the word cannot be mapped (a read-only
file system), :meth:`ChangeCounter.value` is None and every call reads the catalog.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading

_WORD = struct.Struct("<Q")
#: Moves are read-modify-writes, made one at a time: by threads of this process under this
#: lock, by processes under a POSIX lock on a byte behind the word (``flock`` on the file, the
#: store lock, is separate from these).
_MOVING = threading.Lock()


class ChangeCounter:
    """The counter of the store whose ``LOCK`` file is open at ``fd`` (not closed here)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._map: mmap.mmap | None = None
        try:
            if os.fstat(fd).st_size < _WORD.size:
                os.ftruncate(fd, _WORD.size)  # never shrinks: others may have it mapped
            self._map = mmap.mmap(fd, _WORD.size)
        except (OSError, ValueError):  # a read-only file system: no counter, always read
            self._map = None

    def value(self) -> int | None:
        """The counter now, or None when a stamp must not be trusted (a write in progress or
        cut short, or no counter)."""
        m = self._map
        if m is None:
            return None
        v: int = _WORD.unpack_from(m)[0]
        return None if v & 1 else v

    def begin(self) -> None:
        """Before a write transaction's COMMIT: no reader stamps anything until :meth:`end`."""
        self._move(odd=True)

    def end(self) -> None:
        """After the COMMIT (landed or not): a value no reader has stamped yet."""
        self._move(odd=False)

    def _move(self, odd: bool) -> None:
        m = self._map
        if m is None:
            return
        with _MOVING:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, _WORD.size)
            try:
                v = _WORD.unpack_from(m)[0]
                _WORD.pack_into(m, 0, v + 1 if (v & 1) != odd else v + 2)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, _WORD.size)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
