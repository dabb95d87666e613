"""Reading committed chunks: check the crc, decode into the caller's buffer, gather rows.

All reads go through :class:`ChunkSource`, which knows where the bytes live (segment reader) and
how to name a damaged chunk (store, node, column, chunk index) in a ``ChecksumError``.
"""

from __future__ import annotations

import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import ChecksumError
from .codec import decode
from .manifest import ChunkRef, NodeState
from .schema import ColumnSpec
from .segments import SegmentReader

_scratch = threading.local()


def scratch(spec: ColumnSpec, nrows: int) -> np.ndarray:
    """A per-thread reusable chunk buffer: partial-chunk reads decode here, then copy out."""
    shape = (nrows, *spec.shape)
    nbytes = spec.dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buf = np.empty(max(nbytes, 1 << 20), np.uint8)
    return buf[:nbytes].view(spec.dtype).reshape(shape)


@dataclass(frozen=True)
class ChunkSource:
    store: str
    node: str
    reader: SegmentReader
    pool: ThreadPoolExecutor | None

    def damaged(
        self, spec: ColumnSpec, ref: ChunkRef, computed: int | None, why: str
    ) -> ChecksumError:
        return ChecksumError(self.store, self.node, spec.name, ref.index, ref.crc, computed, why)

    def read_chunk(
        self, spec: ColumnSpec, ref: ChunkRef, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Decode one chunk (into ``out`` when given: exactly ``ref.nrows`` rows, contiguous)."""
        with self.reader.chunk(ref.segment, ref.sealed, ref.offset, ref.length) as buf:
            if buf is None:
                raise self.damaged(
                    spec, ref, None, f"segment {ref.segment} is missing or truncated"
                )
            crc = zlib.crc32(buf)
            if crc != ref.crc:
                raise self.damaged(spec, ref, crc, f"in segment {ref.segment} at {ref.offset}")
            if out is None:
                out = np.empty((ref.nrows, *spec.shape), spec.dtype)
            try:
                decode(ref.encoding, buf, out)
            except (RuntimeError, ValueError) as exc:
                raise self.damaged(spec, ref, crc, f"cannot decode: {exc}") from None
        return out

    def _map(self, fn, items: list) -> list:
        if self.pool is not None and len(items) > 1:
            return list(self.pool.map(fn, items))
        return [fn(i) for i in items]

    def read_range(self, state: NodeState, spec: ColumnSpec, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of one column."""
        out = np.empty((max(stop - start, 0), *spec.shape), spec.dtype)
        refs = state.columns[spec.id]

        def one(pos: int) -> None:
            ref = refs[pos]
            c0, c1 = ref.first_row, ref.first_row + ref.nrows
            lo, hi = max(start, c0), min(stop, c1)
            if lo == c0 and hi == c1:
                self.read_chunk(spec, ref, out[c0 - start : c1 - start])
            else:
                chunk = self.read_chunk(spec, ref, scratch(spec, ref.nrows))
                out[lo - start : hi - start] = chunk[lo - c0 : hi - c0]

        self._map(one, list(state.chunk_span(start, stop)))
        return out

    def read_rows(self, state: NodeState, spec: ColumnSpec, rows: np.ndarray) -> np.ndarray:
        """The given rows (sorted, unique, in range) of one column."""
        out = np.empty((len(rows), *spec.shape), spec.dtype)
        if not len(rows):
            return out
        refs = state.columns[spec.id]
        pos = np.searchsorted(state.starts, rows, side="right") - 1
        bounds = np.flatnonzero(np.diff(pos)) + 1
        groups = np.split(np.arange(len(rows)), bounds)

        def one(sel: np.ndarray) -> None:
            ref = refs[int(pos[sel[0]])]
            chunk = self.read_chunk(spec, ref, scratch(spec, ref.nrows))
            out[sel] = chunk[rows[sel] - ref.first_row]

        self._map(one, groups)
        return out
