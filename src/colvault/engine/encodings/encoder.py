"""Choosing and applying the encoding of a column's chunks, as a writer cuts them.

Packed integers are compressed with byte shuffle, or with bitshuffle when a trial on the
column's recent chunks found it clearly smaller (``shuffle="auto"``, see
:data:`BITSHUFFLE_GAIN`); an explicit ``shuffle`` is obeyed. An encoding is used only where it
pays (the packed width is narrower than the values); otherwise ``blosc2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...lazy import kernel_module
from ..buffers import scratch_array
from ..codec import Codec, as_bytes, block_items, blosc2
from ..coded import Coded, chunk_dictionary
from ..schema import ColumnSpec
from ..zonemaps import ZoneMap
from .base import Encoding, unsigned
from .decimals import Decimal
from .dictionary import Dictionary
from .packed import Delta, FrameOfReference
from .plain import Blosc2, Raw

if TYPE_CHECKING:
    from ...kernels.encoding import decimal as dec
    from ...kernels.encoding import dictionary as dictenc
    from ...kernels.encoding import intpack
else:
    dec = kernel_module("encoding.decimal")
    dictenc = kernel_module("encoding.dictionary")
    intpack = kernel_module("encoding.intpack")

#: A decimal chunk may hold at most this fraction of exceptions before plain compression wins.
MAX_EXCEPTION_FRACTION = 1 / 16
#: ``shuffle="auto"`` takes bitshuffle only when it is at most this fraction of byte shuffle's
#: size: decoding it costs 2-3x as much where both give similar sizes (benchmark ``value``: 15 %
#: smaller, 2.7x the decode time; ``sensor``: 26 % smaller and faster, less to decompress).
BITSHUFFLE_GAIN = 0.8
#: ``shuffle="auto"`` re-runs its trial of both shuffles every this many chunks of a column, and
#: a float column where the decimal encoding did not pay tries it again after as many chunks.
TRIAL_EVERY = 16


@dataclass(frozen=True)
class Encoded:
    """A chunk's encoding and its encoded bytes."""

    encoding: Encoding
    payload: bytes | memoryview
    #: The chunk's zone map when the encoding found it on the way (decimal chunks without
    #: exceptions: min and max are their extreme integers decoded), else None.
    zone: ZoneMap | None = None


_RAW = Raw()


def raw(values: np.ndarray) -> Encoded:
    """The values' bytes as they are (codec ``"none"``, and a table's short last chunk, kept
    raw so that small commits can grow it in place)."""
    return Encoded(_RAW, as_bytes(values).data)


def _as_unsigned(value: np.generic, dtype: np.dtype) -> int:
    """A scalar of ``dtype`` as the unsigned integer with the same bits."""
    return int(np.array([value], dtype).view(f"u{dtype.itemsize}")[0])


