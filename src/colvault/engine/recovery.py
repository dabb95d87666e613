"""Recovery on opening for writing: cut unreferenced tails of segments whose writer is gone.

A crash between writing chunks and committing them leaves bytes no manifest row names. They are
harmless (never read) but waste space, so a writable open truncates them — only in segments whose
``flock`` it can take (no live writer), and only after taking it does it read the valid end from
the manifest (retired rows included), in a read transaction begun after the lock was taken, so a
commit that landed just before cannot be cut. (A snapshot taken before the lock could predate the
last commit of the writer that held it, a stage's or an append's: its bytes would then look
unreferenced, and be cut.)

A damaged catalog must not make recovery cut committed bytes: a tail is cut only where the last
chunk the manifest names there has the crc recorded for it, a segment the catalog lists as
committed is never cut to nothing when no chunk row names it, and nothing is cut unless sqlite's
integrity check of the ``chunks`` and ``segments`` tables passes. That last check is what
catches a flipped byte in a row's text (a segment's path, the segment of the chunk that ends
last), which leaves a valid row naming something else: the row then disagrees with its index.
It runs only when there is a tail to cut, i.e. after a crash.
"""

from __future__ import annotations

import glob
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from . import leases
from .checksum import crc32
from .segments import DATA, HEADER, try_lock


def segment_files(root: str) -> list[str]:
    """All segment files, as paths relative to the store root (this version writes them all
    in ``data/``; the manifest names any path below the root, so look below ``data/`` too)."""
    found = glob.glob(os.path.join(root, DATA, "**", "*.seg"), recursive=True)
    return sorted(os.path.relpath(p, root) for p in found)


def _trusted_end(conn: sqlite3.Connection, rel: str, fd: int, size: int, known: bool) -> int | None:
    """Where the committed bytes of a segment of ``size`` bytes end, or None when the catalog's
    word on it does not check out (then nothing is cut). The chunk ending last is read only
    when there is a tail to cut."""
    last = conn.execute(
        "SELECT offset, length, crc32 FROM chunks WHERE segment = ? "
        "ORDER BY offset + length DESC LIMIT 1",
        (rel,),
    ).fetchone()  # retired rows included, as the module docstring says
    if last is None:
        return None if known else len(HEADER)
    offset, length, crc = last
    if size <= offset + length:
        return offset + length
    data = os.pread(fd, length, offset)
    return offset + length if len(data) == length and crc32(data) == crc else None


def _tables_intact(conn: sqlite3.Connection) -> bool:
    """Whether sqlite finds the manifest's tables and their indexes consistent."""
    for table in ("chunks", "segments"):
        rows = conn.execute(f"PRAGMA integrity_check({table})").fetchall()
        if rows != [("ok",)]:
            return False
    return True


def recover(
    root: str, read: Callable[[], AbstractContextManager[sqlite3.Connection]]
) -> list[tuple[str, int, int]]:
    """Truncate abandoned tails; return (segment, old size, new size) for each one cut.
    ``read()`` begins a read transaction on the catalog (one per segment examined)."""
    with read() as conn:  # a segment sealed in this snapshot stays sealed: skipped
        sealed = dict(conn.execute("SELECT path, sealed FROM segments"))
    hold: set[str] | None = set()
    looked = False  # leases are read only when a segment the catalog does not know is met
    cut = []
    intact: bool | None = None  # checked once, before the first cut
    for rel in segment_files(root):
        if sealed.get(rel):
            continue
        if rel not in sealed and not looked:  # maybe an old segment compact() kept for a lease
            hold, looked = leases.held(root), True
        if hold is None or rel in hold:
            continue
        fd = try_lock(os.path.join(root, rel))
        if fd is None:
            continue
        try:
            with read() as conn:  # begun after the lock: every commit of its writer is in it
                row = conn.execute("SELECT sealed FROM segments WHERE path = ?", (rel,)).fetchone()
                if row is not None and row[0]:
                    continue
                size = os.fstat(fd).st_size
                end = _trusted_end(conn, rel, fd, size, row is not None)
                if end is None or size <= end:
                    continue
                if intact is None:
                    intact = _tables_intact(conn)
            if intact:
                os.ftruncate(fd, end)
                os.fsync(fd)
                cut.append((rel, size, end))
        finally:
            os.close(fd)
    return cut
