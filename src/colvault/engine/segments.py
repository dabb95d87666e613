"""Append-only segment files: one writer each, read through mmap (sealed) or pread (active).

A segment is ``data/<n>.seg``: an 8-byte magic header, then encoded chunks of any
column of any node back to back (each writer's chunks in runs per column, so that scanning one
column reads long sequential stretches). The manifest in the catalog is the only index; bytes
that no manifest row names are an unreferenced tail and are never read. A writer creates its
file with ``O_EXCL`` and holds an exclusive ``flock`` on it for as long as it may still append;
recovery truncates tails only in segments whose lock it can take (ARCHITECTURE.md "Commit
protocol").
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from .seam import seam

HEADER = b"CVSEG01\n"
#: What reads of mapped segments tell the kernel (None where the platform lacks it).
_RANDOM = getattr(mmap, "MADV_RANDOM", None)
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)
#: The directory of the segment files, relative to the store root.
DATA = "data"
#: A segment rolls over once it holds this many bytes.
SEGMENT_BYTES = 256 << 20
#: Chunks whose crc a reader remembers having checked (``SegmentReader.verified``).
VERIFIED_KEPT = 1 << 16
#: Appends start the disk writes of every this many new bytes, so that a large commit's fsync
#: mostly waits for writes already under way (the commit of a 2 M-row CSV import: 14.9 -> 8.5 ms).
WRITEBACK_BYTES = 1 << 20
#: Chunks smaller than this together are joined into one write (a small table's columns: one
#: system call instead of one each); larger ones are written as they are, not copied (joining
#: the 165-391 KB chunks of a bulk append cost it 15%).
JOIN_BYTES = 64 << 10
#: Bytes of small appends a writer holds, while its set holds them (a commit's short chunks,
#: see ``SegmentSet.holding``), before it writes them in one call.
HELD_BYTES = 1 << 20


class SegmentWriter:
    """The single writer of one segment file, holding its ``flock`` until it is released."""

    def __init__(self, root: str, rel: str, fd: int) -> None:
        self.root = root
        self.rel = rel  # path relative to the store root: what the manifest records
        self.abspath = os.path.join(root, rel)
        self.fd = fd
        self.end = len(HEADER)  # the next append's offset (reserved room included)
        self.committed_end = len(HEADER)
        self.written_back = 0  # bytes whose writeback has been started (see append)
        self.dirty = False
        self.broken = False
        #: small appends not written yet (see ``append``'s ``hold``), from offset ``held_at``
        self.held = bytearray()
        self.held_at = 0

    @classmethod
    def create(cls, root: str, new_dirs: set[str]) -> SegmentWriter:
        """Create the next free segment file ``data/<n>.seg`` (numbered, so that a store's
        files read in the order they were written)."""
        absdir = os.path.join(root, DATA)
        if not os.path.isdir(absdir):
            try:
                seam().mkdir(absdir)
                new_dirs.add(root)
            except FileExistsError:
                pass
        names = [f[:-4] for f in os.listdir(absdir) if f.endswith(".seg")]
        n = max((int(f) for f in names if f.isdigit()), default=-1) + 1
        while True:  # another writer may take the same number: O_EXCL tells, try the next
            rel = f"{DATA}/{n:06d}.seg"
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

    def append(self, payload: bytes | memoryview, reserve: int = 0, hold: bool = False) -> int:
        """Write a chunk at the end and return its offset; with ``reserve``, the next append
        lands that many bytes after the offset, leaving room for the chunk to grow in place.
        ``hold``: a small chunk without room may be copied and written later, with the ones
        after it, in one call (by :meth:`flush`, which :meth:`sync` calls first)."""
        offset = self.end
        if hold and reserve <= len(payload) < JOIN_BYTES:
            if not self.held:
                self.held_at = offset
            self.held += payload
            self.dirty = True
            self.end = offset + len(payload)
            if len(self.held) >= HELD_BYTES:
                self.flush()
            return offset
        self.flush()
        self._write(offset, payload)
        self.end = offset + max(len(payload), reserve)
        self._start_writeback()
        return offset

    def flush(self) -> None:
        """Write the held appends."""
        if self.held:
            self._write(self.held_at, memoryview(self.held))
            self.held = bytearray()
            self._start_writeback()

    def _start_writeback(self) -> None:
        if self.end - self.written_back >= WRITEBACK_BYTES:
            seam().start_writeback(self.fd, self.written_back, self.end - self.written_back)
            self.written_back = self.end

    def write_at(self, offset: int, payload: bytes | memoryview) -> None:
        """Write at ``offset``: room this writer reserved (a growing chunk)."""
        if self.held and offset + len(payload) > self.held_at:
            self.flush()
        self._write(offset, payload)

    def _write(self, offset: int, payload: bytes | memoryview) -> None:
        try:
            seam().write(self.fd, payload, offset, self.abspath)
        except OSError:
            self.broken = True
            raise
        self.dirty = True

    def sync(self) -> None:
        self.flush()
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
        self.held = bytearray()
        if self.end != self.committed_end and not self.broken:
            seam().truncate(self.fd, self.committed_end, self.abspath)
            self.end = self.committed_end

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1


class SegmentSet:
    """The segments one open store writes: the active one, plus those that rolled over and
    await the commit that covers their last chunk. Every table's chunks go here, whatever its
    column, so files and descriptors grow with writers, not with nodes times columns."""

    def __init__(self, root: str, limit: int = SEGMENT_BYTES) -> None:
        self.root = root
        self.limit = limit
        self.active: SegmentWriter | None = None
        self.full: list[SegmentWriter] = []
        #: directories in which a file or directory was made since the last commit
        self.new_dirs: set[str] = set()
        #: every table's writer appends here: two threads appending to two tables must not be
        #: given the same offset (with a file per column they never shared one)
        self._lock = threading.Lock()
        self._hold = False

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Inside: small appends are held and written together (a commit of 10,000 small
        tables made 10,000 writes of their short chunks: 7 us each), all of them when it ends
        without an error. The bytes of an error's block are dropped with the rest of the
        pending work."""
        self._hold = True
        try:
            yield
        finally:
            self._hold = False
        with self._lock:
            for seg in self.all():
                seg.flush()

    def all(self) -> list[SegmentWriter]:
        return self.full + ([self.active] if self.active else [])

    def append(self, payload: bytes | memoryview, reserve: int = 0) -> tuple[str, int]:
        """Write a chunk (``reserve``: see :meth:`SegmentWriter.append`); (segment, offset)."""
        return self.append_run([payload], reserve)[0]

    def append_run(
        self, payloads: list[bytes | memoryview], reserve_last: int = 0
    ) -> list[tuple[str, int]]:
        """Write chunks back to back (one column's run: its scans stay sequential), small ones
        (below ``JOIN_BYTES`` each) joined into one write and large ones written as they are
        (joining them would copy every byte once more), with ``reserve_last`` bytes of room
        from the last one's offset (see :meth:`SegmentWriter.append`); (segment, offset) of
        each."""
        out: list[tuple[str, int]] = []
        with self._lock:  # a run lies back to back: no other writer's chunk in between
            self._append_run(payloads, reserve_last, out)
        return out

    def _append_run(
        self, payloads: list[bytes | memoryview], reserve_last: int, out: list[tuple[str, int]]
    ) -> None:
        i = 0
        while i < len(payloads):
            seg = self._writable()
            j, size = i + 1, len(payloads[i])  # joined up to JOIN_BYTES, and not past a rollover
            while (
                j < len(payloads)
                and size + len(payloads[j]) <= JOIN_BYTES
                and seg.end + size < self.limit
            ):
                size += len(payloads[j])
                j += 1
            reserve = size - len(payloads[j - 1]) + reserve_last if j == len(payloads) else 0
            joined = b"".join(payloads[i:j]) if j - i > 1 else payloads[i]
            offset = seg.append(joined, reserve, self._hold)
            for p in payloads[i:j]:
                out.append((seg.rel, offset))
                offset += len(p)
            self._roll(seg)
            i = j

    def _writable(self) -> SegmentWriter:
        if self.active is None or self.active.broken:
            if self.active is not None:
                self.full.append(self.active)
            self.active = SegmentWriter.create(self.root, self.new_dirs)
        return self.active

    def _roll(self, seg: SegmentWriter) -> None:
        if seg.end >= self.limit:
            self.full.append(seg)
            self.active = None

    def growable(self, rel: str) -> SegmentWriter | None:
        """The active segment if it is ``rel``: only there may reserved room be written (one
        that rolled over is sealed at the commit, and readers map it as final)."""
        seg = self.active
        return seg if seg is not None and seg.rel == rel and not seg.broken else None

    @property
    def has_work(self) -> bool:
        """Rolled-over segments wait for a commit to record them as sealed."""
        return bool(self.full)

    def sync_jobs(self) -> list[Callable[[], None]]:
        """One fsync per segment file with unsynced writes (the store runs them together)."""
        return [seg.sync for seg in self.all() if seg.dirty]

    def register(self, conn: sqlite3.Connection, seal: bool) -> None:
        """Inside the commit: record the segments written to, sealing those that are done."""
        for seg in self.all():
            sealed = int(seg in self.full or seal)
            if seg.end > seg.committed_end or (sealed and seg.committed_end > len(HEADER)):
                conn.execute(
                    "INSERT INTO segments(path, sealed) VALUES (?, ?) "
                    "ON CONFLICT(path) DO UPDATE SET sealed = excluded.sealed",
                    (seg.rel, sealed),
                )

    def after_commit(self, seal: bool) -> None:
        """The commit landed: its bytes are committed; release the segments that are done."""
        for seg in self.all():
            seg.mark_committed()
        for seg in self.all() if seal else self.full:
            seg.close()
        self.full = []
        if seal:
            self.active = None
        self.new_dirs.clear()

    def rollback(self) -> None:
        """Drop every byte written since the last commit. Directories made stay, and so does
        ``new_dirs``: the next commit that uses them must still make their entries durable."""
        for seg in self.all():
            try:
                seg.rollback()
            except OSError:
                seg.broken = True
        for seg in self.full:
            seg.close()
        self.full = []
        if self.active is not None and self.active.broken:
            self.active.close()
            self.active = None

    def close(self) -> None:
        for seg in self.all():
            seg.close()
        self.full = []
        self.active = None


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

    A segment holds runs of many columns, so the kernel's read-around on a page fault (the
    device's read-ahead, 8 MiB here, centred on the fault) would fetch other columns' bytes: a
    cold scan of one column read 2-14 times its bytes. Mappings are therefore ``MADV_RANDOM``
    (no read-around) and every read asks for exactly its chunk first (:meth:`prefetch`).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._maps: dict[str, mmap.mmap] = {}
        #: chunks (segment, offset, length, crc) whose crc matched once (see ``verified``)
        self._verified: set[tuple[str, int, int, int]] = set()
        #: the address of each mapping's first byte (for C calls on known chunks)
        self._bases: dict[str, int] = {}

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
                    if _RANDOM is not None:
                        m.madvise(_RANDOM)
                    self._maps[rel] = m
        return m

    def verified(self, chunk: tuple[str, int, int, int]) -> bool:
        """Whether this reader checked the crc of ``chunk`` (segment, offset, length, crc)
        already. A chunk's bytes never change while a manifest row names them, and once read
        they are served from the page cache: checking them again on every read (a point read
        of 8 bytes paid the crc of a whole chunk) would guard against nothing but memory."""
        return chunk in self._verified

    def known_bytes(self, chunk: tuple[str, int, int, int]) -> tuple[memoryview, int] | None:
        """The bytes of a chunk of a sealed segment this reader checked already (see
        :meth:`verified`), straight from the mapping, and their address (valid while the view
        is held: a mapping with a view open is not unmapped); None when it did not."""
        if chunk not in self._verified:
            return None
        rel = chunk[0]
        m = self._maps.get(rel)
        if m is None or chunk[1] + chunk[2] > len(m):
            return None
        view = memoryview(m)[chunk[1] : chunk[1] + chunk[2]]
        base = self._bases.get(rel)
        if base is None:
            base = self._bases[rel] = np.frombuffer(m, np.uint8, 1).ctypes.data
        return view, base + chunk[1]

    def mark_verified(self, chunk: tuple[str, int, int, int]) -> None:
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()  # bounded: checked again from scratch
        self._verified.add(chunk)

    def prefetch(self, rel: str, offset: int, length: int) -> None:
        """Start reading ``[offset, offset + length)`` of a segment into the page cache, and no
        more (see the class docstring); a no-op for bytes cached already."""
        if _WILLNEED is not None and length:
            try:
                os.posix_fadvise(self._fd(rel), offset, length, _WILLNEED)
            except OSError:  # a hint only; a missing file is reported by the read
                pass

    def view(self, rel: str, offset: int, length: int) -> mmap.mmap | None:
        """The mapping of a sealed segment if it holds ``[offset, offset + length)``, for
        zero-copy reads; ``None`` if the file is missing or too short."""
        try:
            fd = self._fd(rel)
        except FileNotFoundError:
            return None
        if offset + length > os.fstat(fd).st_size:
            return None
        self.prefetch(rel, offset, length)
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
        self, rel: str, sealed: bool, offset: int, length: int, known: bool = False
    ) -> Iterator[bytes | memoryview | None]:
        """Yield the chunk's bytes, or ``None`` when the file is missing or too short (or its
        name, from a damaged catalog, is no file name: a NUL in it). ``known``: this reader
        read and checked the chunk before (:meth:`verified`), so the file holds it (a sealed
        segment is never cut while a store is open) and its pages were read: neither the
        file's size nor a read-ahead is asked for again."""
        try:
            fd = self._fd(rel)
        except (FileNotFoundError, ValueError):
            yield None
            return
        if sealed:
            if not known and offset + length > os.fstat(fd).st_size:
                yield None
                return
            m = self._mapping(rel, fd)
            if offset + length > len(m):
                yield None
                return
            if not known:
                self.prefetch(rel, offset, length)
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
            self._bases.clear()
            self._fds.clear()
