"""Deletes and updates of committed rows (``delete_where``, PyTables' ``remove_rows`` and
``modify_*``).

An edit is planned when it is called, against one committed snapshot: the chunks it touches
are read, changed and written again (new chunks in the session's segment, named by nothing
yet), and the plan waits for the commit as appended rows do; ``abort()`` drops it. At the
commit, inside its transaction, the table must still be at the version the plan read, else
``NodeError`` (another process changed it meanwhile) and nothing of the commit is applied.
Then every chunk from the first touched one on is retired and added again: the touched ones as
rewritten, the others with the same bytes at their new first row (row numbers are dense after
a delete, as in PyTables). The retired rows stay for the commits that saw them
(:mod:`.history`), and ``row_edits`` records the commit, which ``compact()`` must not re-cut
across. Rows appended and not yet committed are not edited: they land after the edited ones.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ColvaultError, NodeError
from .codec import Codec
from .coded import Coded
from .manifest import NodeState
from .masked import Masked
from .reading import ChunkSource
from .schema import ColumnSpec, TableSchema
from .writer import INSERT_CHUNK, SET_ROWS, TableWriter, chunk_record, next_index

if TYPE_CHECKING:
    from .session import Session


@dataclass
class Change:
    """What an edit does to one chunk: rows it keeps, and values it sets (by column)."""

    keep: np.ndarray | None = None  # bool per row of the chunk; None: every row
    #: column position → (rows within the chunk, their new values)
    updates: dict[int, tuple[np.ndarray, Any]] = field(default_factory=dict)


@dataclass
class Edit:
    """A table's planned edit: its rewritten chunks, written, waiting for the commit."""

    node_id: str
    path: str
    version: int  # the table's version the plan read
    starts: list[int]  # first row of each committed chunk
    sizes: list[int]  # rows of each committed chunk
    kept: dict[int, int]  # touched chunk position → rows it keeps (0: it goes)
    writer: TableWriter  # one chunk per touched position that keeps rows, in order
    removed: int
    updated: int


def by_chunk(state: NodeState, rows: np.ndarray) -> dict[int, np.ndarray]:
    """Row numbers (ascending, unique) grouped by chunk position, as rows within the chunk."""
    if not len(rows):
        return {}
    starts = np.asarray(state.starts, np.int64)
    pos = np.searchsorted(starts, rows, side="right") - 1
    cuts = np.flatnonzero(np.diff(pos)) + 1
    return {
        int(pos[g[0]]): rows[g[0] : g[-1] + 1] - starts[pos[g[0]]]
        for g in np.split(np.arange(len(rows)), cuts)
    }


def plan(
    session: Session, node_id: str, path: str, schema: TableSchema, codec: Codec,
    state: NodeState, rows: np.ndarray, values: dict[int, Any] | None,
) -> int:  # fmt: skip
    """Plan a delete of ``rows`` (``values`` None) or an update of them (column position →
    values aligned with ``rows``, as ``coerce_batch`` makes them) and keep it for the commit;
    how many rows. ``rows``: committed row numbers, ascending and unique."""
    groups = by_chunk(state, rows)
    changes: dict[int, Change] = {}
    done = 0
    for pos, local in groups.items():
        k = len(local)
        if values is None:
            keep = np.ones(state.columns[schema.columns[0].id][pos].nrows, bool)
            keep[local] = False
            changes[pos] = Change(keep=keep)
        else:
            changes[pos] = Change(
                updates={j: (local, v[done : done + k]) for j, v in values.items()}
            )
        done += k
    if changes:
        session.add_edit(prepare(session, node_id, path, schema, codec, state, changes))
    return len(rows)


def prepare(
    session: Session, node_id: str, path: str, schema: TableSchema, codec: Codec,
    state: NodeState, changes: dict[int, Change],
) -> Edit:  # fmt: skip
    """Rewrite the chunks ``changes`` touch into the session's segment; the plan."""
    if session.edit_of(node_id) is not None:
        raise ColvaultError(
            f"{path} has an uncommitted delete, update or column change: commit() or abort() it "
            "before the next"
        )
    src = ChunkSource(session.path, path, session.reader, None)
    writer = TableWriter(node_id, schema, codec, session.segments, session.pool)
    sizes = [state.columns[schema.columns[0].id][p].nrows for p in range(len(state.starts))]
    kept: dict[int, int] = {}
    removed = updated = 0
    try:
        for pos in sorted(changes):
            change = changes[pos]
            pieces = [src.read_piece(s, state.columns[s.id][pos]) for s in schema.columns]
            for j, (rows, values) in change.updates.items():
                pieces[j] = _assigned(pieces[j], rows, values)
            if change.updates:
                updated += len(next(iter(change.updates.values()))[0])
            n = sizes[pos]
            if change.keep is not None:
                pieces = [p[change.keep] for p in pieces]
                n = int(np.count_nonzero(change.keep))
                removed += sizes[pos] - n
            kept[pos] = n
            if n:
                writer.add(pieces, n)
                writer.flush_compressed()
    except BaseException:
        session.discard()  # bytes half written: drop all pending work, as a failed append does
        raise
    starts = [int(s) for s in state.starts]  # numpy ints would bind as blobs
    return Edit(node_id, path, state.version, starts, sizes, kept, writer,
                removed, updated)  # fmt: skip


