"""Extendable n-dimensional arrays: append along axis 0, read with numpy indexing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from . import display
from .coerce import Lazy, coerce_column
from .nodes import DataNode, array_protocol, index_cells


class Array(DataNode):
    """An array that grows along its first axis; cells of ``inner_shape`` are stored in chunks.

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     a = store.create_array("/spectra", "f4", inner_shape=(3,))
    ...     a.append(np.ones((2, 3), "f4"))
    ...     _ = store.commit()  # the new commit's id
    ...     a.shape, a[1, 2]
    ((2, 3), np.float32(1.0))
    """

    kind = "array"

    @property
    def _spec(self):
        return self._schema.columns[0]

    @property
    def dtype(self) -> np.dtype:
        return self._spec.dtype

    @property
    def inner_shape(self) -> tuple[int, ...]:
        return self._spec.shape

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.nrows, *self.inner_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.inner_shape)

    def append(self, values: Any) -> None:
        """Validate and buffer cells (an array of shape ``(n, *inner_shape)``)."""
        self._session.check_writable()
        arr = coerce_column(values, self._spec, Lazy(lambda: f"array {self.path}"))
        self.append_checked([arr], len(arr))

    def flush(self) -> None:
        """Commit the store (PyTables' name)."""
        self._store.commit()

    def read(self, start: int | None = None, stop: int | None = None) -> np.ndarray:
        return self[start:stop]

    def __getitem__(self, key: Any) -> Any:
        return index_cells(self._read_cells, key)

    def _read_cells(self, key: Any) -> tuple[np.ndarray, bool]:
        (data,), scalar = self.read_selection(key, [self._spec])
        return data, scalar

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """All committed cells: ``np.asarray(a)`` (``copy=False`` raises: reads allocate)."""
        return array_protocol(lambda: self[:], dtype, copy, f"array {self.path}")

    def iter_chunks(self) -> Iterator[np.ndarray]:
        """Committed cells chunk by chunk: memory bounded by one chunk."""
        for (a,) in self._iter_chunks([self._spec]):
            yield a

    def _repr_html_(self) -> str:
        """Shape, size and the first and last cells, as a notebook shows them."""
        return display.array_html(self)

    def __repr__(self) -> str:
        state = self._state()
        return (
            f"<Array {self.path}: shape {(state.nrows, *self.inner_shape)} {self.dtype}; "
            f"{self._size_text(state)}>"
        )
