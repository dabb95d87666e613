"""``for`` and ``delta``: integers (and datetimes) packed into the narrowest unsigned type.

- ``for``: the values minus the chunk minimum; params ``base``, ``w`` (the narrow dtype).
- ``delta``: sorted values as steps minus the smallest step (a fixed-period clock becomes
  zeros); params ``first``, ``step``, ``w``, and ``regular`` when every step is the same, so
  that any row is ``first + step * i`` without reading the chunk. Otherwise a row is the sum
  of every step before it; so that a short read need not sum the whole chunk, the frame
  (``clen`` bytes) may be followed by *anchors*: the values of rows ``every``, ``2 * every``,
  ... in the column's width (little-endian, unsigned), ``every`` being the items of a block
  of the frame. A span then decodes from the anchor before it: one block, not a chunk.

Arithmetic wraps in the column's unsigned type, as the encoder's did.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
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


#: Rows of a regular clock computed in Python rather than by the kernel (a point read, a
#: handful of hits).
_FEW = 4


@dataclasses.dataclass(frozen=True)
class Delta(Encoding):
    first: int
    step: int
    w: str
    regular: bool = False
    #: Length of the frame and rows between anchors (0, 0: the payload is the frame alone).
    clen: int = 0
    every: int = 0

    name = "delta"
    packed = True

    def to_json(self) -> str:
        p: dict[str, Any] = {"first": self.first, "step": self.step, "w": self.w}
        if self.regular:
            p["regular"] = 1
        if self.every:
            p["clen"], p["every"] = self.clen, self.every
        return json.dumps(p)

    @classmethod
    def from_params(cls, p: dict[str, Any], text: str) -> Delta:
        for key, kind in (("first", int), ("step", int), ("w", str)):
            if type(p.get(key)) is not kind:
                raise ParamsError(f"delta params {text!r}: {key!r} is not {kind.__name__}")
            if kind is int and not -(2**63) <= p[key] < 2**64:
                raise ParamsError(f"delta params {text!r}: {key!r} is beyond 64 bits")
        check_width(p["w"], cls.name, text)
        clen, every = p.get("clen", 0), p.get("every", 0)
        for key, value in (("clen", clen), ("every", every)):
            if type(value) is not int or not 0 <= value < 2**63:
                raise ParamsError(f"delta params {text!r}: {key!r} is not a count")
        if bool(clen) != bool(every):
            raise ParamsError(f"delta params {text!r}: 'clen' and 'every' go together")
        if p.get("regular") and every:
            raise ParamsError(f"delta params {text!r}: a regular clock has no anchors")
        return cls(p["first"], p["step"], p["w"], bool(p.get("regular")), clen, every)

    def frame(self, payload: Any) -> Any:
        """The payload's frame of steps (without the anchors after it)."""
        return payload[: self.clen] if self.every else payload

    def decode(self, payload: Any, out: np.ndarray) -> None:
        values = unsigned(out)
        typed = values.dtype.type
        narrow = unpack(self.frame(payload), self.w, len(out))
        if self.regular and narrow.any():  # reads compute such a chunk from its params alone
            raise ValueError("its params say every step is the same, its steps differ")
        intpack.delta_decode(narrow, typed(self.first), typed(self.step), values)
        if self.every:  # what a short read starts from must be what the steps sum to
            anchors = self._anchors(payload, len(out), values.itemsize)
            if not np.array_equal(anchors, values[self.every :: self.every]):
                raise ValueError("its anchors disagree with its steps")

    def _check_spacing(self, frame: Any) -> None:
        """``clen`` and ``every`` sit in the catalog, outside the chunk's crc, and a short
        read trusts them: they must agree with the frame's own header (its compressed size;
        its items per block, of which the anchors' spacing is a multiple). ValueError
        otherwise."""
        header = bytes(frame[:16])
        if len(header) < 16:
            raise ValueError("its frame is shorter than a blosc2 header")
        typesize = header[3] or 1
        per_block = int.from_bytes(header[8:12], "little") // typesize
        cbytes = int.from_bytes(header[12:16], "little")
        if cbytes != self.clen or not per_block or self.every % per_block:
            raise ValueError(
                f"its params (clen {self.clen}, every {self.every}) disagree with its frame "
                f"({cbytes} bytes, {per_block} items per block)"
            )

    def _anchors(self, payload: Any, nrows: int, itemsize: int) -> np.ndarray:
        """The anchors after the frame (ValueError when the payload does not hold as many as
        ``every`` says)."""
        count = (nrows - 1) // self.every
        width = np.dtype(f"<u{itemsize}")
        if self.clen + count * width.itemsize != len(payload):
            raise ValueError(f"a payload of {len(payload)} bytes does not hold {count} anchors")
        return np.frombuffer(payload, width, count, self.clen)

    def arithmetic_rows(self, dtype: np.dtype, rows: np.ndarray | range) -> np.ndarray | None:
        if not self.regular:
            return None
        out = np.empty(len(rows), dtype)
        values = unsigned(out)
        if len(rows) <= _FEW:  # in Python: no arrays to dispatch the kernel on
            self._few(values, rows)
            return out
        typed = values.dtype.type
        intpack.regular_at(typed(self.first), typed(self.step), np.asarray(rows), values)
        return out

    def _few(self, values: np.ndarray, rows: Iterable[int]) -> None:
        """A regular clock's ``rows`` into ``values`` (unsigned), in Python: for a handful."""
        mask = (1 << (8 * values.itemsize)) - 1
        for k, row in enumerate(rows):
            values[k] = (self.first + self.step * int(row)) & mask

    @property
    def computable(self) -> bool:
        return self.regular

    def computed(self, out: np.ndarray, start: int = 0) -> None:
        values = unsigned(out)
        if len(values) <= _FEW:  # in Python: no arrays to build
            self._few(values, range(start, start + len(values)))
            return
        mask = (1 << (8 * values.itemsize)) - 1
        # in uint64, whose products wrap as the stored steps did, then cut to the width (a
        # 16-bit column's row numbers pass 65,535)
        rows = np.arange(start, start + len(values), dtype=np.uint64)
        wide = values if values.itemsize == 8 else rows
        np.multiply(rows, np.uint64(self.step & mask), out=wide)
        wide += np.uint64(self.first & mask)
        if wide is rows:
            np.copyto(values, rows, casting="unsafe")

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        """A regular clock's rows by arithmetic; others summed from the anchor before
        ``start`` (None without anchors: every row before them is needed)."""
        if self.regular:
            out = np.empty(stop - start, dtype)
            self.computed(out, start)
            return out
        if self.every:
            return self._from_anchor(payload, nrows, start, stop, dtype, at)
        return None

    def _from_anchor(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype, at: int | None
    ) -> np.ndarray | None:
        """Rows ``[start, stop)`` summed from the anchor at or before ``start``."""
        k = start // self.every
        anchors = self._anchors(payload, nrows, dtype.itemsize)
        frame = self.frame(payload)
        self._check_spacing(frame)
        a0 = k * self.every
        narrow = decompress_items(frame, a0, stop - a0, np.dtype(self.w), at)
        if narrow is None:
            return None
        out = np.empty(stop - a0, dtype)
        values = unsigned(out)
        typed = values.dtype.type
        first = self.first if k == 0 else int(anchors[k - 1])
        intpack.delta_decode(narrow, typed(first), typed(self.step), values)
        return out[start - a0 :].copy() if start > a0 else out
