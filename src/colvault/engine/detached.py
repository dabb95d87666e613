"""A table or array as of one committed snapshot, read from its segment files alone.

What a Dask task carries to a worker, perhaps on another machine: the manifest rows of the
chunks it reads (segment, offset, length, crc, encoding, zone map), the schema and the store's
path. It never opens the catalog: sqlite's WAL mode does not work across machines on a network
file system, and a catalog read per task would be a lock per task. The bytes a committed
manifest names never change (segments are append-only; a chunk that a commit replaces stays
where it was until ``compact()``, which leases hold off: :mod:`.leases`), so every piece reads the
same snapshot whatever commits land meanwhile.

A :class:`DetachedTable` pickles small (no arrays but the chunk start rows) and answers the
reads and queries of a table: ``read_columns``, ``read_where``, ``get_where_list``,
``count_where``, ``where``, ``iter_where``, through the engine's own code paths.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .indexing import RowRange, resolve
from .manifest import NodeState
from .query import api as query_api
from .reading import ChunkSource
from .reads import TableReads
from .records import TableView, pick_specs, records
from .schema import TableSchema
from .segments import SegmentReader
from .zonemaps import decode_bound


class DetachedTable(TableReads):
    """Committed rows of a table (or the cells of an array, as its one column) as of one
    snapshot, or a run of its chunks (:meth:`pieces`), readable without the catalog.

    Made by :meth:`Table.detached() <colvault.Table.detached>`. Row numbers are the piece's
    own, from 0; :attr:`first_row` is where the piece starts in the table.
    """

    def __init__(
        self, store_path: str, node_path: str, schema: TableSchema, state: NodeState,
        first_row: int = 0,
    ) -> None:  # fmt: skip
        self.store_path = os.path.abspath(store_path)
        self.path = node_path
        self._columns = schema
        self._node_state = state
        self.first_row = first_row
        self._reader: SegmentReader | None = None

    @property
    def _schema(self) -> TableSchema:
        return self._columns

    def _view(self) -> TableView:
        return TableView(self.path, self._schema, self._node_state, self._source())

    def _source(self) -> ChunkSource:
        if self._reader is None:
            self._reader = SegmentReader(self.store_path)
        return ChunkSource(self.store_path, self.path, self._reader, None)

    def close(self) -> None:
        """Close the segment files this object opened (reads open them again). A worker
        that kept them open would keep the disk space of files ``compact()`` deleted."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> DetachedTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without open files and what queries derived from the snapshot (compiled
        kernels, arrays)."""
        state = self._node_state
        fresh = NodeState(state.nrows, state.version, state.starts, state.columns)
        return {**self.__dict__, "_node_state": fresh, "_reader": None}

    @property
    def nrows(self) -> int:
        """Rows of this snapshot (or piece)."""
        return self._node_state.nrows

    def __len__(self) -> int:
        return self.nrows

    @property
    def version(self) -> int:
        """The commit that last changed the node's rows as of this snapshot."""
        return self._node_state.version

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk (the last one may hold fewer)."""
        return self._schema.chunk_rows

    @property
    def chunks(self) -> int:
        """How many chunks the rows are cut into."""
        return len(self._node_state.starts)

    @property
    def chunk_starts(self) -> np.ndarray:
        """The first row of each chunk, in the piece's own numbering."""
        return self._node_state.starts.copy()

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """(segment, offset, crc) of every chunk: what names this snapshot's bytes (commit ids
        start again in a store recreated with ``mode="w"``; these do not repeat)."""
        return tuple(
            (r.segment, r.offset, r.crc) for refs in self._node_state.columns.values() for r in refs
        )

    def __dask_tokenize__(self) -> tuple:
        """Dask's key for a piece (without dask: a method it looks for by name)."""
        return (self.store_path, self.path, self.first_row, self.fingerprint())

    @property
    def segments(self) -> frozenset[str]:
        """The segment files (relative to the store) that the rows live in."""
        return frozenset(r.segment for refs in self._node_state.columns.values() for r in refs)

    def pieces(
        self, chunks_per_piece: int, positions: list[int] | None = None,
        can_cut: Callable[[int], bool] | None = None,
    ) -> list[DetachedTable]:  # fmt: skip
        """The rows cut into pieces of at most ``chunks_per_piece`` consecutive chunks; only
        the chunks at ``positions``, when given, e.g. those a condition's zone maps leave
        (:meth:`chunks_left`). A piece never spans a gap, so its rows are consecutive.
        ``can_cut(pos)``: whether a piece may end before chunk ``pos`` (else it grows past
        ``chunks_per_piece``), e.g. only where an index column's values change."""
        if isinstance(chunks_per_piece, bool) or chunks_per_piece < 1:
            raise ValueError(f"chunks_per_piece must be at least 1, not {chunks_per_piece!r}")
        keep = list(range(self.chunks)) if positions is None else sorted(set(positions))
        if keep and (keep[0] < 0 or keep[-1] >= self.chunks):
            raise ValueError(
                f"chunk positions of {self.path} run from 0 to {self.chunks - 1}; "
                f"got {keep[0]}..{keep[-1]}"
            )
        out: list[DetachedTable] = []
        run: list[int] = []
        for pos in keep:
            full = len(run) >= chunks_per_piece and (can_cut is None or can_cut(pos))
            if run and (pos != run[-1] + 1 or full):
                out.append(self._piece(run[0], run[-1] + 1))
                run = []
            run.append(pos)
        if run:
            out.append(self._piece(run[0], run[-1] + 1))
        return out

    def _piece(self, a: int, b: int) -> DetachedTable:
        """Chunks [a, b) as their own snapshot, rows renumbered from 0."""
        state = self._node_state
        first = int(state.starts[a])
        stop = int(state.starts[b]) if b < len(state.starts) else state.nrows
        columns = {
            col: tuple(dataclasses.replace(r, first_row=r.first_row - first) for r in refs[a:b])
            for col, refs in state.columns.items()
        }
        piece = NodeState(stop - first, state.version, state.starts[a:b] - first, columns)
        return DetachedTable(
            self.store_path, self.path, self._schema, piece, self.first_row + first
        )

    def chunks_left(self, cond: str, condvars: Mapping[str, Any] | None = None) -> list[int]:
        """Positions of the chunks a condition's zone maps do not rule out (a bad condition
        raises ``QueryError`` here, before any chunk is read)."""
        return query_api.chunks_left(self._view(), cond, condvars)

    def sorted_bounds(self, column: str) -> list[tuple[Any, Any]] | None:
        """(min, max) of each chunk of ``column`` when its zone maps show the column sorted
        across the whole snapshot (each chunk sorted, no NaN, NaT or missing value, each
        chunk's min at least the previous max); None otherwise."""
        spec = self._schema.column(column)
        bounds: list[tuple[Any, Any]] = []
        for ref in self._node_state.columns[spec.id]:
            zone = ref.zone
            if not zone.sorted or zone.nan_count != 0 or ref.nulls:
                return None
            lo, hi = decode_bound(zone.min, spec), decode_bound(zone.max, spec)
            if lo is None or hi is None or (bounds and lo < bounds[-1][1]):
                return None
            bounds.append((lo, hi))
        return bounds

    def read_columns(
        self, columns: list[str] | None = None, start: int | None = None, stop: int | None = None
    ) -> dict[str, np.ndarray]:
        """Rows ``[start:stop]`` of the columns, each its own array (masked when nullable)."""
        specs = pick_specs(self._schema, columns)
        state = self._node_state
        sel = resolve(slice(start, stop), state.nrows, self.path)
        assert isinstance(sel, RowRange)
        src = self._source()
        return {s.name: src.read_range(state, s, sel.start, sel.stop) for s in specs}

    def read(self, columns: list[str] | None = None) -> np.ndarray:
        """All rows as a structured array (masked when a column is nullable)."""
        specs = pick_specs(self._schema, columns)
        got = self.read_columns([s.name for s in specs])
        return records(specs, [got[s.name] for s in specs])

    def select(
        self, cond: str, condvars: Mapping[str, Any] | None = None, *,
        columns: list[str] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
        """(row numbers, columns) of the rows that satisfy ``cond``, from one scan:
        ``get_where_list`` and ``read_where`` together, each column its own array (masked
        for a nullable one)."""
        return query_api.select(self._view(), cond, condvars, columns=columns)

    def __repr__(self) -> str:
        return (
            f"<DetachedTable {self.path} of {self.store_path}: rows {self.first_row:,}.."
            f"{self.first_row + self.nrows:,} in {self.chunks} chunk(s)>"
        )
