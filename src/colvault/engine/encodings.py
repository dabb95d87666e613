"""Per-chunk encodings: what sits between a column chunk and its compressed bytes.

Every chunk is encoded on its own and its manifest row names the encoding and its parameters
(JSON), so any chunk decodes without its neighbours and two writers never have to agree:

- ``raw``: the values' bytes (codec ``"none"``).
- ``blosc2``: one blosc2 frame of the values.
- ``for``: integers (and datetimes) minus the chunk minimum, narrowed to the smallest unsigned
  width; params ``base``, ``w`` (narrow dtype).
- ``delta``: sorted integers as steps minus the smallest step (a fixed-period clock becomes
  zeros); params ``first``, ``step``, ``w``.
- ``dict``: category text as codes (the narrowest unsigned type for the number of distinct
  values) into a per-chunk dictionary in order of first appearance (as Parquet keeps one per
  row group); the payload is the codes' frame, then a frame of the dictionary: uint32 UTF-8
  lengths followed by the UTF-8 bytes; params ``w``, ``n`` (values in the dictionary),
  ``clen``, ``raw`` (frames are raw bytes: codec none).
- ``decimal``: floats that are exact decimals stored as integers ``k`` with value ``k / 10**e``
  (the idea of ALP), narrowed like ``for``; values that do not round-trip bit for bit are
  exceptions stored after the frame (uint32 positions, then their raw bits); params ``e``,
  ``base``, ``w``, ``clen`` (frame length), ``nexc``.

Packed integers are compressed with byte shuffle, or with bitshuffle when a trial on the column's
recent chunks found it clearly smaller (``shuffle="auto"``, see :data:`BITSHUFFLE_GAIN`); an
explicit ``shuffle`` is obeyed. An encoding is
used only where it pays (the packed width is narrower than the values); otherwise ``blosc2``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lazy import kernel_module
from .buffers import scratch_array
from .codec import Codec, as_bytes, blosc2
from .coded import Coded, chunk_dictionary
from .schema import ColumnSpec
from .zonemaps import ZoneMap

if TYPE_CHECKING:
    from ..kernels import decimal as dec
    from ..kernels import dictenc, intpack
else:
    dec = kernel_module("decimal")
    dictenc = kernel_module("dictenc")
    intpack = kernel_module("intpack")

RAW = "raw"
BLOSC2 = "blosc2"
FOR = "for"
DELTA = "delta"
DECIMAL = "decimal"
DICT = "dict"

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
    encoding: str
    params: str | None  # JSON
    payload: bytes | memoryview
    #: The chunk's zone map when the encoding found it on the way (decimal chunks without
    #: exceptions: min and max are their extreme integers decoded), else None.
    zone: ZoneMap | None = None


def _unsigned(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}")


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
            return Encoded(RAW, None, as_bytes(chunk).data)
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
        return Encoded(BLOSC2, None, self.codec.compress(chunk))

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

    def _pack_ints(self, chunk: np.ndarray, zone: ZoneMap) -> Encoded | None:
        dtype = chunk.dtype
        values = _unsigned(chunk.view(np.int64) if dtype.kind in "Mm" else chunk)
        if zone.sorted:
            lo, hi = intpack.delta_span(values)
            narrow_dt = intpack.narrow_dtype(int(hi - lo))
            if narrow_dt.itemsize < dtype.itemsize:
                narrow = scratch_array("encode-packed", narrow_dt, len(chunk))
                intpack.delta_encode(values, values.dtype.type(lo), narrow)
                params = {"first": int(values[0]), "step": int(lo), "w": narrow_dt.str}
                if hi == lo:  # a fixed-period clock: value i is first + step * i
                    params["regular"] = 1
                return Encoded(DELTA, json.dumps(params), self._compress_packed(narrow))
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
        params = {"base": base, "w": narrow_dt.str}
        return Encoded(FOR, json.dumps(params), self._compress_packed(narrow))

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
        params = {"w": narrow.dtype.str, "n": len(values), "clen": len(code_frame), "raw": raw}
        return Encoded(DICT, json.dumps(params), code_frame + dict_frame)

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
        intpack.for_encode(_unsigned(ints), np.int64(kmin).view(np.uint64), narrow)
        frame = self._compress_packed(narrow)
        where = positions[:nexc]
        payload = b"".join((frame, where.astype(np.uint32).tobytes(), chunk[where].tobytes()))
        params = {"e": int(e), "base": int(kmin), "w": narrow_dt.str, "clen": len(frame)}
        params["nexc"] = int(nexc)
        zone = None
        if nexc == 0:  # decoding is monotone: the extreme integers decode to min and max
            bounds = (np.array([kmin, kmax], np.float64) / dec.P[e]).astype(chunk.dtype)
            zone = ZoneMap(bounds[:1].tobytes(), bounds[1:].tobytes(), 0, bool(ascending))
        return Encoded(DECIMAL, json.dumps(params), payload, zone)


@functools.lru_cache(maxsize=1 << 14)
def chunk_params(params: str) -> dict[str, Any]:
    """A chunk's JSON params, parsed once per process (a scan reads each chunk's params several
    times per query). The dict is shared: read it, never change it."""
    parsed: dict[str, Any] = json.loads(params)
    return parsed


#: The params each encoding's chunks carry and their JSON types. The catalog holds them beside
#: the chunk's crc, not under it: a manifest is checked against this when it is loaded.
PARAMS: dict[str, dict[str, type]] = {
    RAW: {},
    BLOSC2: {},
    FOR: {"base": int, "w": str},
    DELTA: {"first": int, "step": int, "w": str},
    DECIMAL: {"e": int, "base": int, "w": str, "clen": int, "nexc": int},
    DICT: {"w": str, "n": int, "clen": int, "raw": bool},
}


def check_params(encoding: str, params: str | None) -> str | None:
    """What is wrong with a chunk's encoding and params as the catalog holds them, or None."""
    want = PARAMS.get(encoding)
    if want is None:
        return f"unknown encoding {encoding!r}"
    if not want:
        return None
    try:
        p = chunk_params(params) if isinstance(params, str) else None
    except ValueError as exc:
        return f"{encoding} params {params!r} do not decode ({exc})"
    if not isinstance(p, dict):
        return f"{encoding} params {params!r} are not an object"
    for key, kind in want.items():
        value = p.get(key)
        if type(value) is not kind:
            return f"{encoding} params {params!r}: {key!r} is not {kind.__name__}"
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            return f"{encoding} params {params!r}: {key!r} is beyond 64 bits"
        if key in ("n", "clen", "nexc") and isinstance(value, int) and value < 0:
            return f"{encoding} params {params!r}: {key!r} is negative"
    try:
        narrow = np.dtype(p["w"])
    except TypeError:
        narrow = None
    if narrow is None or narrow.kind not in "iu" or narrow.byteorder not in "<=|":
        return f"{encoding} params {params!r}: {p['w']!r} is not a little-endian integer dtype"
    return None


