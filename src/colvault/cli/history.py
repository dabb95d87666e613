"""The history commands of ``colvault``: ``log``, ``tag``, ``expire``, and ``--as-of``.

The parser (:mod:`colvault.cli`) adds ``--as-of`` to the commands that read and calls these.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from .. import open as open_store
from ..engine.history import Commit, NodeChange


def parse_as_of(text: str | None) -> int | str | dt.datetime | None:
    """``--as-of``: a commit id (digits), a time (ISO 8601; naive is UTC), else a tag.

    >>> parse_as_of("12"), parse_as_of("v1")
    (12, 'v1')
    >>> parse_as_of("2026-12-01T10:00:00+00:00")
    datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc)
    """
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text


def add_as_of(p: argparse.ArgumentParser) -> None:
    """The ``--as-of`` option of the commands that read."""
    p.add_argument(
        "--as-of",
        metavar="COMMIT",
        help="read the store as it was after a commit: its id, a tag, or an ISO time",
    )


def describe(change: NodeChange) -> str:
    """One change in words, as ``colvault log`` prints it."""
    what = change.action
    if change.action == "renamed":
        what = f"renamed from {change.old_path}"
    parts = [f"{change.path} ({change.kind}) {what}"]
    if change.rows_added:
        parts.append(f"+{change.rows_added:,} rows")
    if change.rows_removed:
        parts.append(f"-{change.rows_removed:,} rows")
    if change.rows_updated:
        parts.append(f"{change.rows_updated:,} rows updated")
    if change.attrs_changed:
        parts.append("attrs changed")
    if change.columns_changed:
        parts.append("columns changed")
    return ", ".join(parts)


def _as_json(commit: Commit, tags: list[str]) -> dict[str, Any]:
    return {
        "id": commit.id,
        "time": commit.time.isoformat(),
        "message": commit.message,
        "tags": tags,
        "changes": [vars(c) for c in commit.changes],
    }


def log_command(args: argparse.Namespace, store_path: str, node: str | None) -> int:
    """``colvault log STORE[:/path]``: commits newest first, with what each changed."""
    with open_store(store_path) as store:
        commits = store.history(node, limit=args.limit)
        by_commit: dict[int, list[str]] = {}
        for name, commit_id in store.tags.items():
            by_commit.setdefault(commit_id, []).append(name)
    if args.json:
        print(json.dumps([_as_json(c, by_commit.get(c.id, [])) for c in commits], indent=1))
        return 0
    for c in commits:
        tags = f" [{', '.join(by_commit[c.id])}]" if c.id in by_commit else ""
        message = f"  {c.message}" if c.message else ""
        print(f"commit {c.id}{tags}  {c.time.isoformat(timespec='seconds')}{message}")
        for change in c.changes:
            print(f"    {describe(change)}")
    return 0


def tag_command(args: argparse.Namespace) -> int:
    """``colvault tag STORE NAME [--commit ID]`` (or ``--remove``)."""
    with open_store(args.store, "r+") as store:
        if args.remove:
            store.remove_tag(args.name)
            print(f"removed tag {args.name}")
        else:
            commit_id = store.tag(args.name, args.commit)
            print(f"tagged commit {commit_id} {args.name}")
    return 0


def expire_command(args: argparse.Namespace) -> int:
    """``colvault expire STORE --before COMMIT``: forget older commits (then ``compact``)."""
    before = parse_as_of(args.before)
    if before is None or isinstance(before, str):
        raise ValueError(f"--before takes a commit id or an ISO time, not {args.before!r}")
    with open_store(args.store, "r+") as store:
        gone = store.expire(before, keep_tags=not args.drop_tags)
    print(f"expired {gone} commit(s); `colvault compact {args.store}` reclaims their bytes")
    return 0


def open_as_of(path: str, as_of: str | None) -> Any:
    """A store opened read-only, as of ``--as-of`` when given."""
    return open_store(path, "r", as_of=parse_as_of(as_of))