class ColumnEncoder:
    """Chooses and applies the encoding of one column's chunks for one writer."""

    def __init__(self, codec: Codec, spec: ColumnSpec) -> None:
        self.codec = codec
        self.spec = spec
        self._bitshuffle = True
        self._chunks = 0
        kind = spec.dtype.kind
        scalar = not spec.shape
        self._packs_ints = scalar and kind in "iuMm" and spec.dtype.itemsize > 1
        self._decimals = scalar and kind == "f"
        self._skip_decimals = 0  # chunks to pass over after the encoding did not pay

    def encode(self, chunk: np.ndarray, zone: ZoneMap) -> Encoded:
        if self.spec.is_category:
            return self._dictionary(chunk)
        if self.codec.name == "none":
            return raw(chunk)
        packed = None
        if self._packs_ints and len(chunk) > 1:
            packed = self._pack_ints(chunk, zone)
        elif self._decimals and len(chunk) > 1:
            if self._skip_decimals:
                self._skip_decimals -= 1
            else:
                packed = self._pack_decimals(chunk)
                if packed is None:  # noise, not decimals: look again only now and then
                    self._skip_decimals = TRIAL_EVERY - 1
        if packed is not None:
            return packed
        return Encoded(Blosc2(), self.codec.compress(chunk))

    def _compress_packed(self, narrow: np.ndarray) -> bytes:
        """Compress packed integers with the better shuffle (trial every few chunks)."""
        if self.codec.shuffle != "auto":
            return self.codec.compress(narrow)
        plain = blosc2.Filter.NOFILTER if narrow.itemsize == 1 else blosc2.Filter.SHUFFLE
        self._chunks += 1
        if self._chunks % TRIAL_EVERY == 1:
            bits = self.codec.compress(narrow, blosc2.Filter.BITSHUFFLE)
            other = self.codec.compress(narrow, plain)
            self._bitshuffle = len(bits) <= BITSHUFFLE_GAIN * len(other)
            return bits if self._bitshuffle else other
        return self.codec.compress(narrow, blosc2.Filter.BITSHUFFLE if self._bitshuffle else plain)

    def _delta(self, values: np.ndarray, lo: int, hi: int, narrow: np.ndarray) -> Encoded:
        """A ``delta`` chunk of sorted ``values`` (unsigned) and their ``narrow`` steps, with
        the anchors of each block of the frame after it (see :mod:`.packed`)."""
        frame = self._compress_packed(narrow)
        first, w = int(values[0]), narrow.dtype.str
        if hi == lo:  # a fixed-period clock: value i is first + step * i
            return Encoded(Delta(first, lo, w, True), frame)
        every = block_items(narrow.itemsize)
        if len(values) <= every:
            return Encoded(Delta(first, lo, w), frame)
        anchors = values[every::every].astype(f"<u{values.itemsize}")
        return Encoded(Delta(first, lo, w, False, len(frame), every), frame + anchors.tobytes())

    def _pack_ints(self, chunk: np.ndarray, zone: ZoneMap) -> Encoded | None:
        dtype = chunk.dtype
        values = unsigned(chunk)
        if zone.sorted:
            lo, hi = intpack.delta_span(values)
            narrow_dt = intpack.narrow_dtype(int(hi - lo))
            if narrow_dt.itemsize < dtype.itemsize:
                narrow = scratch_array("encode-packed", narrow_dt, len(chunk))
                intpack.delta_encode(values, values.dtype.type(lo), narrow)
                return self._delta(values, int(lo), int(hi), narrow)
        if zone.min is None or zone.max is None:
            return None
        base = _as_unsigned(np.frombuffer(zone.min, dtype)[0], dtype)
        top = _as_unsigned(np.frombuffer(zone.max, dtype)[0], dtype)
        if zone.nan_count:  # NaT is the int64 minimum: the span would cover everything
            return None
        narrow_dt = intpack.narrow_dtype((top - base) % (1 << (8 * dtype.itemsize)))
        if narrow_dt.itemsize >= dtype.itemsize:
            return None
        narrow = scratch_array("encode-packed", narrow_dt, len(chunk))
        intpack.for_encode(values, values.dtype.type(base), narrow)
        return Encoded(FrameOfReference(base, narrow_dt.str), self._compress_packed(narrow))

    def _dictionary(self, chunk: np.ndarray | Coded) -> Encoded:
        if isinstance(chunk, Coded):
            codes, values = chunk_dictionary(chunk)
        else:
            text = np.ascontiguousarray(chunk)
            codes, first = dictenc.dict_encode(text.view(np.uint32).reshape(len(text), -1))
            values = text[first]
        narrow = codes.astype(intpack.narrow_dtype(max(len(values) - 1, 0)))
        utf8 = [v.encode() for v in values.tolist()]
        lengths = np.array([len(b) for b in utf8], np.uint32)
        dictionary = np.frombuffer(lengths.tobytes() + b"".join(utf8), np.uint8)
        raw = self.codec.name == "none"
        code_frame = as_bytes(narrow).tobytes() if raw else self._compress_packed(narrow)
        dict_frame = dictionary.tobytes() if raw else self.codec.compress(dictionary)
        encoding = Dictionary(narrow.dtype.str, len(values), len(code_frame), raw)
        return Encoded(encoding, code_frame + dict_frame)

    def _pack_decimals(self, chunk: np.ndarray) -> Encoded | None:
        n = len(chunk)
        ints = scratch_array("encode-ints", np.int64, n)  # this thread's: used here only
        positions = scratch_array("encode-positions", np.int64, n)
        e, nexc, kmin, kmax, ascending = dec.encode_chunk(
            chunk, dec.MAX_EXPONENT[chunk.itemsize], ints, positions
        )
        if nexc > n * MAX_EXCEPTION_FRACTION:
            return None
        narrow_dt = intpack.narrow_dtype(int(kmax) - int(kmin))
        if narrow_dt.itemsize >= chunk.itemsize:
            return None
        narrow = scratch_array("encode-packed", narrow_dt, n)
        intpack.for_encode(unsigned(ints), np.int64(kmin).view(np.uint64), narrow)
        frame = self._compress_packed(narrow)
        where = positions[:nexc]
        payload = b"".join((frame, where.astype(np.uint32).tobytes(), chunk[where].tobytes()))
        encoding = Decimal(int(e), int(kmin), narrow_dt.str, len(frame), int(nexc))
        zone = None
        if nexc == 0:  # decoding is monotone: the extreme integers decode to min and max
            bounds = (np.array([kmin, kmax], np.float64) / dec.P[e]).astype(chunk.dtype)
            zone = ZoneMap(bounds[:1].tobytes(), bounds[1:].tobytes(), 0, bool(ascending))
        return Encoded(encoding, payload, zone)
