"""Values of a nullable column with their validity, as appends carry them to the writer.

Why: a nullable column's chunk is stored as its values plus a validity bitmap (1 = valid), as
Arrow and Parquet do. Between ``append`` and the chunk, rows travel as :class:`Masked` pieces
(values and a bool array), sliced and joined like plain arrays; a piece without missing values
is a plain array (or :class:`~colvault.engine.coded.Coded`), so columns without missing values
pay nothing. Missing slots hold harmless values: :func:`forward_fill` puts the previous valid
value there (the first valid one before it), so zone maps and integer packing see only real
values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .coded import Coded


@dataclass(frozen=True)
class Masked:
    """Row ``i`` is missing where ``valid[i]`` is False; ``values`` is an array or a
    :class:`Coded` whose missing slots hold any value of its type (codes may be -1 there).
    ``append`` also takes ``valid=None`` (nothing missing); the writer's pieces always have
    an array."""

    values: Any  # np.ndarray | Coded
    valid: np.ndarray  # bool, one per row

    def __len__(self) -> int:
        return len(self.valid)

    def __getitem__(self, rows: slice) -> Masked:
        return Masked(self.values[rows], self.valid[rows])

    def copy(self) -> Masked:
        """A copy the caller may keep while the appended arrays are reused."""
        values = self.values.copy() if isinstance(self.values, Coded) else np.array(self.values)
        return Masked(values, self.valid.copy())

    @property
    def nulls(self) -> int:
        """The number of missing values."""
        return len(self.valid) - int(np.count_nonzero(self.valid))

    def text(self) -> Masked:
        """Itself with coded text as fixed-width text."""
        if isinstance(self.values, Coded):
            return Masked(self.values.text(), self.valid)
        return self

    def filled(self) -> Any:
        """The values with every missing slot forward-filled (:func:`forward_fill`)."""
        return forward_fill(self.values, self.valid)


def is_missing(value: Any) -> bool:
    """None, NaN, NaT, pandas' NaT or pandas' NA, as pandas' ``isna`` sees a scalar (pandas'
    are known by their type's name: the engine never imports pandas)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float | np.floating | np.datetime64) and value != value


def fill_index(valid: np.ndarray) -> np.ndarray | None:
    """Row ``i``'s source for a forward fill: the last valid row at or before ``i``, the first
    valid row for the rows before it; None when no row is valid."""
    n = len(valid)
    positions = np.where(valid, np.arange(n), 0)
    np.maximum.accumulate(positions, out=positions)
    first = int(np.argmax(valid)) if n else 0
    if n == 0 or not valid[first]:
        return None
    positions[:first] = first
    return positions


def forward_fill(values: Any, valid: np.ndarray) -> Any:
    """``values`` (an array or :class:`Coded`) with each missing slot holding the previous valid
    value (the first valid one before it): a sorted column stays sorted, min and max stay
    those of the valid values. When no value is valid: zeros, empty text, ``False`` (a new
    array either way)."""
    index = fill_index(valid)
    if isinstance(values, Coded):
        if index is None:
            return Coded(np.zeros(len(values), np.uint8), np.array([""]))
        return Coded(values.codes[index], values.values)
    if index is None:
        return np.zeros_like(values)
    return values[index]


def joined(parts: list[Any], join: Any) -> Any:
    """One piece of ``parts`` (arrays, Coded or Masked) in order: ``join`` joins their values;
    the result is Masked when any part is."""
    if not any(isinstance(p, Masked) for p in parts):
        return join(parts)
    valid = np.concatenate(
        [p.valid if isinstance(p, Masked) else np.ones(len(p), bool) for p in parts]
    )
    return Masked(join([p.values if isinstance(p, Masked) else p for p in parts]), valid)


def unpack(bits: np.ndarray, nrows: int) -> np.ndarray:
    """A chunk's validity (bool, True = valid) from its packed bits."""
    return np.unpackbits(bits, count=nrows, bitorder="little").view(bool)


def masked_array(values: np.ndarray, bits: np.ndarray | None) -> np.ma.MaskedArray:
    """Values of a nullable column as numpy's masked array (masked = missing) from their
    packed validity (None: none missing, the mask all False)."""
    mask = np.zeros(len(values), bool) if bits is None else ~unpack(bits, len(values))
    return np.ma.MaskedArray(values, mask)
