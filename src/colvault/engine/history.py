"""Commits as a history: what each changed, names for them (tags), finding one by id, tag or
time, and forgetting old ones.

Every row of ``node_versions``, ``sidecar_versions`` and ``chunks`` carries the commit that
added it and the commit that retired it (``since``/``until``, ``added_commit``/
``retired_commit``): a change adds rows and closes the ones it replaces, never overwrites them
(:mod:`.pending`, :mod:`.writer`). So what a commit changed is read from the rows it added and
closed, and the store as it was after a commit is the rows live at its id (:mod:`.pastview`).
A commit stays readable while its row in ``commits`` exists: ``expire()`` deletes rows, and
``compact()`` then drops the versions no kept commit sees.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from typing import Any

from ..errors import ColvaultError
from .catalog import ROOT_ID


def seen(added: str, retired: str) -> str:
    """SQL: a row some kept commit sees: live, or retired after a kept commit at or after the
    one that added it (``added``, ``retired``: its columns)."""
    return (
        f"({retired} IS NULL OR EXISTS (SELECT 1 FROM commits k "
        f"WHERE k.id >= {added} AND k.id < {retired}))"
    )


#: SQL: a chunk row some kept commit sees.
NEEDED = seen("added_commit", "retired_commit")


@dataclasses.dataclass(frozen=True)
class NodeChange:
    """What one commit did to one node."""

    path: str  #: the node's path after the commit (before it, for a removal)
    kind: str  #: ``"group"``, ``"table"`` or ``"array"``
    #: ``"created"``, ``"removed"``, ``"renamed"`` or ``"changed"`` (rows or columns)
    action: str
    rows_added: int = 0
    rows_removed: int = 0
    #: for ``"renamed"``: where the node was before
    old_path: str | None = None
    #: whether the node's columns (names, types, order) changed
    columns_changed: bool = False
    #: rows whose values an update set (``update_where``, ``modify_*``)
    rows_updated: int = 0
    #: whether the node's ``attrs`` or ``objects`` changed
    attrs_changed: bool = False


@dataclasses.dataclass(frozen=True)
class Commit:
    """A commit as :meth:`Store.history` lists it."""

    id: int
    time: dt.datetime  #: when it landed, in UTC
    message: str | None
    changes: tuple[NodeChange, ...]


def history(
    conn: sqlite3.Connection, path: str | None = None, limit: int | None = None
) -> list[Commit]:
    """The commits newest first, each with its changes per node (the root group left out);
    with ``path``, only commits that changed that node or a node below it (by its path at the
    time); at most ``limit`` of them."""
    commits = conn.execute("SELECT id, time, message FROM commits ORDER BY id DESC").fetchall()
    versions: dict[str, list[tuple[Any, ...]]] = {}
    for row in conn.execute(
        "SELECT id, since, until, path, kind, schema FROM node_versions WHERE id != ? "
        "ORDER BY id, since",
        (ROOT_ID,),
    ):
        versions.setdefault(row[0], []).append(row[1:])
    added, gone = _rows_by_commit(conn, versions)
    changes: dict[int, list[NodeChange]] = {}
    for node_id, rows in versions.items():
        for i, (since, until, where, kind, schema) in enumerate(rows):
            before = rows[i - 1] if i and rows[i - 1][1] == since else None
            columns = before is not None and _columns(schema) != _columns(before[4])
            if before is None:
                action, old = "created", None
            elif before[2] != where:
                action, old = "renamed", before[2]
            else:
                action, old = "changed", None
            n_in = added.pop((node_id, since), 0)
            n_out = gone.pop((node_id, since), 0)
            if action != "changed" or columns or n_in or n_out:
                change = NodeChange(where, kind, action, n_in, n_out, old, columns)
                changes.setdefault(since, []).append(change)
            successor = i + 1 < len(rows) and rows[i + 1][0] == until
            if until is not None and not successor:
                change = NodeChange(
                    where, kind, "removed", rows_removed=gone.pop((node_id, until), 0)
                )
                changes.setdefault(until, []).append(change)
    for (node_id, commit_id), n in added.items():  # appends: the node's version is older
        if node_id in versions:
            where, kind = _version_at(versions[node_id], commit_id)
            change = NodeChange(where, kind, "changed", n, gone.pop((node_id, commit_id), 0))
            changes.setdefault(commit_id, []).append(change)
    for node_id, commit_id, updated in conn.execute(
        "SELECT node_id, commit_id, updated FROM row_edits WHERE updated > 0"
    ):
        for i, change in enumerate(changes.get(commit_id, ())):
            if (
                versions.get(node_id)
                and change.path == _version_at(versions[node_id], commit_id)[0]
            ):
                changes[commit_id][i] = dataclasses.replace(change, rows_updated=updated)
    _mark_sidecars(conn, versions, changes)
    out = []
    for commit_id, stamp, message in commits:
        found = sorted(changes.get(commit_id, ()), key=lambda c: (c.path, c.action))
        if not found and message is None:
            continue  # bookkeeping (segments sealed when a store closed): no change to list
        if path is not None:
            found = [c for c in found if _under(c, path)]
            if not found:
                continue
        when = dt.datetime.fromtimestamp(stamp, dt.UTC)
        out.append(Commit(commit_id, when, message, tuple(found)))
        if limit is not None and len(out) >= limit:
            break
    return out


def _mark_sidecars(
    conn: sqlite3.Connection, versions: dict[str, list[tuple[Any, ...]]],
    changes: dict[int, list[NodeChange]],
) -> None:  # fmt: skip
    """Flag the changes of commits that set or deleted attrs or objects (a node whose only
    change that was gets a change of its own; the root group's path is ``/``)."""
    for node_id, commit_id in conn.execute(
        "SELECT node_id, since FROM sidecar_versions UNION "
        "SELECT node_id, until FROM sidecar_versions WHERE until IS NOT NULL"
    ):
        if node_id == ROOT_ID:
            where, kind = "/", "group"
        elif node_id in versions:
            where, kind = _version_at(versions[node_id], commit_id)
        else:
            continue
        found = changes.setdefault(commit_id, [])
        for i, change in enumerate(found):
            if change.path == where:
                found[i] = dataclasses.replace(change, attrs_changed=True)
                break
        else:
            found.append(NodeChange(where, kind, "changed", attrs_changed=True))


def _rows_by_commit(
    conn: sqlite3.Connection, versions: dict[str, list[tuple[Any, ...]]]
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """Rows each commit added to and retired from each table: its first column's chunks (a
    chunk grown in place is retired and added again, so the difference is what was added)."""
    first = {}
    for node_id, rows in versions.items():
        cols = _columns(rows[-1][4])
        if cols:
            first[node_id] = cols[0][3]
    added: dict[tuple[str, int], int] = {}
    gone: dict[tuple[str, int], int] = {}
    for node_id, col_id, commit_id, n, retired in conn.execute(
        "SELECT node_id, col_id, added_commit, SUM(nrows), 0 FROM chunks "
        "GROUP BY node_id, col_id, added_commit UNION ALL "
        "SELECT node_id, col_id, retired_commit, SUM(nrows), 1 FROM chunks "
        "WHERE retired_commit IS NOT NULL GROUP BY node_id, col_id, retired_commit"
    ):
        if first.get(node_id) == col_id:
            side = gone if retired else added
            side[(node_id, commit_id)] = n
    for key in set(added) & set(gone):
        a, g = added[key], gone[key]
        added[key], gone[key] = max(a - g, 0), max(g - a, 0)
    return added, gone


def _version_at(rows: list[tuple[Any, ...]], commit_id: int) -> tuple[str, str]:
    """(path, kind) of the node's version live at ``commit_id``."""
    for since, until, where, kind, _ in rows:
        if since <= commit_id and (until is None or until > commit_id):
            return where, kind
    return rows[-1][2], rows[-1][3]


def _columns(schema: str | None) -> Any:
    if schema is None:
        return None
    return [(c["name"], c["dtype"], c.get("shape"), c["id"]) for c in json.loads(schema)["columns"]]


def _under(change: NodeChange, top: str) -> bool:
    return any(
        p is not None and (p == top or top == "/" or p.startswith(top + "/"))
        for p in (change.path, change.old_path)
    )


# -- finding a commit ------------------------------------------------------------------------------


def resolve(conn: sqlite3.Connection, as_of: Any, store: str) -> int:
    """The id of the commit ``as_of`` names: an id, a tag, or a time (the last commit at or
    before it; a naive datetime is taken as UTC). ``ColvaultError`` when there is none, or
    when its history was expired."""
    latest, oldest = conn.execute("SELECT MAX(id), MIN(id) FROM commits").fetchone()
    if isinstance(as_of, bool):
        raise TypeError(f"as_of takes a commit id, a tag or a datetime, not {as_of!r}")
    if isinstance(as_of, int):
        commit_id = as_of
    elif isinstance(as_of, str):
        row = conn.execute("SELECT commit_id FROM tags WHERE name = ?", (as_of,)).fetchone()
        if row is None:
            raise ColvaultError(f"{store} has no tag {as_of!r}")
        commit_id = row[0]
    elif isinstance(as_of, dt.datetime):
        when = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
        # within the datetime's microsecond: history() gives times cut to microseconds
        stamp = when.timestamp() + 1e-6
        row = conn.execute("SELECT MAX(id) FROM commits WHERE time < ?", (stamp,)).fetchone()
        if row[0] is None:
            first = dt.datetime.fromtimestamp(
                conn.execute("SELECT MIN(time) FROM commits").fetchone()[0], dt.UTC
            )
            raise ColvaultError(
                f"{store} has no commit at or before {when.isoformat()} (its oldest kept "
                f"commit is of {first.isoformat()})"
            )
        commit_id = row[0]
    else:
        raise TypeError(f"as_of takes a commit id, a tag or a datetime, not {as_of!r}")
    if commit_id > latest or commit_id < 1:
        raise ColvaultError(f"{store} has no commit {commit_id} (its last is {latest})")
    if not conn.execute("SELECT 1 FROM commits WHERE id = ?", (commit_id,)).fetchone():
        raise ColvaultError(
            f"commit {commit_id} of {store} was expired: its history is gone (the oldest kept "
            f"commit is {oldest})"
        )
    return int(commit_id)


# -- tags ------------------------------------------------------------------------------------------


def tags(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT name, commit_id FROM tags ORDER BY commit_id, name"))


def set_tag(conn: sqlite3.Connection, name: str, commit_id: int, store: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a tag is a non-empty string, not {name!r}")
    if conn.execute("SELECT 1 FROM tags WHERE name = ?", (name,)).fetchone():
        raise ColvaultError(f"{store} already has a tag {name!r} (remove_tag() it first)")
    conn.execute("INSERT INTO tags(name, commit_id) VALUES (?, ?)", (name, commit_id))


def remove_tag(conn: sqlite3.Connection, name: str, store: str) -> None:
    if conn.execute("DELETE FROM tags WHERE name = ?", (name,)).rowcount == 0:
        raise KeyError(f"{store} has no tag {name!r}")


# -- expiry ----------------------------------------------------------------------------------------


def expire(conn: sqlite3.Connection, before: Any, keep_tags: bool) -> int:
    """Forget the commits before ``before`` (a commit id, or a datetime: commits that landed
    earlier), except the last one and, with ``keep_tags``, tagged ones; without it their tags
    go too. How many were expired. Their bytes stay until ``compact()``."""
    if isinstance(before, bool) or not isinstance(before, int | dt.datetime):
        raise TypeError(f"before takes a commit id or a datetime, not {before!r}")
    if isinstance(before, dt.datetime):
        when = before if before.tzinfo else before.replace(tzinfo=dt.UTC)
        cond, arg = "time < ?", when.timestamp()
    else:
        cond, arg = "id < ?", before
    spare = "AND id NOT IN (SELECT commit_id FROM tags)" if keep_tags else ""
    gone = conn.execute(
        f"DELETE FROM commits WHERE {cond} AND id < (SELECT MAX(id) FROM commits) {spare}",
        (arg,),
    ).rowcount
    if not keep_tags:
        conn.execute("DELETE FROM tags WHERE commit_id NOT IN (SELECT id FROM commits)")
    return int(gone)
