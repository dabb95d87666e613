"""Rows out of column arrays: what a live :class:`~colvault.Table` and a
:class:`~colvault.engine.detached.DetachedTable` (a snapshot read without the catalog) share, so
that the query functions (:mod:`colvault.engine.query.api`) serve both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .schema import ColumnSpec, TableSchema

if TYPE_CHECKING:
    from .manifest import NodeState
    from .reading import ChunkSource


class Records:
    """Column specs by name and structured rows from per-column arrays, for a ``_schema``;
    chunks of one snapshot for a ``_state()`` read through a ``_source()``."""

    _schema: TableSchema

    def _state(self) -> NodeState:
        raise NotImplementedError

    def _source(self) -> ChunkSource:
        raise NotImplementedError

    def iter_chunks(
        self, columns: list[str] | None = None, *, codes: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Committed rows chunk by chunk, from one snapshot, as dicts of arrays (masked for a
        nullable column): memory bounded by one chunk. ``codes=True`` gives each category
        column as the chunk's ``(codes, dictionary)`` as stored (``col(name, codes=True,
        chunk=i)``), no text decoded."""
        specs = self._specs(columns)
        state = self._state()
        src = self._source()
        for pos in range(len(state.starts)):
            out: dict[str, Any] = {}
            for spec in specs:
                ref = state.columns[spec.id][pos]
                if codes and spec.is_category:
                    out[spec.name] = src.read_codes_masked(spec, ref)
                else:
                    out[spec.name] = src.read_chunk_masked(spec, ref)
            yield out

    def _specs(self, columns: list[str] | None) -> list[ColumnSpec]:
        if columns is None:
            return list(self._schema.columns)
        if isinstance(columns, str):
            columns = [columns]
        return [self._schema.column(c) for c in columns]

    def _record_dtype(self, specs: list[ColumnSpec]) -> np.dtype:
        """The structured dtype of rows of ``specs`` (no category columns: their width varies)."""
        return np.dtype([(s.name, s.dtype, s.shape) for s in specs])

    def _records(self, specs: list[ColumnSpec], arrays: list[np.ndarray]) -> np.ndarray:
        """Rows of the columns as a structured array; a masked one (masked = missing) when
        a column is nullable."""
        dtype = np.dtype(
            [
                (s.name, a.dtype if s.is_category else s.dtype, s.shape)
                for s, a in zip(specs, arrays, strict=True)
            ]
        )
        n = len(arrays[0]) if arrays else 0
        out = np.empty(n, dtype)
        if not any(s.nullable for s in specs):
            for s, a in zip(specs, arrays, strict=True):
                out[s.name] = a
            return out
        # the mask built field by field: MaskedArray(records, mask=False) spreads it row by
        # row, seconds for a million rows
        mask: Any = np.zeros(n, np.ma.make_mask_descr(dtype))
        for s, a in zip(specs, arrays, strict=True):
            out[s.name] = np.ma.getdata(a)
            if s.nullable:
                mask[s.name] = np.ma.getmaskarray(a)
        return np.ma.MaskedArray(out, mask=mask)

    @property
    def colnames(self) -> list[str]:
        """The column names, in order."""
        return self._schema.names

    def column_specs(self, columns: list[str] | None = None) -> list[ColumnSpec]:
        """The schema of the columns (all, or those named, in that order): each one's dtype,
        cell shape, time zone, whether it is nullable, and its pandas note."""
        return self._specs(columns)


class Snapshot(Protocol):
    """What the query functions read a table through: a live table or a detached one."""

    _schema: TableSchema

    @property
    def path(self) -> str: ...

    def _state(self) -> NodeState: ...

    def _source(self) -> ChunkSource: ...

    def _specs(self, columns: list[str] | None) -> list[ColumnSpec]: ...

    def _record_dtype(self, specs: list[ColumnSpec]) -> np.dtype: ...

    def _records(self, specs: list[ColumnSpec], arrays: list[np.ndarray]) -> np.ndarray: ...
