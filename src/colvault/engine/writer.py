"""Uncommitted rows of one table (or array) in this process, and how they reach the catalog.

``add`` buffers validated columns; every full chunk is cut at once, its zone map computed, encoded
and compressed in the pool, then held in a run per column and written to the store's segment
(:class:`~.segments.SegmentSet`, shared by all tables) once the run is long enough, so that a
scan of one column reads long sequential stretches while memory stays bounded (``RUN_BYTES``,
``HELD_BYTES``). ``apply``, inside the commit transaction, places the rows left in the buffer
(growing or rewriting the table's short last chunk, see :mod:`.tails`) and inserts the manifest
rows. The bytes of a dropped writer stay in the segment, named by nothing: the session truncates
them on abort, ``compact()`` reclaims them otherwise.
"""

from __future__ import annotations

import functools
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
from .segments import SegmentSet

#: A manifest row of a new chunk.
INSERT_CHUNK = (
    "INSERT INTO chunks(node_id, col_id, chunk_index, first_row, nrows, segment, offset, "
    "length, crc32, encoding, params, min, max, nan_count, sorted, added_commit, null_count, "
    "validity_length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Chunks being encoded at once: enough to keep every pool thread busy while the main thread
#: writes finished chunks, few enough to bound memory (each is ~1 MiB per column).
WINDOW = 4
#: A column's encoded chunks are written together once they reach this many bytes, so that its
#: scans read runs of it (reads ask the kernel for exactly their chunks, see SegmentReader, so a
#: run's length matters for locality, not for bytes read).
RUN_BYTES = 1 << 20
#: Encoded bytes a writer holds in runs at most; past it every run is written out (a wide table
#: gets shorter runs rather than more memory). What is held when a commit comes is written and
#: fsynced on its path: 32 MiB cost a bulk append's commit 6 ms more than 8 MiB.
HELD_BYTES = 8 << 20


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


def chunk_record(
    node_id: str, pc: PendingChunk, index: int, first_row: int, commit_id: int
) -> tuple[Any, ...]:
    """A row of the catalog's chunks table for ``pc``, in ``INSERT_CHUNK``'s column order."""
    z = pc.zone
    return (node_id, pc.col_id, index, first_row, pc.nrows, pc.segment, pc.offset, pc.length,
            pc.crc, pc.encoding.name, pc.encoding.to_json(), z.min, z.max, z.nan_count,
            None if z.sorted is None else int(z.sorted), commit_id, pc.nulls or None,
            pc.vlen or None)  # fmt: skip


#: A table's committed row count and data version, on its live record (kept in place: a
#: commit of the past counts its rows in its chunks, see :mod:`.pastview`).
SET_ROWS = "UPDATE node_versions SET nrows = ?, version = ? WHERE id = ? AND until IS NULL"


def next_index(conn: sqlite3.Connection, node_id: str, col_id: str) -> int:
    """The index of a column's next chunk (one primary-key probe; retired rows count)."""
    row = conn.execute(
        "SELECT COALESCE(MAX(chunk_index) + 1, 0) FROM chunks WHERE node_id = ? AND col_id = ?",
        (node_id, col_id),
    ).fetchone()
    return int(row[0])


class ManifestRows:
    """Manifest rows and row counts of one commit, inserted by one statement each: a commit
    of 10,000 small tables ran 20,000 statements before (0.45 s)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Any, ...]] = []
        self.nodes: list[tuple[int, int, str]] = []  # (nrows, version, node id)

    def write(self, conn: sqlite3.Connection) -> None:
        conn.executemany(INSERT_CHUNK, self.chunks)
        conn.executemany(SET_ROWS, self.nodes)
        self.chunks, self.nodes = [], []


class Slot(NamedTuple):
    """Room reserved behind a raw short chunk in the active segment, for it to grow in place."""

    segment: str
    offset: int
    capacity: int  # bytes from ``offset``


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
        segments: SegmentSet,
        pool: ThreadPoolExecutor | None,
    ) -> None:
        self.node_id = node_id
        self.schema = schema
        self.segments = segments
        self.pool = pool
        self.pending_rows = 0
        #: buffered rows, in the batches they came in: per batch, a piece per column (all of
        #: its rows; a tuple of arrays, which the GC stops tracking, not a list per column)
        self._batches: list[tuple[Any, ...]] = []
        self._buffered = 0
        #: chunk rows of this commit, a PendingChunk per column once its run is written
        self.chunks: list[list[PendingChunk | None]] = []
        self._inflight: deque[tuple[int, list[Future[Encoded]]]] = deque()
        self._drop_runs()
        #: per column id: room behind its short chunk (see ``Slot``)
        self._slots: dict[str, Slot] = {}
        self._codec = codec

    @functools.cached_property
    def encoders(self) -> list[encodings.ColumnEncoder]:
        """Per column, its encoder: made on first use, as the runs are (a table of one short
        chunk needs none; every object a writer keeps costs each full collection of the GC,
        and a store of 10,000 small tables keeps 10,000 writers)."""
        return [encodings.ColumnEncoder(self._codec, c) for c in self.schema.columns]

    # -- buffering -------------------------------------------------------------------------------

    def add(self, arrays: list[np.ndarray], n: int, owned: bool = False) -> None:
        """Buffer rows; full chunks go to the pool to be encoded. Unless the caller hands the
        arrays over (``owned``: it never changes them again), their chunks are finished and
        the rest copied before returning."""
        if n == 0:
            return
        self._batches.append(tuple(arrays))
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
        for run in self._runs.values():  # raw chunks (codec "none") may be views of the caller's
            for i, (row, n, e) in enumerate(run):
                if not isinstance(e.chunk.payload, bytes):
                    owned_chunk = encodings.Encoded(e.chunk.encoding, bytes(e.chunk.payload))
                    run[i] = (row, n, e._replace(chunk=owned_chunk))
        if self._buffered:
            # The tail of this batch stays buffered: copy it, the caller may reuse its arrays.
            self._batches[-1] = tuple(
                p.copy() if isinstance(p, Coded | Masked) else np.array(p, copy=True)
                for p in self._batches[-1]
            )

    def _take(self, rows: int) -> list[Any]:
        """The next ``rows`` buffered rows of each column as one array (coded text as text),
        or a :class:`Masked` one when some are missing."""
        out = [_joined(parts) for parts in self._take_parts(rows)]
        out = [a.values if isinstance(a, Masked) and not a.nulls else a for a in out]
        return [a.text() if isinstance(a, Coded | Masked) else a for a in out]

    def _take_parts(self, rows: int) -> list[list[np.ndarray]]:
        """The next ``rows`` buffered rows of each column, as the pieces they lie in."""
        out: list[list[Any]] = [[] for _ in self.schema.columns]
        batches, need = self._batches, rows
        while need:
            batch = batches[0]
            if len(batch[0]) <= need:
                taken = batches.pop(0)
                need -= len(batch[0])
            else:
                taken = tuple(p[:need] for p in batch)
                batches[0] = tuple(p[need:] for p in batch)
                need = 0
            for parts, p in zip(out, taken, strict=True):
                parts.append(p)
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
            encoded = encodings.raw(values)
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
                encoded = [f.result() for f in futures]
                row = len(self.chunks)
                self.chunks.append([None] * len(encoded))
                for j, e in enumerate(encoded):
                    self._hold(j, row, n, e)
                    if self._run_bytes[j] >= RUN_BYTES:
                        self._write_runs([j])
                if self._held >= HELD_BYTES:
                    self._write_runs()
        except BaseException:
            self._cancel()
            raise

    def _hold(self, j: int, row: int, n: int, e: Encoded) -> None:
        """Keep column ``j``'s encoded chunk of chunk row ``row`` (``n`` rows) in its run."""
        self._runs.setdefault(j, []).append((row, n, e))
        self._run_bytes[j] = self._run_bytes.get(j, 0) + len(e.chunk.payload)
        self._held += len(e.chunk.payload)

    def _drop_runs(self) -> None:
        """No chunk held: per column index that has one, (chunk row, nrows, encoded chunk)
        waiting to be written in one run, and their bytes."""
        self._runs: dict[int, list[tuple[int, int, Encoded]]] = {}
        self._run_bytes: dict[int, int] = {}
        self._held = 0

    def _write_runs(self, columns: list[int] | None = None, short_rows: int = 0) -> None:
        """Write the held chunks of ``columns`` (default all), each column's back to back, in
        as few writes as can be (a small table's columns in one). ``short_rows``: each run
        ends with a short last chunk; leave room behind it for that many rows where it can
        grow in place (see ``_place_short``); such runs are written last, one by one."""
        runs = self._runs
        cols = sorted(runs) if columns is None else [j for j in columns if j in runs]
        if not cols:
            return
        specs = self.schema.columns
        rooms = [self._room(specs[j], runs[j][-1][2], short_rows) if short_rows else 0
                 for j in cols]  # fmt: skip
        together = [j for j, room in zip(cols, rooms, strict=True) if not room]
        places = self.segments.append_run([e.chunk.payload for j in together for *_, e in runs[j]])
        at = 0
        for j in together:
            k = len(runs[j])
            self._placed(j, places[at : at + k], short_rows)
            at += k
        for j, room in zip(cols, rooms, strict=True):
            if room:
                payloads = [e.chunk.payload for *_, e in runs[j]]
                self._placed(j, self.segments.append_run(payloads, room), short_rows, room)

    def _placed(self, j: int, places: list[tuple[str, int]], short: int, room: int = 0) -> None:
        """Column ``j``'s held run was written at ``places``: make its chunks pending."""
        spec, run = self.schema.columns[j], self._runs[j]
        if short:
            self._remember_room(spec, run[-1][2], places[-1], room)
        for (row, n, e), (rel, offset) in zip(run, places, strict=True):
            c = e.chunk
            self.chunks[row][j] = PendingChunk(spec.id, n, rel, offset, len(c.payload), e.crc,
                                               c.encoding, e.zone, e.nulls, e.vlen)  # fmt: skip
        self._held -= self._run_bytes.pop(j)
        del self._runs[j]

    def finish(self) -> None:
        """Before a commit: write every chunk still being encoded and, behind this commit's
        full chunks, the short last one, so that one round of fsyncs covers all of them.
        That short chunk is compressed like a full one: a bulk commit's rows are not written
        again, so a raw one would stay, taking disk and scanned outside the kernels (a later
        small commit rewrites it, as any short chunk it cannot grow)."""
        if self.chunks and self._buffered:
            self._submit(self._take_parts(self._buffered))
        self._drain(0)
        self._write_runs()

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
        self._write_runs()

    # -- commit ----------------------------------------------------------------------------------

    def apply(
        self,
        conn: sqlite3.Connection,
        commit_id: int,
        path: str,
        read_chunk: Callable[[ColumnSpec, ChunkRef], Any],
        rows: ManifestRows,
        new: bool = False,
    ) -> None:
        """Inside the commit transaction: place the buffered tail (growing or rewriting the
        table's short last chunk, see :mod:`.tails`), add the manifest rows and row count to
        ``rows`` (the caller inserts them). ``read_chunk`` reads a committed chunk as a piece
        to append again (values, or :class:`Masked` with its missing values). ``new``: this
        commit creates the node, so it has no rows and no chunks yet (two catalog queries fewer
        per table)."""
        if new:
            nrows = 0
        else:
            row = conn.execute("SELECT nrows FROM nodes WHERE id = ?", (self.node_id,)).fetchone()
            if row is None:
                if self.chunks or self._buffered:
                    raise NodeError(
                        f"{path} was removed by another process; its rows were not added"
                    )
                return
            nrows = row[0]
        start = nrows
        if self._buffered:
            col_ids = [c.id for c in self.schema.columns]
            tail = None
            if not self.chunks and nrows:
                tail = tails.load_tail(conn, self.node_id, nrows, self.schema.chunk_rows, col_ids)
            growable = [] if tail is None else self._growable(tail)
            if tail is None:
                self._write_short(self._take(self._buffered), room=False)
            elif any(growable):
                self._grow(conn, tail, commit_id, growable, read_chunk, rows)
                return
            else:
                start = tail.first_row
                self._merge(tail, read_chunk)
                tails.retire(conn, self.node_id, tail, commit_id)
        if self.chunks:
            self.insert_chunks(conn, commit_id, start, rows, new)

    def insert_chunks(
        self,
        conn: sqlite3.Connection,
        commit_id: int,
        start: int,
        rows: ManifestRows,
        new: bool = False,
    ) -> None:
        """Add the manifest rows of this commit's chunks (all written), rows from ``start``."""
        next_index = {
            spec.id: 0 if new else self._next_index(conn, spec.id) for spec in self.schema.columns
        }
        records = rows.chunks
        first = start
        for chunk in self.chunks:
            for pc in chunk:
                assert pc is not None, "a chunk's run was not written before the commit"
                index = next_index.get(pc.col_id, 0)
                next_index[pc.col_id] = index + 1
                records.append(chunk_record(self.node_id, pc, index, first, commit_id))
            first += chunk[0].nrows  # type: ignore[union-attr]
        rows.nodes.append((first, commit_id, self.node_id))

    def _next_index(self, conn: sqlite3.Connection, col_id: str) -> int:
        return next_index(conn, self.node_id, col_id)

    # -- the short last chunk --------------------------------------------------------------------

    def _write_short(self, arrays: list[Any], room: bool) -> None:
        """A short last chunk, kept raw so later small commits can grow it in place (one
        with missing values has a validity frame after them: it is rewritten, not grown).
        ``room``: reserve room for a whole chunk behind it (it is being rewritten by a second
        small commit, or behind a full chunk: a logger's; unwritten room is a hole in the
        file, no disk blocks); a table's first short chunk gets none, so that small tables
        written once lie densely."""
        n = len(arrays[0])
        row = len(self.chunks)
        self.chunks.append([None] * len(arrays))
        for j, a in enumerate(arrays):  # behind the column's run: a scan of it stays sequential
            self._hold(j, row, n, self._short_chunk(j, a))
        self._write_runs(short_rows=self.schema.chunk_rows if room else n)

    def _place_short(self, spec: ColumnSpec, e: Encoded, rows: int) -> tuple[str, int]:
        """Append a short chunk on its own, with room for ``rows`` rows behind it."""
        room = self._room(spec, e, rows)
        place = self.segments.append(e.chunk.payload, room)
        self._remember_room(spec, e, place, room)
        return place

    def _room(self, spec: ColumnSpec, e: Encoded, rows: int) -> int:
        """Bytes to reserve for a short chunk to grow into: ``rows`` rows (at most a chunk's)
        when it can grow in place (raw, no validity frame) and that is more than it holds,
        else none."""
        if not isinstance(e.chunk.encoding, encodings.Raw) or e.vlen:
            return 0
        room = min(rows, self.schema.chunk_rows) * spec.cell_bytes
        return room if room > len(e.chunk.payload) else 0

    def _remember_room(
        self, spec: ColumnSpec, e: Encoded, place: tuple[str, int], room: int
    ) -> None:
        if room:
            self._slots[spec.id] = Slot(*place, max(room, len(e.chunk.payload)))
        else:
            self._slots.pop(spec.id, None)

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
        # category text needs its dictionary: such tails are rewritten, not grown
        enc = self.encoders[j].encode(a, zone) if spec.is_category else encodings.raw(a)
        return Encoded(enc, crc32(enc.payload), zone)

    def _growable(self, tail: tails.Tail) -> list[bool]:
        """Per column, whether its short chunk can grow in place: it is raw with no validity
        frame, lies in room this writer reserved in the active segment, the room holds the
        buffered rows too, and none of them is missing."""
        if tail.nrows + self._buffered >= self.schema.chunk_rows:
            return [False] * len(self.schema.columns)
        out = []
        for j, spec in enumerate(self.schema.columns):
            ref, slot = tail.refs[spec.id], self._slots.get(spec.id)
            out.append(
                slot is not None
                and not ref.vlen  # a validity frame ends the chunk: its values cannot grow
                and not any(isinstance(b[j], Masked) and b[j].nulls for b in self._batches)
                and isinstance(ref.encoding, encodings.Raw)
                and (slot.segment, slot.offset) == (ref.segment, ref.offset)
                and ref.length + self._buffered * spec.cell_bytes <= slot.capacity
                and self.segments.growable(ref.segment) is not None
            )
        return out

    def _grow(
        self, conn: sqlite3.Connection, tail: tails.Tail, commit_id: int, growable: list[bool],
        read_chunk: Callable[[ColumnSpec, ChunkRef], Any], rows: ManifestRows,
    ) -> None:  # fmt: skip
        """Write the buffered rows right behind the short chunk of each growable column, in
        its reserved room, and give it a new manifest row: its earlier rows stay, retired, for
        the commits that saw them (their bytes are a prefix of the new ones, which do not
        change). The other columns' short chunks (category
        text, missing values, room outgrown) are rewritten with the rows, each on its own: a
        logger's plain columns keep growing in place beside them. All columns stay cut at one
        row."""
        n = self._buffered
        total = tail.nrows + n
        retired, added = [], []
        columns = list(enumerate(zip(self.schema.columns, self._take(n), growable, strict=True)))
        for _, (spec, a, grow) in columns:  # first: a rewrite below may roll the segment over
            if grow:
                ref = tail.refs[spec.id]
                a = np.ascontiguousarray(a)
                payload = as_bytes(a).data
                seg = self.segments.growable(ref.segment)
                assert seg is not None
                seg.write_at(ref.offset + ref.length, payload)
                z = zonemaps.merge(ref.zone, zonemaps.compute(a, spec), spec)
                pc = PendingChunk(spec.id, total, ref.segment, ref.offset,
                                  ref.length + len(payload), crc32(payload, ref.crc),
                                  ref.encoding, z)  # fmt: skip
                retired.append((commit_id, self.node_id, spec.id, ref.index))
                index = self._next_index(conn, spec.id)
                added.append(chunk_record(self.node_id, pc, index, tail.first_row, commit_id))
        for j, (spec, a, grow) in columns:
            if grow:
                continue
            ref = tail.refs[spec.id]
            e = self._short_chunk(j, _joined([read_chunk(spec, ref), a]))
            rel, offset = self._place_short(spec, e, self.schema.chunk_rows)
            c = e.chunk
            index = self._next_index(conn, spec.id)
            retired.append((commit_id, self.node_id, spec.id, ref.index))
            pc = PendingChunk(spec.id, total, rel, offset, len(c.payload), e.crc, c.encoding,
                              e.zone, e.nulls, e.vlen)  # fmt: skip
            added.append(chunk_record(self.node_id, pc, index, tail.first_row, commit_id))
        conn.executemany(
            "UPDATE chunks SET retired_commit = ? "
            "WHERE node_id = ? AND col_id = ? AND chunk_index = ?",
            retired,
        )
        rows.chunks += added
        rows.nodes.append((tail.first_row + total, commit_id, self.node_id))

    def _merge(self, tail: tails.Tail, read_chunk: Callable[[ColumnSpec, ChunkRef], Any]) -> None:
        """Rewrite the short chunk (another writer's, or one that outgrew its room) together
        with the buffered rows."""
        self._batches.insert(
            0, tuple(read_chunk(spec, tail.refs[spec.id]) for spec in self.schema.columns)
        )
        self._buffered += tail.nrows
        rows = self.schema.chunk_rows
        try:
            while self._buffered >= rows:
                self._submit(self._take_parts(rows))
        finally:
            self._drain(0)
        if self._buffered:
            self._write_short(self._take(self._buffered), room=True)
        self._write_runs()

    def after_commit(self) -> None:
        """The commit landed: forget the pending chunks (the segments are the session's)."""
        self.chunks = []
        self.pending_rows = 0

    def rollback(self) -> None:
        """Drop everything uncommitted. The bytes already written stay in the shared segment,
        named by nothing; the session truncates them when it aborts everything."""
        self._cancel()
        self._batches = []
        self._buffered = 0
        self.chunks = []
        self._drop_runs()
        self._slots.clear()
        self.pending_rows = 0

    def close(self) -> None:
        """Forget the reserved room: the segments it lies in are being released."""
        self._slots.clear()

    @property
    def has_work(self) -> bool:
        return bool(self.pending_rows)


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
