"""The chunk codec: blosc2 compression (or raw bytes) with a small JSON config.

One frozen dataclass holds what a table chose (codec, level, shuffle); the catalog stores its JSON.
What a chunk holds beyond that (integer packing, decimal scaling) is the business of
:mod:`colvault.engine.encodings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SchemaError
from ..lazy import LazyModule

if TYPE_CHECKING:
    import blosc2
else:
    # Decompression and compression run in worker threads; blosc2 holds the GIL unless told
    # not to. Imported on the first chunk, not with colvault.
    blosc2 = LazyModule("blosc2", on_import=lambda module: module.set_releasegil(True))

#: Codec names and their ``blosc2.Codec`` members.
CODECS = {
    "lz4": "LZ4",
    "lz4hc": "LZ4HC",
    "zstd": "ZSTD",
    "zlib": "ZLIB",
    "blosclz": "BLOSCLZ",
    "none": None,
}
SHUFFLES = ("auto", "byte", "bit", None)
#: Bytes per blosc2 block: blocks are compressed on their own, and a point read or a short
#: slice decompresses only the blocks holding its rows (``kernels.blosclib``). blosc2's own
#: choice at clevel 5 is 128-256 KiB. On the benchmark columns (bit-shuffled, lz4), 16 KiB
#: blocks cost 0.1-0.5 % more bytes than 32 KiB ones and compress and decompress whole chunks
#: as fast, while one block takes half as long (a float32 block: 5.9 us at 32 KiB, 3.2 us at
#: 16 KiB; 8 KiB blocks cost more bytes and slow narrow columns' whole-chunk reads).
BLOCK_BYTES = 16 * 1024
#: ... and at most this many items: a block of narrow packed integers unshuffles item by item
#: (bit-shuffled uint16: 11.3 us for a 32 KiB block, 7.8 us for 16 KiB, the same size within
#: 0.2 %), so a point read costs about the same whatever the width.
BLOCK_ITEMS = 8192


def block_items(typesize: int) -> int:
    """Items per blosc2 block in the frames :meth:`Codec.compress` makes of ``typesize``-byte
    items.

    >>> block_items(1), block_items(4), block_items(8)
    (8192, 4096, 2048)
    """
    return min(BLOCK_BYTES // typesize, BLOCK_ITEMS)


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

    def filter_for(self, typesize: int) -> blosc2.Filter:
        """The shuffle filter for plain (not integer-packed) data of this element size."""
        if self.shuffle is None or (self.shuffle == "auto" and typesize == 1):
            return blosc2.Filter.NOFILTER
        return blosc2.Filter.BITSHUFFLE if self.shuffle == "bit" else blosc2.Filter.SHUFFLE

    def compress(self, arr: np.ndarray, filt: blosc2.Filter | None = None) -> bytes:
        """One blosc2 frame of a contiguous array (shuffle split on its element size)."""
        typesize = _typesize(arr.dtype)
        return blosc2.compress2(
            as_bytes(arr),
            codec=getattr(blosc2.Codec, CODECS[self.name] or ""),
            clevel=self.clevel,
            typesize=typesize,
            filters=[self.filter_for(typesize) if filt is None else filt],
            nthreads=1,
            blocksize=block_items(typesize) * typesize,
        )


def as_bytes(a: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a contiguous array (datetime arrays cannot export buffers)."""
    return a.reshape(-1).view(np.uint8)