def _unpack(frame: Any, narrow_dt: str, n: int, slot: Hashable | None = "narrow") -> np.ndarray:
    """The packed integers of a frame, in this thread's scratch buffer ``slot`` (valid until
    the next use of that slot on this thread), or a new array when ``slot`` is None."""
    narrow = np.empty(n, narrow_dt) if slot is None else scratch_array(slot, narrow_dt, n)
    decompress_into(frame, narrow)
    return narrow


def decompress_into(frame: Any, out: np.ndarray) -> None:
    """Decompress a blosc2 frame into ``out``, which it must fill exactly: the catalog's row
    count or params could be damaged, and a scratch buffer's old bytes must never pass for
    values (ValueError otherwise, which readers report as a chunk that cannot be decoded)."""
    size = blosc2.get_cbuffer_sizes(frame)[0]
    if size != out.nbytes:
        raise ValueError(f"a frame of {size} bytes where {out.nbytes} were expected")
    blosc2.decompress2(frame, dst=as_bytes(out), nthreads=1)


def scaled_integers(
    params: dict[str, Any], payload: Any, n: int, dtype: np.dtype, slot: Hashable
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The narrow integers ``u`` of a ``decimal`` chunk (values ``(u + base) / 10**e``) in
    scratch buffer ``slot``, and copies of its exceptions' positions and values (or None)."""
    clen, nexc = params["clen"], params["nexc"]
    narrow = _unpack(payload[:clen], params["w"], n, slot)
    if not nexc:
        return narrow, None, None
    where = np.frombuffer(payload, np.uint32, nexc, clen).astype(np.int64)
    return narrow, where, np.frombuffer(payload, dtype, nexc, clen + 4 * nexc).copy()


def regular_rows(p: dict[str, Any], dtype: np.dtype, rows: np.ndarray) -> np.ndarray:
    """Rows of a ``regular`` delta chunk computed from its params alone: ``first + step * i``,
    wrapping in the column's unsigned type as the stored steps did."""
    out = np.empty(len(rows), dtype)
    values = _unsigned(out.view(np.int64) if dtype.kind in "Mm" else out)
    typed = values.dtype.type
    intpack.regular_at(typed(p["first"]), typed(p["step"]), rows, values)
    return out


def arithmetic_rows(encoding: str, params: str | None, dtype: np.dtype, rows: np.ndarray) -> Any:
    """The values at ``rows`` when the encoding's params determine them (no bytes to read or
    check), else ``None``."""
    if encoding != DELTA or params is None:
        return None
    p = chunk_params(params)
    return regular_rows(p, dtype, rows) if p.get("regular") else None


def decode_rows(
    encoding: str, params: str | None, payload: Any, nrows: int, dtype: np.dtype, rows: np.ndarray
) -> np.ndarray | None:
    """The values at ``rows`` of a ``for`` or exception-free ``decimal`` chunk, decoding only
    those rows (the packed integers are unpacked whole, into scratch); None for other chunks."""
    if params is None or encoding not in (FOR, DECIMAL):
        return None
    p = chunk_params(params)
    out = np.empty(len(rows), dtype)
    if encoding == FOR:
        values = _unsigned(out.view(np.int64) if dtype.kind in "Mm" else out)
        narrow = _unpack(payload, p["w"], nrows)
        intpack.for_decode(narrow[rows], values.dtype.type(p["base"]), values)
        return out
    if p["nexc"]:
        return None
    narrow = _unpack(payload[: p["clen"]], p["w"], nrows)
    dec.decimal_decode(narrow[rows], np.int64(p["base"]), p["e"], out)
    return out


def decode(encoding: str, params: str | None, payload: Any, out: np.ndarray) -> None:
    """Decode one chunk into ``out`` (contiguous, exactly the chunk's rows)."""
    if encoding == BLOSC2:
        decompress_into(payload, out)
        return
    if encoding == RAW:
        as_bytes(out)[:] = np.frombuffer(payload, np.uint8)
        return
    if params is None:
        raise ValueError(f"chunk encoding {encoding!r} without parameters")
    p = chunk_params(params)
    n = len(out)
    if encoding in (FOR, DELTA):
        values = _unsigned(out.view(np.int64) if out.dtype.kind in "Mm" else out)
        typed = values.dtype.type
        narrow = _unpack(payload, p["w"], n)
        if encoding == FOR:
            intpack.for_decode(narrow, typed(p["base"]), values)
        else:
            intpack.delta_decode(narrow, typed(p["first"]), typed(p["step"]), values)
    elif encoding == DECIMAL:
        clen, nexc = p["clen"], p["nexc"]
        narrow = _unpack(payload[:clen], p["w"], n)
        dec.decimal_decode(narrow, np.int64(p["base"]), p["e"], out)
        if nexc:
            where = np.frombuffer(payload, np.uint32, nexc, clen)
            out[where] = np.frombuffer(payload, out.dtype, nexc, clen + 4 * nexc)
    else:
        raise ValueError(f"unknown chunk encoding {encoding!r}")


def validity_frame(valid: np.ndarray, codec: Codec) -> bytes:
    """The validity frame of a chunk with missing values: its packed bits
    (``np.packbits(valid, bitorder="little")``, 1 = valid), one blosc2 frame with the table's
    codec (stored, not compressed, for codec ``"none"``: a frame either way, so that a reader
    needs no more than the chunk's own bytes to decode it)."""
    bits = np.packbits(valid, bitorder="little")
    if codec.name == "none":
        return blosc2.compress2(
            bits, codec=blosc2.Codec.LZ4, clevel=0, typesize=1, filters=[blosc2.Filter.NOFILTER]
        )
    return codec.compress(bits, blosc2.Filter.NOFILTER)


def decode_validity(frame: Any, nrows: int) -> np.ndarray:
    """The packed validity bits of a chunk of ``nrows`` rows from its frame (a new array)."""
    bits = np.empty((nrows + 7) // 8, np.uint8)
    decompress_into(frame, bits)
    return bits


def _frame(payload: Any, raw: bool, dtype: str, n: int) -> np.ndarray:
    if raw:
        return np.frombuffer(payload, dtype, n).copy()
    return _unpack(payload, dtype, n, None)


def decode_dictionary(params: str, payload: Any, nrows: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, dictionary as a str array) of one ``dict`` chunk."""
    p = chunk_params(params)
    clen, n, raw = p["clen"], p["n"], p["raw"]
    codes = _frame(payload[:clen], raw, p["w"], nrows)
    rest = payload[clen:]
    blob = bytes(rest) if raw else blosc2.decompress2(rest)
    lengths = np.frombuffer(blob, np.uint32, n)
    ends = np.cumsum(lengths, dtype=np.int64) + 4 * n
    starts = ends - lengths
    text = [blob[a:b].decode() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return codes, np.array(text, dtype=str) if text else np.empty(0, "U1")
