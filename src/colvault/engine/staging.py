"""Staged writes: rows written and made durable by any process, committed later by one.

What a Dask cluster needs (ArcticDB's ``staged=True`` + ``finalize``): each worker process
writes its partition's chunks into segment files of its own, fsyncs and seals them, and hands
back a small descriptor (a dict of JSON values: the table, its columns, and every chunk's
segment, offset, length, crc, encoding and zone map). ``store.commit_staged(descriptors)``
then appends all of them to their tables in one commit, in the order given. Until then the
rows are visible to no one; the catalog's ``staged`` table names their segments, so recovery
(which never cuts a sealed segment) and ``compact()`` (which keeps the segments it names)
leave the bytes alone, until they are committed or ``discard_staged()`` drops them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import ColvaultError, NodeError
from .codec import Codec
from .encodings import parse
from .schema import TableSchema
from .segments import SegmentSet
from .writer import (
    INSERT_CHUNK,
    SET_ROWS,
    PendingChunk,
    TableWriter,
    chunk_record,
    next_index,
)
from .zonemaps import ZoneMap

if TYPE_CHECKING:
    from .session import Session


def stage(
    session: Session, node_id: str, path: str, schema: TableSchema, codec: Codec,
    arrays: list[Any], n: int, token: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Write ``n`` coerced rows as chunks in segments of their own, durably, and record them
    as staged; their descriptor."""
    segments = SegmentSet(session.path, session.segment_bytes)
    writer = TableWriter(node_id, schema, codec, segments, session.pool)
    try:
        writer.add(arrays, n)
        writer.flush_compressed()
        session.make_durable(segments)
    except BaseException:
        segments.rollback()
        segments.close()
        raise
    chunks = [[_chunk_json(pc) for pc in chunk] for chunk in writer.chunks]
    descriptor = {
        "id": uuid.uuid4().hex,
        "token": token,
        "node": node_id,
        "path": path,
        "columns": [c.id for c in schema.columns],
        "rows": n,
        "chunks": chunks,
    }
    used = sorted({c["segment"] for chunk in chunks for c in chunk})
    with session.catalog.write() as conn:
        if (
            token is not None
            and conn.execute("SELECT 1 FROM staged WHERE id = ?", (_DISCARDED + token,)).fetchone()
        ):  # a job that gave up meanwhile: these rows are garbage already
            raise ColvaultError(f"the stagings of token {token!r} were discarded")
        for rel in used:
            conn.execute(
                "INSERT INTO segments(path, sealed) VALUES (?, 1) "
                "ON CONFLICT(path) DO UPDATE SET sealed = 1",
                (rel,),
            )
        conn.execute(
            "INSERT INTO staged(id, token, node_id, segments, descriptor) VALUES (?, ?, ?, ?, ?)",
            (descriptor["id"], token, node_id, json.dumps(used), json.dumps(descriptor)),
        )
    segments.after_commit(seal=True)
    return descriptor


def _chunk_json(pc: PendingChunk | None) -> dict[str, Any]:
    assert pc is not None, "a staged chunk's run was not written"
    z = pc.zone
    return {
        "col": pc.col_id, "nrows": pc.nrows, "segment": pc.segment, "offset": pc.offset,
        "length": pc.length, "crc": pc.crc, "encoding": pc.encoding.name,
        "params": pc.encoding.to_json(), "min": None if z.min is None else z.min.hex(),
        "max": None if z.max is None else z.max.hex(), "nan_count": z.nan_count,
        "sorted": z.sorted, "nulls": pc.nulls, "vlen": pc.vlen,
    }  # fmt: skip


def _pending_chunk(c: dict[str, Any]) -> PendingChunk:
    zone = ZoneMap(
        None if c["min"] is None else bytes.fromhex(c["min"]),
        None if c["max"] is None else bytes.fromhex(c["max"]),
        c["nan_count"],
        c["sorted"],
    )
    return PendingChunk(c["col"], c["nrows"], c["segment"], c["offset"], c["length"], c["crc"],
                        parse(c["encoding"], c["params"]), zone, c["nulls"], c["vlen"])  # fmt: skip


#: The id of the row that marks a token's stagings discarded (a staging of it is refused).
_DISCARDED = "discarded:"


def apply(conn: sqlite3.Connection, commit_id: int, descriptors: list[dict[str, Any]]) -> None:
    """Inside the commit: append every staged descriptor's chunks to its table, in order.
    ``ColvaultError`` when one was not staged (or was committed or discarded already);
    ``NodeError`` when its table is gone or its columns changed."""
    for d in descriptors:
        where = f"staged rows of {d.get('path')!r} ({d.get('id')})"
        row = conn.execute("SELECT descriptor FROM staged WHERE id = ?", (d.get("id"),))
        found = row.fetchone()
        if found is None:
            raise ColvaultError(f"{where} are not staged (committed or discarded already?)")
        d = json.loads(found[0])  # the catalog's copy: the caller's may have been altered
        node = conn.execute("SELECT nrows, schema FROM nodes WHERE id = ?", (d["node"],))
        current = node.fetchone()
        if current is None:
            raise NodeError(f"{where}: the table was removed")
        columns = [c["id"] for c in json.loads(current[1])["columns"]]
        if columns != d["columns"]:
            raise NodeError(f"{where}: the table's columns changed since they were staged")
        first = current[0]
        index = {col: next_index(conn, d["node"], col) for col in columns}
        for chunk in d["chunks"]:
            for c in chunk:
                pc = _pending_chunk(c)
                conn.execute(INSERT_CHUNK, chunk_record(d["node"], pc, index[pc.col_id], first,
                                                        commit_id))  # fmt: skip
                index[pc.col_id] += 1
            first += chunk[0]["nrows"]
        conn.execute(SET_ROWS, (first, commit_id, d["node"]))
        conn.execute("DELETE FROM staged WHERE id = ?", (d["id"],))


def discard(conn: sqlite3.Connection, token: str | None, ids: list[str] | None) -> int:
    """Forget staged rows (all, those of a ``token``, or those of descriptor ``ids``); how
    many. Their segments are named by nothing then: ``compact()`` deletes them."""
    if ids is not None:
        gone = sum(conn.execute("DELETE FROM staged WHERE id = ?", (i,)).rowcount for i in ids)
    elif token is not None:
        gone = conn.execute(
            "DELETE FROM staged WHERE token = ? AND id != ?", (token, _DISCARDED + token)
        ).rowcount
        conn.execute(  # a partition still running must not stage after this
            "INSERT OR IGNORE INTO staged(id, token, node_id, segments, descriptor) "
            "VALUES (?, ?, '', '[]', 'null')",
            (_DISCARDED + token, token),
        )
    else:
        gone = conn.execute("DELETE FROM staged WHERE id NOT LIKE 'discarded:%'").rowcount
    return int(gone)


def staged_segments(conn: sqlite3.Connection) -> set[str]:
    """The segments staged rows lie in (``compact()`` keeps them)."""
    return {
        rel for (text,) in conn.execute("SELECT segments FROM staged") for rel in json.loads(text)
    }
