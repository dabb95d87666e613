"""Uncommitted metadata of a writing process: node creations, renames, removals, sidecar edits.

The writing process sees these at once (read-your-writes): the node index is the committed one
with the pending operations replayed over it. At commit they are applied, in order, inside the
commit transaction; a conflict with another process's commit (a path taken meanwhile, a node
removed meanwhile) raises ``NodeError`` and the whole commit is rolled back.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..errors import CatalogError, NodeError
from .codec import Codec
from .schema import TableSchema


@dataclass(frozen=True)
class NodeRecord:
    id: str
    path: str
    kind: str  # "group" | "table" | "array"
    schema: str | None = None  # JSON
    options: str | None = None  # JSON
    #: (schema, codec) already parsed, for a record made by this process (a commit of 10,000
    #: new tables parsed them back from JSON 20,000 times)
    parsed: tuple[TableSchema, Codec] | None = field(default=None, compare=False, repr=False)

    def table_schema(self) -> TableSchema:
        """The columns of a table or array (not for a group)."""
        if self.parsed is not None:
            return self.parsed[0]
        assert self.schema is not None
        return TableSchema.from_json(json.loads(self.schema))

    def codec(self) -> Codec:
        """The compression of a table or array (not for a group)."""
        if self.parsed is not None:
            return self.parsed[1]
        assert self.options is not None
        return Codec.from_json(json.loads(self.options))

    def data_parts(self, store: str, path: str) -> tuple[TableSchema, Codec]:
        """(schema, codec) of a table or array at ``path``; ``CatalogError`` naming the node
        when the record is of no known kind or does not decode (a damaged catalog)."""
        if self.kind not in ("table", "array"):
            raise CatalogError(store, f"node {path} is not a table or array ({self.kind!r})")
        try:
            return self.table_schema(), self.codec()
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            raise CatalogError(
                store, f"the record of node {path} does not decode ({exc!r})"
            ) from exc


def in_subtree(path: str, top: str) -> bool:
    return path == top or (path.startswith(top + "/") if top != "/" else True)


def moved(path: str, old: str, new: str) -> str:
    return new + path[len(old) :]


#: Marker for a sidecar key deleted in this transaction.
DELETED = None


class PendingMeta:
    def __init__(self) -> None:
        self.ops: list[tuple[Any, ...]] = []
        self.sidecars: dict[tuple[str, str], dict[str, bytes | None]] = {}

    def __bool__(self) -> bool:
        return bool(self.ops) or any(self.sidecars.values())

    def clear(self) -> None:
        self.ops.clear()
        self.sidecars.clear()

    # -- the overlay -----------------------------------------------------------------------------

    def replay(self, index: dict[str, NodeRecord], by_id: dict[str, str], start: int = 0) -> None:
        """Apply the pending node operations from ``start`` on to a path index (path →
        record) and its inverse (id → path), in place: a process creating many nodes
        applies each once, not all of them again per node."""
        for op in self.ops[start:]:
            if op[0] == "create":
                index[op[1].path] = op[1]
                by_id[op[1].id] = op[1].path
            elif op[0] == "rename":
                _, old, new = op
                for path in [p for p in index if in_subtree(p, old)]:
                    rec = index.pop(path)
                    to = moved(path, old, new)
                    index[to] = NodeRecord(
                        rec.id, to, rec.kind, rec.schema, rec.options, rec.parsed
                    )
                    by_id[rec.id] = to
            else:
                _, top = op
                for path in [p for p in index if in_subtree(p, top)]:
                    del by_id[index.pop(path).id]

    def created_nodes(self) -> set[str]:
        """Ids of the nodes this transaction creates: they have no rows or chunks yet."""
        return {op[1].id for op in self.ops if op[0] == "create"}

    def forget_node(self, node_id: str) -> None:
        for key in [k for k in self.sidecars if k[0] == node_id]:
            del self.sidecars[key]

    # -- commit ----------------------------------------------------------------------------------

    def apply(self, conn: sqlite3.Connection, commit_id: int) -> None:
        """Apply the pending operations inside the commit. A node or sidecar row that changes
        is not overwritten: its version is closed (``until``) and a new one added (``since``),
        so the commits before still read what they saw (:mod:`.history`)."""
        c = commit_id
        for op in self.ops:
            if op[0] == "create":
                rec: NodeRecord = op[1]
                try:
                    conn.execute(
                        "INSERT INTO node_versions(id, since, path, kind, schema, options, "
                        "version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (rec.id, c, rec.path, rec.kind, rec.schema, rec.options, c),
                    )
                except sqlite3.IntegrityError:
                    raise NodeError(
                        f"{rec.path} was created by another process meanwhile"
                    ) from None
            elif op[0] == "rename":
                _, old, new = op
                self._require(conn, old)
                if conn.execute("SELECT 1 FROM nodes WHERE path = ?", (new,)).fetchone():
                    raise NodeError(f"{new} was created by another process meanwhile")
                below = "until IS NULL AND (path = ? OR substr(path, 1, ?) = ?)"
                args = (old, len(old) + 1, old + "/")
                conn.execute(  # versions this commit made: changed in place
                    f"UPDATE node_versions SET path = ? || substr(path, ?) WHERE since = ? "
                    f"AND {below}",
                    (new, len(old) + 1, c, *args),
                )
                conn.execute(  # older ones: closed, and a new version at the new path
                    "INSERT INTO node_versions(id, since, path, kind, schema, options, nrows, "
                    "version) SELECT id, ?, ? || substr(path, ?), kind, schema, options, nrows, "
                    f"version FROM node_versions WHERE since < ? AND {below}",
                    (c, new, len(old) + 1, c, *args),
                )
                conn.execute(
                    f"UPDATE node_versions SET until = ? WHERE since < ? AND {below}",
                    (c, c, *args),
                )
            else:
                _, top = op
                self._require(conn, top)
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM nodes WHERE path = ? OR substr(path, 1, ?) = ?",
                        (top, len(top) + 1, top + "/"),
                    )
                ]
                for node_id in ids:
                    conn.execute(
                        "UPDATE chunks SET retired_commit = ? "
                        "WHERE node_id = ? AND retired_commit IS NULL",
                        (c, node_id),
                    )
                    for table, key in (("sidecar_versions", "node_id"), ("node_versions", "id")):
                        conn.execute(
                            f"DELETE FROM {table} WHERE {key} = ? AND since = ?", (node_id, c)
                        )
                        conn.execute(
                            f"UPDATE {table} SET until = ? WHERE {key} = ? AND until IS NULL",
                            (c, node_id),
                        )
        for (node_id, kind), changes in self.sidecars.items():
            if not changes:
                continue
            if not conn.execute("SELECT 1 FROM nodes WHERE id = ?", (node_id,)).fetchone():
                raise NodeError(f"a node whose {kind} changed was removed by another process")
            for key, value in changes.items():
                where = "node_id = ? AND kind = ? AND key = ?"
                conn.execute(
                    f"DELETE FROM sidecar_versions WHERE {where} AND since = ?",
                    (node_id, kind, key, c),
                )
                conn.execute(
                    f"UPDATE sidecar_versions SET until = ? WHERE {where} AND until IS NULL",
                    (c, node_id, kind, key),
                )
                if value is not DELETED:
                    conn.execute(
                        "INSERT INTO sidecar_versions(node_id, kind, key, since, value) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (node_id, kind, key, c, value),
                    )

    @staticmethod
    def _require(conn: sqlite3.Connection, path: str) -> None:
        if not conn.execute("SELECT 1 FROM nodes WHERE path = ?", (path,)).fetchone():
            raise NodeError(f"{path} was removed or renamed by another process meanwhile")
