"""``raw`` (the values' bytes, codec ``"none"``) and ``blosc2`` (one blosc2 frame of them)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..codec import as_bytes
from .base import Encoding, decompress_into, decompress_items


@dataclasses.dataclass(frozen=True)
class Raw(Encoding):
    """The values' bytes as they are: readable in place through the mapping (zero copy)."""

    name = "raw"

    def decode(self, payload: Any, out: np.ndarray) -> None:
        as_bytes(out)[:] = np.frombuffer(payload, np.uint8)

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        return np.frombuffer(payload, dtype, stop - start, start * dtype.itemsize).copy()


@dataclasses.dataclass(frozen=True)
class Blosc2(Encoding):
    """One blosc2 frame of the values, with the table's codec."""

    name = "blosc2"

    def decode(self, payload: Any, out: np.ndarray) -> None:
        decompress_into(payload, out)

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        got = decompress_items(payload, start, stop - start, dtype, at)
        return None if got is None else got.copy()
