"""Running a condition over a table: prune with zone maps, scan with the fused kernel, gather.

A :class:`Plan` is made once per call: the condition is parsed and typed against the table's
columns and its kernel fetched (compiled once per expression shape, cached on disk). Then, for
each chunk in the row range, the zone maps decide: skip it, take it whole (no decompression of
the condition columns), or decompress only the condition columns and let the kernel list the
matching rows. Projected columns are decompressed only for chunks with hits. Chunks are handled
by the store's thread pool a window at a time, so memory stays bounded by a few chunks.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ...lazy import kernel_module
from ..manifest import ChunkRef, NodeState
from ..masked import unpack
from ..reading import ChunkSource, scratch
from ..schema import ColumnSpec
from .batch import SELECT_BATCH, BatchScan
from .kernel import Decoded, compiled
from .parse import parse
from .prune import ALL, NONE, classify_chunks
from .ranges import regular_params, sorted_range
from .scaled import Scaled

if TYPE_CHECKING:
    from ...kernels import compiling
    from ..records import TableView

if not TYPE_CHECKING:
    compiling = kernel_module("compiling")

T = TypeVar("T")

#: A query over at most this many rows evaluates a simple condition (comparisons joined by
#: ``&``, ``|``, ``~``) with numpy when its kernel is not in Numba's cache: a compile costs
#: 0.5-1 s, numpy a few milliseconds per million rows. Larger queries compile the kernel.
#: ``COLVAULT_NUMPY_ROWS=0`` always takes the kernels (tests of the kernel paths do). The
#: rows a process gives numpy per condition shape are bounded (``compiling.NUMPY_BUDGET``):
#: a query repeated in a loop compiles its kernel soon.
NUMPY_ROWS = int(os.environ.get("COLVAULT_NUMPY_ROWS", 4_000_000))
#: A result of at most this many rows is gathered here, not in the pool: a hand-off to a
#: worker and back costs more than gathering it (tens of microseconds on a VM).
INLINE_ROWS = 65_536


class Plan:
    """A parsed, typed and compiled condition over one table, and its row range."""

    def __init__(
        self,
        view: TableView,
        cond: str,
        condvars: Mapping[str, Any] | None,
        start: int | None = None,
        stop: int | None = None,
    ) -> None:
        self.view = view
        self.specs = {c.name: c for c in view.schema.columns}
        typed = {c.name: c.dtype for c in view.schema.columns if not c.shape}
        self.expr = parse(cond, typed, condvars or {}, table=view.path)
        self.condition = compiled(self.expr, self.specs)
        self.state: NodeState = view.state  # one snapshot for the whole query
        self.source: ChunkSource = view.source
        n = self.state.nrows
        self.start, self.stop, _ = slice(start, stop).indices(n)
        self.verdicts = classify_chunks(self.expr, self.state, self.specs)
        self.range = sorted_range(self.expr)
        predicate = self.condition.predicate
        rows = self.stop - self.start
        #: Evaluate with numpy, not the kernel (``Predicate.select``).
        self.numpy = (  # a new user's first queries: numpy beats a compile of the kernel
            rows <= NUMPY_ROWS
            and predicate.evaluable_in_numpy
            and predicate.kernel_is_cold()
            and compiling.spend_numpy(("query", predicate.key), rows)  # repeated: compile
        )

    def chunks(self) -> list[int]:
        """Positions of the chunks in the row range that the zone maps did not rule out."""
        if len(self.verdicts) == 1:  # a small table: no arrays to search
            return [0] if self.stop > self.start and self.verdicts[0] != NONE else []
        span = self.state.chunk_span(self.start, self.stop)
        keep = self.verdicts[span.start : span.stop] != NONE
        return [span.start + int(i) for i in np.flatnonzero(keep)]

    def chunk_rows(self, pos: int) -> int:
        """Rows of chunk ``pos``."""
        return int(self.state.starts[pos + 1] if pos + 1 < len(self.state.starts) else
                   self.state.nrows) - int(self.state.starts[pos])  # fmt: skip

    def bounds(self, pos: int) -> tuple[int, int, int]:
        """(first row of chunk ``pos``, first and last+1 position to consider within it)."""
        first = int(self.state.starts[pos])
        nrows = self.chunk_rows(pos)
        return first, max(self.start - first, 0), min(self.stop - first, nrows)

    def select(self, pos: int) -> np.ndarray:
        """Positions (within chunk ``pos``) of the rows that satisfy the condition."""
        return self.select_decoded(pos)[0]

    def select_decoded(self, pos: int) -> tuple[np.ndarray, dict[str, Decoded]]:
        """``select`` plus the condition columns it decoded (empty when zone maps decided)."""
        _, lo, hi = self.bounds(pos)
        verdict = self.verdicts[pos]
        if verdict == NONE or hi <= lo:
            return np.empty(0, np.int64), {}
        if verdict == ALL:
            return np.arange(lo, hi, dtype=np.int64), {}
        run = self._sorted_run(pos)
        if run is not None:
            (a, b), decoded = run
            return np.arange(max(a, lo), min(b, hi), dtype=np.int64), decoded
        hits, decoded = self.condition.positions(self.source, self.state, pos, self.numpy)
        if lo > 0 or hi < self.chunk_rows(pos):
            hits = hits[(hits >= lo) & (hits < hi)]
        return hits, decoded

    def sorted_chunk(self, pos: int) -> bool:
        """Whether chunk ``pos`` of the range condition's column is sorted without NaN or
        missing values (its rows are then found by search, see ``_sorted_run``)."""
        if self.range is None:
            return False
        ref = self.state.columns[self.specs[self.range.column].id][pos]
        return bool(ref.zone.sorted) and ref.zone.nan_count == 0 and not ref.nulls

    def _sorted_run(self, pos: int) -> tuple[tuple[int, int], dict[str, Decoded]] | None:
        """The rows of chunk ``pos`` a range condition on a sorted column selects, by binary
        search (arithmetic for a regular clock), with the column if it had to be decoded."""
        if self.range is None or not self.sorted_chunk(pos):
            return None
        spec = self.specs[self.range.column]
        ref = self.state.columns[spec.id][pos]
        regular = regular_params(ref, spec.dtype)
        if regular is not None:
            return self.range.regular_run(regular[0], regular[1], ref.nrows), {}
        values = self.source.read_chunk(spec, ref, scratch(spec, ref.nrows, ("cond", 0)))
        view = values.view(np.int64) if values.dtype.kind in "Mm" else values
        return self.range.run(view), {spec.name: values}

    def count(self, pos: int) -> int:
        _, lo, hi = self.bounds(pos)
        if hi <= lo:
            return 0
        verdict = self.verdicts[pos]
        if verdict == NONE:
            return 0
        if verdict == ALL:
            return hi - lo
        if lo == 0 and hi == self.chunk_rows(pos) and self.range is None:
            return self.condition.count(self.source, self.state, pos, self.numpy)
        return len(self.select(pos))

    def gather(
        self,
        pos: int,
        hits: np.ndarray,
        specs: list[ColumnSpec],
        decoded: dict[str, Decoded] | None = None,
    ) -> list[np.ndarray]:
        """The projected columns at ``hits`` of chunk ``pos`` (new arrays; masked arrays for
        nullable columns); columns the condition already read (``decoded``) are not
        decompressed again."""
        out = []
        for spec in specs:
            values = (decoded or {}).get(spec.name)
            ref = self.state.columns[spec.id][pos]
            if isinstance(values, Scaled):
                got = values.values(hits)
            elif values is not None:
                got = values[hits]
            else:
                got = self.source.read_at(spec, ref, hits)
            if spec.nullable:
                got = self._masked(spec, ref, np.ma.getdata(got), hits)
            out.append(got)
        return out

    def _masked(
        self, spec: ColumnSpec, ref: ChunkRef, values: np.ndarray, hits: np.ndarray
    ) -> np.ma.MaskedArray:
        """A nullable column's values at ``hits`` of a chunk, masked where missing."""
        bits = self.source.read_validity(spec, ref) if ref.nulls else None
        if bits is None:
            return np.ma.MaskedArray(values, np.zeros(len(values), bool))
        return np.ma.MaskedArray(values, ~unpack(bits, ref.nrows)[hits])

    def _threads(self) -> int:
        return self.source.threads

    def count_all(self) -> int:
        """Rows in the row range that satisfy the condition (zone maps, batches, then the
        Python path for chunks the batch kernels do not take)."""
        scan = BatchScan(self)
        chunks = self.chunks()

        def task(item: list[Any] | int) -> int:
            return self.count(item) if isinstance(item, int) else scan.count(item)

        tasks = scan.iter_tasks(chunks, self._run(len(chunks)))
        return sum(self._stream(task, tasks, here=self._searched(chunks)))

    def _run(self, nchunks: int) -> int:
        """Chunks per batch when all are scanned at once: a few tasks per thread."""
        return max(SELECT_BATCH, -(-nchunks // (2 * self._threads())))

    def _sliding(
        self, fn: Callable[[Any], T], items: Iterator[Any], ahead: int
    ) -> Iterator[list[T]]:
        """``fn`` over ``items`` in the pool, results in order, about ``ahead`` tasks in flight
        at any time (a new one starts as soon as the oldest is taken, not once a whole round
        has finished)."""
        pool = self.source.pool
        if pool is None:
            for item in items:
                yield [fn(item)]
            return
        pending: collections.deque[Future[T]] = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield [pending.popleft().result()]
        while pending:
            yield [pending.popleft().result()]

    def _stream(self, fn: Callable[[Any], T], items: Iterator[Any], here: bool = False) -> list[T]:
        """``fn`` over ``items`` in the pool, submitted as they are made; a single item, or
        every item when ``here`` (a few searches: see ``_searched``), runs here (a hand-off to
        a worker costs more than that work)."""
        if here:
            return [fn(item) for item in items]
        first = list(itertools.islice(items, 2))
        if self.source.pool is None or len(first) < 2:
            return [fn(item) for item in itertools.chain(first, items)]
        return list(self.source.pool.map(fn, itertools.chain(first, items)))

    def read(self, specs: list[ColumnSpec], dtype: np.dtype) -> np.ndarray:
        """The matching rows of ``specs`` (no category column) as records of ``dtype``, in two
        rounds of the pool. First every chunk is scanned: hit positions, and the values of the
        projected condition columns, which the select loop copies while the chunk is loaded.
        Then, the result's size known, the other columns are gathered straight into their
        fields of the result (no array per chunk to copy again) and the scanned values copied
        in."""
        if any(s.nullable for s in specs):
            raise ValueError("Plan.read takes no nullable column (see Plan.batches)")
        scan = BatchScan(self)
        chunks = self.chunks()
        names = [s.name for s in self.condition.specs]
        wanted = {s.name: k for k, s in enumerate(specs)}
        gather = frozenset(j for j, name in enumerate(names) if name in wanted)
        looped = {wanted[names[j]]: j for j in gather}  # field -> condition column

        def scanned(item: list[Any] | int) -> list[tuple[int, np.ndarray, dict[int, Any]]]:
            if isinstance(item, int):  # the Python path: every field gathered here
                hits, decoded = self.select_decoded(item)
                arrays = self.gather(item, hits, specs, decoded) if len(hits) else []
                return [(item, hits, dict(enumerate(arrays)))]
            return [
                (pos, hits, {k: values[j] for k, j in looped.items()})
                for pos, hits, values in scan.select(item, gather)
            ]

        tasks = scan.iter_tasks(chunks, self._run(len(chunks)))
        parts = self._stream(scanned, tasks, here=self._searched(chunks))
        found = [f for part in parts for f in part if len(f[1])]
        starts = list(itertools.accumulate((len(f[1]) for f in found), initial=0))
        out = np.empty(starts[-1], dtype)
        fields = [out[s.name] for s in specs]

        def fill(span: range) -> None:
            if not len(span):
                return
            a0 = starts[span.start]
            for i in span:  # the values the scan has: copied
                for k, values in found[i][2].items():
                    fields[k][starts[i] : starts[i + 1]] = values
            batched = [i for i in span if len(found[i][2]) < len(specs)]
            if not batched:
                return
            # hit positions and result rows share one index within the span
            hits = _joined([found[i][1] for i in span])
            todo = [(found[i][0], starts[i] - a0, starts[i + 1] - starts[i]) for i in batched]
            for k, spec in enumerate(specs):
                if k in looped:
                    continue
                target = fields[k][a0 : starts[span.stop]]
                left = set(scan.gather(spec, todo, hits, target))
                for i in batched:
                    if found[i][0] in left:
                        rows = slice(starts[i] - a0, starts[i + 1] - a0)
                        target[rows] = self.gather(found[i][0], found[i][1], [spec])[0]

        n = len(found)
        k = 1 if starts[-1] <= INLINE_ROWS else min(n, self._threads())
        self.source.map(fill, [range(n * j // k, n * (j + 1) // k) for j in range(k)])
        return out

    def _searched(self, chunks: list[int]) -> bool:
        """Whether a range condition on a sorted column finds the rows of every chunk by a
        search (or arithmetic), and there are few of them."""
        return len(chunks) <= 4 and all(self.sorted_chunk(pos) for pos in chunks)

    def batches(
        self, specs: list[ColumnSpec], window: int | None = 4
    ) -> Iterator[tuple[int, np.ndarray, list[np.ndarray]]]:
        """(first row of the chunk, hit positions, projected arrays), chunk by chunk, in order;
        chunks without hits are left out. About ``window`` chunks are in flight at once, in
        tasks of one chunk or of a batch of chunks scanned in one kernel call (at most
        :data:`SELECT_BATCH`, and few enough that every thread gets a task); ``window=None``
        scans every chunk at once, in a few large tasks per thread (results held in memory)."""
        scan = BatchScan(self)
        chunks = self.chunks()

        def one(pos: int, hits: np.ndarray, decoded: dict[str, Decoded]) -> _Found:
            arrays = self.gather(pos, hits, specs, decoded) if len(hits) else []
            return int(self.state.starts[pos]), hits, arrays

        names = [s.name for s in self.condition.specs]
        wanted = {s.name: k for k, s in enumerate(specs) if not s.nullable}  # masks: gather()
        gather = frozenset(j for j, name in enumerate(names) if name in wanted)

        def task(item: list[Any] | int) -> list[_Found]:
            if isinstance(item, int):
                return [one(item, *self.select_decoded(item))]
            found = [f for f in scan.select(item, gather) if len(f[1])]
            looped = {wanted[names[j]]: j for j in gather}  # copied by the select loop
            starts = list(itertools.accumulate((len(f[1]) for f in found), initial=0))
            hits = _joined([f[1] for f in found] if len(looped) < len(specs) else [])
            columns = [
                [f[2][looped[k]] for f in found]
                if k in looped
                else self._gathered(scan, spec, found, hits, starts)
                for k, spec in enumerate(specs)
            ]
            first = self.state.starts
            return [(int(first[f[0]]), f[1], [c[i] for c in columns]) for i, f in enumerate(found)]

        rounds: Iterable[list[list[_Found]]]
        searched = self._searched(chunks)
        if window is None or searched:  # tasks go to the pool as they are prepared
            tasks = scan.iter_tasks(chunks, self._run(len(chunks)))
            rounds = [self._stream(task, tasks, here=searched)]
        else:
            run = max(1, min(SELECT_BATCH, window // self._threads()))
            rounds = self._sliding(task, scan.iter_tasks(chunks, run), max(1, window // run))
        for results in rounds:
            for found in results:
                for first, hits, arrays in found:
                    if len(hits):
                        yield first, hits, arrays

    def _gathered(
        self,
        scan: BatchScan,
        spec: ColumnSpec,
        found: list[tuple[int, np.ndarray, dict[int, np.ndarray]]],
        hits: np.ndarray,
        starts: list[int],
    ) -> list[np.ndarray]:
        """Column ``spec`` at the hits of batched chunks ``found`` (all of them in ``hits``,
        chunk ``i``'s from ``starts[i]``), one array per chunk: gathered by a batch kernel into
        one array where the chunks allow, else per chunk."""
        if spec.is_category or spec.shape or spec.nullable or not found:
            return [self.gather(pos, h, [spec])[0] for pos, h, _ in found]
        out = np.empty(starts[-1], spec.dtype)
        todo = [(f[0], starts[i], starts[i + 1] - starts[i]) for i, f in enumerate(found)]
        left = set(scan.gather(spec, todo, hits, out))
        for i, (pos, h, _) in enumerate(found):
            if pos in left:
                out[starts[i] : starts[i + 1]] = self.gather(pos, h, [spec])[0]
        return [out[starts[i] : starts[i + 1]] for i in range(len(found))]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate(parts)``, without the copy when the parts lie back to back in one
    1-d buffer (the positions the select loop found in one call)."""
    if not parts:
        return np.empty(0, np.int64)
    base = parts[0].base
    if isinstance(base, np.ndarray) and base.ndim == 1 and base.dtype == parts[0].dtype:
        origin = base.__array_interface__["data"][0]
        at = parts[0].__array_interface__["data"][0]
        first = at
        for p in parts:
            if p.base is not base or p.__array_interface__["data"][0] != at:
                break
            at += p.nbytes
        else:
            start = (first - origin) // base.itemsize
            return base[start : start + (at - first) // base.itemsize]
    return np.concatenate(parts)


_Found = tuple[int, np.ndarray, list[np.ndarray]]
