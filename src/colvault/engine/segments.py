"""Append-only segment files: one writer each, read through mmap (sealed) or pread (active).

A segment is ``data/<node-id>/<column-id>/<n>.seg``: an 8-byte magic header, then compressed chunks
back to back. The manifest in the catalog is the only index; bytes that no manifest row names are
an unreferenced tail and are never read. A writer creates its file with ``O_EXCL`` and holds an
exclusive ``flock`` on it for as long as it may still append; recovery truncates tails only in
segments whose lock it can take (ARCHITECTURE.md "Commit protocol").
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .seam import seam

HEADER = b"CVSEG01\n"
#: A segment rolls over once it holds this many bytes.
SEGMENT_BYTES = 256 << 20
#: Appends start the disk writes of every this many new bytes, so that a large commit's fsync
#: mostly waits for writes already under way (the commit of a 2 M-row CSV import: 14.9 -> 8.5 ms).
WRITEBACK_BYTES = 1 << 20


class SegmentWriter:
    """The single writer of one segment file, holding its ``flock`` until it is released."""

    def __init__(self, root: str, rel: str, fd: int) -> None:
        self.root = root
        self.rel = rel  # path relative to the store root: what the manifest records
        self.fd = fd
        self.end = len(HEADER)
        self.committed_end = len(HEADER)
        self.written_back = 0  # bytes whose writeback has been started (see append)
        self.dirty = False
        self.broken = False

    @classmethod
    def create(cls, root: str, col_dir: str, new_dirs: set[str]) -> SegmentWriter:
        """Create the next free segment of a column directory (relative to ``root``)."""
        absdir = os.path.join(root, col_dir)
        _makedirs(root, col_dir, new_dirs)
        names = [f for f in os.listdir(absdir) if f.endswith(".seg")]
        n = max((int(f[:-4]) for f in names if f[:-4].isdigit()), default=-1) + 1
        while True:
            rel = f"{col_dir}/{n}.seg"
            try:
                fd = seam().create_file(os.path.join(root, rel))
                break
            except FileExistsError:
                n += 1
        writer = cls(root, rel, fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seam().write(fd, HEADER, 0, writer.abspath)
        except BaseException:
            writer.close()
            raise
        writer.dirty = True
        new_dirs.add(absdir)
        return writer

    @property
    def abspath(self) -> str:
        return os.path.join(self.root, self.rel)

    def append(self, payload: bytes | memoryview) -> int:
        """Write a chunk at the end; return its offset."""
        offset = self.end
        try:
            seam().write(self.fd, payload, offset, self.abspath)
        except OSError:
            self.broken = True
            raise
        self.end += len(payload)
        self.dirty = True
        if self.end - self.written_back >= WRITEBACK_BYTES:
            seam().start_writeback(self.fd, self.written_back, self.end - self.written_back)
            self.written_back = self.end
        return offset

    def sync(self) -> None:
        if self.dirty:
            try:
                seam().fsync(self.fd, self.abspath)
            except OSError:
                # After a failed fsync the kernel may have dropped the pages: never trust this file.
                self.broken = True
                raise
            self.dirty = False

    def mark_committed(self) -> None:
        self.committed_end = self.end

    def rollback(self) -> None:
        """Drop bytes written since the last commit (we hold the lock: nobody else writes here)."""
        if self.end != self.committed_end and not self.broken:
            seam().truncate(self.fd, self.committed_end, self.abspath)
            self.end = self.committed_end

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1


class ColumnSegments:
    """The active segment of one column plus rolled-over ones still awaiting their commit."""

    def __init__(self, root: str, col_dir: str, limit: int) -> None:
        self.root = root
        self.col_dir = col_dir
        self.limit = limit
        self.active: SegmentWriter | None = None
        self.full: list[SegmentWriter] = []

    def all(self) -> list[SegmentWriter]:
        return self.full + ([self.active] if self.active else [])

    def append(self, payload: bytes | memoryview, new_dirs: set[str]) -> tuple[str, int]:
        if self.active is None or self.active.broken:
            if self.active is not None:
                self.full.append(self.active)
            self.active = SegmentWriter.create(self.root, self.col_dir, new_dirs)
        seg = self.active
        offset = seg.append(payload)
        if seg.end >= self.limit:
            self.full.append(seg)
            self.active = None
        return seg.rel, offset


def _makedirs(root: str, rel: str, new_dirs: set[str]) -> None:
    """Create the missing directories of ``rel``; remember parents that need an fsync."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        path = os.path.join(root, *parts[:i])
        if not os.path.isdir(path):
            try:
                seam().mkdir(path)
            except FileExistsError:
                continue
            new_dirs.add(os.path.dirname(path))


