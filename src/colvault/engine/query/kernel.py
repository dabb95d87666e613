"""A condition's fused kernel fed from chunks: condition columns decoded, category codes and the
chunk's dictionary passed as the kernel expects them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..manifest import NodeState
from ..reading import ChunkSource
from ..schema import ColumnSpec
from .expr import Expr
from .predicate import Predicate


class CompiledCondition:
    """The kernels of one condition, and how to give them one chunk's columns."""

    def __init__(self, expr: Expr, specs: dict[str, ColumnSpec]) -> None:
        self.predicate = Predicate(expr)
        self.specs = [specs[name] for name in self.predicate.columns]

    def _inputs(
        self, source: ChunkSource, state: NodeState, pos: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None, int]:
        arrays: dict[str, np.ndarray] = {}
        dictionaries: dict[str, Any] = {}
        for spec in self.specs:
            ref = state.columns[spec.id][pos]
            if spec.is_category:
                arrays[spec.name], dictionaries[spec.name] = source.read_codes(spec, ref)
            else:
                arrays[spec.name] = source.read_chunk(spec, ref)
        n = next(iter(state.columns.values()))[pos].nrows
        return arrays, dictionaries or None, n

    def positions(
        self, source: ChunkSource, state: NodeState, pos: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Positions within chunk ``pos`` of the rows where the condition holds, and the
        condition columns as decoded (so a projection need not decode them again)."""
        arrays, dictionaries, n = self._inputs(source, state, pos)
        hits = self.predicate.select(arrays, dictionaries=dictionaries, n=n)
        decoded = {s.name: arrays[s.name] for s in self.specs if not s.is_category}
        return hits, decoded

    def count(self, source: ChunkSource, state: NodeState, pos: int) -> int:
        arrays, dictionaries, n = self._inputs(source, state, pos)
        return self.predicate.count(arrays, dictionaries=dictionaries, n=n)
