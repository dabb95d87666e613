"""What every encoding is: a frozen record of its parameters that decodes its chunks.

A chunk's manifest row names its encoding and its parameters (JSON); :func:`.registry.parse`
turns them into one of these objects once, when a manifest snapshot loads, and every reader
dispatches on the object. The parameters sit in the catalog beside the chunk's crc, not under
it, so parsing checks each one's type and range: a damaged row is refused by name.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np

from ...kernels import blosclib
from ..buffers import scratch_array
from ..codec import as_bytes, blosc2

#: Parameters that count bytes or values: never negative.
COUNTS = frozenset(("n", "clen", "nexc"))


class ParamsError(ValueError):
    """A chunk's parameters, as the catalog holds them, do not describe a chunk."""


@dataclasses.dataclass(frozen=True)
class Encoding(ABC):
    """One chunk's encoding and its parameters (subclasses: one per encoding)."""

    name: ClassVar[str] = ""
    #: Whether the payload holds packed integers (``w`` wide) that batch kernels can load.
    packed: ClassVar[bool] = False

    def to_json(self) -> str | None:
        """The parameters as the catalog stores them (None for an encoding without any)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.dumps(fields) if fields else None

    @classmethod
    def from_params(cls, p: dict[str, Any], text: str) -> Encoding:
        """The encoding of parameters ``p`` (parsed from ``text``), each checked for its type
        and range (:class:`ParamsError` otherwise)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            kind: type = bool if f.type == "bool" else int if f.type == "int" else str
            value: Any = p.get(f.name)
            values[f.name] = value
            if type(value) is not kind:
                raise ParamsError(f"{cls.name} params {text!r}: {f.name!r} is not {kind.__name__}")
            if kind is int and not -(2**63) <= values[f.name] < 2**64:
                raise ParamsError(f"{cls.name} params {text!r}: {f.name!r} is beyond 64 bits")
            if f.name in COUNTS and values[f.name] < 0:
                raise ParamsError(f"{cls.name} params {text!r}: {f.name!r} is negative")
        if "w" in values:
            check_width(values["w"], cls.name, text)
        return cls(**values)

    @abstractmethod
    def decode(self, payload: Any, out: np.ndarray) -> None:
        """Decode the chunk into ``out`` (contiguous, exactly the chunk's rows)."""

    def decode_rows(
        self, payload: Any, nrows: int, dtype: np.dtype, rows: np.ndarray
    ) -> np.ndarray | None:
        """The values at ``rows`` decoding only those (None: decode the whole chunk)."""
        return None

    def arithmetic_rows(self, dtype: np.dtype, rows: np.ndarray) -> np.ndarray | None:
        """The values at ``rows`` when the parameters alone determine them, else None."""
        return None

    @property
    def computable(self) -> bool:
        """The parameters alone determine every value (a regular clock): reads fill rows with
        :meth:`computed`, and neither read the payload nor fetch it from disk."""
        return False

    def computed(self, out: np.ndarray, start: int = 0) -> None:
        """Fill ``out`` with rows ``[start, start + len(out))`` (only when
        :attr:`computable`)."""
        raise ValueError(f"{self.name} chunks are not computed from their params")

    def decode_span(
        self, payload: Any, nrows: int, start: int, stop: int, dtype: np.dtype,
        at: int | None = None,
    ) -> np.ndarray | None:  # fmt: skip
        """Rows ``[start, stop)`` as a new array, decompressing only the blocks that hold them
        (None: decode the whole chunk). ``at``: the address of ``payload``, when known."""
        return None


def check_width(w: str, name: str, text: str) -> None:
    """``w`` must name a little-endian integer dtype (the packed integers' type)."""
    try:
        narrow = np.dtype(w)
    except TypeError:
        narrow = None
    if narrow is None or narrow.kind not in "iu" or narrow.byteorder not in "<=|":
        raise ParamsError(f"{name} params {text!r}: {w!r} is not a little-endian integer dtype")


def unsigned(a: np.ndarray) -> np.ndarray:
    """``a`` viewed as unsigned integers of its width (datetimes as their int64 first)."""
    if a.dtype.kind in "Mm":
        a = a.view(np.int64)
    return a.view(f"u{a.dtype.itemsize}")


def decompress_into(frame: Any, out: np.ndarray) -> None:
    """Decompress a blosc2 frame into ``out``, which it must fill exactly: the catalog's row
    count or params could be damaged, and a scratch buffer's old bytes must never pass for
    values (ValueError otherwise, which readers report as a chunk that cannot be decoded)."""
    size = blosc2.get_cbuffer_sizes(frame)[0]
    if size != out.nbytes:
        raise ValueError(f"a frame of {size} bytes where {out.nbytes} were expected")
    blosc2.decompress2(frame, dst=as_bytes(out), nthreads=1)


def decompress_items(
    frame: Any, start: int, n: int, dtype: np.dtype, at: int | None = None
) -> np.ndarray | None:
    """Items ``[start, start + n)`` of a blosc2 frame of ``dtype``'s item size, decompressing
    only the blocks that hold them, in this thread's staging buffer: valid until the thread's
    next call, so callers decode or copy out of it. None when the library is missing or the
    frame's items are not ``dtype``'s (wide text is compressed in smaller items): the caller
    decompresses the whole frame. A damaged frame raises ValueError, which readers report as a
    chunk that cannot be decoded. ``at``: the frame's address, when known."""
    size = len(frame)
    if blosclib.load() is None or size < 16 or frame[3] != dtype.itemsize:  # typesize
        return None
    if at is None:
        at = np.frombuffer(frame, np.uint8).ctypes.data
    nbytes = n * dtype.itemsize
    stage, address = _staging(nbytes)
    got = blosclib.getitem(at, size, start, n, address, nbytes)
    if got != nbytes:
        raise ValueError(f"blosc2 could not read items {start}..{start + n} ({got})")
    return stage[:nbytes].view(dtype)


_local = threading.local()


def _staging(nbytes: int) -> tuple[np.ndarray, int]:
    """This thread's staging buffer of at least ``nbytes``, and its address: a point read's
    few bytes land there, as asking numpy for a new array's address costs more than the
    decompression of a block (``ndarray.ctypes`` builds an object per call)."""
    got: tuple[np.ndarray, int] | None = getattr(_local, "staging", None)
    if got is None or got[0].nbytes < nbytes:
        buf = np.empty(max(nbytes, 1 << 16), np.uint8)
        got = _local.staging = (buf, buf.ctypes.data)
    return got


def unpack(frame: Any, narrow_dt: str, n: int, slot: Hashable | None = "narrow") -> np.ndarray:
    """The packed integers of a frame, in this thread's scratch buffer ``slot`` (valid until
    the next use of that slot on this thread), or a new array when ``slot`` is None."""
    narrow = np.empty(n, narrow_dt) if slot is None else scratch_array(slot, narrow_dt, n)
    decompress_into(frame, narrow)
    return narrow
