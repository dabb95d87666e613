"""``store.compact()``: reclaim retired and unreferenced bytes, re-cut tables into full chunks.

Segments are append-only, so space comes back only by copying. A segment holds chunks of many
tables, and it can be deleted only once no chunk names it: so when a segment holds bytes no live
chunk names (retired by merges, removals or tail growth, room reserved behind a short chunk, or
left by a crashed writer), every table with a chunk in it is rewritten, and so is every table
sharing a segment with those, until no segment is left half-moved. A table with short chunks a
rewrite would fill is rewritten too; every other table is left alone. The store is held
exclusively meanwhile (``LockError`` at once if another process has it open). Crash safety needs
no log: new chunks are written and fsynced to new segment files, one sqlite transaction swaps
the manifest, and only then are the old files deleted. A crash before the commit leaves the old
store plus unreferenced new files, a crash after it the new store plus unreferenced old files;
either way the next ``compact()`` deletes the files no chunk names. Files a lease holds
(:mod:`.leases`: a Dask graph still reading them) are kept until it expires.
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
from .codec import Codec
from .manifest import NodeState
from .reading import ChunkSource
from .recovery import segment_files
from .schema import TableSchema
from .segments import DATA, HEADER, SegmentSet
from .writer import ManifestRows, TableWriter

if TYPE_CHECKING:
    from .session import Session


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


@dataclass(frozen=True)
class _Node:
    """A table or array as compaction sees it: its record and its committed chunks."""

    id: str
    path: str
    schema: TableSchema
    codec: Codec
    state: NodeState


def _data_nodes(session: Session) -> list[_Node]:
    out = []
    for path, rec in sorted(session.index()[0].items()):
        if rec.kind != "group":  # a damaged record raises CatalogError: nothing is rewritten
            schema, codec = rec.data_parts(session.path, path)
            out.append(_Node(rec.id, path, schema, codec, session.node_state(rec.id, schema)))
    return out


def _segments_of(node: _Node) -> set[str]:
    return {r.segment for col in node.state.columns.values() for r in col}


def _targets(nodes: list[_Node], sizes: dict[str, int], live: dict[str, int]) -> list[_Node]:
    """The nodes to rewrite: those with short chunks inside, or with a chunk in a segment
    holding bytes no live chunk names; then, until nothing changes, every node sharing a
    segment with one being rewritten (that segment could not be deleted otherwise)."""
    segments = {n.id: _segments_of(n) for n in nodes}
    wasteful = {
        s
        for s in set().union(*segments.values())
        if sizes.get(s, 0) != len(HEADER) + live.get(s, 0)
    }
    chosen = {
        n.id
        for n in nodes
        if segments[n.id] & wasteful
        or any(r.nrows < n.schema.chunk_rows for r in next(iter(n.state.columns.values()), ())[:-1])
    }
    vacated = set().union(*(segments[i] for i in chosen)) if chosen else set()
    while True:
        more = {n.id for n in nodes if n.id not in chosen and segments[n.id] & vacated}
        if not more:
            return [n for n in nodes if n.id in chosen]
        chosen |= more
        vacated |= set().union(*(segments[i] for i in more))


def _rewrite(session: Session, node: _Node, writer: TableWriter) -> None:
    """Copy a node's rows into fresh segments, cut into full chunks (last one compressed)."""
    state = node.state
    src = ChunkSource(session.path, node.path, session.reader, None)
    specs = node.schema.columns
    for pos in range(len(state.starts)):
        arrays = [src.read_piece(s, state.columns[s.id][pos]) for s in specs]
        writer.add(arrays, len(arrays[0]))
    writer.flush_compressed()


def compact(session: Session) -> CompactReport:
    session.check_writable()
    if session.has_pending:
        raise ColvaultError(f"{session.path} has pending changes: commit or abort before compact()")
    session.close_writers()  # they hold locks on segments the rewrite may delete
    try:
        session.lock.exclusive("compacting it")
    except LockError:
        session.lock.shared()  # a failed conversion may have dropped the shared lock
        raise
    try:
        return _compact_locked(session)
    finally:
        session.lock.shared()


def _compact_locked(session: Session) -> CompactReport:
    root = session.path
    catalog = session.catalog
    before = _segment_sizes(root)
    with catalog.read() as conn:
        live = dict(
            conn.execute(
                "SELECT segment, SUM(length) FROM chunks WHERE retired_commit IS NULL "
                "GROUP BY segment"
            )
        )
    targets = _targets(_data_nodes(session), before, live)
    segments = SegmentSet(root, session.segment_bytes)
    writers = [(n, TableWriter(n.id, n.schema, n.codec, segments, session.pool)) for n in targets]
    catalog.landed = False
    try:
        keep = _rewrite_and_swap(session, writers, segments)
    except BaseException as exc:
        landed = catalog.landed
        if landed:
            segments.after_commit(seal=True)  # the swap is committed: keep what it names
        else:  # named by nothing (or, unknown, left alone); the next compact() deletes them
            segments.close()
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
    segments.after_commit(seal=True)
    # The new manifest is committed: files it does not name are garbage (the old copies, and
    # anything a crashed writer or an interrupted compaction left).
    session.new_reader()
    removed = leased = 0
    leases.remove_expired(root)
    hold = leases.held(root)
    for rel in segment_files(root):
        if rel in keep:
            continue
        if hold is None or rel in hold:  # None: a lease could not be read, keep them all
            leased += 1
            continue
        os.unlink(os.path.join(root, rel))
        removed += 1
    removed += remove_abandoned_catalogs(root)
    _remove_empty_dirs(os.path.join(root, DATA))
    after = _segment_sizes(root)
    return CompactReport(
        sum(before.values()), sum(after.values()), tuple(n.path for n, _ in writers), removed,
        leased,
    )  # fmt: skip


def _rewrite_and_swap(
    session: Session, writers: list[tuple[_Node, TableWriter]], segments: SegmentSet
) -> set[str]:
    """Write the new chunks durably, then swap the manifest; the segments it keeps."""
    for node, writer in writers:
        _rewrite(session, node, writer)
    session.make_durable(segments)
    catalog = session.catalog
    with catalog.commit() as (conn, commit_id):
        rows = ManifestRows()
        for node, writer in writers:
            conn.execute("DELETE FROM chunks WHERE node_id = ?", (node.id,))
            if writer.chunks:
                writer.insert_chunks(conn, commit_id, 0, rows)
        rows.write(conn)
        segments.register(conn, seal=True)
        conn.execute("DELETE FROM chunks WHERE retired_commit IS NOT NULL")
        conn.execute("DELETE FROM chunks WHERE node_id NOT IN (SELECT id FROM nodes)")
        conn.execute("DELETE FROM segments WHERE path NOT IN (SELECT segment FROM chunks)")
        keep = {r[0] for r in conn.execute("SELECT DISTINCT segment FROM chunks")}
        session.check_identity()
    assert catalog.writer is not None
    try:  # give back the pages of the deleted rows; on a full disk they wait for the next time
        catalog.writer.execute("VACUUM")
        catalog.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:
        if catalog.translate(exc) is not None:
            raise
    return keep


def _remove_empty_dirs(data: str) -> None:
    for dirpath, _, _ in sorted(os.walk(data), key=lambda t: -len(t[0])):
        if dirpath != data:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # fails while not empty: exactly what we want
