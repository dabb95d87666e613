"""The I/O seam: every durability-relevant operation of a commit passes through here.

Segment creation and appends, ``fsync`` of files and directories, directory creation, the link
that puts a new catalog in place and the sqlite ``COMMIT`` (the commit point) call the active
:class:`Seam`. Tests install a subclass that records what was made durable, injects failures,
or simulates a power cut at any step. Nothing else in the engine touches these system calls
directly.

``COLVAULT_FSYNC=0`` turns fsync off for tests that are not about durability; never the default.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast


def _fsync_enabled() -> bool:
    return os.environ.get("COLVAULT_FSYNC", "1") != "0"


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` through ctypes (Python's ``os`` lacks it), else None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], fn)


_SYNC_FILE_RANGE = _sync_file_range() if sys.platform.startswith("linux") else None
_SYNC_FILE_RANGE_WRITE = 2


class Seam:
    """Real I/O. Subclass and :func:`install` to observe or break it."""

    def create_file(self, path: str) -> int:
        """Create ``path`` exclusively (``O_EXCL``) and return a read-write descriptor."""
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def mkdir(self, path: str) -> None:
        os.mkdir(path)

    def link(self, src: str, dst: str) -> None:
        """Give ``src`` the second name ``dst``; ``FileExistsError`` if ``dst`` exists."""
        os.link(src, dst)

    def write(self, fd: int, data: bytes | memoryview, offset: int, path: str) -> None:
        """Write all of ``data`` at ``offset`` (segments are append-only: offset is the end)."""
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view = view[n:]
            offset += n

    def truncate(self, fd: int, size: int, path: str) -> None:
        os.ftruncate(fd, size)

    def fsync(self, fd: int, path: str) -> None:
        if _fsync_enabled():
            os.fsync(fd)

    def start_writeback(self, fd: int, offset: int, length: int) -> None:
        """Have the kernel start writing ``[offset, offset + length)`` to disk without waiting:
        the commit's fsync then finds most of an import's bytes already written. A hint only;
        durability still comes from :meth:`fsync`."""
        if _SYNC_FILE_RANGE is not None and _fsync_enabled():
            _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)

    def fsync_dir(self, path: str) -> None:
        if not _fsync_enabled():
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def commit(self, conn: sqlite3.Connection) -> None:
        """The commit point: the sqlite transaction that names the new chunks."""
        conn.execute("COMMIT")


_active: Seam = Seam()


def seam() -> Seam:
    """The seam in force."""
    return _active


@contextmanager
def installed(new: Seam) -> Iterator[Seam]:
    """Use ``new`` for all I/O inside the ``with`` block (tests)."""
    global _active
    old, _active = _active, new
    try:
        yield new
    finally:
        _active = old
