"""Node paths and column names (ARCHITECTURE.md "Names")."""

from __future__ import annotations

import re

from ..errors import NodeError, SchemaError

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def normalize_path(path: str) -> str:
    """Return the canonical form of a node path: leading ``/``, no trailing ``/``.

    >>> normalize_path("runs/2025/")
    '/runs/2025'
    """
    if not isinstance(path, str):
        raise NodeError(f"node path must be a str, not {type(path).__name__}")
    if path in ("", "/"):
        return "/"
    parts = path.strip("/").split("/")
    for part in parts:
        if not part:
            raise NodeError(f"node path {path!r} has an empty component")
        if part in (".", ".."):
            raise NodeError(f"node path {path!r} may not contain {part!r}")
        if not _NAME.fullmatch(part):
            raise NodeError(
                f"node name {part!r} in {path!r} may contain only letters, digits, '_', '-' and '.'"
            )
    return "/" + "/".join(parts)


def parent_of(path: str) -> str:
    """The parent path of a normalized path (``/`` for top-level nodes)."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[1] if path != "/" else "/"


def join(parent: str, name: str) -> str:
    return normalize_path(parent.rstrip("/") + "/" + name)


def check_column_name(name: object) -> str:
    """Column names: any non-empty str without NUL (CSV headers such as ``temp (°C)``)."""
    if not isinstance(name, str):
        raise SchemaError(f"column name must be a str, not {type(name).__name__}: {name!r}")
    if not name or "\x00" in name:
        raise SchemaError(f"column name {name!r} must be non-empty and contain no NUL")
    return name
