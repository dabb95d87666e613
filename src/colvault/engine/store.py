"""The store: a directory with a catalog, segment files and a lock; the transaction boundary.

Reads see committed data only, each call from a fresh snapshot (``snapshot()`` pins one). Writes
(rows, node changes, sidecar edits) are pending until ``commit()``, which makes them durable and
visible to every process at once, or ``abort()``, which drops them. See ARCHITECTURE.md
"What a caller sees" and "Commit protocol".
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import (
    ColvaultError,
    CommitError,
    NodeError,
    ReadOnlyError,
    StoreClosedError,
    StoreNotFoundError,
)
from . import recovery
from .array import Array
from .catalog import FORMAT_VERSION, ROOT_ID, Catalog
from .codec import Codec
from .locking import StoreLock
from .manifest import NodeState, load_state
from .names import normalize_path, parent_of
from .nodes import DataNode, Group, Node
from .pending import NodeRecord, PendingMeta, in_subtree
from .schema import ColumnSpec, TableSchema, check_dtype, make_schema, new_id, parse_columns
from .seam import seam
from .segments import SEGMENT_BYTES, SegmentReader
from .sidecars import Attrs, Objects
from .table import Table
from .verify import VerifyReport, verify_store
from .writer import TableWriter

MODES = ("r", "r+", "a", "w")
CATALOG = "catalog.sqlite"
_KINDS: dict[str, type[Node]] = {"group": Group, "table": Table, "array": Array}


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


class Store:
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
                os.makedirs(os.path.join(self.path, "data"), exist_ok=True)
                Catalog.initialize(catalog)
                seam().fsync_dir(self.path)
            self._catalog = Catalog(catalog, writable=mode != "r")
            self._check_format()
            if mode != "r":
                recovery.recover(self.path, self._catalog.reader)
        except BaseException:
            self._lock.close()
            raise
        self._reader = SegmentReader(self.path)
        self._pool = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), "colvault")
        self._pending = PendingMeta()
        self._writers: dict[str, TableWriter] = {}
        self._new_dirs: set[str] = set()
        self._nodes_cache: tuple[int, dict[str, NodeRecord]] | None = None
        self._index_cache: tuple[Any, dict[str, NodeRecord], dict[str, str]] | None = None
        self._states: dict[str, NodeState] = {}
        self._ops_version = 0
        self._closed = False

    def _wipe(self) -> None:
        """Remove catalog and data (never ``LOCK``); the WAL files go before the catalog."""
        for name in (CATALOG + "-wal", CATALOG + "-shm", CATALOG):
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        shutil.rmtree(os.path.join(self.path, "data"), ignore_errors=True)

    def _check_format(self) -> None:
        with self._catalog.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None or row[0] != FORMAT_VERSION:
            raise ColvaultError(f"{self.path}: unknown store format {row and row[0]!r}")

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

    # -- the node index --------------------------------------------------------------------------

    def _committed_nodes(self) -> tuple[int, dict[str, NodeRecord]]:
        with self._catalog.read() as conn:
            commit_id = conn.execute("SELECT MAX(id) FROM commits").fetchone()[0]
            if self._nodes_cache is None or self._nodes_cache[0] != commit_id:
                rows = conn.execute("SELECT id, path, kind, schema, options FROM nodes").fetchall()
                self._nodes_cache = (commit_id, {r[1]: NodeRecord(*r) for r in rows})
        return self._nodes_cache

    def _index(self) -> tuple[dict[str, NodeRecord], dict[str, str]]:
        """(path → record, id → path): committed nodes with this process's pending changes."""
        self._check_open()
        commit_id, committed = self._committed_nodes()
        key = (commit_id, self._ops_version)
        if self._index_cache is None or self._index_cache[0] != key:
            index = self._pending.replay(committed)
            self._index_cache = (key, index, {r.id: p for p, r in index.items()})
        return self._index_cache[1], self._index_cache[2]

    def _path_of(self, node_id: str) -> str:
        path = self._index()[1].get(node_id)
        if path is None:
            raise NodeError(f"node {node_id} no longer exists in {self.path}")
        return path

    def _node_record(self, node_id: str) -> NodeRecord:
        return self._index()[0][self._path_of(node_id)]

    def _node_state(self, node_id: str, schema: TableSchema) -> NodeState:
        """The committed manifest of a node, cached until a commit changes it."""
        self._check_open()
        with self._catalog.read() as conn:
            row = conn.execute("SELECT nrows, version FROM nodes WHERE id = ?", (node_id,))
            found = row.fetchone()
            nrows, version = found if found else (0, -1)
            state = self._states.get(node_id)
            if state is None or state.version != version:
                col_ids = [c.id for c in schema.columns]
                state = load_state(conn, node_id, col_ids, nrows, version)
                self._states[node_id] = state
        return state

    def __getitem__(self, path: str) -> Any:
        """The node at ``path`` (a :class:`Group`, :class:`Table` or :class:`Array`)."""
        norm = normalize_path(path)
        rec = self._index()[0].get(norm)
        if rec is None:
            raise NodeError(f"no node {norm} in {self.path}")
        return _KINDS[rec.kind](self, rec)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            return normalize_path(path) in self._index()[0]
        except NodeError:
            return False

    def get(self, path: str, default: Any = None) -> Any:
        return self[path] if path in self else default  # noqa: SIM401

    @property
    def root(self) -> Group:
        return self["/"]

    @property
    def attrs(self) -> Attrs:
        """Key-value metadata of the root group."""
        return Attrs(self, ROOT_ID)

    @property
    def objects(self) -> Objects:
        """Pickled objects of the root group."""
        return Objects(self, ROOT_ID)

    def ls(self, path: str = "/") -> list[str]:
        """Names of the children of a group, sorted."""
        top = normalize_path(path)
        index = self._index()[0]
        if top not in index:
            raise NodeError(f"no node {top} in {self.path}")
        if index[top].kind != "group":
            raise NodeError(f"{top} is a {index[top].kind}, not a group")
        return sorted(p.rsplit("/", 1)[1] for p in index if p != "/" and parent_of(p) == top)

    def walk(self, path: str = "/") -> Iterator[Node]:
        """Every node at or below ``path``, parents before children, sorted by path."""
        top = normalize_path(path)
        index = self._index()[0]
        if top not in index:
            raise NodeError(f"no node {top} in {self.path}")
        for p in sorted((p for p in index if in_subtree(p, top)), key=lambda p: p.split("/")):
            yield self[p]

    # -- creating and changing nodes -------------------------------------------------------------

    def _add_node(self, path: str, kind: str, schema: str | None, options: str | None) -> Node:
        self._check_writable()
        norm = normalize_path(path)
        if norm == "/":
            raise NodeError("the root group always exists")
        index = self._index()[0]
        if norm in index:
            raise NodeError(f"{norm} already exists in {self.path}")
        self._ensure_parents(norm, index)
        rec = NodeRecord(new_id(), norm, kind, schema, options)
        self._pending.ops.append(("create", rec))
        self._ops_version += 1
        return _KINDS[kind](self, rec)

    def _ensure_parents(self, norm: str, index: dict[str, NodeRecord]) -> None:
        missing = []
        parent = parent_of(norm)
        while parent not in index:
            missing.append(parent)
            parent = parent_of(parent)
        if index[parent].kind != "group":
            raise NodeError(f"{parent} is a {index[parent].kind}; it cannot hold {norm}")
        for p in reversed(missing):
            self._pending.ops.append(("create", NodeRecord(new_id(), p, "group")))
        self._ops_version += 1

    def create_group(self, path: str, *, exist_ok: bool = False) -> Group:
        """Create a group (and missing parents)."""
        if exist_ok and path in self:
            node = self[path]
            if isinstance(node, Group):
                return node
        return self._add_node(path, "group", None, None)  # type: ignore[return-value]

    def create_table(
        self,
        path: str,
        schema: Any,
        *,
        codec: str = "lz4",
        clevel: int = 5,
        shuffle: str | None = "auto",
        chunk_rows: int | None = None,
        expected_rows: int | None = None,
    ) -> Table:
        """Create a table from ``{name: dtype}``, ``{name: (dtype, cell_shape)}`` or a
        structured dtype. ``chunk_rows`` defaults to about 1 MiB of the widest column."""
        columns = parse_columns(schema)
        return self._create_data(path, "table", columns, codec, clevel, shuffle, chunk_rows,
                                 expected_rows)  # type: ignore[return-value]  # fmt: skip

    def create_array(
        self,
        path: str,
        dtype: Any,
        *,
        inner_shape: tuple[int, ...] = (),
        codec: str = "lz4",
        clevel: int = 5,
        shuffle: str | None = "auto",
        chunk_rows: int | None = None,
        expected_rows: int | None = None,
    ) -> Array:
        """Create an array extendable along axis 0, with cells of ``inner_shape``."""
        columns = parse_columns({"data": (check_dtype(dtype, f"array {path}"), inner_shape)})
        return self._create_data(path, "array", columns, codec, clevel, shuffle, chunk_rows,
                                 expected_rows)  # type: ignore[return-value]  # fmt: skip

    def _create_data(
        self, path: str, kind: str, columns: list[ColumnSpec], codec: str, clevel: int,
        shuffle: str | None, chunk_rows: int | None, expected_rows: int | None,
    ) -> Node:  # fmt: skip
        options = Codec(codec, clevel, shuffle)
        schema = make_schema(columns, chunk_rows, expected_rows)
        return self._add_node(
            path, kind, json.dumps(schema.to_json()), json.dumps(options.to_json())
        )

    def rename(self, old: str, new: str) -> None:
        """Move a node (and its subtree) to a new path; missing parents are created."""
        self._check_writable()
        old_n, new_n = normalize_path(old), normalize_path(new)
        index = self._index()[0]
        if old_n == "/":
            raise NodeError("the root group cannot be renamed")
        if old_n not in index:
            raise NodeError(f"no node {old_n} in {self.path}")
        if new_n in index:
            raise NodeError(f"{new_n} already exists in {self.path}")
        if in_subtree(new_n, old_n):
            raise NodeError(f"cannot move {old_n} into itself ({new_n})")
        self._ensure_parents(new_n, index)
        self._pending.ops.append(("rename", old_n, new_n))
        self._ops_version += 1

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Remove a node; a group with children needs ``recursive=True``. Uncommitted rows of
        removed tables are dropped; their committed bytes are reclaimed by ``compact()``."""
        self._check_writable()
        norm = normalize_path(path)
        index = self._index()[0]
        if norm == "/":
            raise NodeError("the root group cannot be removed")
        if norm not in index:
            raise NodeError(f"no node {norm} in {self.path}")
        below = [r for p, r in index.items() if in_subtree(p, norm)]
        if len(below) > 1 and not recursive:
            raise NodeError(f"{norm} has children; pass recursive=True to remove them too")
        for rec in below:
            writer = self._writers.pop(rec.id, None)
            if writer is not None:
                writer.rollback()
                writer.close()
            self._pending.forget_node(rec.id)
        self._pending.ops.append(("remove", norm))
        self._ops_version += 1

    def _append(self, node: DataNode, arrays: list[np.ndarray], n: int) -> None:
        """Buffer validated rows; full chunks are written at once. A failure while writing them
        (a full disk, an interrupt) leaves the writer half-way, so all pending work is dropped."""
        writer = self._writer_for(node)
        try:
            writer.add(arrays, n)
        except BaseException as exc:
            self._discard()
            if isinstance(exc, OSError) and not isinstance(exc, ColvaultError):
                raise CommitError(
                    f"writing chunks of {node.path} failed ({exc}); all pending changes of "
                    f"{self.path} were discarded"
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
        writers = list(self._writers.items())
        if not self.has_pending and not (seal and writers):
            return
        self._catalog.landed = False
        try:
            for _, w in writers:
                w.flush_tail()
            for _, w in writers:
                w.sync()
            for d in sorted(self._new_dirs):
                seam().fsync_dir(d)
            with self._catalog.write() as conn:
                commit_id = conn.execute(
                    "INSERT INTO commits(time) VALUES (?)", (time.time(),)
                ).lastrowid
                assert commit_id is not None
                self._pending.apply(conn, commit_id)
                for node_id, w in writers:
                    w.apply(conn, commit_id, self._path_of(node_id), seal)
        except BaseException as exc:
            if self._catalog.landed:  # the commit point passed: keep what it names
                self._after_commit(writers, seal)
                raise
            self._discard()
            if isinstance(exc, OSError | sqlite3.Error) and not isinstance(exc, ColvaultError):
                raise CommitError(
                    f"commit to {self.path} failed ({exc}); nothing of it was applied and the "
                    "pending changes were discarded"
                ) from exc
            raise
        self._after_commit(writers, seal)

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

    def _discard(self) -> None:
        """Drop all pending work. Writers are closed (their nodes may be gone with the pending
        creations); ``_new_dirs`` is kept: directories made for the dropped work stay on disk and
        the next commit that uses them must still make their entries durable."""
        for w in self._writers.values():
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

    # -- inspection ------------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check every committed chunk's checksum and the manifest invariants."""
        self._check_open()
        with self.snapshot():
            return verify_store(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode {self.mode!r}"
        return f"<colvault.Store {self.path} ({state})>"
