"""The store: a directory with a catalog, segment files and a lock; the transaction boundary.

Reads see committed data only, each call from a fresh snapshot (``snapshot()`` pins one). Writes
(rows, node changes, sidecar edits) are pending until ``commit()``, which makes them durable and
visible to every process at once, or ``abort()``, which drops them. See ARCHITECTURE.md
"What a caller sees" and "Commit protocol".
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import (
    ColvaultError,
    CommitError,
    ReadOnlyError,
    StoreClosedError,
    StoreNotFoundError,
)
from . import recovery
from .catalog import (
    ROOT_ID,
    SUPPORTED_FORMATS,
    Catalog,
    remove_abandoned_catalogs,
    what_failed,
)
from .compact import CompactReport, compact
from .locking import StoreLock
from .manifest import ManifestError, NodeState, load_state
from .nodes import DataNode
from .pending import NodeRecord, PendingMeta
from .reading import ChunkSource
from .schema import TableSchema
from .seam import seam
from .segments import SEGMENT_BYTES, SegmentReader
from .sidecars import Attrs, Objects
from .tree import NodeTree
from .verify import VerifyReport, verify_store
from .writer import TableWriter

MODES = ("r", "r+", "a", "w")
#: Threads that issue a commit's fsyncs together (see ``Store._make_durable``).
FSYNC_THREADS = 8
CATALOG = "catalog.sqlite"


def open(
    path: str | os.PathLike[str],
    mode: str = "r",
    *,
    trust_pickles: bool = False,
    segment_bytes: int | None = None,
) -> Store:
    """Open (or create) a store directory.

    ``mode``: ``"r"`` read-only (default), ``"r+"`` read-write (must exist), ``"a"`` read-write
    (created if missing), ``"w"`` create, replacing an existing store (refused while another
    process has it open). ``trust_pickles`` lifts the allow-list of ``node.objects``.
    ``segment_bytes`` sets the size at which segment files roll over.

    >>> import colvault, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "lab.colvault")
    >>> with colvault.open(path, "w") as store:
    ...     t = store.create_table("/sensors", {"value": "f8"})
    ...     t.append({"value": [1.0, 2.0]})
    >>> with colvault.open(path) as store:
    ...     store["/sensors"].cols.value[:]
    array([1., 2.])
    """
    return Store(os.fspath(path), mode, trust_pickles=trust_pickles, segment_bytes=segment_bytes)


def _is_foreign_dir(path: str) -> bool:
    """A non-empty directory without a catalog or lock: ``mode="w"`` must not wipe it."""
    if not os.path.isdir(path) or not os.listdir(path):
        return False
    return not any(os.path.exists(os.path.join(path, n)) for n in (CATALOG, "LOCK"))


class Store(NodeTree):
    """An open store. Use :func:`colvault.open` to get one; use it as a context manager."""

    def __init__(
        self, path: str, mode: str, *, trust_pickles: bool = False, segment_bytes: int | None = None
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.path = os.path.abspath(path)
        self.mode = mode
        self._trust_pickles = trust_pickles
        self._segment_bytes = segment_bytes or SEGMENT_BYTES
        self._closed = True
        catalog = os.path.join(self.path, CATALOG)
        if mode in ("r", "r+") and not os.path.exists(catalog):
            raise StoreNotFoundError(f"no colvault store at {self.path}")
        if mode == "w" and _is_foreign_dir(self.path):
            raise ColvaultError(
                f"{self.path} exists and is not a colvault store; refusing to replace it"
            )
        if mode in ("a", "w"):
            os.makedirs(self.path, exist_ok=True)
        self._lock = StoreLock(self.path)
        try:
            if mode == "w":
                self._lock.exclusive("recreating it with mode='w'")
                self._wipe()
            self._lock.shared()
            if mode in ("a", "w") and not os.path.exists(catalog):
                self._create(catalog)
            self._catalog = Catalog(catalog, writable=mode != "r", store=self.path)
            self._catalog_identity = _identity(os.stat(catalog))
            self._lock_identity = self._lock.identity()
            try:
                self._check_format()
                if mode != "r":
                    with self._catalog.read() as conn:
                        recovery.recover(self.path, conn)
            except BaseException:
                self._catalog.close()
                raise
        except BaseException:
            self._lock.close()
            raise
        self._reader = SegmentReader(self.path)
        self._pool = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), "colvault")
        self._fsync_pool: ThreadPoolExecutor | None = None
        self._pending = PendingMeta()
        self._writers: dict[str, TableWriter] = {}
        self._new_dirs: set[str] = set()
        self._nodes_cache: tuple[int, dict[str, NodeRecord]] | None = None
        self._index_cache: tuple[Any, dict[str, NodeRecord], dict[str, str]] | None = None
        self._states: dict[str, NodeState] = {}
        self._ops_version = 0
        self._closed = False

    def _create(self, catalog: str) -> None:
        try:
            os.makedirs(os.path.join(self.path, "data"), exist_ok=True)
            Catalog.create(catalog)
        except (OSError, sqlite3.Error) as exc:
            raise CommitError(
                f"creating the store {self.path} failed: {what_failed(exc)}; no store was created"
            ) from exc

    def _wipe(self) -> None:
        """Remove catalog and data (never ``LOCK``); the WAL files go before the catalog."""
        for name in (CATALOG + "-wal", CATALOG + "-shm", CATALOG):
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        remove_abandoned_catalogs(self.path)
        shutil.rmtree(os.path.join(self.path, "data"), ignore_errors=True)

    def _check_format(self) -> None:
        with self._catalog.read() as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'")
            if not tables.fetchone()[0]:
                raise self._catalog.damaged(
                    "it has no schema (cut short, or its creation was interrupted by an older "
                    "colvault); restore it from a backup, or open it with mode='w' to start anew"
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None:
            raise self._catalog.damaged("it names no store format")
        if row[0] not in SUPPORTED_FORMATS:
            raise ColvaultError(f"{self.path}: unknown store format {row and row[0]!r}")
        if self.mode != "r":
            self._catalog.upgrade()

    def _check_identity(self) -> None:
        """Refuse to commit into a store that is no longer the one at ``self.path``: with its
        ``LOCK`` deleted, another process can open the path with ``mode="w"`` and wipe it,
        and rows committed into the old, unlinked catalog would be gone for every reader."""
        if self._replaced():
            raise self._replaced_error()

    def _replaced_error(self) -> CommitError:
        return CommitError(
            f"{self.path} is no longer the store this object opened (its LOCK or catalog was "
            "removed or replaced by another process); nothing was committed"
        )

    def _replaced(self) -> bool:
        try:
            lock = _identity(os.stat(self._lock.path))
            cat = _identity(os.stat(self._catalog.path))
        except FileNotFoundError:
            return True
        return lock != self._lock_identity or cat != self._catalog_identity

    # -- state checks ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store {self.path} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.mode == "r":
            raise ReadOnlyError(f"store {self.path} is open read-only (mode='r')")

    def _append(
        self, node: DataNode, arrays: list[np.ndarray], n: int, owned: bool = False
    ) -> None:
        """Buffer validated rows; full chunks are written at once. A failure while writing them
        (a full disk, an interrupt) leaves the writer half-way, so all pending work is dropped."""
        writer = self._writer_for(node)
        try:
            writer.add(arrays, n, owned)
        except BaseException as exc:
            path = node.path  # before the discard, which may take a new node with it
            self._discard()
            if isinstance(exc, OSError) and not isinstance(exc, ColvaultError):
                raise CommitError(
                    f"writing chunks of {path} failed: {what_failed(exc)}; all pending "
                    f"changes of {self.path} were discarded"
                ) from exc
            raise

    def _writer_for(self, node: DataNode) -> TableWriter:
        writer = self._writers.get(node._id)
        if writer is None:
            writer = TableWriter(
                node._id, node._schema, node._codec, self.path, self._new_dirs, self._pool,
                self._segment_bytes,
            )  # fmt: skip
            self._writers[node._id] = writer
        return writer

    def _node_state(self, node_id: str, schema: TableSchema) -> NodeState:
        """The committed manifest of a node, cached until a commit changes it."""
        self._check_open()
        try:
            with self._catalog.read() as conn:
                row = conn.execute("SELECT nrows, version FROM nodes WHERE id = ?", (node_id,))
                found = row.fetchone()
                nrows, version = found if found else (0, -1)
                state = self._states.get(node_id)
                if state is None or state.version != version:
                    names = {c.id: c.name for c in schema.columns}
                    validity = self._catalog.has_validity
                    state = load_state(conn, node_id, names, nrows, version, validity)
                    self._states[node_id] = state
        except ManifestError as exc:  # named outside the read: naming reads the catalog
            raise self._catalog.damaged(f"the manifest of {self._path_of(node_id)}: {exc}") from exc
        return state

    @property
    def workers(self) -> ThreadPoolExecutor:
        """The store's worker threads: they encode and read chunks, and colvault's importers
        parse there too. One pool, not one per job: on a machine of few cores, the threads
        of two pools spend their time handing the cores to each other.

        For colvault's own jobs: a task here must never wait for another task of this pool (or
        call the store, which may), since with every thread waiting none is left to run the
        tasks they wait for."""
        return self._pool

    @property
    def attrs(self) -> Attrs:
        """Key-value metadata of the root group."""
        return Attrs(self, ROOT_ID)

    @property
    def objects(self) -> Objects:
        """Pickled objects of the root group."""
        return Objects(self, ROOT_ID)

    # -- transactions ----------------------------------------------------------------------------

    @property
    def has_pending(self) -> bool:
        """True when rows, node changes or sidecar edits wait for ``commit()``."""
        return bool(self._pending) or any(w.has_work for w in self._writers.values())

    def commit(self) -> None:
        """Make everything pending durable and visible to all processes, atomically."""
        self._check_writable()
        self._commit(seal=False)

    flush = commit

    def _commit(self, seal: bool) -> None:
        if not self.has_pending and not (seal and self._writers):
            return
        # the writers of tables appended to since the last commit (all of them to seal)
        writers = [(k, w) for k, w in self._writers.items() if seal or w.has_work]
        self._catalog.landed = False
        try:
            for _, w in writers:
                w.finish()  # chunks still being encoded, and a new short last chunk
            self._make_durable(writers)  # the chunks written so far
            with self._catalog.commit() as (conn, commit_id):
                self._pending.apply(conn, commit_id)
                for node_id, w in writers:
                    path = self._path_of(node_id)
                    source = ChunkSource(self.path, path, self._reader, None)
                    w.apply(conn, commit_id, path, seal, source.read_piece)
                self._make_durable(writers)  # short last chunks grown or rewritten under the lock
                for _, w in writers:
                    w.register_segments(conn, seal)
                self._check_identity()
        except BaseException as exc:
            landed = self._catalog.landed
            if landed:  # the commit point passed: keep what it names
                self._after_commit(writers, seal)
                raise
            # Unknown: keep the bytes written (a landed commit names them; else recovery cuts
            # them), and drop this object's view of the pending work either way.
            self._discard(truncate=landed is False)
            if not isinstance(exc, CommitError) and self._replaced():
                # e.g. a ChecksumError from merging a tail whose segment the wipe took
                raise self._replaced_error() from exc
            if landed is None:
                raise CommitError(
                    f"commit to {self.path} failed ({what_failed(exc)}) and the catalog could "
                    "not be read to tell whether it landed; reopen the store to see"
                ) from exc
            if isinstance(exc, OSError | sqlite3.Error) and not isinstance(exc, ColvaultError):
                raise CommitError(
                    f"commit to {self.path} failed: {what_failed(exc)}; nothing of it was "
                    "applied and the pending changes were discarded"
                ) from exc
            raise
        self._after_commit(writers, seal)

    def _make_durable(self, writers: list[tuple[str, TableWriter]]) -> None:
        """fsync what the writers appended and the directories of the files and dirs they made.

        The fsyncs are issued together from a small pool: ext4 lets concurrent fsyncs share a
        journal commit (measured here: 4 files and 4 directories, 31 ms one after another, 7 to
        9 ms at once). All of them finish, or the first error is raised, before the caller's
        sqlite COMMIT, so the order among them does not matter."""
        jobs: list[Callable[[], None]] = [job for _, w in writers for job in w.sync_jobs()]
        jobs += [functools.partial(seam().fsync_dir, d) for d in sorted(self._new_dirs)]
        if len(jobs) > 1:
            if self._fsync_pool is None:
                self._fsync_pool = ThreadPoolExecutor(FSYNC_THREADS, "colvault-fsync")
            futures = [self._fsync_pool.submit(job) for job in jobs]
            wait(futures)
            for f in futures:
                f.result()  # the first error, if any
        elif jobs:
            jobs[0]()
        self._new_dirs.clear()

    def _after_commit(self, writers: list[tuple[str, TableWriter]], seal: bool) -> None:
        for _, w in writers:
            w.after_commit(seal)
        self._new_dirs.clear()
        self._pending.clear()
        self._ops_version += 1
        if seal:
            self._writers.clear()

    def abort(self) -> None:
        """Discard everything pending (rows, node changes, sidecar edits)."""
        self._check_open()
        self._discard()

    def _discard(self, truncate: bool = True) -> None:
        """Drop all pending work. Writers are closed (their nodes may be gone with the pending
        creations), after truncating what they wrote unless ``truncate`` is false (a commit
        that may have landed names those bytes). ``_new_dirs`` is kept: directories made for
        the dropped work stay on disk and the next commit that uses them must still make their
        entries durable."""
        for w in self._writers.values():
            if truncate:
                w.rollback()
            w.close()
        self._writers.clear()
        self._pending.clear()
        self._ops_version += 1

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Pin one committed snapshot for all reads inside the block (re-entrant)."""
        self._check_open()
        with self._catalog.pinned():
            yield self

    def close(self) -> None:
        """Commit pending work (as PyTables' ``close`` flushes), then release everything."""
        if self._closed:
            return
        try:
            if self.mode != "r":
                self._commit(seal=True)
        finally:
            self._release()

    def _release(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
        self._pool.shutdown(wait=True)
        if self._fsync_pool is not None:
            self._fsync_pool.shutdown(wait=True)
        self._reader.close()
        self._catalog.close()
        self._lock.close()
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._closed:
            return
        if exc_type is not None:
            try:
                self._discard()
            finally:
                self._release()
        else:
            self.close()

    def compact(self) -> CompactReport:
        """Reclaim retired and unreferenced bytes; re-cut tables left with short chunks.

        Needs the store to itself (``LockError`` if another process has it open) and no
        pending changes. Crash-safe: an interrupted compaction leaves the store as before or
        after it, never in between.
        """
        return compact(self)

    # -- inspection ------------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check every committed chunk's checksum and the manifest invariants."""
        self._check_open()
        with self.snapshot():
            return verify_store(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode {self.mode!r}"
        return f"<colvault.Store {self.path} ({state})>"


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino
