"""``decimal``: floats that are exact decimals, stored as integers ``k`` with value ``k / 10**e``
(the idea of ALP), narrowed like ``for``. Values that do not round-trip bit for bit are
exceptions stored after the frame (uint32 positions, then their raw bits). Params ``e``,
``base``, ``w``, ``clen`` (frame length), ``nexc`` (exceptions)."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from ...lazy import kernel_module
from .base import Encoding, decompress_items, unpack

if TYPE_CHECKING:
    from ...kernels.encoding import decimal as dec
else:
    dec = kernel_module("encoding.decimal")


@dataclasses.dataclass(frozen=True)
class Decimal(Encoding):
    e: int
    base: int
    w: str
    clen: int
    nexc: int

    name = "decimal"
    packed = True

    def frame(self, payload: Any, dtype: np.dtype) -> Any:
        """The payload's frame of narrow integers, once its length is checked against
        ``clen`` and ``nexc`` (params in the catalog, outside the chunk's crc, which the
        batch kernels trust as well): ValueError when they disagree."""
        if len(payload) != self.clen + self.nexc * (4 + dtype.itemsize):
            raise ValueError(
                f"a payload of {len(payload)} bytes does not hold a frame of {self.clen} "
                f"bytes and {self.nexc} exceptions"
            )
        return payload[: self.clen]

    def decode(self, payload: Any, out: np.ndarray) -> None:
        narrow = unpack(self.frame(payload, out.dtype), self.w, len(out))
        dec.decimal_decode(narrow, np.int64(self.base), self.e, out)
        if self.nexc:
            where = np.frombuffer(payload, np.uint32, self.nexc, self.clen)
            out[where] = np.frombuffer(payload, out.dtype, self.nexc, self.clen + 4 * self.nexc)

    def decode_rows(
        self, payload: Any, nrows: int, dtype: np.dtype, rows: np.ndarray
    ) -> np.ndarray | None:
        if self.nexc:
            return None
        out = np.empty(len(rows), dtype)
        narrow = unpack(self.frame(payload, dtype), self.w, nrows)
        dec.decimal_decode(narrow[rows], np.int64(self.base), self.e, out)
        return out

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        frame = self.frame(payload, dtype)
        narrow = decompress_items(frame, start, stop - start, np.dtype(self.w), at)
        if narrow is None:
            return None
        out = np.empty(stop - start, dtype)
        dec.decimal_decode(narrow, np.int64(self.base), self.e, out)
        if self.nexc:
            where = np.frombuffer(payload, np.uint32, self.nexc, self.clen)
            bits = np.frombuffer(payload, dtype, self.nexc, self.clen + 4 * self.nexc)
            inside = (where >= start) & (where < stop)
            out[where[inside].astype(np.int64) - start] = bits[inside]
        return out

    def scaled_integers(
        self, payload: Any, n: int, dtype: np.dtype, slot: Hashable
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The narrow integers ``u`` (values ``(u + base) / 10**e``) in scratch buffer
        ``slot``, and copies of the exceptions' positions and values (or None)."""
        narrow = unpack(self.frame(payload, dtype), self.w, n, slot)
        if not self.nexc:
            return narrow, None, None
        where = np.frombuffer(payload, np.uint32, self.nexc, self.clen).astype(np.int64)
        exc = np.frombuffer(payload, dtype, self.nexc, self.clen + 4 * self.nexc).copy()
        return narrow, where, exc
