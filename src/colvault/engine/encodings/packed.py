"""``for`` and ``delta``: integers (and datetimes) packed into the narrowest unsigned type.

- ``for``: the values minus the chunk minimum; params ``base``, ``w`` (the narrow dtype).
- ``delta``: sorted values as steps minus the smallest step (a fixed-period clock becomes
  zeros); params ``first``, ``step``, ``w``, and ``regular`` when every step is the same, so
  that any row is ``first + step * i`` without reading the chunk.

Arithmetic wraps in the column's unsigned type, as the encoder's did.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ...lazy import kernel_module
from .base import Encoding, ParamsError, check_width, decompress_items, unpack, unsigned

if TYPE_CHECKING:
    from ...kernels.encoding import intpack
else:
    intpack = kernel_module("encoding.intpack")


@dataclasses.dataclass(frozen=True)
class FrameOfReference(Encoding):
    base: int
    w: str

    name = "for"
    packed = True

    def decode(self, payload: Any, out: np.ndarray) -> None:
        values = unsigned(out)
        narrow = unpack(payload, self.w, len(out))
        intpack.for_decode(narrow, values.dtype.type(self.base), values)

    def decode_rows(
        self, payload: Any, nrows: int, dtype: np.dtype, rows: np.ndarray
    ) -> np.ndarray | None:
        out = np.empty(len(rows), dtype)
        values = unsigned(out)
        narrow = unpack(payload, self.w, nrows)
        intpack.for_decode(narrow[rows], values.dtype.type(self.base), values)
        return out

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        narrow = decompress_items(payload, start, stop - start, np.dtype(self.w), at)
        if narrow is None:
            return None
        out = np.empty(stop - start, dtype)
        values = unsigned(out)
        intpack.for_decode(narrow, values.dtype.type(self.base), values)
        return out


#: Rows of a regular clock computed in Python rather than by the kernel (a point read).
_FEW = 4


@dataclasses.dataclass(frozen=True)
class Delta(Encoding):
    first: int
    step: int
    w: str
    regular: bool = False

    name = "delta"
    packed = True

    def to_json(self) -> str:
        p: dict[str, Any] = {"first": self.first, "step": self.step, "w": self.w}
        if self.regular:
            p["regular"] = 1
        return json.dumps(p)

    @classmethod
    def from_params(cls, p: dict[str, Any], text: str) -> Delta:
        for key, kind in (("first", int), ("step", int), ("w", str)):
            if type(p.get(key)) is not kind:
                raise ParamsError(f"delta params {text!r}: {key!r} is not {kind.__name__}")
            if kind is int and not -(2**63) <= p[key] < 2**64:
                raise ParamsError(f"delta params {text!r}: {key!r} is beyond 64 bits")
        check_width(p["w"], cls.name, text)
        return cls(p["first"], p["step"], p["w"], bool(p.get("regular")))

    def decode(self, payload: Any, out: np.ndarray) -> None:
        values = unsigned(out)
        typed = values.dtype.type
        narrow = unpack(payload, self.w, len(out))
        intpack.delta_decode(narrow, typed(self.first), typed(self.step), values)

    def arithmetic_rows(self, dtype: np.dtype, rows: np.ndarray) -> np.ndarray | None:
        if not self.regular:
            return None
        out = np.empty(len(rows), dtype)
        values = unsigned(out)
        typed = values.dtype.type
        intpack.regular_at(typed(self.first), typed(self.step), rows, values)
        return out

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        """A regular clock's rows by arithmetic; other deltas need every row before them."""
        if self.regular and stop - start <= _FEW:  # in Python: no arrays to dispatch on
            mask = (1 << (8 * dtype.itemsize)) - 1
            out = np.empty(stop - start, dtype)
            values = unsigned(out)
            for k in range(stop - start):
                values[k] = (self.first + self.step * (start + k)) & mask
            return out
        return self.arithmetic_rows(dtype, np.arange(start, stop, dtype=np.int64))
