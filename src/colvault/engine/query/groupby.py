"""``Table.group_by``: streaming grouped aggregates over an integer, bool or category key.

Integer keys whose range (from the zone maps) is small use dense accumulators indexed by
``key - min``; wide ranges use the hashed group-by of kernels/aggregates.py. Category keys are
mapped chunk by chunk from each chunk's dictionary to table-wide group ids. Only groups with at
least one selected row are returned, sorted by key.

Missing values (nullable columns) are left out as pandas leaves them out: rows whose key is
missing belong to no group (``groupby(dropna=True)``), and a missing value is skipped by its
column's aggregates (a group whose values are all missing has count 0 and NaN mean), and
counted by ``null_count``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...lazy import kernel_module
from ..schema import ColumnSpec
from ..zonemaps import kernel_view
from .aggregate import numeric_column
from .kernel import Decoded
from .selection import Selection

if TYPE_CHECKING:
    from ...kernels.query import aggregates as agg
    from ..records import TableView
else:
    agg = kernel_module("query.aggregates")

AGGREGATES = ("count", "nan_count", "null_count", "sum", "mean", "std", "min", "max")
#: Widest key range grouped with dense accumulators (beyond it, hashing).
DENSE_LIMIT = 1 << 20


def _parse_aggs(view: TableView, aggs: Mapping[str, Any]) -> list[tuple[ColumnSpec, list[str]]]:
    if not aggs:
        raise QueryError("group_by needs aggregates, e.g. {'value': ['mean', 'max']}")
    out = []
    for column, wanted in aggs.items():
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        bad = [a for a in names if a not in AGGREGATES]
        if bad:
            raise QueryError(f"unknown aggregate(s) {bad} for {column!r}; known: {AGGREGATES}")
        out.append((numeric_column(view, column, "group_by()"), names))
    return out


class _Keys:
    """Turns a chunk's key column into int64 group keys (dense offsets or hash keys)."""

    def __init__(self, view: TableView, spec: ColumnSpec) -> None:
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
        refs = view.state.columns[spec.id]
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
    view: TableView,
    key: str,
    aggs: Mapping[str, Any],
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Grouped aggregates: ``{"value": ["mean", "max"], "temp": "count"}`` gives arrays
    ``value_mean``, ``value_max``, ``temp_count`` beside the sorted keys under ``key``."""
    spec = view.schema.column(key)
    wanted = _parse_aggs(view, aggs)
    keys = _Keys(view, spec)
    sel = Selection(view, where, condvars)
    dense = [agg.new_group_state(keys.size, s.dtype) for s, _ in wanted] if keys.size else None
    hashed = None if keys.size else [agg.HashGroupBy(s.dtype) for s, _ in wanted]
    # groups whose values may all be missing are known by their keys alone
    groups = _Groups(keys.size) if any(s.nullable for s, _ in wanted) else None
    nulls = [_Groups(keys.size) if s.nullable and "null_count" in n else None for s, n in wanted]
    for pos in sel.chunks:
        rows = sel.rows(pos)
        if rows is None:
            continue
        hits, decoded = rows
        codes = keys(sel, pos, decoded)
        hits = _having(sel.validity(spec, pos), hits)  # no group for a missing key
        if hits is not None and not len(hits):
            continue
        if groups is not None:
            groups.update(codes, hits)
        for j, (vspec, _) in enumerate(wanted):
            values, nat = kernel_view(sel.values(vspec, pos, decoded))
            valid = sel.validity(vspec, pos)
            at = _having(valid, hits)
            counter = nulls[j]
            if counter is not None and valid is not None:
                counter.update(codes, _having(~valid, hits))
            if dense is not None:
                agg.group_by_dense_update(codes, values, at, nat, *dense[j])
            else:
                assert hashed is not None
                hashed[j].update(codes, values, at, nat)
    return _results(key, keys, wanted, dense, hashed, groups, nulls)


def _having(valid: np.ndarray | None, hits: np.ndarray | None) -> np.ndarray | None:
    """The positions among ``hits`` (None: every row) where ``valid`` (None: all) holds."""
    if valid is None:
        return hits
    return np.flatnonzero(valid) if hits is None else hits[valid[hits]]


class _Groups:
    """Rows per group, whatever their values: the groups that have a selected row, or the
    missing values of a column per group (dense: a count per group; hashed: a hashed
    group-by of a dummy column)."""

    def __init__(self, size: int) -> None:
        self.counts = np.zeros(size, np.int64) if size else None
        self.hashed = None if size else agg.HashGroupBy(np.dtype(np.int8))

    def update(self, codes: np.ndarray, hits: np.ndarray | None) -> None:
        if self.counts is not None:
            picked = codes if hits is None else codes[hits]
            self.counts += np.bincount(picked, minlength=len(self.counts))
        else:
            assert self.hashed is not None
            self.hashed.update(codes, np.zeros(len(codes), np.int8), hits, False)

    def keys(self) -> np.ndarray:
        assert self.hashed is not None
        got: np.ndarray = self.hashed.result()["key"]
        return got

    def over(self, group_keys: np.ndarray) -> np.ndarray:
        """The counts of the groups ``group_keys`` (dense: group indexes; hashed: ascending
        keys, a superset of those counted here)."""
        if self.counts is not None:
            return self.counts[group_keys]
        assert self.hashed is not None
        res = self.hashed.result()
        out = np.zeros(len(group_keys), np.int64)
        out[np.searchsorted(group_keys, res["key"])] = res["count"]
        return out


def _spread(res: dict[str, Any], all_keys: np.ndarray, dtype: np.dtype) -> dict[str, Any]:
    """A hashed result over some of ``all_keys`` (ascending) spread over all of them, the
    groups it lacks as empty groups."""
    out = agg.group_result(agg.new_group_state(len(all_keys), dtype), dtype)
    at = np.searchsorted(all_keys, res["key"])
    for name, value in out.items():
        if value is not None:
            value[at] = res[name]
    out["key"] = all_keys
    return out


def _results(
    key: str,
    keys: _Keys,
    wanted: list[tuple[ColumnSpec, list[str]]],
    dense: list[agg.GroupState] | None,
    hashed: list[agg.HashGroupBy] | None,
    groups: _Groups | None = None,
    nulls: list[_Groups | None] | None = None,
) -> dict[str, np.ndarray]:
    if dense is not None:
        results = [agg.group_result(st, s.dtype) for st, (s, _) in zip(dense, wanted, strict=True)]
        if groups is not None and groups.counts is not None:
            present = groups.counts > 0
        else:
            present = results[0]["count"] + results[0]["nan_count"] > 0
        group_keys = np.flatnonzero(present)
        results = [{k: (None if v is None else v[present]) for k, v in r.items()} for r in results]
    else:
        assert hashed is not None
        results = [h.result() for h in hashed]
        if groups is not None:
            all_keys = groups.keys()
            results = [
                _spread(r, all_keys, s.dtype) for r, (s, _) in zip(results, wanted, strict=True)
            ]
        group_keys = results[0]["key"] if results else np.empty(0, np.int64)
    labels = keys.labels_of(group_keys)
    order = np.argsort(labels, kind="stable")
    out: dict[str, np.ndarray] = {key: labels[order]}
    for j, ((spec, names), res) in enumerate(zip(wanted, results, strict=True)):
        counter = nulls[j] if nulls is not None else None
        for name in names:
            if name == "null_count":
                none = np.zeros(len(group_keys), np.int64)
                value = none if counter is None else counter.over(group_keys)
                out[f"{spec.name}_{name}"] = value[order]
                continue
            value = res[name]
            if value is None:
                raise QueryError(f"{name} of datetime column {spec.name!r} is not defined")
            out[f"{spec.name}_{name}"] = np.asarray(value)[order]
    return out
