"""Reading committed chunks: check the crc, decode into the caller's buffer, gather rows.

All reads go through :class:`ChunkSource`, which knows where the bytes live (segment reader) and
how to name a damaged chunk (store, node, column, chunk index) in a ``ChecksumError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ChecksumError
from .buffers import scratch_array
from .checksum import crc32
from .encodings import (
    DICT,
    RAW,
    arithmetic_rows,
    decode,
    decode_dictionary,
    decode_rows,
    decode_validity,
    scaled_integers,
)
from .manifest import ChunkRef, NodeState
from .schema import ColumnSpec
from .segments import SegmentReader


def scratch(spec: ColumnSpec, nrows: int, slot: Hashable = "chunk") -> np.ndarray:
    """This thread's reusable buffer for ``nrows`` rows of ``spec`` (see :mod:`.buffers`)."""
    return scratch_array(slot, spec.dtype, (nrows, *spec.shape))


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

    @contextmanager
    def _checked(
        self, spec: ColumnSpec, ref: ChunkRef, validity: bool = False
    ) -> Iterator[bytes | memoryview]:
        """The chunk's encoded values (its validity frame with ``validity``) after the crc of
        the whole payload matched (a ``ChecksumError`` otherwise)."""
        with self.reader.chunk(ref.segment, ref.sealed, ref.offset, ref.length) as buf:
            if buf is None:
                raise self.damaged(
                    spec, ref, None, f"segment {ref.segment} is missing or truncated"
                )
            crc = crc32(buf)
            if crc != ref.crc:
                raise self.damaged(spec, ref, crc, f"in segment {ref.segment} at {ref.offset}")
            try:
                if validity:
                    yield memoryview(buf)[ref.length - ref.vlen :]
                else:
                    yield memoryview(buf)[: ref.length - ref.vlen] if ref.vlen else buf
            except (RuntimeError, ValueError) as exc:
                raise self.damaged(spec, ref, crc, f"cannot decode: {exc}") from None

    def read_validity(self, spec: ColumnSpec, ref: ChunkRef) -> np.ndarray | None:
        """The chunk's validity as packed bits (``np.packbits(valid, bitorder="little")``,
        uint8, ``ceil(ref.nrows / 8)`` bytes, 1 = valid), None when it has no missing value.
        The count of missing values must match the manifest's (``ChecksumError`` otherwise)."""
        if not ref.nulls:
            return None
        with self._checked(spec, ref, validity=True) as frame:
            bits = decode_validity(frame, ref.nrows)
            valid = int(np.bitwise_count(bits).sum())
            if ref.nrows - valid != ref.nulls:
                raise ValueError(
                    f"its validity has {ref.nrows - valid} missing values, the manifest "
                    f"says {ref.nulls}"
                )
        return bits

    def read_codes(self, spec: ColumnSpec, ref: ChunkRef) -> tuple[np.ndarray, np.ndarray]:
        """(codes, dictionary) of one chunk of a category column."""
        with self._checked(spec, ref) as buf:
            if ref.encoding != DICT or ref.params is None:
                raise ValueError(f"chunk of category column has encoding {ref.encoding!r}")
            return decode_dictionary(ref.params, buf, ref.nrows)

    def read_scaled(
        self, spec: ColumnSpec, ref: ChunkRef, params: dict[str, Any], slot: Hashable
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """A ``decimal`` chunk undecoded: its narrow integers (in scratch buffer ``slot``) and
        its exceptions' positions and values (None when it has none)."""
        with self._checked(spec, ref) as buf:
            return scaled_integers(params, buf, ref.nrows, spec.dtype, slot)

    def read_at(self, spec: ColumnSpec, ref: ChunkRef, rows: np.ndarray) -> np.ndarray:
        """The values at ``rows`` (positions within the chunk) of one chunk, as a new array.

        Regular clocks are computed from their params, ``for`` and exception-free ``decimal``
        chunks decode only those rows; others decode whole into scratch, then copy the rows.
        The chunk's bytes are read and checked once either way."""
        if spec.is_category:
            return self.read_chunk(spec, ref)[rows]
        if not spec.shape:
            direct = arithmetic_rows(ref.encoding, ref.params, spec.dtype, rows)
            if direct is not None:
                return direct
        out = scratch(spec, ref.nrows, "gather")
        with self._checked(spec, ref) as buf:
            if not spec.shape:
                direct = decode_rows(ref.encoding, ref.params, buf, ref.nrows, spec.dtype, rows)
                if direct is not None:
                    return direct
            decode(ref.encoding, ref.params, buf, out)
        return out[rows]

    def read_chunk(
        self, spec: ColumnSpec, ref: ChunkRef, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Decode one chunk (into ``out`` when given: exactly ``ref.nrows`` rows, contiguous).

        Category chunks are returned as a new str array (their width is known only now)."""
        if spec.is_category:
            codes, values = self.read_codes(spec, ref)
            return values[codes] if len(values) else np.full(ref.nrows, "", "U1")
        if out is None:
            out = np.empty((ref.nrows, *spec.shape), spec.dtype)
        with self._checked(spec, ref) as buf:
            decode(ref.encoding, ref.params, buf, out)
        return out

    def _map(self, fn, items: list) -> list:
        if self.pool is not None and len(items) > 1:
            return list(self.pool.map(fn, items))
        return [fn(i) for i in items]

    def read_range(
        self, state: NodeState, spec: ColumnSpec, start: int, stop: int,
        out: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Rows [start, stop) of one column, into ``out`` when given (not for category
        columns, whose text width the chunks decide)."""
        if spec.is_category:
            return self._text_range(state, spec, start, stop)
        view = self._zero_copy(state, spec, start, stop)
        if view is not None:
            if out is None:
                return view
            out[...] = view
            return out
        if out is None:
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

    def _zero_copy(
        self, state: NodeState, spec: ColumnSpec, start: int, stop: int
    ) -> np.ndarray | None:
        """A read-only view of the mapping when rows [start, stop) are raw chunks lying back to
        back in one sealed segment (codec ``"none"``). Such reads skip the crc check."""
        span = state.chunk_span(start, stop)
        if not span:
            return None
        refs = state.columns[spec.id][span.start : span.stop]
        first = refs[0]
        for a, b in itertools.pairwise(refs):
            if b.segment != first.segment or a.offset + a.length != b.offset:
                return None
        if any(r.encoding != RAW or not r.sealed for r in refs):
            return None
        cell = spec.cell_bytes
        offset = first.offset + (start - first.first_row) * cell
        mapping = self.reader.view(first.segment, offset, (stop - start) * cell)
        if mapping is None:
            return None
        count = (stop - start) * (cell // spec.dtype.itemsize)
        flat = np.frombuffer(mapping, spec.dtype, count, offset)
        return flat.reshape((stop - start, *spec.shape))

    def _text_range(self, state: NodeState, spec: ColumnSpec, start: int, stop: int) -> np.ndarray:
        refs = state.columns[spec.id]

        def one(pos: int) -> np.ndarray:
            ref = refs[pos]
            c0 = ref.first_row
            return self.read_chunk(spec, ref)[max(start, c0) - c0 : min(stop, c0 + ref.nrows) - c0]

        pieces = self._map(one, list(state.chunk_span(start, stop)))
        return np.concatenate(pieces) if pieces else np.empty(0, "U1")

    def read_rows(self, state: NodeState, spec: ColumnSpec, rows: np.ndarray) -> np.ndarray:
        """The given rows (sorted, unique, in range) of one column."""
        if not len(rows):
            return np.empty((0, *spec.shape), "U1" if spec.is_category else spec.dtype)
        refs = state.columns[spec.id]
        pos = np.searchsorted(state.starts, rows, side="right") - 1
        groups = np.split(np.arange(len(rows)), np.flatnonzero(np.diff(pos)) + 1)

        def one(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ref = refs[int(pos[sel[0]])]
            buf = None if spec.is_category else scratch(spec, ref.nrows)
            chunk = self.read_chunk(spec, ref, buf)
            return sel, chunk[rows[sel] - ref.first_row]

        picked = self._map(one, groups)
        dtype = np.result_type(*(v.dtype for _, v in picked)) if spec.is_category else spec.dtype
        out = np.empty((len(rows), *spec.shape), dtype)
        for sel, values in picked:
            out[sel] = values
        return out
