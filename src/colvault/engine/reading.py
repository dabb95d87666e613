"""Reading committed chunks: check the crc, decode into the caller's buffer, gather rows.

All reads go through :class:`ChunkSource`, which knows where the bytes live (segment reader) and
how to name a damaged chunk (store, node, column, chunk index) in a ``ChecksumError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..errors import ChecksumError
from .buffers import scratch_array
from .checksum import crc32
from .encodings import Decimal, Dictionary, Raw, decode_validity
from .encodings.validity import missing_span
from .manifest import ChunkRef, NodeState
from .masked import Masked, masked_array, unpack
from .schema import ColumnSpec
from .segments import SegmentReader


def scratch(spec: ColumnSpec, nrows: int, slot: Hashable = "chunk") -> np.ndarray:
    """This thread's reusable buffer for ``nrows`` rows of ``spec`` (see :mod:`.buffers`)."""
    return scratch_array(slot, spec.dtype, (nrows, *spec.shape))


T = TypeVar("T")

#: Chunks a short read may span (:meth:`ChunkSource.read_short`).
SHORT_CHUNKS = 4


@dataclass(frozen=True)
class ChunkSource:
    store: str
    node: str
    reader: SegmentReader
    pool: ThreadPoolExecutor | None
    #: Threads of ``pool`` (how many tasks to cut work into).
    threads: int = 1

    def damaged(
        self, spec: ColumnSpec, ref: ChunkRef, computed: int | None, why: str
    ) -> ChecksumError:
        return ChecksumError(self.store, self.node, spec.name, ref.index, ref.crc, computed, why)

    @contextmanager
    def _checked(
        self, spec: ColumnSpec, ref: ChunkRef, part: str = "values"
    ) -> Iterator[bytes | memoryview]:
        """The chunk's encoded values (``part="validity"``: its validity frame, ``"whole"``:
        both) after the crc of the whole payload matched (a ``ChecksumError`` otherwise)."""
        key = (ref.segment, ref.offset, ref.length, ref.crc)
        known = self.reader.verified(key)
        with self.reader.chunk(ref.segment, ref.sealed, ref.offset, ref.length, known) as buf:
            if buf is None:
                raise self.damaged(
                    spec, ref, None, f"segment {ref.segment} is missing or truncated"
                )
            crc = ref.crc
            if not known:
                crc = crc32(buf)
                if crc != ref.crc:
                    raise self.damaged(spec, ref, crc, f"in segment {ref.segment} at {ref.offset}")
                self.reader.mark_verified(key)
            try:
                if part == "validity":
                    yield memoryview(buf)[ref.length - ref.vlen :]
                elif part == "whole" or not ref.vlen:
                    yield buf
                else:
                    yield memoryview(buf)[: ref.length - ref.vlen]
            except (RuntimeError, ValueError) as exc:
                raise self.damaged(spec, ref, crc, f"cannot decode: {exc}") from None

    def _known(self, ref: ChunkRef, whole: bool = False) -> tuple[memoryview, int] | None:
        """The values of a chunk this reader checked before, straight from the mapping (no
        context to enter, no crc, no size check: see ``SegmentReader.verified``); None for
        any other chunk, or one with a validity frame unless ``whole`` (the caller then takes
        the values and the validity frame apart; otherwise it reads through
        :meth:`_checked`). The view is left to the GC, not released: arrays over it may
        outlive the call. With it, the address of its first byte."""
        if not ref.sealed or (ref.vlen and not whole):
            return None
        return self.reader.known_bytes((ref.segment, ref.offset, ref.length, ref.crc))

    def _decoding(self, spec: ColumnSpec, ref: ChunkRef, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a known chunk's bytes, a decoding failure named as :meth:`_checked`
        names it."""
        try:
            return fn(*args)
        except (RuntimeError, ValueError) as exc:
            raise self.damaged(spec, ref, ref.crc, f"cannot decode: {exc}") from None

    def read_validity(self, spec: ColumnSpec, ref: ChunkRef) -> np.ndarray | None:
        """The chunk's validity as packed bits (``np.packbits(valid, bitorder="little")``,
        uint8, ``ceil(ref.nrows / 8)`` bytes, 1 = valid), None when it has no missing value.
        The count of missing values must match the manifest's (``ChecksumError`` otherwise)."""
        if not ref.nulls:
            return None
        with self._checked(spec, ref, "validity") as frame:
            return _validity(ref, frame)

    def read_masked(
        self, spec: ColumnSpec, ref: ChunkRef, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(values, packed validity or None) of one chunk, its bytes read and checked once:
        :meth:`read_chunk` and :meth:`read_validity` together."""
        if not ref.nulls:
            return self.read_chunk(spec, ref, out), None
        with self._checked(spec, ref, "whole") as buf:
            split = ref.length - ref.vlen
            bits = _validity(ref, memoryview(buf)[split:])
            values = self._decode(spec, ref, memoryview(buf)[:split], out)
        return values, bits

    def check(self, spec: ColumnSpec, ref: ChunkRef) -> None:
        """Read the chunk's bytes, check them and decode them (values and validity): what
        ``verify()`` asks of every chunk, including those a read computes from their params
        alone (``Encoding.computed``). ``ChecksumError`` when damaged."""
        with self._checked(spec, ref, "whole") as buf:
            split = ref.length - ref.vlen
            if ref.nulls:
                _validity(ref, memoryview(buf)[split:])
            self._decode(spec, ref, memoryview(buf)[:split], None)

    def read_piece(self, spec: ColumnSpec, ref: ChunkRef) -> Any:
        """One chunk as a writer appends it again (a merge, compaction): its values, or
        :class:`~colvault.engine.masked.Masked` when some are missing."""
        values, bits = self.read_masked(spec, ref)
        return values if bits is None else Masked(values, unpack(bits, ref.nrows))

    def read_chunk_masked(self, spec: ColumnSpec, ref: ChunkRef) -> np.ndarray:
        """One chunk as reads give it: its values, as a masked array for a nullable column."""
        if not spec.nullable:
            return self.read_chunk(spec, ref)
        return masked_array(*self.read_masked(spec, ref))

    def read_codes(self, spec: ColumnSpec, ref: ChunkRef) -> tuple[np.ndarray, np.ndarray]:
        """(codes, dictionary) of one chunk of a category column."""
        with self._checked(spec, ref) as buf:
            return _dictionary(ref).codes_and_values(buf, ref.nrows)

    def read_codes_masked(self, spec: ColumnSpec, ref: ChunkRef) -> tuple[np.ndarray, np.ndarray]:
        """(codes, dictionary) of one chunk of a category column; a nullable column's codes
        signed, -1 where the value is missing (as pandas' Categorical codes)."""
        if not spec.nullable:
            return self.read_codes(spec, ref)
        with self._checked(spec, ref, "whole") as buf:
            split = ref.length - ref.vlen
            bits = _validity(ref, memoryview(buf)[split:]) if ref.nulls else None
            codes, dictionary = _dictionary(ref).codes_and_values(
                memoryview(buf)[:split], ref.nrows
            )
        signed = codes.astype(np.result_type(np.int8, codes.dtype))
        if bits is not None:
            signed[~unpack(bits, ref.nrows)] = -1
        return signed, dictionary

    def read_scaled(
        self, spec: ColumnSpec, ref: ChunkRef, encoding: Decimal, slot: Hashable
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """A ``decimal`` chunk undecoded: its narrow integers (in scratch buffer ``slot``) and
        its exceptions' positions and values (None when it has none)."""
        with self._checked(spec, ref) as buf:
            return encoding.scaled_integers(buf, ref.nrows, spec.dtype, slot)

    def read_at(self, spec: ColumnSpec, ref: ChunkRef, rows: np.ndarray) -> np.ndarray:
        """The values at ``rows`` (positions within the chunk) of one chunk, as a new array.

        Regular clocks are computed from their params, ``for`` and exception-free ``decimal``
        chunks decode only those rows; others decode whole into scratch, then copy the rows.
        The chunk's bytes are read and checked once either way. Missing rows of a nullable
        column hold forward-filled values (:meth:`read_validity` says which)."""
        if spec.is_category:
            return self._text_at(spec, ref, rows)
        if not spec.shape:
            direct = ref.encoding.arithmetic_rows(spec.dtype, rows)
            if direct is not None:
                return direct
            if _run_of(rows) and 4 * len(rows) <= ref.nrows:  # a range of a sorted column
                span = self.read_span(spec, ref, int(rows[0]), int(rows[-1]) + 1)
                return np.ma.getdata(span)  # a nullable column's values alone, as below
        known = self._known(ref)
        if known is not None and isinstance(ref.encoding, Raw) and not spec.shape:
            return np.frombuffer(known[0], spec.dtype, ref.nrows)[rows]  # from the mapping
        out = scratch(spec, ref.nrows, "gather")
        with self._checked(spec, ref) as buf:
            if not spec.shape:
                direct = ref.encoding.decode_rows(buf, ref.nrows, spec.dtype, rows)
                if direct is not None:
                    return direct
            ref.encoding.decode(buf, out)
        return out[rows]

    def _text_at(self, spec: ColumnSpec, ref: ChunkRef, rows: np.ndarray | slice) -> np.ndarray:
        """Rows ``rows`` (positions or a slice) of a category chunk as a str array: the codes
        picked first, then their text. Text for the whole chunk first (131,072 strings of the
        widest value's width) cost a query of 350,000 rows four times its numeric columns."""
        codes, values = self.read_codes(spec, ref)
        return _text(values, codes[rows])

    def read_chunk(
        self, spec: ColumnSpec, ref: ChunkRef, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Decode one chunk (into ``out`` when given: exactly ``ref.nrows`` rows, contiguous).

        Category chunks are returned as a new str array (their width is known only now).
        Missing rows of a nullable column hold forward-filled values (the previous valid one,
        the first valid one before it; zeros or empty text when none is valid):
        :meth:`read_validity` says which rows they are."""
        if spec.is_category:
            codes, values = self.read_codes(spec, ref)
            return _text(values, codes)
        if out is None:
            out = np.empty((ref.nrows, *spec.shape), spec.dtype)
        if ref.encoding.computable:
            ref.encoding.computed(out)
            return out
        known = self._known(ref)
        if known is not None:
            self._decoding(spec, ref, ref.encoding.decode, known[0], out)
            return out
        with self._checked(spec, ref) as buf:
            ref.encoding.decode(buf, out)
        return out

    def _decode(
        self, spec: ColumnSpec, ref: ChunkRef, buf: Any, out: np.ndarray | None
    ) -> np.ndarray:
        """The values of a chunk from its checked bytes (see :meth:`read_chunk`)."""
        if spec.is_category:
            codes, values = _dictionary(ref).codes_and_values(buf, ref.nrows)
            return _text(values, codes)
        if out is None:
            out = np.empty((ref.nrows, *spec.shape), spec.dtype)
        ref.encoding.decode(buf, out)
        return out

    def map(self, fn, items: list) -> list:
        """``fn`` over ``items`` in the pool (in order), or here when there is none or one item."""
        if self.pool is not None and len(items) > 1:
            return list(self.pool.map(fn, items))
        return [fn(i) for i in items]

    def read_range(
        self, state: NodeState, spec: ColumnSpec, start: int, stop: int,
        out: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Rows [start, stop) of one column, into ``out`` when given (not for category
        columns, whose text width the chunks decide). A nullable column's rows come as a
        masked array (masked = missing), its values in ``out`` when given."""
        if spec.nullable:
            return self._masked_range(state, spec, start, stop, out)
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
                out[lo - start : hi - start] = self.read_span(spec, ref, lo - c0, hi - c0)

        self.map(one, list(state.chunk_span(start, stop)))
        return out

    def read_rows_of(
        self, state: NodeState, specs: Sequence[ColumnSpec], start: int, stop: int
    ) -> list[np.ndarray]:
        """Rows [start, stop) of each of ``specs``: from the blocks holding them when they are
        few (:meth:`read_short`), else by :meth:`read_range`."""
        short = self.read_short(state, specs, start, stop)
        if short is not None:
            return short
        return [self.read_range(state, s, start, stop) for s in specs]

    def read_short(
        self, state: NodeState, specs: Sequence[ColumnSpec], start: int, stop: int
    ) -> list[np.ndarray] | None:
        """Rows [start, stop) of ``specs`` when they are fewer than a quarter of a chunk, in at
        most :data:`SHORT_CHUNKS` chunks (a point read, a short slice): each column from only
        the blocks holding them, one column after another here (a hand-off to the pool costs
        more); a nullable column's as a masked array, a category column's as text, as
        :meth:`read_range` gives them. None otherwise, or for a column of shaped cells:
        :meth:`read_range` reads those."""
        if stop <= start or not specs:
            return None
        if any(s.shape for s in specs):
            return None
        span = state.chunk_span(start, stop)
        first = state.columns[specs[0].id][span.start]
        if len(span) > SHORT_CHUNKS or 4 * (stop - start) > first.nrows:
            return None
        out = []
        for s in specs:
            refs = state.columns[s.id]
            pieces = []
            for pos in span:
                ref = refs[pos]
                a, b = max(start, ref.first_row), min(stop, ref.first_row + ref.nrows)
                pieces.append(self.read_span(s, ref, a - ref.first_row, b - ref.first_row))
            if len(pieces) == 1:
                out.append(pieces[0])
            else:
                out.append((np.ma.concatenate if s.nullable else np.concatenate)(pieces))
        return out

    def read_span(self, spec: ColumnSpec, ref: ChunkRef, a: int, b: int) -> np.ndarray:
        """Rows ``[a, b)`` of one chunk as a new array, as :meth:`read_range` gives them
        (masked where a nullable column is missing, text for a category column): from only
        the blosc2 blocks that hold them (of the values and of the validity frame alike) when
        they are a small part of a plain column's chunk or any part of another's, else from
        the whole chunk."""
        plain = not (spec.nullable or spec.is_category)
        if plain and not spec.shape and ref.encoding.computable:
            out = np.empty(b - a, spec.dtype)
            ref.encoding.computed(out, a)
            return out
        if spec.shape or (plain and 4 * (b - a) > ref.nrows):
            return self.read_chunk(spec, ref, scratch(spec, ref.nrows))[a:b].copy()
        known = self._known(ref, whole=True)
        if known is not None:
            view, at = known
            return self._decoding(spec, ref, self._span_of, spec, ref, view, a, b, at)
        with self._checked(spec, ref, "whole" if ref.vlen else "values") as buf:
            return self._span_of(spec, ref, buf, a, b)

    def _span_of(
        self, spec: ColumnSpec, ref: ChunkRef, buf: Any, a: int, b: int, at: int | None = None
    ) -> np.ndarray:
        """:meth:`read_span` from the chunk's checked bytes (``at``: their address)."""
        split = ref.length - ref.vlen
        values_part = memoryview(buf)[:split] if ref.vlen else buf
        if spec.is_category:
            encoding = _dictionary(ref)
            codes = encoding.codes_span(values_part, ref.nrows, a, b, at)
            values = _text(encoding.values(values_part), codes)
        else:
            got = ref.encoding.decode_span(values_part, ref.nrows, a, b, spec.dtype, at)
            if got is None:
                whole = scratch(spec, ref.nrows)
                ref.encoding.decode(values_part, whole)
                got = whole[a:b].copy()  # the scratch buffer is this thread's next read's
            values = got
        if not spec.nullable:
            return values
        missing = np.zeros(b - a, bool)
        if ref.vlen:
            frame_at = None if at is None else at + split
            missing = missing_span(memoryview(buf)[split:], ref.nrows, a, b, frame_at)
        return np.ma.MaskedArray(values, missing)

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
        if any(not isinstance(r.encoding, Raw) or not r.sealed or r.vlen for r in refs):
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
            return self._text_at(
                spec, ref, slice(max(start, c0) - c0, min(stop, c0 + ref.nrows) - c0)
            )

        pieces = self.map(one, list(state.chunk_span(start, stop)))
        return np.concatenate(pieces) if pieces else np.empty(0, "U1")

    def _masked_range(
        self, state: NodeState, spec: ColumnSpec, start: int, stop: int,
        out: np.ndarray | None = None,
    ) -> np.ma.MaskedArray:  # fmt: skip
        """Rows [start, stop) of a nullable column as a masked array (masked = missing)."""
        n = max(stop - start, 0)
        text = spec.is_category
        values_out = np.empty((n, *spec.shape), spec.dtype) if out is None and not text else out
        missing = np.zeros(n, bool)
        refs = state.columns[spec.id]

        def one(pos: int) -> np.ndarray | None:
            ref = refs[pos]
            c0, c1 = ref.first_row, ref.first_row + ref.nrows
            lo, hi = max(start, c0), min(stop, c1)
            piece = None
            if text:
                values, bits = self.read_masked(spec, ref)
                piece = values[lo - c0 : hi - c0]
            else:
                assert values_out is not None
                if lo == c0 and hi == c1:
                    _, bits = self.read_masked(spec, ref, values_out[c0 - start : c1 - start])
                else:
                    values, bits = self.read_masked(spec, ref, scratch(spec, ref.nrows))
                    values_out[lo - start : hi - start] = values[lo - c0 : hi - c0]
            if bits is not None:
                missing[lo - start : hi - start] = ~unpack(bits, ref.nrows)[lo - c0 : hi - c0]
            return piece

        pieces = self.map(one, list(state.chunk_span(start, stop)))
        if text:
            values_out = np.concatenate(pieces) if pieces else np.empty(0, "U1")
        return np.ma.MaskedArray(values_out, missing)

    def read_rows(self, state: NodeState, spec: ColumnSpec, rows: np.ndarray) -> np.ndarray:
        """The given rows (sorted, unique, in range) of one column (a masked array for a
        nullable one)."""
        if spec.nullable:
            return self._masked_rows(state, spec, rows)
        if not len(rows):
            return np.empty((0, *spec.shape), "U1" if spec.is_category else spec.dtype)
        refs = state.columns[spec.id]
        pos = np.searchsorted(state.starts, rows, side="right") - 1
        groups = np.split(np.arange(len(rows)), np.flatnonzero(np.diff(pos)) + 1)

        def one(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ref = refs[int(pos[sel[0]])]
            at = rows[sel] - ref.first_row
            if spec.is_category:
                return sel, self._text_at(spec, ref, at)
            return sel, self.read_chunk(spec, ref, scratch(spec, ref.nrows))[at]

        picked = self.map(one, groups)
        dtype = np.result_type(*(v.dtype for _, v in picked)) if spec.is_category else spec.dtype
        out = np.empty((len(rows), *spec.shape), dtype)
        for sel, values in picked:
            out[sel] = values
        return out

    def _masked_rows(
        self, state: NodeState, spec: ColumnSpec, rows: np.ndarray
    ) -> np.ma.MaskedArray:
        """The given rows of a nullable column as a masked array."""
        if not len(rows):
            empty = np.empty(0, "U1" if spec.is_category else spec.dtype)
            return np.ma.MaskedArray(empty, np.zeros(0, bool))
        refs = state.columns[spec.id]
        pos = np.searchsorted(state.starts, rows, side="right") - 1
        groups = np.split(np.arange(len(rows)), np.flatnonzero(np.diff(pos)) + 1)

        def one(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            ref = refs[int(pos[sel[0]])]
            buf = None if spec.is_category else scratch(spec, ref.nrows)
            values, bits = self.read_masked(spec, ref, buf)
            at = rows[sel] - ref.first_row
            missing = None if bits is None else ~unpack(bits, ref.nrows)[at]
            return sel, values[at], missing

        picked = self.map(one, groups)
        dtype = np.result_type(*(v.dtype for _, v, _ in picked)) if spec.is_category else spec.dtype
        out = np.empty(len(rows), dtype)
        mask = np.zeros(len(rows), bool)
        for sel, values, missing in picked:
            out[sel] = values
            if missing is not None:
                mask[sel] = missing
        return np.ma.MaskedArray(out, mask)


def _text(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """A category chunk's text at ``codes`` (empty text for a chunk without a value)."""
    return values[codes] if len(values) else np.full(len(codes), "", "U1")


def _run_of(rows: np.ndarray) -> bool:
    """Whether ``rows`` are consecutive positions, in order."""
    n = len(rows)
    return n > 1 and int(rows[-1]) - int(rows[0]) == n - 1 and bool(np.all(np.diff(rows) == 1))


def _dictionary(ref: ChunkRef) -> Dictionary:
    """The dictionary encoding of a category column's chunk (ValueError for any other: the
    caller names the chunk)."""
    if not isinstance(ref.encoding, Dictionary):
        raise ValueError(f"chunk of category column has encoding {ref.encoding.name!r}")
    return ref.encoding


def _validity(ref: ChunkRef, frame: Any) -> np.ndarray:
    """The packed validity bits of a chunk from its (checked) frame; their count of missing
    values must be the manifest's (ValueError otherwise: the caller names the chunk)."""
    bits = decode_validity(frame, ref.nrows)
    valid = int(np.bitwise_count(bits).sum())
    if ref.nrows - valid != ref.nulls:
        raise ValueError(
            f"its validity has {ref.nrows - valid} missing values, the manifest says {ref.nulls}"
        )
    return bits
