"""``store.compact()``: reclaim retired and unreferenced bytes, re-cut tables into full chunks.

Segments are append-only, so space comes back only by copying. A table is rewritten when any of
its segments holds bytes no live chunk names (retired by merges, removals or tail growth, or
left by a crashed writer) or when it has short chunks that a rewrite would fill; every other
table is left alone. The store is held exclusively meanwhile (``LockError`` at once if another
process has it open). Crash safety needs no log: new chunks are written and fsynced to new
segment files, one sqlite transaction swaps the manifest, and only then are the old files
deleted. A crash before the commit leaves the old store plus unreferenced new files, a crash
after it the new store plus unreferenced old files; either way the next ``compact()`` deletes
the files no chunk names. Files a lease holds (:mod:`.leases`: a Dask graph still reading them)
are kept until it expires.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ColvaultError, CommitError, LockError
from . import leases
from .catalog import remove_abandoned_catalogs, what_failed
from .nodes import DataNode
from .reading import ChunkSource
from .recovery import segment_files
from .seam import seam
from .segments import HEADER, SegmentReader
from .writer import TableWriter

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class CompactReport:
    """What ``compact()`` did: bytes of segment files before and after, nodes rewritten."""

    bytes_before: int
    bytes_after: int
    rewritten: tuple[str, ...]
    files_removed: int
    #: Old segment files kept because a lease holds them (:mod:`.leases`); a later
    #: ``compact()`` deletes them once the lease has expired.
    files_leased: int = 0

    def __str__(self) -> str:
        return (
            f"{self.bytes_before:,} -> {self.bytes_after:,} bytes of segments; "
            f"{len(self.rewritten)} node(s) rewritten, {self.files_removed} file(s) removed"
            + (f", {self.files_leased} kept for leases" if self.files_leased else "")
        )


def _segment_sizes(root: str) -> dict[str, int]:
    return {rel: os.path.getsize(os.path.join(root, rel)) for rel in segment_files(root)}


def _needs_rewrite(node: DataNode, sizes: dict[str, int], live: dict[str, int]) -> bool:
    state = node._state()
    refs = next(iter(state.columns.values()), ())
    if any(r.nrows < node._schema.chunk_rows for r in refs[:-1]):
        return True  # short chunks inside the table: re-cut it
    segments = {r.segment for col in state.columns.values() for r in col}
    return any(sizes.get(s, 0) != len(HEADER) + live.get(s, 0) for s in segments)


def _rewrite(store: Store, node: DataNode, writer: TableWriter) -> None:
    """Copy a node's rows into fresh segments, cut into full chunks (last one compressed)."""
    state = node._state()
    src = ChunkSource(store.path, node.path, store._reader, None)
    specs = node._schema.columns
    for pos in range(len(state.starts)):
        arrays = [src.read_piece(s, state.columns[s.id][pos]) for s in specs]
        writer.add(arrays, len(arrays[0]))
    writer.flush_compressed()
    writer.sync()


def compact(store: Store) -> CompactReport:
    store._check_writable()
    if store.has_pending:
        raise ColvaultError(f"{store.path} has pending changes: commit or abort before compact()")
    for w in store._writers.values():  # they hold locks on segments the rewrite may delete
        w.close()
    store._writers.clear()
    try:
        store._lock.exclusive("compacting it")
    except LockError:
        store._lock.shared()  # a failed conversion may have dropped the shared lock
        raise
    try:
        return _compact_locked(store)
    finally:
        store._lock.shared()


def _compact_locked(store: Store) -> CompactReport:
    root = store.path
    before = _segment_sizes(root)
    with store._catalog.read() as conn:
        live = dict(
            conn.execute(
                "SELECT segment, SUM(length) FROM chunks WHERE retired_commit IS NULL "
                "GROUP BY segment"
            )
        )
    nodes = [n for n in store.walk() if isinstance(n, DataNode)]
    targets = [n for n in nodes if _needs_rewrite(n, before, live)]
    new_dirs: set[str] = set()
    writers = [
        (n, TableWriter(n._id, n._schema, n._codec, root, new_dirs, store._pool,
                        store._segment_bytes))
        for n in targets
    ]  # fmt: skip
    store._catalog.landed = False
    try:
        keep = _rewrite_and_swap(store, writers, new_dirs)
    except BaseException as exc:
        landed = store._catalog.landed
        for _, writer in writers:
            if landed:
                writer.after_commit(seal=True)  # the swap is committed: keep what it names
            else:  # named by nothing (or, unknown, left alone); the next compact() deletes them
                writer.close()
        if landed or not isinstance(exc, OSError | sqlite3.Error) or isinstance(exc, ColvaultError):
            raise
        if landed is None:
            raise CommitError(
                f"compact() of {root} failed ({what_failed(exc)}) and the catalog could not be "
                "read to tell whether its swap landed; reopen the store to see"
            ) from exc
        raise CommitError(
            f"compact() of {root} failed: {what_failed(exc)}; the store is as it was before"
        ) from exc
    for _, writer in writers:
        writer.after_commit(seal=True)
    # The new manifest is committed: files it does not name are garbage (the old copies, and
    # anything a crashed writer or an interrupted compaction left).
    store._reader.close()
    store._reader = SegmentReader(root)
    store._states.clear()
    removed = leased = 0
    leases.remove_expired(root)
    hold = leases.held(root)
    for rel in segment_files(root):
        if rel in keep:
            continue
        if rel in hold:
            leased += 1
            continue
        os.unlink(os.path.join(root, rel))
        removed += 1
    removed += remove_abandoned_catalogs(root)
    _remove_empty_dirs(os.path.join(root, "data"))
    after = _segment_sizes(root)
    return CompactReport(
        sum(before.values()), sum(after.values()), tuple(n.path for n, _ in writers), removed,
        leased,
    )  # fmt: skip


def _rewrite_and_swap(
    store: Store, writers: list[tuple[DataNode, TableWriter]], new_dirs: set[str]
) -> set[str]:
    """Write the new chunks durably, then swap the manifest; the segments it keeps."""
    for node, writer in writers:
        _rewrite(store, node, writer)
    for d in sorted(new_dirs):
        seam().fsync_dir(d)
    with store._catalog.commit() as (conn, commit_id):
        for node, writer in writers:
            conn.execute("DELETE FROM chunks WHERE node_id = ?", (node._id,))
            if writer.chunks:
                writer._insert(conn, commit_id, 0)
            writer.register_segments(conn, seal=True)
        conn.execute("DELETE FROM chunks WHERE retired_commit IS NOT NULL")
        conn.execute("DELETE FROM chunks WHERE node_id NOT IN (SELECT id FROM nodes)")
        conn.execute("DELETE FROM segments WHERE path NOT IN (SELECT segment FROM chunks)")
        keep = {r[0] for r in conn.execute("SELECT DISTINCT segment FROM chunks")}
        store._check_identity()
    assert store._catalog.writer is not None
    try:  # give back the pages of the deleted rows; on a full disk they wait for the next time
        store._catalog.writer.execute("VACUUM")
        store._catalog.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:
        if store._catalog.translate(exc) is not None:
            raise
    return keep


def _remove_empty_dirs(data: str) -> None:
    for dirpath, _, _ in sorted(os.walk(data), key=lambda t: -len(t[0])):
        if dirpath != data:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # fails while not empty: exactly what we want
