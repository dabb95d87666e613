"""Zone-map pruning: decide per chunk whether a condition holds for none, all or some rows.

Each chunk's zone map gives [min, max] of its valid values and how many are NaN/NaT; its
chunk reference how many are missing (nullable columns), which count as NaN does. A
comparison of a column with a constant is decided from those exactly: "none" when no row can
satisfy it, "all" when every row does — NaN rows included, which compare false except with
``!=`` — and "some" otherwise. ``and``/``or``/``not`` combine the three answers (a ``not`` of
"none" is "all": the NaN rows of ``~(v > 10)`` are selected, as numpy selects them). Anything
else (arithmetic, functions, text) is "some": the kernel decides row by row.

All chunks are classified at once with numpy over the manifest's zone maps, so pruning a table
of thousands of chunks costs a few vectorized comparisons, not a Python loop per chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..manifest import NodeState
from ..schema import ColumnSpec
from .expr import Col, Const, Expr, Op

NONE, SOME, ALL = 0, 1, 2

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class ZoneArrays:
    """One column's zone maps over all chunks, as arrays (bounds in the column's order)."""

    def __init__(self, state: NodeState, spec: ColumnSpec) -> None:
        refs = state.columns[spec.id]
        n = len(refs)
        self.known = np.array([r.zone.nan_count is not None for r in refs], bool)
        self.missing = np.array([(r.zone.nan_count or 0) + r.nulls for r in refs], np.int64)
        rows = np.array([r.nrows for r in refs], np.int64)
        self.valid = np.array([r.zone.min is not None for r in refs], bool) & (self.missing < rows)
        filler = bytes(spec.dtype.itemsize)
        lo = np.frombuffer(b"".join(r.zone.min or filler for r in refs), spec.dtype, n)
        hi = np.frombuffer(b"".join(r.zone.max or filler for r in refs), spec.dtype, n)
        if spec.dtype.kind in "Mm":  # compare datetimes as int64 (NaT never stands in a bound)
            lo, hi = lo.view(np.int64), hi.view(np.int64)
        self.lo, self.hi = lo, hi


#: Tables of at most this many chunks are classified chunk by chunk in Python: numpy's dozen
#: operations on arrays of one element cost 20 us of a 200 us query of a small table.
SMALL = 4


def _leaf(op: str, z: ZoneArrays, spec: ColumnSpec, c: Any) -> np.ndarray:
    """``column <op> c`` over every chunk."""
    n = len(z.known)
    if spec.dtype.kind in "Mm":
        c = np.asarray(c).astype(spec.dtype)
        if np.isnat(c):
            return np.full(n, ALL if op == "!=" else NONE, np.int8)
        c = c.view(np.int64)[()]
    elif isinstance(c, float | np.floating) and np.isnan(c):
        return np.full(n, ALL if op == "!=" else NONE, np.int8)
    if n <= SMALL:
        return np.array([_one(op, z, i, c) for i in range(n)], np.int8)
    return _leaf_arrays(op, z, c)


def _one(op: str, z: ZoneArrays, i: int, c: Any) -> int:
    """:func:`_leaf_arrays` for chunk ``i`` alone (``c`` not NaN or NaT)."""
    if not z.known[i]:
        return SOME
    if not z.valid[i]:  # every row missing: only != holds
        return ALL if op == "!=" else NONE
    lo, hi, clean = z.lo[i], z.hi[i], z.missing[i] == 0
    with np.errstate(invalid="ignore"):
        if op == "!=":
            all_, none = (c < lo) or (c > hi), lo == hi and lo == c and clean
        elif op == "==":
            none, all_ = (c < lo) or (c > hi), lo == hi and lo == c and clean
        else:
            all_ = {"<": hi < c, "<=": hi <= c, ">": lo > c, ">=": lo >= c}[op] and clean
            none = {"<": lo >= c, "<=": lo > c, ">": hi <= c, ">=": hi < c}[op]
    return NONE if none else ALL if all_ else SOME


def _leaf_arrays(op: str, z: ZoneArrays, c: Any) -> np.ndarray:
    """:func:`_leaf` with numpy over every chunk at once."""
    lo, hi, clean = z.lo, z.hi, z.missing == 0
    with np.errstate(invalid="ignore"):
        if op == "!=":
            all_ = (c < lo) | (c > hi)
            none = (lo == hi) & (lo == c) & clean
        elif op == "==":
            none = (c < lo) | (c > hi)
            all_ = (lo == hi) & (lo == c) & clean
        else:
            all_ = {"<": hi < c, "<=": hi <= c, ">": lo > c, ">=": lo >= c}[op] & clean
            none = {"<": lo >= c, "<=": lo > c, ">": hi <= c, ">=": hi < c}[op]
    out = np.where(none, NONE, np.where(all_, ALL, SOME)).astype(np.int8)
    everything_missing = z.known & ~z.valid
    out[everything_missing] = ALL if op == "!=" else NONE
    out[~z.known] = SOME
    return out


def _missing_test(op: str, z: ZoneArrays | None, spec: ColumnSpec) -> np.ndarray | int:
    """``isna(column)`` (``notna``) over every chunk: none of a chunk's rows are missing when
    its zone map counts no NaN and it has no missing entries."""
    if z is None:  # no zone map: a column that is not nullable and has no NaN (text, bool)
        return NONE if op == "isna" else ALL
    out = np.full(len(z.known), SOME, np.int8)
    out[z.known & (z.missing == 0)] = NONE
    out[z.known & ~z.valid] = ALL
    out[~z.known] = SOME
    return out if op == "isna" else ALL + NONE - out


#: Verdicts kept per snapshot, by condition (a query repeated in a loop is classified once).
VERDICTS_KEPT = 16


def classify_chunks(expr: Expr, state: NodeState, specs: dict[str, ColumnSpec]) -> np.ndarray:
    """NONE, SOME or ALL (int8) for every chunk of ``state`` (a new array: callers may write
    it); kept with the snapshot for the next query of the same condition and constants."""
    key = ("verdicts", expr, tuple(s.id for s in specs.values()))
    kept = state.derived.get(key)
    if kept is None:
        kept = state.keep(key, _classify(expr, state, specs), VERDICTS_KEPT)
    return kept.copy()


def _classify(expr: Expr, state: NodeState, specs: dict[str, ColumnSpec]) -> np.ndarray:
    zones: dict[str, ZoneArrays] = {}

    def visit(e: Expr) -> np.ndarray | int:
        if isinstance(e, Op):
            if e.op == "not":
                return ALL + NONE - visit(e.args[0])
            if e.op in ("and", "or"):
                parts = [visit(a) for a in e.args]
                combine = np.minimum if e.op == "and" else np.maximum
                out = parts[0]
                for p in parts[1:]:
                    out = combine(out, p)
                return out
            if e.op in ("isna", "notna") and isinstance(e.args[0], Col):
                spec = specs[e.args[0].name]
                if spec.has_zone_map or not spec.nullable:
                    return _missing_test(e.op, zones_of(spec), spec)
            if e.op in _FLIP and len(e.args) == 2:
                a, b = e.args
                op = e.op
                if isinstance(a, Const) and isinstance(b, Col):
                    a, b, op = b, a, _FLIP[op]
                if isinstance(a, Col) and isinstance(b, Const):
                    spec = specs[a.name]
                    z = zones_of(spec)
                    if z is not None and not isinstance(b.value, str | bytes):
                        return _leaf(op, z, spec, b.value)
        return SOME

    def zones_of(spec: ColumnSpec) -> ZoneArrays | None:
        if not spec.has_zone_map:
            return None
        if spec.name not in zones:
            key = ("zones", spec.id)
            if key not in state.derived:
                state.derived[key] = ZoneArrays(state, spec)
            zones[spec.name] = state.derived[key]
        return zones[spec.name]

    verdict = np.asarray(visit(expr), np.int8)
    return np.broadcast_to(verdict, (len(state.starts),)).copy()