def try_lock(path: str) -> int | None:
    """Open ``path`` and take its flock without waiting; ``None`` if a live writer holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


class SegmentReader:
    """Read chunk bytes: sealed segments through one ``mmap`` each, active ones with ``pread``.

    Sealed segments never change, so their mapping stays valid; an active segment only grows, so a
    cached descriptor stays valid. Before each read the file size is checked, so a truncated file
    yields ``None`` (the caller raises ``ChecksumError``) instead of SIGBUS through the mapping.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._maps: dict[str, mmap.mmap] = {}

    def _fd(self, rel: str) -> int:
        fd = self._fds.get(rel)
        if fd is None:
            fd = os.open(os.path.join(self.root, rel), os.O_RDONLY | os.O_CLOEXEC)
            with self._lock:
                if rel in self._fds:
                    os.close(fd)
                    fd = self._fds[rel]
                else:
                    self._fds[rel] = fd
        return fd

    def _mapping(self, rel: str, fd: int) -> mmap.mmap:
        m = self._maps.get(rel)
        if m is None:
            with self._lock:
                m = self._maps.get(rel)
                if m is None:
                    m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                    self._maps[rel] = m
        return m

    def view(self, rel: str, offset: int, length: int) -> mmap.mmap | None:
        """The mapping of a sealed segment if it holds ``[offset, offset + length)``, for
        zero-copy reads; ``None`` if the file is missing or too short."""
        try:
            fd = self._fd(rel)
        except FileNotFoundError:
            return None
        if offset + length > os.fstat(fd).st_size:
            return None
        m = self._mapping(rel, fd)
        return m if offset + length <= len(m) else None

    def mapped(self, rel: str) -> np.ndarray | None:
        """A sealed segment's mapping as a read-only uint8 array, cut to the file's present
        size, for jitted reads by address (one size check for many chunks); None if the file
        is missing. Holding the array keeps the mapping open: ``close`` leaves it to the GC."""
        try:
            fd = self._fd(rel)
        except FileNotFoundError:
            return None
        size = os.fstat(fd).st_size
        if size == 0:
            return np.empty(0, np.uint8)
        m = self._mapping(rel, fd)
        return np.frombuffer(m, np.uint8, min(size, len(m)))

    @contextmanager
    def chunk(
        self, rel: str, sealed: bool, offset: int, length: int
    ) -> Iterator[bytes | memoryview | None]:
        """Yield the chunk's bytes, or ``None`` when the file is missing or too short."""
        try:
            fd = self._fd(rel)
        except FileNotFoundError:
            yield None
            return
        if sealed:
            if offset + length > os.fstat(fd).st_size:
                yield None
                return
            m = self._mapping(rel, fd)
            if offset + length > len(m):
                yield None
                return
            view = memoryview(m)[offset : offset + length]
            try:
                yield view
            finally:
                view.release()
        else:
            data = os.pread(fd, length, offset)
            yield data if len(data) == length else None

    def close(self) -> None:
        with self._lock:
            for m in self._maps.values():
                try:
                    m.close()
                except BufferError:  # a caller still holds a view; the GC closes it later
                    pass
            for fd in self._fds.values():
                os.close(fd)
            self._maps.clear()
            self._fds.clear()
