"""``dict``: category text as codes (the narrowest unsigned type for the number of distinct
values) into a per-chunk dictionary in order of first appearance (as Parquet keeps one per row
group). The payload is the codes' frame, then a frame of the dictionary: uint32 UTF-8 lengths
followed by the UTF-8 bytes. Params ``w``, ``n`` (values in the dictionary), ``clen`` (the
codes' frame length), ``raw`` (frames are raw bytes: codec none)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..codec import blosc2
from .base import Encoding, decompress_items, unpack


@dataclasses.dataclass(frozen=True)
class Dictionary(Encoding):
    w: str
    n: int
    clen: int
    raw: bool

    name = "dict"

    def decode(self, payload: Any, out: np.ndarray) -> None:
        raise ValueError("a dict chunk decodes to codes and a dictionary, not into an array")

    def codes_and_values(self, payload: Any, nrows: int) -> tuple[np.ndarray, np.ndarray]:
        """(codes, dictionary as a str array) of the chunk."""
        head = payload[: self.clen]
        if self.raw:
            codes = np.frombuffer(head, self.w, nrows).copy()
        else:
            codes = unpack(head, self.w, nrows, None)
        return codes, self.values(payload)

    def codes_span(
        self, payload: Any, nrows: int, start: int, stop: int, at: int | None = None
    ) -> np.ndarray:
        """Codes of rows ``[start, stop)`` as a new array, from only the blocks holding them
        where the library allows (else from the whole frame); ``at``: the payload's address."""
        head = payload[: self.clen]
        w = np.dtype(self.w)
        if self.raw:
            return np.frombuffer(head, w, stop - start, start * w.itemsize).copy()
        got = decompress_items(head, start, stop - start, w, at)
        if got is None:
            return unpack(head, self.w, nrows, None)[start:stop].copy()
        return got.copy()

    def values(self, payload: Any) -> np.ndarray:
        """The chunk's dictionary as a str array."""
        rest = payload[self.clen :]
        blob = bytes(rest) if self.raw else blosc2.decompress2(rest)
        n = self.n
        lengths = np.frombuffer(blob, np.uint32, n)
        ends = np.cumsum(lengths, dtype=np.int64) + 4 * n
        starts = ends - lengths
        text = [blob[a:b].decode() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        return np.array(text, dtype=str) if text else np.empty(0, "U1")
