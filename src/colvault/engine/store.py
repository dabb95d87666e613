"""The store: a directory with a catalog, segment files and a lock; the transaction boundary.

Reads see committed data only, each call from a fresh snapshot (``snapshot()`` pins one). Writes
(rows, node changes, sidecar edits) are pending until ``commit()``, which makes them durable and
visible to every process at once, or ``abort()``, which drops them. A ``Store`` is the facade:
what it holds and does lives in its :class:`~colvault.engine.session.Session`.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from . import history, staging
from .catalog import ROOT_ID
from .compact import CompactReport, compact
from .history import Commit
from .names import normalize_path
from .session import MODES, Session
from .sidecars import Attrs, Objects
from .tree import NodeTree
from .verify import VerifyReport, verify_store

__all__ = ["MODES", "Store", "open"]


def open(
    path: str | os.PathLike[str],
    mode: str = "r",
    *,
    trust_pickles: bool = False,
    segment_bytes: int | None = None,
    as_of: int | str | datetime.datetime | None = None,
) -> Store:
    """Open (or create) a store directory.

    ``mode``: ``"r"`` read-only (default), ``"r+"`` read-write (must exist), ``"a"`` read-write
    (created if missing), ``"w"`` create, replacing an existing store (refused while another
    process has it open). ``trust_pickles`` lifts the allow-list of ``node.objects``.
    ``segment_bytes`` sets the size at which segment files roll over.

    ``as_of`` opens the store read-only exactly as it was after a commit: its id (as
    ``commit()`` returns it), a tag (``tag()``), or a time (the last commit at or before it; a
    naive datetime is UTC). Nodes, rows, attrs and objects are those of that commit.

    >>> import colvault, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "lab.colvault")
    >>> with colvault.open(path, "w") as store:
    ...     t = store.create_table("/sensors", {"value": "f8"})
    ...     t.append({"value": [1.0, 2.0]})
    >>> with colvault.open(path) as store:
    ...     store["/sensors"].cols.value[:]
    array([1., 2.])
    """
    return Store(
        os.fspath(path), mode, trust_pickles=trust_pickles, segment_bytes=segment_bytes,
        as_of=as_of,
    )  # fmt: skip


class Store(NodeTree):
    """An open store. Use :func:`colvault.open` to get one; use it as a context manager."""

    def __init__(
        self, path: str, mode: str, *, trust_pickles: bool = False,
        segment_bytes: int | None = None, as_of: Any = None,
    ) -> None:  # fmt: skip
        self._session = Session(
            path, mode, trust_pickles=trust_pickles, segment_bytes=segment_bytes, as_of=as_of
        )

    @property
    def session(self) -> Session:
        """What the store holds (catalog, readers, writers, pending work): colvault's own
        modules work through it."""
        return self._session

    @property
    def path(self) -> str:
        """The store directory, absolute."""
        return self._session.path

    @property
    def mode(self) -> str:
        """The mode it was opened with: ``"r"``, ``"r+"``, ``"a"`` or ``"w"``."""
        return self._session.mode

    @property
    def closed(self) -> bool:
        return self._session.closed

    @property
    def workers(self) -> ThreadPoolExecutor:
        """The store's worker threads: they encode and read chunks, and colvault's importers
        parse there too. One pool, not one per job: on a machine of few cores, the threads
        of two pools spend their time handing the cores to each other.

        For colvault's own jobs: a task here must never wait for another task of this pool (or
        call the store, which may), since with every thread waiting none is left to run the
        tasks they wait for."""
        return self._session.pool

    @property
    def attrs(self) -> Attrs:
        """Key-value metadata of the root group."""
        return Attrs(self._session, ROOT_ID)

    @property
    def objects(self) -> Objects:
        """Pickled objects of the root group."""
        return Objects(self._session, ROOT_ID)

    # -- transactions ----------------------------------------------------------------------------

    @property
    def has_pending(self) -> bool:
        """True when rows, node changes or sidecar edits wait for ``commit()``."""
        return self._session.has_pending

    def commit(self, message: str | None = None) -> int:
        """Make everything pending durable and visible to all processes, atomically; the new
        commit's id (increasing), which ``open(path, as_of=id)`` returns to. ``message`` is
        kept with it (``history()``). With nothing pending no commit is made, and the last
        commit's id is returned."""
        self._session.check_writable()
        return self._session.commit(seal=False, message=message)

    flush = commit

    def commit_staged(self, descriptors: list[dict[str, Any]], message: str | None = None) -> int:
        """Append staged rows (``Table.stage()``'s descriptors, from any process) to their
        tables, in the order given, in one commit with everything else pending; its id.
        ``ColvaultError`` (and nothing committed) when one is not staged any more; ``NodeError``
        when its table was removed or its columns changed."""
        self._session.check_writable()
        self._session.staged.extend(descriptors)
        return self._session.commit(seal=False, message=message)

    def discard_staged(
        self, *, token: str | None = None, descriptors: list[dict[str, Any]] | None = None
    ) -> int:
        """Forget staged rows: those of ``descriptors``, those staged with ``token``, or all;
        how many stagings. ``compact()`` then deletes their bytes. Takes effect at once."""
        self._session.check_writable()
        ids = None if descriptors is None else [d["id"] for d in descriptors]
        with self._session.catalog.write() as conn:
            return staging.discard(conn, token, ids)

    @property
    def as_of(self) -> int | None:
        """The commit this store was opened ``as_of`` (read-only), or None: the latest."""
        return self._session.as_of

    def history(self, path: str | None = None, *, limit: int | None = None) -> list[Commit]:
        """The commits, newest first: id, time (UTC), message and what each changed per node
        (rows added and removed; nodes created, renamed, removed; columns changed). With
        ``path``, only the commits that changed that node or one below it."""
        self._session.check_open()
        with self._session.catalog.read() as conn:
            return history.history(conn, None if path is None else normalize_path(path), limit)

    @property
    def tags(self) -> dict[str, int]:
        """Tag name → commit id, oldest commit first."""
        self._session.check_open()
        with self._session.catalog.read() as conn:
            return history.tags(conn)

    def tag(self, name: str, commit: int | None = None) -> int:
        """Name a commit (the last committed one by default) so that ``open(path,
        as_of=name)`` finds it and ``expire()`` keeps it; the commit's id. Takes effect at once
        (it is not a pending change). ``ColvaultError`` if the name is taken."""
        session = self._session
        session.check_writable()
        with session.catalog.write() as conn:
            target = history.resolve(conn, session.latest_commit() if commit is None else commit,
                                     session.path)  # fmt: skip
            history.set_tag(conn, name, target, session.path)
        return target

    def expire(self, before: int | datetime.datetime, *, keep_tags: bool = True) -> int:
        """Drop the history older than ``before`` (a commit id: the commits before it; a
        datetime: those that landed before it), except the last commit and, with
        ``keep_tags``, tagged ones. ``open(as_of=)`` an expired commit raises ``ColvaultError``
        saying so; ``compact()`` then reclaims the bytes no kept commit names. How many
        commits were expired. Takes effect at once."""
        self._session.check_writable()
        with self._session.catalog.write() as conn:
            return history.expire(conn, before, keep_tags)

    def remove_tag(self, name: str) -> None:
        """Drop a tag (the commit stays, until expired); ``KeyError`` if there is none."""
        self._session.check_writable()
        with self._session.catalog.write() as conn:
            history.remove_tag(conn, name, self._session.path)

    def abort(self) -> None:
        """Discard everything pending (rows, node changes, sidecar edits)."""
        self._session.check_open()
        self._session.discard()

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Pin one committed snapshot for all reads inside the block (re-entrant)."""
        with self._session.snapshot():
            yield self

    def close(self) -> None:
        """Commit pending work (as PyTables' ``close`` flushes), then release everything."""
        if self._session.closed:
            return
        try:
            if self.mode != "r":
                self._session.commit(seal=True)
        finally:
            self._session.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._session.closed:
            return
        if exc_type is not None:
            try:
                self._session.discard()
            finally:
                self._session.release()
        else:
            self.close()

    def compact(self) -> CompactReport:
        """Reclaim the bytes no kept commit names (history is kept until ``expire()``d);
        re-cut tables left with short chunks, keeping what every kept commit saw.

        Needs the store to itself (``LockError`` if another process has it open) and no
        pending changes. Crash-safe: an interrupted compaction leaves the store as before or
        after it, never in between.
        """
        return compact(self._session)

    # -- inspection ------------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check every committed chunk's checksum and the manifest invariants."""
        self._session.check_open()
        with self._session.snapshot():
            return verify_store(self._session)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"mode {self.mode!r}"
        if self.as_of is not None and not self.closed:
            state += f", as of commit {self.as_of}"
        return f"<colvault.Store {self.path} ({state})>"
