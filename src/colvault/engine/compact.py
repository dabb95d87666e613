"""``store.compact()``: reclaim bytes no kept commit names, re-cut tables into full chunks.

Segments are append-only, so space comes back only by copying. History comes first: a chunk row
retired by a later commit stays while some kept commit (a row of ``commits``: ``expire()``
deletes rows) saw it, and so do the node and sidecar history rows; the others are dropped. A
segment holds chunks of many tables, and it can be deleted only once no row names it: so when a
segment holds bytes no row names (retired and expired, room reserved behind a short chunk, or
left by a crashed writer), every table with a chunk in it is rewritten, and so is every table
sharing a segment with those, until no segment is left half-moved; chunks of removed nodes that
kept commits still see are copied as they are. A table with short chunks a rewrite would fill
is rewritten too; every other table is left alone.

A rewritten table keeps its history: it is cut into full chunks and also wherever a kept commit
ended it (so each chunk is whole in every commit that sees it), and each new chunk is seen from
the first kept commit that had all its rows (tables only grow, so that commit and every later
one had them). The store is held exclusively meanwhile (``LockError`` at once if another process
has it open). Crash safety needs no log: new chunks are written and fsynced to new segment
files, one sqlite transaction swaps the manifest, and only then are the old files deleted. A
crash before the commit leaves the old store plus unreferenced new files, a crash after it the
new store plus unreferenced old files; either way the next ``compact()`` deletes the files no
chunk names. Files a lease holds (:mod:`.leases`: a Dask graph still reading them) are kept
until it expires.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ColvaultError, CommitError, LockError
from . import leases, staging
from .catalog import remove_abandoned_catalogs, what_failed
from .codec import Codec
from .history import NEEDED, seen
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


def prune_history(conn: sqlite3.Connection) -> None:
    """Delete the chunk, node and sidecar rows no kept commit sees (inside a transaction)."""
    conn.execute(f"DELETE FROM chunks WHERE NOT {NEEDED}")
    for table in ("node_versions", "sidecar_versions"):
        conn.execute(f"DELETE FROM {table} WHERE NOT {seen('since', 'until')}")


def _data_nodes(session: Session) -> list[_Node]:
    out = []
    for path, rec in sorted(session.index()[0].items()):
        if rec.kind != "group":  # a damaged record raises CatalogError: nothing is rewritten
            schema, codec = rec.data_parts(session.path, path)
            out.append(_Node(rec.id, path, schema, codec, session.node_state(rec.id, schema)))
    return out


@dataclass(frozen=True)
class _Row:
    """A chunk row some kept commit sees, as compaction places it."""

    node_id: str
    col_id: str
    index: int
    segment: str
    offset: int
    length: int
    added: int
    retired: int | None


def _needed_rows(conn: sqlite3.Connection) -> list[_Row]:
    return [
        _Row(*r)
        for r in conn.execute(
            "SELECT node_id, col_id, chunk_index, segment, offset, length, added_commit, "
            f"retired_commit FROM chunks WHERE {NEEDED}"
        )
    ]


def _pinned(conn: sqlite3.Connection, rows: list[_Row], kept: list[int]) -> set[str]:
    """Tables whose rows were deleted or updated (``row_edits``) after a kept commit that
    still reads chunks of theirs: a re-cut would keep those chunks beside the new ones, so
    their chunks are moved as they are instead."""
    epochs = dict(conn.execute("SELECT node_id, MAX(commit_id) FROM row_edits GROUP BY node_id"))
    out = set()
    for r in rows:
        epoch = epochs.get(r.node_id)
        if epoch is None or r.node_id in out:
            continue
        i = bisect.bisect_left(kept, r.added)  # the first kept commit that sees the row
        if i < len(kept) and kept[i] < min(epoch, r.retired or epoch):
            out.add(r.node_id)
    return out


def _named_bytes(rows: list[_Row]) -> dict[str, int]:
    """Bytes of each segment some row names (rows of a chunk grown in place overlap)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        spans.setdefault(r.segment, []).append((r.offset, r.offset + r.length))
    out = {}
    for seg, ranges in spans.items():
        total, end = 0, -1
        for a, b in sorted(ranges):
            if b > end:
                total += b - max(a, end)
                end = b
        out[seg] = total
    return out


def _targets(
    nodes: list[_Node], sizes: dict[str, int], rows: list[_Row], cuts: dict[str, set[int]]
) -> tuple[list[_Node], set[str]]:
    """The nodes to rewrite: those with short chunks inside (other than where a kept commit
    ended the table: ``cuts``), or with a chunk in a segment
    holding bytes no row names; then, until nothing changes, every node sharing a segment
    with one being rewritten (that segment could not be deleted otherwise). And the segments
    they vacate."""
    named = _named_bytes(rows)
    segments: dict[str, set[str]] = {n.id: set() for n in nodes}
    for r in rows:
        if r.node_id in segments:
            segments[r.node_id].add(r.segment)
    wasteful = {s for s in named if sizes.get(s, 0) != len(HEADER) + named[s]}
    chosen = {
        n.id
        for n in nodes
        if segments[n.id] & wasteful
        or any(
            r.nrows < n.schema.chunk_rows and r.first_row + r.nrows not in cuts[n.id]
            for r in next(iter(n.state.columns.values()), ())[:-1]
        )
    }
    vacated = set().union(*(segments[i] for i in chosen)) if chosen else set()
    while True:
        more = {n.id for n in nodes if n.id not in chosen and segments[n.id] & vacated}
        if not more:
            return [n for n in nodes if n.id in chosen], vacated
        chosen |= more
        vacated |= set().union(*(segments[i] for i in more))