def _assigned(piece: Any, rows: np.ndarray, values: Any) -> Any:
    """``piece`` (values, coded text, or masked) with ``values`` set at ``rows``: a copy."""
    if isinstance(values, Masked) and not isinstance(piece, Masked):  # its first missing value
        piece = Masked(piece, np.ones(len(piece), bool))
    if isinstance(piece, Masked):
        base = piece.values.text() if isinstance(piece.values, Coded) else piece.values
        valid = piece.valid.copy()
        new_valid: Any = True
        new = _text(values)
        if isinstance(values, Masked):
            new, new_valid = _text(values.values), values.valid
        out = _widened(base, new)
        out[rows] = new
        valid[rows] = new_valid
        return Masked(out, valid)
    out = _widened(_text(piece), _text(values))
    out[rows] = _text(values)
    return out


def _text(a: Any) -> Any:
    return a.text() if isinstance(a, Coded) else a


def _widened(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """A copy of ``base`` that holds ``new``'s values too (text as wide as the wider)."""
    if base.dtype.kind == "U" and new.dtype.kind == "U" and new.itemsize > base.itemsize:
        return base.astype(new.dtype)
    return base.copy()


def _check_version(conn: sqlite3.Connection, path: str, node: str, version: int) -> None:
    row = conn.execute("SELECT version FROM nodes WHERE id = ?", (node,)).fetchone()
    if row is None:
        raise NodeError(f"{path} was removed by another process; its edit was not applied")
    if row[0] != version:
        raise NodeError(
            f"{path} was changed by another process after it was edited here (the edit read "
            "an older commit); nothing was committed"
        )


def apply(conn: sqlite3.Connection, commit_id: int, edit: Edit | ColumnEdit) -> None:
    """Inside the commit: apply a planned edit (see the module docstring). ``NodeError`` when
    the table changed since the plan."""
    if isinstance(edit, ColumnEdit):
        _apply_columns(conn, commit_id, edit)
        return
    node = edit.node_id
    _check_version(conn, edit.path, node, edit.version)
    first = min(edit.kept)
    start = edit.starts[first]
    old: dict[str, list[int]] = {}
    for col, index in conn.execute(
        "SELECT col_id, chunk_index FROM chunks WHERE node_id = ? AND retired_commit IS NULL "
        "AND first_row >= ? ORDER BY col_id, first_row",
        (node, start),
    ):
        old.setdefault(col, []).append(index)
    conn.execute(
        "UPDATE chunks SET retired_commit = ? "
        "WHERE node_id = ? AND retired_commit IS NULL AND first_row >= ?",
        (commit_id, node, start),
    )
    index = {col: next_index(conn, node, col) for col in old}
    new_chunks = iter(edit.writer.chunks)
    cursor = start
    for pos in range(first, len(edit.starts)):
        if pos in edit.kept:
            if not edit.kept[pos]:
                continue
            for pc in next(new_chunks):
                assert pc is not None, "an edited chunk's run was not written"
                conn.execute(
                    INSERT_CHUNK, chunk_record(node, pc, index[pc.col_id], cursor, commit_id)
                )
                index[pc.col_id] += 1
            cursor += edit.kept[pos]
        else:
            for col, indexes in old.items():
                conn.execute(_REBASED, (index[col], cursor, commit_id, node, col,
                                        indexes[pos - first]))  # fmt: skip
                index[col] += 1
            cursor += edit.sizes[pos]
    conn.execute(SET_ROWS, (cursor, commit_id, node))
    conn.execute(
        "INSERT OR REPLACE INTO row_edits(node_id, commit_id, removed, updated) "
        "VALUES (?, ?, ?, ?)",
        (node, commit_id, edit.removed, edit.updated),
    )


#: A chunk added again, the same bytes at a new first row.
_REBASED = """
INSERT INTO chunks(node_id, col_id, chunk_index, first_row, nrows, segment, offset, length, crc32,
                   encoding, params, min, max, nan_count, sorted, added_commit, null_count,
                   validity_length)
SELECT node_id, col_id, ?, ?, nrows, segment, offset, length, crc32, encoding, params, min, max,
       nan_count, sorted, ?, null_count, validity_length
FROM chunks WHERE node_id = ? AND col_id = ? AND chunk_index = ?
"""


# -- column changes --------------------------------------------------------------------------------


@dataclass
class ColumnEdit:
    """A table's planned column change: its new schema and, for an added column, its chunks
    (written, one per chunk position); for a removed one, the column whose chunks go."""

    node_id: str
    path: str
    version: int  # the table's version the plan read
    schema: TableSchema  # the table's schema after the change
    starts: list[int]  # first row of each committed chunk
    added: TableWriter | None = None  # the new column's chunks, one per chunk position
    dropped: str | None = None  # id of the removed column


def plan_columns(session: Session, edit: ColumnEdit) -> None:
    """Keep a column change for the commit; one change of rows or columns per table per
    commit, and none while the table has rows appended and not yet committed."""
    if session.edit_of(edit.node_id) is not None:
        raise ColvaultError(
            f"{edit.path} has an uncommitted delete, update or column change: commit() or "
            "abort() it before the next"
        )
    if edit.version < 0:
        raise ColvaultError(
            f"{edit.path} is not committed yet: commit() it before changing its columns (or "
            "create it with them)"
        )
    writer = session.writer(edit.node_id)
    if writer is not None and writer.has_work:
        raise ColvaultError(
            f"{edit.path} has rows appended and not committed: commit() before changing its columns"
        )
    session.add_edit(edit)


def write_column(
    session: Session, node_id: str, spec: ColumnSpec, schema: TableSchema, codec: Codec,
    pieces: Iterator[tuple[Any, int]],
) -> TableWriter:  # fmt: skip
    """The chunks of a new column, one per ``(values, rows)`` piece (one per chunk position),
    written to the session's segment."""
    writer = TableWriter(node_id, TableSchema((spec,), schema.chunk_rows), codec,
                         session.segments, session.pool)  # fmt: skip
    try:
        for values, n in pieces:
            writer.add([values], n)
            writer.flush_compressed()
    except BaseException:
        session.discard()  # bytes half written: drop all pending work, as a failed append does
        raise
    return writer


def _apply_columns(conn: sqlite3.Connection, commit_id: int, edit: ColumnEdit) -> None:
    node = edit.node_id
    _check_version(conn, edit.path, node, edit.version)
    if edit.added is not None:
        for pos, (first, chunk) in enumerate(zip(edit.starts, edit.added.chunks, strict=True)):
            (pc,) = chunk  # the writer's one column
            assert pc is not None, "a new column's run was not written"
            conn.execute(INSERT_CHUNK, chunk_record(node, pc, pos, first, commit_id))
    if edit.dropped is not None:
        conn.execute(
            "UPDATE chunks SET retired_commit = ? "
            "WHERE node_id = ? AND col_id = ? AND retired_commit IS NULL",
            (commit_id, node, edit.dropped),
        )
    since = conn.execute(
        "SELECT since FROM node_versions WHERE id = ? AND until IS NULL", (node,)
    ).fetchone()[0]
    schema = json.dumps(edit.schema.to_json())
    if since == commit_id:
        conn.execute(
            "UPDATE node_versions SET schema = ? WHERE id = ? AND since = ?",
            (schema, node, since),
        )
    else:  # a new version of the node: the commits before read the old schema
        conn.execute(
            "UPDATE node_versions SET until = ? WHERE id = ? AND since = ?",
            (commit_id, node, since),
        )
        conn.execute(
            "INSERT INTO node_versions(id, since, path, kind, schema, options, nrows, version) "
            "SELECT id, ?, path, kind, ?, options, nrows, ? FROM node_versions "
            "WHERE id = ? AND since = ?",
            (commit_id, schema, commit_id, node, since),
        )
    conn.execute("UPDATE node_versions SET version = ? WHERE id = ? AND until IS NULL",
                 (commit_id, node))  # fmt: skip
    conn.execute(
        "INSERT OR REPLACE INTO row_edits(node_id, commit_id, removed, updated) "
        "VALUES (?, ?, 0, 0)",
        (node, commit_id),
    )
