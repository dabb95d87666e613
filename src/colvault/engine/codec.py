"""The chunk codec: blosc2 compression (or raw bytes) with a small JSON config.

One frozen dataclass holds what a table chose (codec, level, shuffle); the catalog stores its JSON.
A blosc2 frame describes itself, so decoding needs only the bytes and the manifest's encoding name
(``"blosc2"`` or ``"raw"``). ``decode`` writes into a buffer the caller owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import blosc2
import numpy as np

from ..errors import SchemaError

# Decompression and compression run in worker threads; blosc2 holds the GIL unless told not to.
blosc2.set_releasegil(True)

CODECS = {
    "lz4": blosc2.Codec.LZ4,
    "lz4hc": blosc2.Codec.LZ4HC,
    "zstd": blosc2.Codec.ZSTD,
    "zlib": blosc2.Codec.ZLIB,
    "blosclz": blosc2.Codec.BLOSCLZ,
    "none": None,
}
SHUFFLES = ("auto", "byte", "bit", None)

#: Manifest encoding names.
RAW = "raw"
BLOSC2 = "blosc2"


def _typesize(dtype: np.dtype) -> int:
    """The element size shuffle should split on: 4 for UCS4 text, 1 for bytes, half of complex."""
    if dtype.kind == "U":
        return 4
    if dtype.kind in "Sb":
        return 1
    if dtype.kind == "c":
        return dtype.itemsize // 2
    return dtype.itemsize


@dataclass(frozen=True)
class Codec:
    """How a table's chunks are compressed.

    >>> Codec.from_json(Codec("zstd", 3, "bit").to_json())
    Codec(name='zstd', clevel=3, shuffle='bit')
    """

    name: str = "lz4"
    clevel: int = 5
    shuffle: str | None = "auto"

    def __post_init__(self) -> None:
        if self.name not in CODECS:
            raise SchemaError(f"codec {self.name!r} is not one of {sorted(CODECS)}")
        if not isinstance(self.clevel, int) or not 0 <= self.clevel <= 9:
            raise SchemaError(f"clevel must be an int from 0 to 9, not {self.clevel!r}")
        if self.shuffle not in SHUFFLES:
            raise SchemaError(f"shuffle must be one of {SHUFFLES}, not {self.shuffle!r}")

    def to_json(self) -> dict[str, Any]:
        return {"codec": self.name, "clevel": self.clevel, "shuffle": self.shuffle}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Codec:
        return cls(d["codec"], d["clevel"], d["shuffle"])

    def _filter(self, typesize: int) -> blosc2.Filter:
        if self.shuffle is None or (self.shuffle == "auto" and typesize == 1):
            return blosc2.Filter.NOFILTER
        return blosc2.Filter.BITSHUFFLE if self.shuffle == "bit" else blosc2.Filter.SHUFFLE

    def encode(self, chunk: np.ndarray) -> tuple[str, bytes | memoryview]:
        """Return (encoding name, payload) for one contiguous column chunk."""
        raw = as_bytes(chunk)
        if self.name == "none":
            return RAW, raw.data
        typesize = _typesize(chunk.dtype)
        payload = blosc2.compress2(
            raw,
            codec=CODECS[self.name],
            clevel=self.clevel,
            typesize=typesize,
            filters=[self._filter(typesize)],
            nthreads=1,
        )
        return BLOSC2, payload


def as_bytes(a: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a contiguous array (datetime arrays cannot export buffers)."""
    return a.reshape(-1).view(np.uint8)


def decode(encoding: str, payload: Any, out: np.ndarray) -> None:
    """Decode ``payload`` into the contiguous array ``out`` (which has the chunk's exact size)."""
    dst = as_bytes(out)
    if encoding == BLOSC2:
        blosc2.decompress2(payload, dst=dst, nthreads=1)
    elif encoding == RAW:
        dst[:] = np.frombuffer(payload, np.uint8)
    else:
        raise ValueError(f"unknown chunk encoding {encoding!r}")
