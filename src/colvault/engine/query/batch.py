"""Scanning many chunks in one jitted call: checksum, decompression and predicate without the GIL.

Per chunk, the Python path makes a handful of short native calls (crc, decompress per column,
kernel), each of which releases and retakes the GIL. Two scanning threads then hand the GIL to
each other many times per chunk, and on a VM each handoff costs tens of microseconds: measured on
the benchmark count, 45 ms on one thread and 52-62 ms on two. Here the executor prepares a batch
of chunks in Python (addresses in the segments' mappings, crcs, frame sizes, per-chunk decimal
thresholds) and one batch-loop call (:func:`colvault.kernels.query.exprgen.scan_loop`, with the
condition's row kernel) does the rest; projections are gathered by
:func:`colvault.kernels.query.native.gather_chunks`, one call per column and batch.

A chunk is batched when every condition column's chunk is a sealed ``blosc2``, ``decimal``,
``for`` or ``delta`` chunk (a decimal chunk the condition compares with constants is scanned on
its integers, its exception rows corrected one by one); raw chunks (a table's short last one),
categories, text, chunks with missing values, sorted-range chunks, active segments and
conditions of more than
:data:`BATCH_COLUMNS` columns or :data:`BATCH_CONSTANTS` constants take the Python path. A
chunk that fails its crc or does not decompress is read again by the Python path, which raises
the ``ChecksumError`` naming it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...kernels.query.scancode import ERR_LOAD, ERR_NEGATIVE_POWER
from ...lazy import kernel_module
from ..buffers import scratch_array
from ..encodings import Blosc2, Decimal, Delta, FrameOfReference
from ..manifest import ChunkRef
from ..schema import ColumnSpec
from .prune import SOME
from .scaled import chunk_thresholds, scalable

if TYPE_CHECKING:
    from ...kernels.query import exprgen, native
    from .execute import Plan
else:
    exprgen = kernel_module("query.exprgen")
    native = kernel_module("query.native")

#: Chunks per task when rows are gathered chunk by chunk (``iter_where``; bounds memory).
SELECT_BATCH = 8
#: Capacity of a thread's positions buffer (int64): a batch loop stops before a chunk that
#: might overflow it and is called again.
SELECT_ROWS = 1 << 20
#: The packed-integer buffer's dtype for a column loaded without one (a scratch buffer that
#: stays unused).
_UNUSED = np.dtype(np.uint8)
#: Conditions whose prepared chunks a snapshot keeps (the oldest is dropped first).
PREPARED_KEPT = 16
#: The most columns and constants a condition's batch loop takes; a larger condition scans
#: chunk by chunk (the Python path), whose kernel compiles much faster. Numba compiles a batch
#: loop (one per column and constant types) in a time that grows faster than its columns
#: (each is loaded, corrected and gathered in code of its own): 10 columns took 18 s, 30 over
#: 10 minutes; and with its constants (900 ended in a RecursionError in Numba after 45 s).
BATCH_COLUMNS = 4
BATCH_CONSTANTS = 16


@dataclass(frozen=True)
class _Load:
    """How a kernel loads one column chunk: buffer dtypes and :data:`native.INFO_FIELDS`."""

    values: str
    packed: str
    info: tuple[int, ...]


@dataclass(frozen=True)
class _Chunk:
    """One chunk as the batch kernels take it."""

    pos: int
    rows: int
    key: tuple[str, ...]  # buffer dtypes (values, packed) per column, then constants' dtypes
    where: tuple[tuple[int, ...], ...]  # per column: its native.INFO_FIELDS
    consts: tuple[Any, ...]


_MISSING = object()


def _load_params(spec: ColumnSpec, ref: ChunkRef) -> tuple[Any, ...] | None:
    """(values dtype, packed dtype, kind, frame, p0, p1, nexc, width) of a sealed chunk that
    :func:`native.load_column` can load, else None."""
    if not native.AVAILABLE or spec.is_category or spec.shape or not _batchable(spec.dtype):
        return None
    values = np.dtype(np.int64) if spec.dtype.kind in "Mm" else spec.dtype
    packed = _UNUSED
    kind, frame, p0, p1, nexc = native.PLAIN, ref.length, 0, 0, 0
    enc = ref.encoding
    if isinstance(enc, Decimal):
        packed, kind, frame = np.dtype(enc.w), native.DECIMAL, enc.clen
        p0, p1, nexc = enc.base, enc.e, enc.nexc
    elif isinstance(enc, FrameOfReference):
        packed, kind, p0 = np.dtype(enc.w), native.FOR, _signed(enc.base)
    elif isinstance(enc, Delta):
        packed, kind = np.dtype(enc.w), native.REGULAR if enc.regular else native.DELTA
        p0, p1 = _signed(enc.first), _signed(enc.step)
        frame = enc.clen if enc.every else ref.length
    elif not isinstance(enc, Blosc2):
        return None
    width = spec.dtype.itemsize if kind == native.DECIMAL else 0
    return values.str, packed.str, kind, frame, p0, p1, nexc, width


class BatchScan:
    """The batchable chunks of one plan, and the kernel calls over them."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        cond = plan.condition
        self.static = cond.predicate.static
        batchable = cond.derived.get("batchable")
        if batchable is None:
            batchable = cond.derived["batchable"] = (
                0 < len(cond.specs) <= BATCH_COLUMNS
                and self.static is not None
                and len(self.static) <= BATCH_CONSTANTS
                and all(_numeric(c) or _set(c) for c in self.static)
                and all(
                    _batchable(s.dtype) and not s.is_category and not s.shape for s in cond.specs
                )
            )
        # numpy evaluates the chunks one by one
        self.usable = native.AVAILABLE and not plan.numpy and batchable
        self._segments: dict[str, tuple[np.ndarray, int] | None] = {}
        self._prepared = self._prepared_cache() if self.usable else {}

    def _prepared_cache(self) -> dict[int, Any]:
        """Prepared chunks of this condition and its constants, kept with the snapshot (for
        a few conditions at a time)."""
        cond = self.plan.condition
        key = cond.derived.get("prepared")
        static = self.static or ()
        if key is None:  # its reprs cost 3 us, as much as a small query's scan
            key = cond.derived["prepared"] = (
                "prepared",
                tuple(s.id for s in cond.specs),
                repr(sorted(cond.scaled.items())),
                repr([(_const_dtype(c), _set_digest(c) if _set(c) else c) for c in static]),
                repr(sorted(cond.constants.items())),
            )
        state = self.plan.state
        cache: dict[int, Any] | None = state.derived.get(key)
        if cache is None:
            cache = state.keep(key, {}, PREPARED_KEPT)
        return cache

    def split(self, positions: Sequence[int]) -> tuple[list[_Chunk], list[int]]:
        """(chunks to batch, positions left to the Python path), both in row order."""
        fast: list[_Chunk] = []
        slow: list[int] = []
        for task in self.iter_tasks(positions, len(positions) or 1):
            if isinstance(task, int):
                slow.append(task)
            else:
                fast += task
        return fast, slow

    def iter_tasks(self, positions: Sequence[int], run: int) -> Iterator[list[_Chunk] | int]:
        """``positions`` in row order as runs of at most ``run`` batchable chunks and single
        positions for the Python path, made one at a time: a pool fed from them starts on the
        first while the rest are prepared."""
        current: list[_Chunk] = []
        for pos in positions:
            chunk = self._prepare(pos) if self.usable else None
            if chunk is not None:
                current.append(chunk)
                if len(current) < run:
                    continue
            if current:
                yield current
                current = []
            if chunk is None:
                yield pos
        if current:
            yield current

    def _segment(self, rel: str) -> tuple[np.ndarray, int] | None:
        if rel not in self._segments:
            arr = self.plan.source.reader.mapped(rel)
            self._segments[rel] = None if arr is None else (arr, arr.ctypes.data)
        return self._segments[rel]

    def column_load(self, spec: ColumnSpec, ref: ChunkRef) -> _Load | None:
        """How a kernel loads one column chunk (:func:`native.load_column`), or None when it
        cannot (a raw or dict chunk, an active segment, a text or shaped column)."""
        if not ref.sealed or ref.nulls:  # missing values: the masked kernel of the Python path
            return None
        # What the chunk's parameters say is kept with the snapshot (the JSON and dtypes cost
        # more than the scan of a chunk's share of a query); the address is this reader's.
        cache = self.plan.state.derived.setdefault(("load", spec.id), {})
        found = cache.get(ref.index, _MISSING)
        if found is _MISSING:
            found = cache[ref.index] = _load_params(spec, ref)
        if found is None:
            return None
        seg = self._segment(ref.segment)
        if seg is None or ref.offset + ref.length > len(seg[0]):
            return None
        self.plan.source.reader.prefetch(ref.segment, ref.offset, ref.length)  # read by address
        values, packed, kind, frame, p0, p1, nexc, width = found
        info = (kind, seg[1] + ref.offset, ref.length, frame, ref.crc, p0, p1, nexc, width)
        return _Load(values, packed, info)

    def _prepare(self, pos: int) -> _Chunk | None:
        plan = self.plan
        if plan.verdicts[pos] != SOME:
            return None
        _, lo, hi = plan.bounds(pos)
        nrows = plan.chunk_rows(pos)
        if lo != 0 or hi != nrows or plan.sorted_chunk(pos):
            return None
        # A chunk prepared for the same condition and constants in this snapshot is taken
        # again (a repeated query); its segments' sizes are checked anew, as on every read.
        found = self._prepared.get(pos, _MISSING)
        if found is _MISSING:  # prepared now: column_load checked the sizes
            found = self._prepared[pos] = self._prepare_chunk(pos, nrows)
            return None if found is None else found[0]
        if found is None:
            return None
        chunk, ends = found
        for rel, end in ends:
            seg = self._segment(rel)
            if seg is None or end > len(seg[0]):
                return None
        return chunk

    def _prepare_chunk(
        self, pos: int, nrows: int
    ) -> tuple[_Chunk, tuple[tuple[str, int], ...]] | None:
        plan = self.plan
        cond = plan.condition
        consts = list(self.static or ())
        key: list[str] = []
        where = []
        ends = []  # each column's segment and the end of its chunk there
        with_exceptions = 0  # the loops correct the exceptions of one scaled column per chunk
        for j, spec in enumerate(cond.specs):
            ref = plan.state.columns[spec.id][pos]
            load = self.column_load(spec, ref) if ref.nrows == nrows else None
            if load is None:
                return None
            ends.append((ref.segment, ref.offset + ref.length))
            comparisons = cond.scaled.get(j)
            nexc = load.info[7]
            if load.info[0] == native.DECIMAL and comparisons and not (nexc and with_exceptions):
                params = scalable(ref)
                limits = None
                if params is not None:
                    limits = chunk_thresholds(params, spec.dtype, comparisons, cond.constants)
                if limits is not None:  # compare the integers: load them as the values
                    with_exceptions += nexc > 0
                    for slot, value in limits.items():
                        consts[slot] = value
                    load = _Load(load.packed, _UNUSED.str, (native.PLAIN, *load.info[1:]))
            key += [load.values, load.packed]
            where.append(load.info)
        key += [_const_dtype(c) for c in consts]
        return _Chunk(pos, nrows, tuple(key), tuple(where), tuple(consts)), tuple(ends)

    def _call(
        self,
        mode: str,
        chunks: list[_Chunk],
        out: np.ndarray | None = None,
        gathered: dict[int, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Run the batch loop of ``mode`` with the condition's row kernel over chunks of one
        key: the per-chunk counts and how many chunks were done (``select`` stops before a
        chunk whose rows might not fit in ``out``, and copies the values of condition column
        ``j`` at the positions into ``gathered[j]``, aligned with ``out``)."""
        cond = self.plan.condition
        ncols = len(cond.specs)
        m = len(chunks)
        rows = np.array([c.rows for c in chunks], np.int64)
        fields = len(native.INFO_FIELDS)
        info = np.ascontiguousarray(
            np.array([c.where for c in chunks], np.int64)
            .reshape(m, ncols, fields)
            .transpose(1, 2, 0)
        )
        key = chunks[0].key
        most = int(rows.max())
        bufs = [scratch_array(("scan", j), key[2 * j], most) for j in range(ncols)]
        packed = [scratch_array(("scanpacked", j), key[2 * j + 1], most) for j in range(ncols)]
        nconst = len(chunks[0].consts)
        consts = [
            chunks[0].consts[k]  # a set test's values, the same for every chunk
            if key[2 * ncols + k].startswith("set")
            else np.array([c.consts[k] for c in chunks], key[2 * ncols + k])
            for k in range(nconst)
        ]
        slot_col, slot_op, slot_val = self._slots(key)
        forced = np.zeros(max(nconst, 1), np.int64)
        columns: list[tuple[str, ...]] = [(key[2 * j], key[2 * j + 1]) for j in range(ncols)]
        extra: list[np.ndarray] = []
        if out is not None:
            stored = [self._stored(s) for s in cond.specs]
            columns = [(*c, dt.str) for c, dt in zip(columns, stored, strict=True)]
            flags = np.array([j in (gathered or {}) for j in range(ncols)], np.int64)
            targets = [
                gathered[j] if gathered and j in gathered else np.empty(1, dt)
                for j, dt in enumerate(stored)
            ]
            extra = [np.empty(1, np.int64), out, *targets, flags]
        res = np.zeros(m, np.int64)
        err = np.zeros(3, np.int64)
        loop = exprgen.scan_loop(columns, list(key[2 * ncols :]), mode, cond.predicate.cache_dir)
        row = cond.predicate.kernel(mode)
        got = loop(row, native.thread_context(), rows, info, *bufs, *packed, *consts,
                   slot_col, slot_op, slot_val, forced, *extra, res, err)  # fmt: skip
        if got == ERR_LOAD:
            self._reread(chunks[int(err[0])].pos)
        if got == ERR_NEGATIVE_POWER:
            raise QueryError("numpy refuses integers to negative integer powers")
        return res, int(err[0])

    def _slots(self, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each constant: the column it is compared with where that column's chunks of
        ``key`` load as integers (-1 elsewhere), the comparison's code and the constant."""
        cond = self.plan.condition
        n = len(key) - 2 * len(cond.specs)
        col = np.full(max(n, 1), -1, np.int64)
        op = np.zeros(max(n, 1), np.int64)
        val = np.zeros(max(n, 1), np.float64)
        for j, comparisons in cond.scaled.items():
            if np.dtype(key[2 * j]).kind != "u":  # decoded to floats in this key
                continue
            for slot, name in comparisons:
                col[slot], op[slot] = j, native.COMPARISON_CODES[name]
                val[slot] = float(cond.constants[slot])
        return col, op, val

    def _reread(self, pos: int, spec: ColumnSpec | None = None) -> None:
        """A chunk a kernel could not load (the condition's columns, or column ``spec``),
        checked by the Python path, which names the damaged chunk in the ``ChecksumError`` it
        raises. It checks the bytes a read may skip (a regular clock's, see
        ``Encoding.computed``), which the kernel loads."""
        for s in self.plan.condition.specs if spec is None else [spec]:
            self.plan.source.check(s, self.plan.state.columns[s.id][pos])
        what = f"column {spec.name!r} of " if spec is not None else ""
        raise RuntimeError(
            f"internal error: a batch kernel could not load chunk {pos} of {what}"
            f"{self.plan.view.path}, which the Python path reads; please report this"
        )

    def gather(
        self,
        spec: ColumnSpec,
        chunks: list[tuple[int, int, int]],
        hits: np.ndarray,
        out: np.ndarray,
    ) -> list[int]:
        """Copy column ``spec`` at the hits of ``chunks`` to ``out``: for each (position,
        start, count), the rows ``hits[start : start + count]`` of that chunk go to
        ``out[start : start + count]``; one kernel call per buffer type. Returns the positions
        of the chunks it cannot load, for the Python path."""
        refs = self.plan.state.columns[spec.id]
        groups: dict[tuple[str, str], list[tuple[int, int, int, _Load]]] = {}
        left = []
        for pos, start, count in chunks:
            load = self.column_load(spec, refs[pos])
            if load is None:
                left.append(pos)
            else:
                groups.setdefault((load.values, load.packed), []).append((pos, start, count, load))
        target = out.view(np.int64) if out.dtype.kind in "Mm" else out
        for (values, packed), items in groups.items():
            info = np.ascontiguousarray(np.array([it[3].info for it in items], np.int64).T)
            rows = np.array([refs[it[0]].nrows for it in items], np.int64)
            starts = np.array([it[1] for it in items], np.int64)
            counts = np.array([it[2] for it in items], np.int64)
            most = int(rows.max())
            got = native.gather_chunks(
                native.thread_context(), info, rows, starts, counts, hits,
                scratch_array(("gather", 0), values, most),
                scratch_array(("gather", 1), packed, most),
                target,
            )  # fmt: skip
            if got >= 0:
                self._reread(items[got // 4][0], spec)
        return left

    def count(self, chunks: list[_Chunk]) -> int:
        """Rows satisfying the condition in ``chunks``."""
        return sum(int(self._call("count", group)[0].sum()) for group in _groups(chunks))

    @staticmethod
    def _stored(spec: ColumnSpec) -> np.dtype:
        """The dtype a column's values are gathered in (datetimes as int64)."""
        return np.dtype(np.int64) if spec.dtype.kind in "Mm" else spec.dtype

    def select(
        self, chunks: list[_Chunk], gather: frozenset[int] = frozenset()
    ) -> list[tuple[int, np.ndarray, dict[int, np.ndarray]]]:
        """(position, hit positions within it, values at them of the condition columns
        ``gather`` by index) of each of ``chunks``, as new arrays."""
        cond = self.plan.condition
        found = []
        for group in _groups(chunks):
            most = max(c.rows for c in group)
            size = max(most, min(SELECT_ROWS, sum(c.rows for c in group)))
            out = scratch_array("scanhits", np.int64, size)
            targets = {
                j: scratch_array(("scangather", j), self._stored(cond.specs[j]), size)
                for j in gather
            }
            while group:
                counts, done = self._call("select", group, out, targets)
                ends = np.cumsum(counts[:done]).tolist()
                total = ends[-1] if ends else 0
                # One copy per call out of the thread's buffers (reused: fresh buffers of this
                # size would be mapped and unmapped per call); the chunks' arrays are views.
                hits = out[:total].copy()
                copied = {j: g[:total].copy() for j, g in targets.items()}
                for c, end, k in zip(group, ends, counts[:done].tolist(), strict=False):
                    values = {j: g[end - k : end] for j, g in copied.items()}
                    found.append((c.pos, hits[end - k : end], values))
                group = group[done:]
        found.sort(key=lambda f: f[0])
        return found


def _groups(chunks: list[_Chunk]) -> Iterator[list[_Chunk]]:
    """The chunks in runs of the same key, one kernel call each (a decimal column's chunks with
    and without exceptions have two keys), in row order within a run."""
    run: list[_Chunk] = []
    for c in sorted(chunks, key=lambda c: c.key):
        if run and c.key != run[0].key:
            yield run
            run = []
        run.append(c)
    if run:
        yield run


@functools.lru_cache(maxsize=64)
def _dtype(name: str) -> np.dtype:
    return np.dtype(name)


def _signed(u: int) -> int:
    """An unsigned 64-bit parameter as the int64 with the same bits."""
    return u - (1 << 64) if u >= 1 << 63 else u


def _numeric(c: Any) -> bool:
    return isinstance(c, np.generic) and np.asarray(c).dtype.kind in "biufmM"


def _set(c: Any) -> bool:
    """Whether a kernel constant is a set test's values (an array)."""
    return isinstance(c, np.ndarray) and c.ndim == 1 and c.dtype.kind in "iuf"


def _set_digest(c: np.ndarray) -> str:
    return hashlib.blake2b(c.tobytes(), digest_size=16).hexdigest()


def _const_dtype(c: Any) -> str:
    """A kernel constant's type in a batch loop's key (see ``scan_source``)."""
    return "set" + c.dtype.str if _set(c) else np.asarray(c).dtype.str


def _batchable(dtype: np.dtype) -> bool:
    return dtype.kind in "biufmM" and dtype != np.float16