def _kept_ends(conn: sqlite3.Connection, node: _Node, kept: list[int]) -> list[tuple[int, int]]:
    """(kept commit, the table's rows then) for each of the ``kept`` commits, in order: the
    rows of its first column's chunks live at that commit."""
    steps: list[tuple[int, int]] = []
    for added, retired, n in conn.execute(
        "SELECT added_commit, retired_commit, nrows FROM chunks "
        f"WHERE node_id = ? AND col_id = ? AND {NEEDED}",
        (node.id, node.schema.columns[0].id),
    ):
        steps.append((added, n))
        if retired is not None:
            steps.append((retired, -n))
    steps.sort()
    out, rows, i = [], 0, 0
    for k in kept:
        while i < len(steps) and steps[i][0] <= k:
            rows += steps[i][1]
            i += 1
        out.append((k, rows))
    return out


def _rewrite(session: Session, node: _Node, writer: TableWriter, cuts: list[int]) -> None:
    """Copy a node's rows into fresh segments, cut into full chunks (last one compressed)
    and at each row count in ``cuts``."""
    state = node.state
    src = ChunkSource(session.path, node.path, session.reader, None)
    specs = node.schema.columns
    stops = sorted(set(cuts))
    done = 0
    for pos in range(len(state.starts)):
        arrays = [src.read_piece(s, state.columns[s.id][pos]) for s in specs]
        start, n = done, len(arrays[0])
        for stop in [c for c in stops if start < c < start + n] + [start + n]:
            writer.add([a[done - start : stop - start] for a in arrays], stop - done)
            if stop in stops:
                writer.flush_compressed()
            done = stop
    writer.flush_compressed()


def _seen_from(records: list[tuple], ends: list[tuple[int, int]], fallback: int) -> list[tuple]:
    """The new chunk records with their adding commit: the first kept commit that had all of
    a chunk's rows."""
    out = []
    for rec in records:
        last = rec[3] + rec[4]  # first_row + nrows
        added = next((k for k, n in ends if n >= last), fallback)
        out.append((*rec[:15], added, *rec[16:]))
    return out


def _relocate(
    session: Session, rows: list[_Row], vacated: set[str], rewritten: set[str],
    segments: SegmentSet,
) -> list[tuple[str, int, str, str, int]]:  # fmt: skip
    """Copy as they are the chunks in vacated segments that no rewrite takes along (of nodes
    removed since a kept commit, or pinned: :func:`_pinned`); the updates of their rows
    (segment, offset, key)."""
    out = []
    for r in rows:
        if r.segment in vacated and r.node_id not in rewritten:
            with session.reader.chunk(r.segment, True, r.offset, r.length) as data:
                if data is None:
                    raise ColvaultError(
                        f"compact(): a chunk of a removed node lies past the end of {r.segment}"
                    )
                seg, offset = segments.append(bytes(data))
            out.append((seg, offset, r.node_id, r.col_id, r.index))
    return out


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
    nodes = _data_nodes(session)  # the store is held exclusively: nothing changes meanwhile
    with catalog.read() as conn:
        rows = _needed_rows(conn)
        kept = [r[0] for r in conn.execute("SELECT id FROM commits ORDER BY id")]
        ends = {n.id: _kept_ends(conn, n, kept) for n in nodes}
        cuts = {i: {n for _, n in e} for i, e in ends.items()}
        chosen, vacated = _targets(nodes, before, rows, cuts)
        pinned = _pinned(conn, rows, kept)
    targets = [n for n in chosen if n.id not in pinned]  # the others' chunks move as they are
    segments = SegmentSet(root, session.segment_bytes)
    writers = [(n, TableWriter(n.id, n.schema, n.codec, segments, session.pool)) for n in targets]
    catalog.landed = False
    try:
        for node, writer in writers:
            _rewrite(session, node, writer, [n for _, n in ends[node.id]])
        moved = _relocate(session, rows, vacated, {n.id for n in targets}, segments)
        keep = _swap(session, writers, ends, moved, segments)
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
        sum(before.values()), sum(after.values()), tuple(n.path for n in chosen), removed,
        leased,
    )  # fmt: skip


def _swap(
    session: Session, writers: list[tuple[_Node, TableWriter]],
    ends: dict[str, list[tuple[int, int]]], moved: list[tuple[str, int, str, str, int]],
    segments: SegmentSet,
) -> set[str]:  # fmt: skip
    """Make the new chunks durable, then swap the manifest; the segments it keeps."""
    session.make_durable(segments)
    catalog = session.catalog
    with catalog.commit("compact()") as (conn, commit_id):
        rows = ManifestRows()
        for node, writer in writers:
            conn.execute("DELETE FROM chunks WHERE node_id = ?", (node.id,))
            if writer.chunks:
                start = len(rows.chunks)
                writer.insert_chunks(conn, commit_id, 0, rows)
                rows.chunks[start:] = _seen_from(rows.chunks[start:], ends[node.id], commit_id)
        rows.write(conn)
        conn.executemany(
            "UPDATE chunks SET segment = ?, offset = ? "
            "WHERE node_id = ? AND col_id = ? AND chunk_index = ?",
            moved,
        )
        segments.register(conn, seal=True)
        prune_history(conn)
        staged = staging.staged_segments(conn)  # rows staged, not committed yet: kept
        unnamed = "SELECT path FROM segments WHERE path NOT IN (SELECT segment FROM chunks)"
        gone = [g for g in conn.execute(unnamed).fetchall() if g[0] not in staged]
        conn.executemany("DELETE FROM segments WHERE path = ?", gone)
        keep = {r[0] for r in conn.execute("SELECT DISTINCT segment FROM chunks")} | staged
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
