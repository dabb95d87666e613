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

import contextlib
import errno
import json
import math
import os
import socket
import time
import uuid
import warnings
from collections.abc import Iterable

from ..errors import ColvaultError
from .seam import seam

LEASES = "leases"


#: A lease file that cannot be parsed is taken to hold everything (its segments are unknown)
#: until it is this old; then it holds nothing and ``compact()`` deletes it.
MALFORMED_GRACE = 7 * 24 * 3600.0
#: A temporary lease file (a writer crashed before renaming it) is deleted after this long.
TMP_GRACE = 24 * 3600.0
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def take(root: str, segments: Iterable[str], seconds: float) -> str | None:
    """Hold ``segments`` (paths relative to the store root) for ``seconds``; the lease file's
    path. Written whole (a temporary file renamed into place) and fsynced: a lease that is seen
    is complete. On a store that cannot be written (read-only media, no permission) nobody can
    compact it either: no lease, a warning, None. Expired leases are removed on the way."""
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
        if exc.errno in _READ_ONLY:
            warnings.warn(
                f"no lease on {root} ({exc.strerror}): a store that cannot be written cannot "
                "be compacted under the computation either",
                stacklevel=3,
            )
            return None
        raise ColvaultError(
            f"cannot write a lease in {directory} ({exc.strerror or exc}): without one, "
            "compact() may delete segments the computation reads; pass lease=0 to go without"
        ) from None
    remove_expired(root)
    return path


def release(path: str) -> None:
    """End a lease before it expires (nothing happens if it is gone already)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def held(root: str, now: float | None = None) -> set[str] | None:
    """Segments named by the leases that have not expired; None when a lease could not be
    read (an I/O error, a file not yet a week old that does not parse): then every
    unreferenced segment must be kept, as its list is unknown."""
    now = time.time() if now is None else now
    out: set[str] = set()
    for path in _files(root):
        try:
            body = _read(path)
        except FileNotFoundError:
            continue  # released meanwhile
        except OSError:
            return None
        if body is None:
            if _age(path, now) < MALFORMED_GRACE:
                return None
            continue
        if body["expires"] > now:
            out.update(body["segments"])
    return out


def remove_expired(root: str, now: float | None = None) -> int:
    """Delete expired leases, malformed ones older than :data:`MALFORMED_GRACE` and temporary
    ones older than :data:`TMP_GRACE` (best effort: what cannot be read stays); how many."""
    now = time.time() if now is None else now
    removed = 0
    for path in _files(root, ".json.tmp"):
        if _age(path, now) > TMP_GRACE:
            release(path)
            removed += 1
    for path in _files(root):
        try:
            body = _read(path)
        except OSError:
            continue
        if (body is None and _age(path, now) > MALFORMED_GRACE) or (
            body is not None and body["expires"] <= now
        ):
            release(path)
            removed += 1
    return removed


def _age(path: str, now: float) -> float:
    try:
        return now - os.stat(path).st_mtime
    except OSError:
        return 0.0


def _files(root: str, suffix: str = ".json") -> list[str]:
    directory = os.path.join(root, LEASES)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(suffix)]


def _read(path: str) -> dict | None:
    """A lease's body, or None when it does not parse as one (OSError when it cannot be
    read at all)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("expires"), int | float)
        or not math.isfinite(body["expires"])
        or not isinstance(body.get("segments"), list)
        or not all(isinstance(s, str) for s in body["segments"])
    ):
        return None
    return body
