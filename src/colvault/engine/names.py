"""Node paths and column names (ARCHITECTURE.md "Names")."""

from __future__ import annotations

import re

from ..errors import NodeError, SchemaError

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

#: The deepest node path, in components below the root (``/a/b/t`` has 3). The node index
#: holds every node's full path, so a chain of N nested groups costs O(N**2): its N paths
#: of up to N components are stored, checked and sorted (10,000 levels: a commit took 2.6 s,
#: a ``walk`` 39 s). Real hierarchies are a few levels deep; PyTables warns past 2048.
MAX_PATH_DEPTH = 256
#: The longest node path in characters, normalized (Linux's PATH_MAX); with
#: :data:`MAX_PATH_DEPTH` it bounds the text kept and compared per node.
MAX_PATH_LENGTH = 4096


def normalize_path(path: str) -> str:
    """Return the canonical form of a node path: leading ``/``, no trailing ``/``.

    >>> normalize_path("runs/2025/")
    '/runs/2025'
    """
    if not isinstance(path, str):
        raise NodeError(f"node path must be a str, not {type(path).__name__}")
    if path in ("", "/"):
        return "/"
    body = path.strip("/")
    check_limits("/" + body)
    parts = body.split("/")
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


def check_limits(path: str) -> None:
    """Raise :class:`NodeError` unless a normalized path is within :data:`MAX_PATH_DEPTH`
    components and :data:`MAX_PATH_LENGTH` characters (cheap: no per-component checks).
    Paths a move would give to the nodes below the moved one must pass it too."""
    depth = path.count("/")
    if depth > MAX_PATH_DEPTH:
        raise NodeError(
            f"node path {_shown(path)} has {depth} levels; the limit is {MAX_PATH_DEPTH}"
        )
    if len(path) > MAX_PATH_LENGTH:
        raise NodeError(
            f"node path {_shown(path)} is {len(path)} characters long; the limit is "
            f"{MAX_PATH_LENGTH}"
        )


def _shown(path: str) -> str:
    return repr(path) if len(path) <= 60 else repr(path[:28] + "..." + path[-28:])


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
