"""The catalog: one sqlite database (WAL mode) that indexes everything a reader needs.

It holds the nodes, the chunk manifest, committed row counts, segment states and the sidecars.
It is the only file rewritten in place, and its ``COMMIT`` is the store's commit point. Two
connections: a reader (fresh snapshot per call, or one pinned by ``snapshot()``) and a writer that
only ever runs ``BEGIN IMMEDIATE`` transactions, so commits from many processes serialize.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .seam import seam

FORMAT_VERSION = "1"
ROOT_ID = "0" * 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commits(id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    schema TEXT,
    options TEXT,
    nrows INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0
);
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
    retired_commit INTEGER,
    PRIMARY KEY(node_id, col_id, chunk_index)
);
CREATE INDEX IF NOT EXISTS chunks_segment ON chunks(segment);
CREATE INDEX IF NOT EXISTS chunks_live ON chunks(node_id, col_id, first_row)
    WHERE retired_commit IS NULL;
CREATE TABLE IF NOT EXISTS sidecars(
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY(node_id, kind, key)
);
"""


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60.0, check_same_thread=False)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


class Catalog:
    """The two connections to ``catalog.sqlite`` and the transactions on them."""

    def __init__(self, path: str, writable: bool) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self.reader = _connect(path)
        self.writer = _connect(path) if writable else None
        self._pinned = 0
        #: Whether the last ``write()`` transaction reached its commit point (it may have, even
        #: when an exception such as KeyboardInterrupt arrived right after the COMMIT).
        self.landed = False

    @staticmethod
    def initialize(path: str) -> None:
        """Create the schema and the root group if missing (idempotent, safe to race)."""
        conn = _connect(path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('format', ?)", (FORMAT_VERSION,)
            )
            conn.execute(
                "INSERT OR IGNORE INTO nodes(id, path, kind) VALUES (?, '/', 'group')", (ROOT_ID,)
            )
            if conn.execute("SELECT count(*) FROM commits").fetchone()[0] == 0:
                conn.execute("INSERT INTO commits(time) VALUES (?)", (time.time(),))
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for one read call (or the pinned one inside ``snapshot()``)."""
        with self._rlock:
            if self._pinned:
                yield self.reader
                return
            self.reader.execute("BEGIN")
            try:
                yield self.reader
            finally:
                self.reader.execute("COMMIT")

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold one read transaction across calls (``store.snapshot()``); re-entrant."""
        with self._rlock:
            if not self._pinned:
                self.reader.execute("BEGIN")
                self.reader.execute("SELECT count(*) FROM meta").fetchone()  # start the snapshot
            self._pinned += 1
        try:
            yield
        finally:
            with self._rlock:
                self._pinned -= 1
                if not self._pinned:
                    self.reader.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed through the I/O seam."""
        conn = self.writer
        assert conn is not None, "read-only catalog"
        self.landed = False
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            seam().commit(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            else:
                self.landed = True
            raise
        self.landed = True

    def close(self) -> None:
        self.reader.close()
        if self.writer is not None:
            self.writer.close()
