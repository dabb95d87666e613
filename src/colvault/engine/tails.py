"""The short last chunk of a table, and how small commits grow it instead of adding more.

A logger that commits 100 rows a second must not leave a short chunk per commit. The last chunk
of a table written by a small commit is kept raw (uncompressed; a bulk commit packs its own, see
``TableWriter.finish``, and the next small commit rewrites that raw). When it is rewritten (by a
table's second small commit, or behind a chunk that filled), its writer reserves room for a
whole chunk behind it in the active segment (``writer.Slot``); a later commit by that writer
writes its rows right behind the chunk, inside the room, and the chunk's manifest rows are
updated in place (length and crc extended, zone maps merged; its earlier versions are prefixes
of it). Any other writer (or one whose room is gone) rewrites the short chunk together with its
own rows, under the commit lock. Once a chunk is full it is compressed like any other. Each row
is so written about twice, and a table has at most one short chunk per column at its end. A
short chunk with missing values ends with its validity frame, and category text needs its
dictionary, so such a column's short chunk is rewritten with the new rows on its own while the
other columns' grow in place (all stay cut at the same row).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .manifest import ChunkRef, chunk_ref, select_chunks
from .zonemaps import ZoneMap

_TAIL = select_chunks(
    "c.node_id = ? AND c.retired_commit IS NULL AND c.first_row + c.nrows = ? AND c.nrows < ?"
)


@dataclass(frozen=True)
class Tail:
    """The committed short last chunk of every column of a table."""

    first_row: int
    nrows: int
    refs: dict[str, ChunkRef]


def load_tail(
    conn: sqlite3.Connection, node_id: str, nrows: int, chunk_rows: int, col_ids: list[str]
) -> Tail | None:
    """The table's short last chunk, inside the commit transaction; ``None`` if it has none."""
    refs: dict[str, ChunkRef] = {}
    for r in conn.execute(_TAIL, (node_id, nrows, chunk_rows)):
        zone = ZoneMap(r[11], r[12], r[13], None if r[14] is None else bool(r[14]))
        refs[r[0]] = chunk_ref(r, zone)
    if sorted(refs) != sorted(col_ids):
        return None
    first = refs[col_ids[0]]
    return Tail(first.first_row, first.nrows, refs)


def retire(conn: sqlite3.Connection, node_id: str, tail: Tail, commit_id: int) -> None:
    conn.executemany(
        "UPDATE chunks SET retired_commit = ? WHERE node_id = ? AND col_id = ? AND chunk_index = ?",
        [(commit_id, node_id, col, ref.index) for col, ref in tail.refs.items()],
    )
