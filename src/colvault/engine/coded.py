"""Dictionary-encoded text for a category column: codes into a small array of values.

Why: a category column is stored as codes plus a dictionary per chunk. A producer that already
numbers its values (the CSV importer hashes each block's fields to find them) can append
:class:`Coded` text instead of one string per row; the writer keeps the codes through buffering
and encoding, where fixed-width text would be copied row by row and hashed again. The chunks it
writes are byte for byte those of the same rows appended as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SchemaError
from ..lazy import kernel_module

if TYPE_CHECKING:
    from ..kernels.encoding import dictionary as dictenc
else:
    dictenc = kernel_module("encoding.dictionary")


@dataclass(frozen=True)
class Coded:
    """Row ``i`` holds ``values[codes[i]]``; ``values`` is a 1-d str array (numpy ``U``)."""

    codes: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows: slice) -> Coded:
        return Coded(self.codes[rows], self.values)

    def text(self) -> np.ndarray:
        """The rows as fixed-width text."""
        return self.values[self.codes]

    def copy(self) -> Coded:
        return Coded(self.codes.copy(), self.values)

    def checked(self, what: object) -> Coded:
        """Itself when its codes index its values, else a ``SchemaError``."""
        codes, values = self.codes, self.values
        if not isinstance(codes, np.ndarray) or codes.ndim != 1 or codes.dtype.kind not in "iu":
            raise SchemaError(f"{what}: category codes must be a 1-d integer array")
        if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "U":
            raise SchemaError(f"{what}: category values must be a 1-d str array")
        if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(values)):
            raise SchemaError(f"{what}: category codes outside 0..{len(values) - 1}")
        # a value listed twice would be two values to the chunk's dictionary: merge them
        text = np.ascontiguousarray(values)
        same, first = dictenc.dict_encode(text.view(np.uint32).reshape(len(text), -1))
        if len(first) < len(values):
            return Coded(same[codes], text[first])
        return self


def joined(parts: list[Coded]) -> Coded:
    """One ``Coded`` of ``parts`` in order (their dictionaries merged when they differ)."""
    first = parts[0].values
    if all(p.values is first for p in parts):
        return Coded(np.concatenate([p.codes for p in parts]), first)
    merged, inverse = np.unique(np.concatenate([p.values for p in parts]), return_inverse=True)
    offsets = np.cumsum([0] + [len(p.values) for p in parts])
    codes = [inverse[offset + p.codes] for p, offset in zip(parts, offsets.tolist(), strict=False)]
    return Coded(np.concatenate(codes), merged)


def chunk_dictionary(chunk: Coded) -> tuple[np.ndarray, np.ndarray]:
    """(codes, dictionary) of a chunk as the text path numbers it: values in the order of
    their first row, codes into them."""
    codes, order = dictenc.renumber(np.ascontiguousarray(chunk.codes, np.int64), len(chunk.values))
    return codes, chunk.values[order]
