"""The catalog as it was after a commit: temporary views that stand in for its tables.

Every row of ``node_versions``, ``sidecar_versions`` and ``chunks`` carries the commit that added
it and the one that retired it (a changed node or sidecar key gets a new row, a chunk grown in
place a new manifest row; the old ones stay). sqlite resolves an unqualified name in the
``temp`` schema first, so views named ``nodes``, ``chunks``, ``sidecars`` and ``commits`` on a
connection make every query the engine runs on it read the rows live at that commit, with no
second set of queries to keep in step. A table's row count then is the sum of its first
column's chunks (the current count is kept in place). The views read ``main``'s indexes, so a
read of the past prunes by zone maps as a read of the present.
"""

from __future__ import annotations

import sqlite3

#: Rows live at commit {c}: added at or before it, retired (or superseded) after it.
_LIVE = "{added} <= {c} AND ({retired} IS NULL OR {retired} > {c})"

_VIEWS = """
CREATE TEMP VIEW commits AS SELECT id, time, message FROM main.commits WHERE id <= {c};
CREATE TEMP VIEW chunks AS
SELECT node_id, col_id, chunk_index, first_row, nrows, segment, offset, length, crc32,
       encoding, params, min, max, nan_count, sorted, added_commit, null_count,
       validity_length, NULL AS retired_commit
FROM main.chunks WHERE {chunks_live};
CREATE TEMP VIEW nodes AS
SELECT n.id, n.path, n.kind, n.schema, n.options,
       (SELECT COALESCE(SUM(c.nrows), 0) FROM chunks c
        WHERE c.node_id = n.id AND c.col_id = json_extract(n.schema, '$.columns[0].id')) AS nrows,
       {c} AS version
FROM main.node_versions n WHERE {nodes_live};
CREATE TEMP VIEW sidecars AS
SELECT node_id, kind, key, value FROM main.sidecar_versions WHERE {nodes_live};
"""


def install(conn: sqlite3.Connection, commit_id: int) -> None:
    """Make ``conn`` read the catalog as it was after ``commit_id`` (a read-only connection:
    writes through the views would fail)."""
    c = int(commit_id)
    conn.execute("PRAGMA temp_store = MEMORY")  # the views' schema: no temporary file (1.4 ms)
    conn.executescript(
        _VIEWS.format(
            c=c,
            chunks_live=_LIVE.format(added="added_commit", retired="retired_commit", c=c),
            nodes_live=_LIVE.format(added="since", retired="until", c=c),
        )
    )
