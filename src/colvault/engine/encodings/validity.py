"""The validity frame of a chunk with missing values: its packed bits after the values, under
the chunk's one crc (``np.packbits(valid, bitorder="little")``, 1 = valid)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..codec import Codec, blosc2
from .base import decompress_into, decompress_items


def validity_frame(valid: np.ndarray, codec: Codec) -> bytes:
    """One blosc2 frame of the packed bits with the table's codec (stored, not compressed, for
    codec ``"none"``: a frame either way, so that a reader needs no more than the chunk's own
    bytes to decode it)."""
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


def missing_span(
    frame: Any, nrows: int, start: int, stop: int, at: int | None = None
) -> np.ndarray:
    """Whether each of rows ``[start, stop)`` is missing (a new bool array), from only the
    bytes of the validity frame that hold their bits where the library allows; ``at``: the
    frame's address."""
    lo, hi = start // 8, (stop + 7) // 8
    got = decompress_items(frame, lo, hi - lo, np.dtype(np.uint8), at)
    if got is None:
        got = decode_validity(frame, nrows)[lo:hi]
    valid = np.unpackbits(got, bitorder="little")[start - 8 * lo : stop - 8 * lo]
    return ~valid.astype(bool)
