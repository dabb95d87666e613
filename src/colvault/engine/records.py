"""Rows out of column arrays, and the view of a table that reads and queries take.

A :class:`TableView` is a table as of one committed snapshot: its path, schema, manifest and a
chunk source. Queries (:mod:`colvault.engine.query`) read through it alone, so a live
:class:`~colvault.Table` and a :class:`~colvault.engine.detached.DetachedTable` (a snapshot
read without the catalog) are queried by the same code, and each call reads one snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .manifest import NodeState
from .reading import ChunkSource
from .schema import ColumnSpec, TableSchema


def pick_specs(schema: TableSchema, columns: list[str] | str | None) -> list[ColumnSpec]:
    """The specs of ``columns`` (all when None; one name may be given alone), in that order."""
    if columns is None:
        return list(schema.columns)
    if isinstance(columns, str):
        columns = [columns]
    return [schema.column(c) for c in columns]


def record_dtype(specs: Sequence[ColumnSpec]) -> np.dtype:
    """The structured dtype of rows of ``specs`` (no category columns: their width varies),
    a new one each call."""
    return np.dtype(list(_record_fields(tuple(specs))))


@functools.lru_cache(maxsize=256)
def _record_fields(
    specs: tuple[ColumnSpec, ...],
) -> tuple[tuple[str, np.dtype, tuple[int, ...]], ...]:
    """What :func:`record_dtype` is made of, kept (never the dtype itself: numpy lets whoever
    holds an array rename its dtype's fields in place, which would rename them for every
    later read)."""
    return tuple((s.name, s.dtype, s.shape) for s in specs)


def records(specs: Sequence[ColumnSpec], arrays: list[np.ndarray]) -> np.ndarray:
    """Rows of the columns as a structured array; a masked one (masked = missing) when a
    column is nullable."""
    out, mask = _filled(specs, arrays)
    return out if mask is None else np.ma.MaskedArray(out, mask=mask)


def record(specs: Sequence[ColumnSpec], arrays: list[np.ndarray]) -> Any:
    """The first row of the columns: what ``records(specs, arrays)[0]`` gives (a numpy void,
    or a masked one, ``numpy.ma.mvoid``, when a column is nullable), without the masked array
    around it, whose making and indexing were 37 us of a 143 us point read."""
    out, mask = _filled(specs, arrays)
    return out[0] if mask is None else np.ma.mvoid(out[0], mask=mask[0])


def _filled(specs: Sequence[ColumnSpec], arrays: list[np.ndarray]) -> tuple[np.ndarray, Any]:
    """The rows as a structured array, and their mask (numpy's mask dtype: a bool field per
    column) when a column is nullable, else None."""
    dtype = _records_dtype(specs, arrays)
    n = len(arrays[0]) if arrays else 0
    out = np.empty(n, dtype)
    if not any(s.nullable for s in specs):
        for s, a in zip(specs, arrays, strict=True):
            out[s.name] = a
        return out, None
    # the mask built field by field: MaskedArray(records, mask=False) spreads it row by row,
    # seconds for a million rows
    mask: Any = np.zeros(n, [(s.name, bool, s.shape) for s in specs])
    for s, a in zip(specs, arrays, strict=True):
        out[s.name] = np.ma.getdata(a)
        if s.nullable:
            mask[s.name] = np.ma.getmaskarray(a)
    return out, mask


def _records_dtype(specs: Sequence[ColumnSpec], arrays: list[np.ndarray]) -> np.dtype:
    if any(s.is_category for s in specs):  # text as wide as the arrays read
        return np.dtype(
            [
                (s.name, a.dtype if s.is_category else s.dtype, s.shape)
                for s, a in zip(specs, arrays, strict=True)
            ]
        )
    return record_dtype(specs)


@dataclass(frozen=True)
class TableView:
    """A table as of one committed snapshot: what a read or a query works on."""

    path: str
    schema: TableSchema
    state: NodeState
    source: ChunkSource

    @property
    def colnames(self) -> list[str]:
        return self.schema.names

    def specs(self, columns: list[str] | str | None) -> list[ColumnSpec]:
        return pick_specs(self.schema, columns)

    def iter_chunks(
        self, columns: list[str] | None = None, *, codes: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The rows chunk by chunk as dicts of arrays (masked for a nullable column);
        ``codes=True``: category columns as each chunk's ``(codes, dictionary)``."""
        specs = self.specs(columns)
        for pos in range(len(self.state.starts)):
            out: dict[str, Any] = {}
            for spec in specs:
                ref = self.state.columns[spec.id][pos]
                if codes and spec.is_category:
                    out[spec.name] = self.source.read_codes_masked(spec, ref)
                else:
                    out[spec.name] = self.source.read_chunk_masked(spec, ref)
            yield out
