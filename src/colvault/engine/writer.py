"""Uncommitted rows of one table (or array) in this process, and how they reach the catalog.

``add`` buffers validated columns; every full chunk is cut at once, its zone map computed, encoded,
compressed and appended to this writer's own segment of that column, so memory stays bounded by
about one chunk per column whatever the batch size. ``apply``, inside the commit transaction,
places the rows left in the buffer (growing or rewriting the table's short last chunk, see
:mod:`.tails`) and inserts the manifest rows; ``rollback`` truncates what the writer appended
since its last commit (it owns those segments: nobody else writes there).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from ..errors import NodeError
from . import coded, encodings, masked, tails, zonemaps
from .buffers import scratch_array
from .checksum import crc32
from .codec import Codec, as_bytes
from .coded import Coded
from .manifest import ChunkRef
from .masked import Masked
from .schema import ColumnSpec, TableSchema
from .segments import HEADER, SEGMENT_BYTES, ColumnSegments

#: A manifest row of a new chunk.
_INSERT_CHUNK = (
    "INSERT INTO chunks(node_id, col_id, chunk_index, first_row, nrows, segment, offset, "
    "length, crc32, encoding, params, min, max, nan_count, sorted, added_commit, null_count, "
    "validity_length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Chunks being encoded at once: enough to keep every pool thread busy while the main thread
#: writes finished chunks, few enough to bound memory (each is ~1 MiB per column).
WINDOW = 4


class PendingChunk(NamedTuple):
    col_id: str
    nrows: int
    segment: str
    offset: int
    length: int
    crc: int
    encoding: encodings.Encoding
    zone: zonemaps.ZoneMap
    nulls: int = 0  # missing values
    vlen: int = 0  # bytes of the validity frame at the end of the payload


def _chunk_record(
    node_id: str, pc: PendingChunk, index: int, first_row: int, commit_id: int
) -> tuple[Any, ...]:
    """A row of the catalog's chunks table for ``pc``, in ``_INSERT_CHUNK``'s column order."""
    z = pc.zone
    return (node_id, pc.col_id, index, first_row, pc.nrows, pc.segment, pc.offset, pc.length,
            pc.crc, pc.encoding.name, pc.encoding.to_json(), z.min, z.max, z.nan_count,
            None if z.sorted is None else int(z.sorted), commit_id, pc.nulls or None,
            pc.vlen or None)  # fmt: skip


class Encoded(NamedTuple):
    chunk: encodings.Encoded  # its payload: the encoded values, then the validity frame
    crc: int
    zone: zonemaps.ZoneMap
    nulls: int = 0
    vlen: int = 0


class TableWriter:
    """Buffered and written-but-uncommitted rows of one node."""

    def __init__(
        self,
        node_id: str,
        schema: TableSchema,
        codec: Codec,
        root: str,
        new_dirs: set[str],
        pool: ThreadPoolExecutor | None,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.node_id = node_id
        self.schema = schema
        self.new_dirs = new_dirs
        self.pool = pool
        self.pending_rows = 0
        self._buf: list[list[np.ndarray]] = [[] for _ in schema.columns]
        self._buffered = 0
        self.chunks: list[list[PendingChunk]] = []
        self._inflight: deque[tuple[int, list[Future[Encoded]]]] = deque()
        self.encoders = [encodings.ColumnEncoder(codec, c) for c in schema.columns]
        self.segs = [
            ColumnSegments(root, f"data/{node_id}/{c.id}", segment_bytes) for c in schema.columns
        ]

    # -- buffering -------------------------------------------------------------------------------

    def add(self, arrays: list[np.ndarray], n: int, owned: bool = False) -> None:
        """Buffer rows; full chunks go to the pool to be encoded. Unless the caller hands the
        arrays over (``owned``: it never changes them again), their chunks are finished and
        the rest copied before returning."""
        if n == 0:
            return
        for pieces, a in zip(self._buf, arrays, strict=True):
            pieces.append(a)
        self._buffered += n
        self.pending_rows += n
        rows = self.schema.chunk_rows
        if owned:  # chunks stay in flight (up to WINDOW) while the caller goes on
            while self._buffered >= rows:
                self._submit(self._take_parts(rows))
            return
        try:
            while self._buffered >= rows:
                self._submit(self._take_parts(rows))
        finally:
            self._drain(0)  # the chunks may be views of the caller's arrays: finish them now
        if self._buffered:
            # The tail of this batch stays buffered: copy it, the caller may reuse its arrays.
            for pieces in self._buf:
                last = pieces[-1]
                pieces[-1] = (
                    last.copy() if isinstance(last, Coded | Masked) else np.array(last, copy=True)
                )

    def _take(self, rows: int) -> list[Any]:
        """The next ``rows`` buffered rows of each column as one array (coded text as text),
        or a :class:`Masked` one when some are missing."""
        out = [_joined(parts) for parts in self._take_parts(rows)]
        out = [a.values if isinstance(a, Masked) and not a.nulls else a for a in out]
        return [a.text() if isinstance(a, Coded | Masked) else a for a in out]

    def _take_parts(self, rows: int) -> list[list[np.ndarray]]:
        """The next ``rows`` buffered rows of each column, as the pieces they lie in."""
        out = []
        for pieces in self._buf:
            need, parts = rows, []
            while need:
                p = pieces[0]
                if len(p) <= need:
                    parts.append(pieces.pop(0))
                    need -= len(p)
                else:
                    parts.append(p[:need])
                    pieces[0] = p[need:]
                    need = 0
            out.append(parts)
        self._buffered -= rows
        return out

    # -- chunks ----------------------------------------------------------------------------------

    def _encode(self, j: int, parts: list[np.ndarray]) -> Encoded:
        """Zone map, compression and crc of one column chunk, joined from the pieces it was
        appended in (runs in a pool thread: the copy is part of the chunk's work)."""
        spec = self.schema.columns[j]
        # joined in this thread's scratch: the encodings copy what they keep (raw chunks, codec
        # "none", would keep a view of it)
        scratch = self.encoders[j].codec.name != "none"
        chunk = _joined(parts, "encode-chunk" if scratch else None)
        if isinstance(chunk, Masked):
            if chunk.nulls:
                return self._encode_masked(j, chunk, short=False)
            chunk = chunk.values
        if not isinstance(chunk, Coded):
            chunk = np.ascontiguousarray(chunk)
        if spec.dtype.kind == "f":  # the encoder may find the zone map on its way
            encoded = self.encoders[j].encode(chunk, zonemaps.NO_ZONE_MAP)
            zone = encoded.zone or zonemaps.compute(chunk, spec)
        else:
            zone = zonemaps.compute(chunk, spec)
            encoded = self.encoders[j].encode(chunk, zone)
        return Encoded(encoded, crc32(encoded.payload), zone)

    def _encode_masked(self, j: int, chunk: Masked, short: bool) -> Encoded:
        """A chunk with missing values: the values with missing slots forward-filled (zone map
        and packing see only valid values), encoded as any chunk (raw when ``short``), then
        the validity frame; one crc over both."""
        spec = self.schema.columns[j]
        values = chunk.filled()
        if not isinstance(values, Coded):
            values = np.ascontiguousarray(values)
        nulls = chunk.nulls
        if nulls == len(chunk) and spec.has_zone_map:
            zone = zonemaps.ZoneMap(None, None, 0, False)  # no valid value: no bounds
        else:
            zone = zonemaps.compute(values, spec)
        if short and not spec.is_category:
            encoded = encodings.Encoded(encodings.Raw(), as_bytes(values).data)
        else:
            encoded = self.encoders[j].encode(values, zone)
        frame = encodings.validity_frame(chunk.valid, self.encoders[j].codec)
        payload = b"".join((encoded.payload, frame))
        whole = encodings.Encoded(encoded.encoding, payload)
        return Encoded(whole, crc32(payload), zone, nulls, len(frame))

    def _submit(self, arrays: list[list[np.ndarray]]) -> None:
        """Encode a chunk's columns in the pool; write the oldest chunks once enough are queued."""
        futures: list[Future[Encoded]] = []
        for j, a in enumerate(arrays):
            if self.pool is None:
                done: Future[Encoded] = Future()
                done.set_result(self._encode(j, a))
                futures.append(done)
            else:
                futures.append(self.pool.submit(self._encode, j, a))
        self._inflight.append((sum(len(p) for p in arrays[0]), futures))
        self._drain(WINDOW)

    def _drain(self, keep: int) -> None:
        """Append chunks to their segments, in order, until ``keep`` remain in flight (waiting
        for them to be encoded), and then those already encoded: written early, they are
        off the commit's path and their writeback starts sooner."""
        try:
            while self._inflight and (
                len(self._inflight) > keep or all(f.done() for f in self._inflight[0][1])
            ):
                n, futures = self._inflight.popleft()
                row = []
                for spec, segs, f in zip(self.schema.columns, self.segs, futures, strict=True):
                    e = f.result()
                    c = e.chunk
                    rel, offset = segs.append(c.payload, self.new_dirs)
                    row.append(PendingChunk(spec.id, n, rel, offset, len(c.payload), e.crc,
                                            c.encoding, e.zone, e.nulls, e.vlen))  # fmt: skip
                self.chunks.append(row)
        except BaseException:
            self._cancel()
            raise

    def finish(self) -> None:
        """Before a commit: write every chunk still being encoded and, behind this commit's
        full chunks, the short last one (no short chunk of the table's is left to grow), so
        that one round of fsyncs covers all of them."""
        self._drain(0)
        if self.chunks and self._buffered:
            self._write_short(self._take(self._buffered))

    def _cancel(self) -> None:
        for _, futures in self._inflight:
            for f in futures:
                f.cancel()
        for _, futures in self._inflight:
            for f in futures:
                if not f.cancelled():
                    f.exception()  # wait: no thread may still read the caller's arrays
        self._inflight.clear()

    def flush_compressed(self) -> None:
        """Encode the buffered rows as a last chunk like any other (compaction)."""
        if self._buffered:
            self._submit(self._take_parts(self._buffered))
            self._drain(0)

    # -- commit ----------------------------------------------------------------------------------

    def sync(self) -> None:
        for job in self.sync_jobs():
            job()

    def sync_jobs(self) -> list[Callable[[], None]]:
        """One fsync per segment file with unsynced appends (the store runs them together)."""
        return [seg.sync for segs in self.segs for seg in segs.all() if seg.dirty]

    def apply(
        self,
        conn: sqlite3.Connection,
        commit_id: int,
        path: str,
        seal: bool,
        read_chunk: Callable[[ColumnSpec, ChunkRef], Any],
    ) -> None:
        """Inside the commit transaction: place the buffered tail (growing or rewriting the
        table's short last chunk, see :mod:`.tails`), insert the manifest rows, count rows.
        ``read_chunk`` reads a committed chunk as a piece to append again (values, or
        :class:`Masked` with its missing values)."""
        row = conn.execute("SELECT nrows FROM nodes WHERE id = ?", (self.node_id,)).fetchone()
        if row is None:
            if self.chunks or self._buffered:
                raise NodeError(f"{path} was removed by another process; its rows were not added")
            return
        nrows = start = row[0]
        if self._buffered:
            col_ids = [c.id for c in self.schema.columns]
            tail = None
            if not self.chunks:
                tail = tails.load_tail(conn, self.node_id, nrows, self.schema.chunk_rows, col_ids)
            growable = [] if tail is None else self._growable(tail)
            if tail is None:
                self._write_short(self._take(self._buffered))
            elif any(growable):
                self._grow(conn, tail, commit_id, growable, read_chunk)
                return
            else:
                start = tail.first_row
                self._merge(tail, read_chunk)
                tails.retire(conn, self.node_id, tail, commit_id)
        if self.chunks:
            self.insert_chunks(conn, commit_id, start)

    def insert_chunks(self, conn: sqlite3.Connection, commit_id: int, start: int) -> None:
        next_index = {
            spec.id: conn.execute(  # one primary-key probe per column
                "SELECT COALESCE(MAX(chunk_index) + 1, 0) FROM chunks "
                "WHERE node_id = ? AND col_id = ?",
                (self.node_id, spec.id),
            ).fetchone()[0]
            for spec in self.schema.columns
        }
        records = []
        first = start
        for chunk in self.chunks:
            for pc in chunk:
                index = next_index.get(pc.col_id, 0)
                next_index[pc.col_id] = index + 1
                records.append(_chunk_record(self.node_id, pc, index, first, commit_id))
            first += chunk[0].nrows
        conn.executemany(_INSERT_CHUNK, records)
        conn.execute(
            "UPDATE nodes SET nrows = ?, version = ? WHERE id = ?", (first, commit_id, self.node_id)
        )

    # -- the short last chunk --------------------------------------------------------------------

    def _write_short(self, arrays: list[Any]) -> None:
        """A short last chunk, kept raw so later small commits can grow it in place (one
        with missing values has a validity frame after them: it is rewritten, not grown)."""
        n = len(arrays[0])
        row = []
        for j, (spec, segs, a) in enumerate(
            zip(self.schema.columns, self.segs, arrays, strict=True)
        ):
            e = self._short_chunk(j, a)
            c = e.chunk
            rel, offset = segs.append(c.payload, self.new_dirs)
            row.append(PendingChunk(spec.id, n, rel, offset, len(c.payload), e.crc, c.encoding,
                                    e.zone, e.nulls, e.vlen))  # fmt: skip
        self.chunks.append(row)

    def _short_chunk(self, j: int, a: Any) -> Encoded:
        """Column ``j``'s short chunk of rows ``a``: raw values (category text needs its
        dictionary), then a validity frame when some are missing."""
        if isinstance(a, Masked) and not a.nulls:
            a = a.values
        if isinstance(a, Masked):
            return self._encode_masked(j, a, short=True)
        spec = self.schema.columns[j]
        a = np.ascontiguousarray(a)
        zone = zonemaps.compute(a, spec)
        if spec.is_category:  # text needs its dictionary; such tails are rewritten, not grown
            enc = self.encoders[j].encode(a, zone)
        else:
            enc = encodings.Encoded(encodings.Raw(), as_bytes(a).data)
        return Encoded(enc, crc32(enc.payload), zone)

    def _growable(self, tail: tails.Tail) -> list[bool]:
        """Per column, whether its short chunk can grow in place: it stays short, is raw with
        no validity frame, ends this writer's own active segment, and no buffered row of the
        column is missing."""
        if tail.nrows + self._buffered >= self.schema.chunk_rows:
            return [False] * len(self.schema.columns)
        out = []
        for spec, segs, pieces in zip(self.schema.columns, self.segs, self._buf, strict=True):
            ref, seg = tail.refs[spec.id], segs.active
            out.append(
                not ref.vlen  # a validity frame ends the chunk: its values cannot grow
                and not any(isinstance(p, Masked) and p.nulls for p in pieces)
                and isinstance(ref.encoding, encodings.Raw)
                and seg is not None
                and not seg.broken
                and seg.rel == ref.segment
                and seg.end == ref.offset + ref.length
            )
        return out

    def _grow(
        self, conn: sqlite3.Connection, tail: tails.Tail, commit_id: int, growable: list[bool],
        read_chunk: Callable[[ColumnSpec, ChunkRef], Any],
    ) -> None:  # fmt: skip
        """Append the buffered rows right behind the short chunk of each growable column and
        update its manifest row in place: the chunk's earlier versions are prefixes of it, so
        no history is lost. The other columns' short chunks (category text, missing values, a
        segment that rolled over) are rewritten with the rows, each on its own: a logger's
        plain columns keep growing in place beside them. All columns stay cut at one row."""
        n = self._buffered
        total = tail.nrows + n
        updates, retired, added = [], [], []
        for j, (spec, segs, a, grow) in enumerate(
            zip(self.schema.columns, self.segs, self._take(n), growable, strict=True)
        ):
            ref = tail.refs[spec.id]
            if grow:
                a = np.ascontiguousarray(a)
                payload = as_bytes(a).data
                segs.append(payload, self.new_dirs)  # lands right behind the chunk (checked)
                z = zonemaps.merge(ref.zone, zonemaps.compute(a, spec), spec)
                updates.append(
                    (total, ref.length + len(payload), crc32(payload, ref.crc), z.min, z.max,
                     z.nan_count, None if z.sorted is None else int(z.sorted),
                     self.node_id, spec.id, ref.index)
                )  # fmt: skip
                continue
            e = self._short_chunk(j, _joined([read_chunk(spec, ref), a]))
            c = e.chunk
            rel, offset = segs.append(c.payload, self.new_dirs)
            index = conn.execute(
                "SELECT COALESCE(MAX(chunk_index) + 1, 0) FROM chunks "
                "WHERE node_id = ? AND col_id = ?",
                (self.node_id, spec.id),
            ).fetchone()[0]
            retired.append((commit_id, self.node_id, spec.id, ref.index))
            pc = PendingChunk(spec.id, total, rel, offset, len(c.payload), e.crc, c.encoding,
                              e.zone, e.nulls, e.vlen)  # fmt: skip
            added.append(_chunk_record(self.node_id, pc, index, tail.first_row, commit_id))
        conn.executemany(
            "UPDATE chunks SET nrows = ?, length = ?, crc32 = ?, min = ?, max = ?, "
            "nan_count = ?, sorted = ? WHERE node_id = ? AND col_id = ? AND chunk_index = ?",
            updates,
        )
        conn.executemany(
            "UPDATE chunks SET retired_commit = ? "
            "WHERE node_id = ? AND col_id = ? AND chunk_index = ?",
            retired,
        )
        conn.executemany(_INSERT_CHUNK, added)
        conn.execute(
            "UPDATE nodes SET nrows = ?, version = ? WHERE id = ?",
            (tail.first_row + total, commit_id, self.node_id),
        )

    def _merge(self, tail: tails.Tail, read_chunk: Callable[[ColumnSpec, ChunkRef], Any]) -> None:
        """Rewrite another writer's short chunk together with the buffered rows."""
        for spec, pieces in zip(self.schema.columns, self._buf, strict=True):
            pieces.insert(0, read_chunk(spec, tail.refs[spec.id]))
        self._buffered += tail.nrows
        rows = self.schema.chunk_rows
        try:
            while self._buffered >= rows:
                self._submit(self._take_parts(rows))
        finally:
            self._drain(0)
        if self._buffered:
            self._write_short(self._take(self._buffered))

    def register_segments(self, conn: sqlite3.Connection, seal: bool) -> None:
        """Record the segments this commit wrote to, sealing those that are done."""
        for segs in self.segs:
            for seg in segs.all():
                sealed = int(seg in segs.full or seal)
                if seg.end > seg.committed_end or (sealed and seg.committed_end > len(HEADER)):
                    conn.execute(
                        "INSERT INTO segments(path, sealed) VALUES (?, ?) "
                        "ON CONFLICT(path) DO UPDATE SET sealed = excluded.sealed",
                        (seg.rel, sealed),
                    )

    def after_commit(self, seal: bool) -> None:
        """The commit landed: forget the pending chunks, release the segments that are done."""
        for segs in self.segs:
            for seg in segs.all():
                seg.mark_committed()
            done = segs.all() if seal else segs.full
            for seg in done:
                seg.close()
            segs.full = []
            if seal:
                segs.active = None
        self.chunks = []
        self.pending_rows = 0

    def rollback(self) -> None:
        """Drop everything uncommitted; truncate what this writer appended since its commit."""
        self._cancel()
        self._buf = [[] for _ in self.schema.columns]
        self._buffered = 0
        self.chunks = []
        self.pending_rows = 0
        for segs in self.segs:
            for seg in segs.all():
                try:
                    seg.rollback()
                except OSError:
                    seg.broken = True
            for seg in segs.full:
                seg.close()
            segs.full = []
            if segs.active is not None and segs.active.broken:
                segs.active.close()
                segs.active = None

    def close(self) -> None:
        for segs in self.segs:
            for seg in segs.all():
                seg.close()
            segs.full = []
            segs.active = None

    @property
    def has_work(self) -> bool:
        return bool(self.pending_rows) or any(segs.full for segs in self.segs)


def _joined(parts: list[Any], slot: str | None = None) -> Any:
    """The pieces of a column's chunk as one array, or one :class:`Coded` when all are coded
    (a category column's appended codes; mixed with text, they become text), or one
    :class:`Masked` when some have missing values. With ``slot``, arrays of one dtype are
    joined in this thread's scratch buffer of that name."""
    if len(parts) == 1:
        return parts[0]
    if any(isinstance(p, Masked) for p in parts):
        return masked.joined(parts, lambda values: _joined(values, slot))
    if any(isinstance(p, Coded) for p in parts):
        if all(isinstance(p, Coded) for p in parts):
            return coded.joined(parts)
        parts = [p.text() if isinstance(p, Coded) else p for p in parts]
    if slot is not None and len({p.dtype for p in parts}) == 1:
        shape = (sum(len(p) for p in parts), *parts[0].shape[1:])
        return np.concatenate(parts, out=scratch_array(slot, parts[0].dtype, shape))
    return np.concatenate(parts)
