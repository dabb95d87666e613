"""``Table.group_by``: streaming grouped aggregates over an integer, bool or category key.

Integer keys whose range (from the zone maps) is small use dense accumulators indexed by
``key - min``; wide ranges use the hashed group-by of kernels/aggregates.py. Category keys are
mapped chunk by chunk from each chunk's dictionary to table-wide group ids. Only groups with at
least one selected row are returned, sorted by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...lazy import kernel_module
from ..schema import ColumnSpec
from .aggregate import _kernel_view, _numeric
from .kernel import Decoded
from .selection import Selection

if TYPE_CHECKING:
    from ...kernels import aggregates as agg
    from ..table import Table
else:
    agg = kernel_module("aggregates")

AGGREGATES = ("count", "nan_count", "sum", "mean", "std", "min", "max")
#: Widest key range grouped with dense accumulators (beyond it, hashing).
DENSE_LIMIT = 1 << 20


def _parse_aggs(table: Table, aggs: Mapping[str, Any]) -> list[tuple[ColumnSpec, list[str]]]:
    if not aggs:
        raise QueryError("group_by needs aggregates, e.g. {'value': ['mean', 'max']}")
    out = []
    for column, wanted in aggs.items():
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        bad = [a for a in names if a not in AGGREGATES]
        if bad:
            raise QueryError(f"unknown aggregate(s) {bad} for {column!r}; known: {AGGREGATES}")
        out.append((_numeric(table, column, "group_by()"), names))
    return out


class _Keys:
    """Turns a chunk's key column into int64 group keys (dense offsets or hash keys)."""

    def __init__(self, table: Table, spec: ColumnSpec) -> None:
        self.spec = spec
        self.labels: dict[str, int] = {}  # category text -> group key
        self.offset = 0
        self.size = 0  # dense groups; 0 means hashed
        if spec.is_category:
            return
        if spec.shape or spec.dtype.kind not in "biu":
            raise QueryError(
                f"group_by key must be an integer, bool or category column; "
                f"{spec.name!r} is {spec.dtype}"
            )
        if spec.dtype.kind == "b":
            self.size = 2
            return
        refs = table._state().columns[spec.id]
        bounds = [r.zone for r in refs if r.zone.min is not None and r.zone.max is not None]
        if bounds:
            lo = min(int(np.frombuffer(z.min, spec.dtype)[0]) for z in bounds)  # type: ignore[arg-type]
            hi = max(int(np.frombuffer(z.max, spec.dtype)[0]) for z in bounds)  # type: ignore[arg-type]
            if hi - lo < DENSE_LIMIT:
                self.offset, self.size = lo, hi - lo + 1

    def __call__(self, sel: Selection, pos: int, decoded: Mapping[str, Decoded]) -> np.ndarray:
        if self.spec.is_category:
            ref = sel.state.columns[self.spec.id][pos]
            codes, dictionary = sel.source.read_codes(self.spec, ref)
            ids = np.array([self.labels.setdefault(v, len(self.labels)) for v in dictionary])
            return ids.astype(np.int64)[codes] if len(ids) else codes.astype(np.int64)
        keys = sel.values(self.spec, pos, decoded)
        if keys.dtype.kind == "b":
            return keys.astype(np.int64)
        if self.size:  # the difference fits (range < DENSE_LIMIT); compute it in the key's type
            with np.errstate(over="ignore"):
                return (keys - keys.dtype.type(self.offset)).astype(np.int64)
        return keys.view(np.int64) if keys.dtype.itemsize == 8 else keys.astype(np.int64)

    def labels_of(self, keys: np.ndarray) -> np.ndarray:
        if self.spec.is_category:
            text = np.array(list(self.labels), dtype=str) if self.labels else np.empty(0, "U1")
            return text[keys]
        dtype = self.spec.dtype
        if dtype.kind == "b":
            return keys.astype(bool)
        if self.size:
            with np.errstate(over="ignore"):
                return keys.astype(dtype) + dtype.type(self.offset)
        return keys.astype(np.int64).view(np.uint64) if dtype == np.uint64 else keys.astype(dtype)


def group_by(
    table: Table,
    key: str,
    aggs: Mapping[str, Any],
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Grouped aggregates: ``{"value": ["mean", "max"], "temp": "count"}`` gives arrays
    ``value_mean``, ``value_max``, ``temp_count`` beside the sorted keys under ``key``."""
    spec = table._schema.column(key)
    wanted = _parse_aggs(table, aggs)
    keys = _Keys(table, spec)
    sel = Selection(table, where, condvars)
    dense = [agg.new_group_state(keys.size, s.dtype) for s, _ in wanted] if keys.size else None
    hashed = None if keys.size else [agg.HashGroupBy(s.dtype) for s, _ in wanted]
    for pos in sel.chunks:
        rows = sel.rows(pos)
        if rows is None:
            continue
        hits, decoded = rows
        codes = keys(sel, pos, decoded)
        for j, (vspec, _) in enumerate(wanted):
            values, nat = _kernel_view(sel.values(vspec, pos, decoded))
            if dense is not None:
                agg.group_by_dense_update(codes, values, hits, nat, *dense[j])
            else:
                assert hashed is not None
                hashed[j].update(codes, values, hits, nat)
    return _results(key, keys, wanted, dense, hashed)


def _results(
    key: str,
    keys: _Keys,
    wanted: list[tuple[ColumnSpec, list[str]]],
    dense: list[agg.GroupState] | None,
    hashed: list[agg.HashGroupBy] | None,
) -> dict[str, np.ndarray]:
    if dense is not None:
        results = [agg.group_result(st, s.dtype) for st, (s, _) in zip(dense, wanted, strict=True)]
        present = results[0]["count"] + results[0]["nan_count"] > 0
        group_keys = np.flatnonzero(present)
        results = [{k: (None if v is None else v[present]) for k, v in r.items()} for r in results]
    else:
        assert hashed is not None
        results = [h.result() for h in hashed]
        group_keys = results[0]["key"] if results else np.empty(0, np.int64)
    labels = keys.labels_of(group_keys)
    order = np.argsort(labels, kind="stable")
    out: dict[str, np.ndarray] = {key: labels[order]}
    for (spec, names), res in zip(wanted, results, strict=True):
        for name in names:
            value = res[name]
            if value is None:
                raise QueryError(f"{name} of datetime column {spec.name!r} is not defined")
            out[f"{spec.name}_{name}"] = np.asarray(value)[order]
    return out
