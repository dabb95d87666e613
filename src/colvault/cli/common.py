"""What the commands of ``colvault`` share: naming a store and a node, opening them, the
failures they report in one line, and the values of ``--var``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import numpy as np

from .. import open as open_store
from .history import open_as_of


class Failure(Exception):
    """A failure the command line reports in one line, with exit status 1."""


def one_line(exc: BaseException) -> str:
    """An error's message on one line (what stderr shows)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def progress_wanted(args: argparse.Namespace) -> bool | None:
    """A bar only where someone watches: stdout a terminal and no ``--quiet`` (then, as
    :mod:`colvault.progress` does, after a second, so that short work shows nothing)."""
    if getattr(args, "quiet", False) or getattr(args, "no_progress", False):
        return False
    return None if sys.stdout.isatty() else False


def split_target(text: str) -> tuple[str, str | None]:
    """``STORE[:/path]`` -> (store, node path or None).

    >>> split_target("lab.colvault:/runs/r1")
    ('lab.colvault', '/runs/r1')
    >>> split_target("lab.colvault")
    ('lab.colvault', None)
    """
    store, sep, path = text.rpartition(":")
    if sep and store and path.startswith("/"):
        return store, path
    return text, None


def open_at(path: str, mode: str = "r", as_of: str | None = None) -> Any:
    """The store at ``path`` (as of ``--as-of`` when given); a ``Failure`` when a store to
    read is not there, rather than a new empty one."""
    if mode in ("r", "r+") and not os.path.exists(path):
        raise Failure(f"no store at {path}")
    if as_of is not None:
        return open_as_of(path, as_of)
    return open_store(path, mode)


def node_at(store: Any, path: str | None) -> Any:
    """The node ``path`` names, the root when None."""
    return store.root if path is None else store[path]


def kind_text(node: Any) -> str:
    """A node's kind for a message: "a table", "an array", "a group"."""
    kind = getattr(node, "kind", "group")
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def rows_text(n: int) -> str:
    """A count of rows for a message: "1 row", "2,000 rows"."""
    return f"{n:,} row" + ("" if n == 1 else "s")


def table_at(store: Any, path: str | None) -> Any:
    """The table ``path`` names (a ``Failure`` for no path or another kind of node)."""
    if path is None:
        raise Failure("give the table as STORE:/path")
    node = store[path]
    if getattr(node, "kind", None) != "table":
        raise Failure(f"{path} is {kind_text(node)}, not a table")
    return node


def check_output(path: str, overwrite: bool) -> None:
    """Refuse an existing output file (unless ``overwrite``) or a missing folder up front."""
    if os.path.exists(path) and not overwrite:
        raise Failure(f"{path} exists: pass --overwrite to replace it; nothing was written")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise Failure(f"no folder {folder} for {path}")


def pyarrow_modules() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise Failure(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'colvault[arrow]' (or pyarrow)"
        ) from exc
    return pa, pq


_DIGITS = r"\d+(?:_\d+)*"  # Python's literals: 1_000
_INT = re.compile(rf"[+-]?{_DIGITS}")
_FLOAT = re.compile(rf"[+-]?(?:{_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})(?:[eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?Z?")


def condition_vars(items: list[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` -> an int or float for a decimal number (``1_000`` too), a datetime64
    for an ISO date (``2025-03-01``, ``2025-03-01T12:00``; a final ``Z`` says UTC, which
    datetime64 values are), else the text as given: words numpy would read as dates or
    numbers (``today``, ``now``, ``nan``, ``inf``) stay text."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise Failure(f"--var wants NAME=VALUE, not {item!r}")
        value: Any = text
        if _INT.fullmatch(text):
            value = int(text)
        elif _FLOAT.fullmatch(text):
            value = float(text)
        elif _ISO_DATE.fullmatch(text):
            try:
                value = np.datetime64(text.removesuffix("Z").replace(" ", "T"))
            except ValueError:
                raise Failure(f"--var {name}: {text!r} is not a valid date") from None
        out[name] = value
    return out


class Usage(Exception):
    """A command line that parses but does not make sense: exit status 2."""
