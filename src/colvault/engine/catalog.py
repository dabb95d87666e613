"""The catalog: one sqlite database (WAL mode) that indexes everything a reader needs.

It holds the nodes, the chunk manifest, committed row counts, segment states and the sidecars.
It is the only file rewritten in place, and its ``COMMIT`` is the store's commit point. Two
connections: a reader (fresh snapshot per call, or one pinned by ``snapshot()``) and a writer that
only ever runs ``BEGIN IMMEDIATE`` transactions, so commits from many processes serialize.

A catalog is created whole under a temporary name and linked into place, so a store is either
absent or has a complete catalog, whatever moment its creating process dies at. Whether a commit
landed is read back from the catalog, never inferred from sqlite's transaction state: on a full
disk sqlite rolls a failed ``COMMIT`` back by itself. sqlite errors that mean damage (a malformed
file, a missing table) become :class:`~colvault.errors.CatalogError`.
"""

from __future__ import annotations

import errno
import glob
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from ..errors import CatalogError, ColvaultError, DiskError, LockError
from .changes import ChangeCounter
from .seam import seam

#: The store format this version writes: segments shared by all columns of all nodes, in one
#: directory, and a catalog that keeps every commit's nodes and sidecars (formats 1 and 2 had a
#: file per column per node per writer, format 3 no history; see ``docs/architecture.md``,
#: "On disk").
FORMAT_VERSION = "4"
#: The formats this version reads and writes.
SUPPORTED_FORMATS = frozenset((FORMAT_VERSION,))
#: Formats of earlier versions, refused with a message that says so: what each lacks.
OLD_FORMATS = {
    "1": "a segment file per column of each table",
    "2": "a segment file per column of each table",
    "3": "no history of commits",
}
ROOT_ID = "0" * 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commits(
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, message TEXT
);
CREATE TABLE IF NOT EXISTS tags(name TEXT PRIMARY KEY, commit_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS node_versions(
    id TEXT NOT NULL,
    since INTEGER NOT NULL,
    until INTEGER,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    schema TEXT,
    options TEXT,
    nrows INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(id, since)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS node_paths ON node_versions(path) WHERE until IS NULL;
CREATE VIEW IF NOT EXISTS nodes AS
SELECT id, path, kind, schema, options, nrows, version FROM node_versions WHERE until IS NULL;
CREATE TABLE IF NOT EXISTS segments(path TEXT PRIMARY KEY, sealed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks(
    node_id TEXT NOT NULL,
    col_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    first_row INTEGER NOT NULL,
    nrows INTEGER NOT NULL,
    segment TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    crc32 INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    params TEXT,
    min BLOB,
    max BLOB,
    nan_count INTEGER,
    sorted INTEGER,
    added_commit INTEGER NOT NULL,
    null_count INTEGER,
    validity_length INTEGER,
    retired_commit INTEGER,
    PRIMARY KEY(node_id, col_id, chunk_index)
);
CREATE INDEX IF NOT EXISTS chunks_segment ON chunks(segment);
CREATE INDEX IF NOT EXISTS chunks_live ON chunks(node_id, col_id, first_row)
    WHERE retired_commit IS NULL;
CREATE TABLE IF NOT EXISTS sidecar_versions(
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    since INTEGER NOT NULL,
    until INTEGER,
    value BLOB NOT NULL,
    PRIMARY KEY(node_id, kind, key, since)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS row_edits(
    node_id TEXT NOT NULL,
    commit_id INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY(node_id, commit_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staged(
    id TEXT PRIMARY KEY,
    token TEXT,
    node_id TEXT NOT NULL,
    segments TEXT NOT NULL,
    descriptor TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS sidecars AS
SELECT node_id, kind, key, value FROM sidecar_versions WHERE until IS NULL;
"""

#: sqlite's primary result codes that say the file is not what it should be.
_DAMAGE_CODES = frozenset(
    getattr(sqlite3, name)
    for name in ("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FORMAT", "SQLITE_SCHEMA",
                 "SQLITE_MISMATCH", "SQLITE_RANGE")
)  # fmt: skip
_BUSY_CODES = frozenset((sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))
#: SQLITE_IOERR_SHMSIZE: no room for the shared-memory file a WAL database needs.
_IOERR_SHMSIZE = 4874
#: Prefix of catalogs being created; what a killed creator leaves (``compact()`` removes them).
CREATING = ".creating-"


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether an sqlite error says the catalog is damaged (rather than busy, full or
    unwritable): corruption codes, and a schema that lacks what every catalog has."""
    if _code(exc) in _DAMAGE_CODES or type(exc) is sqlite3.DatabaseError:
        return True
    text = str(exc)
    return any(w in text for w in ("no such table", "no such column", "malformed"))


def disk_is_full(exc: BaseException) -> bool:
    """Whether an error says the disk (or the user's quota) is full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == _IOERR_SHMSIZE or _code(exc) == sqlite3.SQLITE_FULL
    return False


def what_failed(exc: BaseException) -> str:
    """An I/O error in words a user acts on: a full disk is said so."""
    return f"the disk is full ({exc})" if disk_is_full(exc) else str(exc)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60.0, check_same_thread=False)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def remove_abandoned_catalogs(root: str) -> int:
    """Delete catalogs whose creation a killed process left unfinished (only while the store
    is held exclusively: a live creator's file has the same name pattern)."""
    found = glob.glob(os.path.join(root, CREATING + "*"))
    for name in found:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
    return len(found)


@contextmanager
def _immediate(
    conn: sqlite3.Connection,
    changes: ChangeCounter | None,
    failed: Callable[[], None] | None = None,
) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction, committed through the I/O seam when the block
    ends and rolled back if it raises; ``failed`` runs when the COMMIT itself fails. The
    store's change counter moves around the COMMIT (:mod:`.changes`)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if changes is not None:
        changes.begin()
    try:
        seam().commit(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if failed is not None:
            failed()
        raise
    finally:
        if changes is not None:
            changes.end()


class Catalog:
    """The two connections to ``catalog.sqlite`` and the transactions on them."""

    def __init__(
        self, path: str, writable: bool, store: str, changes: ChangeCounter | None = None
    ) -> None:
        self.path = path
        self.store = store  # named in errors
        #: moved by every write transaction, so that readers can trust what they cached
        self.changes = changes
        self._rlock = threading.RLock()
        self._pinned = 0
        #: Whether the last ``commit()`` transaction reached its commit point: True, False, or
        #: None when that could not be read back (it may have landed, even when an exception
        #: such as KeyboardInterrupt arrived right after the COMMIT).
        self.landed: bool | None = False
        self.writer: sqlite3.Connection | None = None
        with self.translated():
            self.reader = _connect(path)
            self.writer = _connect(path) if writable else None

    # -- creation --------------------------------------------------------------------------------

    @staticmethod
    def create(path: str) -> None:
        """Create a whole catalog at ``path`` unless one exists (safe to race).

        It is built and made durable under a temporary name, then hard-linked into place,
        which fails if another process got there first: ``path`` never names a catalog
        without its schema, root group and first commit."""
        directory = os.path.dirname(path)
        temp = os.path.join(directory, f"{CREATING}{uuid.uuid4().hex}.sqlite")
        try:
            conn = _connect(temp)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
                conn.execute("INSERT INTO meta(key, value) VALUES ('format', ?)", (FORMAT_VERSION,))
                conn.execute(
                    "INSERT INTO commits(time, message) VALUES (?, 'created')", (time.time(),)
                )
                conn.execute(
                    "INSERT INTO node_versions(id, since, path, kind) VALUES (?, 1, '/', 'group')",
                    (ROOT_ID,),
                )
                conn.execute("COMMIT")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the main file
            finally:
                conn.close()
            fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                seam().fsync(fd, temp)
            finally:
                os.close(fd)
            try:
                seam().link(temp, path)
            except FileExistsError:
                pass  # another process created it meanwhile: theirs stands
            seam().fsync_dir(directory)
        finally:
            for name in (temp, temp + "-wal", temp + "-shm"):
                try:
                    os.unlink(name)
                except FileNotFoundError:
                    pass

    # -- errors ----------------------------------------------------------------------------------

    def damaged(self, detail: str) -> CatalogError:
        return CatalogError(self.store, detail)

    def translate(self, exc: sqlite3.Error) -> ColvaultError | None:
        """The colvault error an sqlite error stands for, or None for errors of the disk (full,
        I/O, permissions), which the caller reports in its own terms."""
        if disk_is_full(exc):
            return None
        if is_damage(exc):
            return self.damaged(f"{exc} ({self.path})")
        if _code(exc) in _BUSY_CODES:
            return LockError(f"the catalog of {self.store} stayed locked by another process: {exc}")
        return None

    def colvault_error(self, exc: Exception, disk_errors_too: bool = True) -> Exception:
        """The error to raise for ``exc`` met on the catalog: sqlite errors become colvault
        errors, errors of the disk ``DiskError`` too unless ``disk_errors_too`` is false (a
        commit words its own); anything else is ``exc`` itself."""
        if isinstance(exc, UnicodeDecodeError):  # sqlite's message quotes damaged bytes
            return self.damaged(f"sqlite reports an error in undecodable text ({self.path})")
        if not isinstance(exc, sqlite3.Error):
            return exc
        new = self.translate(exc)
        if new is None and disk_errors_too:
            new = DiskError(f"the catalog of {self.store} cannot be read: {what_failed(exc)}")
        return exc if new is None else new

    @contextmanager
    def translated(self, disk_errors_too: bool = True) -> Iterator[None]:
        """Raise errors inside the block as :meth:`colvault_error` says."""
        try:
            yield
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            self._reraise(exc, disk_errors_too)

    def _reraise(self, exc: Exception, disk_errors_too: bool = True) -> NoReturn:
        """Raise ``exc`` as :meth:`colvault_error` says (itself, or a ColvaultError from it)."""
        new = self.colvault_error(exc, disk_errors_too)
        if new is exc:
            raise exc
        raise new from exc

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for one read call (or the pinned one inside ``snapshot()``)."""
        with self._rlock:  # the errors translated in place: this is on every read's path
            try:
                if self._pinned:
                    yield self.reader
                    return
                self.reader.execute("BEGIN")
                try:
                    yield self.reader
                finally:
                    if self.reader.in_transaction:
                        self.reader.execute("COMMIT")
            except (sqlite3.Error, UnicodeDecodeError) as exc:
                self._reraise(exc)

    def read_value(self, sql: str) -> Any:
        """The first value of one statement's first row: a statement is a snapshot of its own,
        so no BEGIN and COMMIT round trips (inside ``snapshot()``, the pinned one)."""
        with self._rlock:
            try:
                row = self.reader.execute(sql).fetchone()
            except (sqlite3.Error, UnicodeDecodeError) as exc:
                self._reraise(exc)
        return None if row is None else row[0]

    @property
    def is_pinned(self) -> bool:
        """Inside ``snapshot()``: reads see the pinned snapshot, which caches must not stamp."""
        return self._pinned > 0

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold one read transaction across calls (``store.snapshot()``); re-entrant."""
        with self._rlock, self.translated():
            if not self._pinned:
                self.reader.execute("BEGIN")
                self.reader.execute("SELECT count(*) FROM meta").fetchone()  # start the snapshot
            self._pinned += 1
        try:
            yield
        finally:
            with self._rlock, self.translated():
                self._pinned -= 1
                if not self._pinned and self.reader.in_transaction:
                    self.reader.execute("COMMIT")

    @contextmanager
    def commit(self, message: str | None = None) -> Iterator[tuple[sqlite3.Connection, int]]:
        """One ``BEGIN IMMEDIATE`` transaction that adds a row (with ``message``) to
        ``commits``; yields the connection and that row's id, and commits through the I/O seam
        when the block ends.

        ``landed`` says afterwards whether the commit point was passed. On a failure it is
        read back: the row this transaction added (its id and a time no other commit shares)
        is there or not."""
        conn = self.writer
        assert conn is not None, "read-only catalog"
        self.landed = False
        with self.translated(disk_errors_too=False):
            stamp = time.time()
            made: list[int] = []

            def landed() -> None:  # the COMMIT failed: did it land all the same?
                self.landed = self._landed(made[0], stamp)

            with _immediate(conn, self.changes, landed):
                commit_id = conn.execute(
                    "INSERT INTO commits(time, message) VALUES (?, ?)", (stamp, message)
                ).lastrowid
                assert commit_id is not None
                made.append(commit_id)
                yield conn, commit_id
            self.landed = True

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that is not a commit of data (tags, expiry): no row in
        ``commits``, so readers' snapshots stay valid."""
        conn = self.writer
        assert conn is not None, "read-only catalog"
        with self.translated(), _immediate(conn, self.changes):
            yield conn

    def _landed(self, commit_id: int, stamp: float) -> bool | None:
        """Whether the commit row ``(commit_id, stamp)`` is in the committed catalog; None when
        the catalog cannot be read to tell."""
        for conn in (self.writer, self.reader):
            assert conn is not None
            try:
                if conn.in_transaction:
                    continue
                row = conn.execute("SELECT time FROM commits WHERE id = ?", (commit_id,)).fetchone()
            except sqlite3.Error:
                continue
            return row is not None and row[0] == stamp
        return None

    def integrity(self) -> list[str]:
        """What ``PRAGMA integrity_check`` finds wrong with the catalog file (empty: nothing)."""
        with self._rlock:
            try:
                rows = self.reader.execute("PRAGMA integrity_check").fetchall()
            except sqlite3.Error as exc:
                return [str(exc)]
        found = [str(r[0]) for r in rows]
        return [] if found == ["ok"] else found

    def close(self) -> None:
        self.reader.close()
        if self.writer is not None:
            self.writer.close()
