"""A condition's fused kernel fed from chunks: condition columns decoded (or, for decimal chunks
compared with constants, left as scaled integers), category codes and the chunk's dictionary
passed as the kernel expects them.

Decoded condition columns live in per-thread scratch buffers (:mod:`..buffers`): they are valid
while the calling task handles the chunk, which is as long as the executor needs them.

A chunk in which some condition column has missing values runs the condition's masked kernel,
with the validity bits of every nullable condition column (all ones for those without missing
values there); other chunks run the plain kernel, as tables without missing values do.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..encodings import Raw
from ..manifest import NodeState
from ..reading import ChunkSource, scratch
from ..schema import ColumnSpec
from .expr import Expr
from .kept import Kept
from .predicate import Predicate, lower
from .scaled import Scaled, chunk_thresholds, scalable, scale_raw, scaled_comparisons

#: A condition column as the executor may reuse it: decoded values, or a decimal chunk's
#: integers (:class:`Scaled`) that decode on demand.
Decoded = np.ndarray | Scaled


#: Conditions compiled lately, by tree and the columns it reads: a repeated query takes the
#: same (immutable) object rather than making it again.
_COMPILED: Kept[tuple[Expr, tuple[ColumnSpec, ...]], CompiledCondition] = Kept(256)


def compiled(expr: Expr, specs: dict[str, ColumnSpec]) -> CompiledCondition:
    """The :class:`CompiledCondition` of ``expr`` over columns ``specs`` (by name), kept."""
    key = (expr, tuple(specs[name] for name in lower(expr).columns))
    found = _COMPILED.get(key)
    return found if found is not None else _COMPILED.put(key, CompiledCondition(expr, specs))


class CompiledCondition:
    """The kernels of one condition, and how to give them one chunk's columns. Immutable once
    made: queries share it (:func:`compiled`)."""

    def __init__(self, expr: Expr, specs: dict[str, ColumnSpec]) -> None:
        self.predicate = Predicate(expr)
        self.specs = [specs[name] for name in self.predicate.columns]
        self.scaled = scaled_comparisons(self.predicate.lowered.node)
        self.constants = dict(enumerate(self.predicate.constant_values()))
        self.nullable = [s for s in self.specs if s.nullable]
        #: What other modules derive from the condition alone and keep with it (the batch
        #: kernels' key and whether they take it), made once for all the queries sharing it.
        self.derived: dict[str, Any] = {}

    def validity(
        self, source: ChunkSource, state: NodeState, pos: int
    ) -> dict[str, np.ndarray] | None:
        """The validity bits of the nullable condition columns in chunk ``pos`` (all ones for
        a column without missing values there), or None when none has missing values."""
        if not self.nullable or not any(state.columns[s.id][pos].nulls for s in self.nullable):
            return None
        bits = {}
        for spec in self.nullable:
            ref = state.columns[spec.id][pos]
            got = source.read_validity(spec, ref) if ref.nulls else None
            bits[spec.name] = _all_valid((ref.nrows + 7) // 8) if got is None else got
        return bits

    def _inputs(
        self, source: ChunkSource, state: NodeState, pos: int
    ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[int, Any] | None, int]:
        arrays: dict[str, Any] = {}
        dictionaries: dict[str, Any] = {}
        overrides: dict[int, Any] = {}
        for j, spec in enumerate(self.specs):
            ref = state.columns[spec.id][pos]
            if spec.is_category:
                arrays[spec.name], dictionaries[spec.name] = source.read_codes(spec, ref)
                continue
            # a chunk with missing values compares its decoded values (forward-filled slots)
            comparisons = None if ref.nulls else self.scaled.get(j)
            params = scalable(ref) if comparisons is not None else None
            if comparisons is not None and params is None and isinstance(ref.encoding, Raw):
                raw = self._scale_raw(source, state, spec, pos, j, comparisons)
                if raw is not None:
                    arrays[spec.name], limits = raw
                    if limits:
                        overrides.update(limits)
                    continue
            if comparisons is not None and params is not None:
                thresholds = chunk_thresholds(params, spec.dtype, comparisons, self.constants)
                if thresholds is not None:
                    narrow, where, exc = source.read_scaled(spec, ref, params, ("cond", j))
                    got = Scaled(narrow, params.base, params.e, spec.dtype, where, exc)
                    if got.comparable():
                        arrays[spec.name] = got
                        overrides.update(thresholds)
                    else:
                        arrays[spec.name] = got.values()
                    continue
            arrays[spec.name] = source.read_chunk(spec, ref, scratch(spec, ref.nrows, ("cond", j)))
        n = next(iter(state.columns.values()))[pos].nrows
        return arrays, dictionaries or None, overrides or None, n

    def _scale_raw(
        self, source: ChunkSource, state: NodeState, spec: ColumnSpec, pos: int, j: int,
        comparisons: tuple[tuple[int, str], ...],
    ) -> tuple[Scaled | np.ndarray, dict[int, np.int64] | None] | None:  # fmt: skip
        """A raw chunk of a column whose other chunks compare scaled (see ``scale_raw``):
        (its integers, their thresholds), or (its values, None) when they do not scale, or
        None without a scaled neighbour (the caller reads it as usual)."""
        refs = state.columns[spec.id]
        near = next((scalable(refs[p]) for p in (pos - 1, pos + 1) if 0 <= p < len(refs)), None)
        if near is None:
            return None
        values = source.read_chunk(spec, refs[pos], scratch(spec, refs[pos].nrows, ("raw", j)))
        got = scale_raw(values, near.w, ("cond", j))
        if got is None:
            return values, None
        params, scaled = got
        thresholds = chunk_thresholds(params, spec.dtype, comparisons, self.constants)
        if thresholds is None or not scaled.comparable():
            return values, None
        return scaled, thresholds

    @staticmethod
    def _kernel_arrays(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
        return {k: v.narrow if isinstance(v, Scaled) else v for k, v in arrays.items()}

    def positions(
        self, source: ChunkSource, state: NodeState, pos: int, numpy: bool = False
    ) -> tuple[np.ndarray, dict[str, Decoded]]:
        """Positions within chunk ``pos`` of the rows where the condition holds, and the
        condition columns as read (so a projection need not read them again). ``numpy``: see
        ``Predicate.select``."""
        arrays, dictionaries, overrides, n = self._inputs(source, state, pos)
        hits = self.predicate.select(
            self._kernel_arrays(arrays), dictionaries, n, overrides,
            self.validity(source, state, pos), numpy,
        )  # fmt: skip
        decoded = {s.name: arrays[s.name] for s in self.specs if not s.is_category}
        return hits, decoded

    def count(self, source: ChunkSource, state: NodeState, pos: int, numpy: bool = False) -> int:
        arrays, dictionaries, overrides, n = self._inputs(source, state, pos)
        return self.predicate.count(
            self._kernel_arrays(arrays), dictionaries, n, overrides,
            self.validity(source, state, pos), numpy,
        )  # fmt: skip


@functools.lru_cache(maxsize=8)
def _all_valid(nbytes: int) -> np.ndarray:
    """Validity bits of a chunk without missing values (shared: never written)."""
    return np.full(nbytes, 0xFF, np.uint8)
