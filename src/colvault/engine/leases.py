"""Leases: segment files that ``compact()`` and recovery must leave alone for a while.

A reader that carries a snapshot away from the catalog (a Dask graph, whose tasks read segment
files on other machines) names segments that the catalog may stop naming: ``compact()`` rewrites a
table into new segments and deletes the old ones. A lease is a small JSON file in the store's
``leases/`` directory listing such segments and when the lease expires; until then ``compact()``
keeps those files (the next ``compact()`` after expiry deletes them) and a writable open does not
cut them. The expiry, not a release, ends a lease: the graph's tasks may run on any machine at any
time, and nothing tells the store when the last of them is done. ``release()`` ends one early.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable

from ..errors import ColvaultError
from .seam import seam

LEASES = "leases"


def take(root: str, segments: Iterable[str], seconds: float) -> str:
    """Hold ``segments`` (paths relative to the store root) for ``seconds``; the lease file's
    path. Written whole (a temporary file renamed into place) and fsynced: a lease that is seen
    is complete."""
    directory = os.path.join(root, LEASES)
    body = {
        "expires": time.time() + seconds,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "segments": sorted(set(segments)),
    }
    path = os.path.join(directory, f"{uuid.uuid4().hex}.json")
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        seam().fsync_dir(directory)  # the new name survives a power cut
    except OSError as exc:
        raise ColvaultError(
            f"cannot write a lease in {directory} ({exc.strerror or exc}): without one, "
            "compact() may delete segments the computation reads; pass lease=0 to go without"
        ) from None
    return path


def release(path: str) -> None:
    """End a lease before it expires (nothing happens if it is gone already)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def held(root: str, now: float | None = None) -> set[str]:
    """Segments named by the leases that have not expired. A lease file that cannot be read
    or parsed holds nothing (a damaged lease must not stop compaction forever)."""
    now = time.time() if now is None else now
    out: set[str] = set()
    for path in _files(root):
        body = _read(path)
        if body is not None and body["expires"] > now:
            out.update(body["segments"])
    return out


def remove_expired(root: str, now: float | None = None) -> int:
    """Delete expired and unreadable lease files (``compact()`` does, holding the store
    exclusively); how many."""
    now = time.time() if now is None else now
    removed = 0
    for path in _files(root):
        body = _read(path)
        if body is None or body["expires"] <= now:
            release(path)
            removed += 1
    return removed


def _files(root: str) -> list[str]:
    directory = os.path.join(root, LEASES)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(".json")]


def _read(path: str) -> dict | None:
    try:
        with open(path) as f:
            body = json.load(f)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("expires"), int | float)
        or not isinstance(body.get("segments"), list)
        or not all(isinstance(s, str) for s in body["segments"])
    ):
        return None
    return body
