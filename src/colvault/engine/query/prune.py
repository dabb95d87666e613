"""Zone-map pruning: decide per chunk whether a condition holds for none, all or some rows.

Each chunk's zone map gives [min, max] of its valid values and how many are NaN/NaT. A
comparison of a column with a constant is decided from those exactly: "none" when no row can
satisfy it, "all" when every row does — NaN rows included, which compare false except with
``!=`` — and "some" otherwise. ``and``/``or``/``not`` combine the three answers (a ``not`` of
"none" is "all": the NaN rows of ``~(v > 10)`` are selected, as numpy selects them). Anything
else (arithmetic, functions, text) is "some": the kernel decides row by row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..schema import ColumnSpec
from ..zonemaps import ZoneMap, decode_bound
from .expr import Col, Const, Expr, Op

NONE, SOME, ALL = 0, 1, 2

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _leaf(op: str, zone: ZoneMap, spec: ColumnSpec, nrows: int, c: Any) -> int:
    """``column <op> c`` over one chunk."""
    if zone.nan_count is None:
        return SOME
    missing = zone.nan_count
    if zone.min is None or zone.max is None:  # every value is NaN/NaT
        return ALL if op == "!=" else NONE
    lo, hi = decode_bound(zone.min, spec), decode_bound(zone.max, spec)
    if spec.dtype.kind in "Mm":
        c = np.asarray(c).astype(spec.dtype)
        if np.isnat(c):
            return ALL if op == "!=" else NONE
        lo, hi = lo.view(np.int64), hi.view(np.int64)  # type: ignore[union-attr]
        c = c.view(np.int64)
    if isinstance(c, float | np.floating) and np.isnan(c):
        return ALL if op == "!=" else NONE
    if op == "!=":
        if c < lo or c > hi:
            return ALL
        return NONE if lo == hi == c and not missing else SOME
    if op == "==":
        if c < lo or c > hi:
            return NONE
        return ALL if lo == hi == c and not missing else SOME
    true_all = {"<": hi < c, "<=": hi <= c, ">": lo > c, ">=": lo >= c}[op]
    true_none = {"<": lo >= c, "<=": lo > c, ">": hi <= c, ">=": hi < c}[op]
    if true_none:
        return NONE
    return ALL if true_all and not missing else SOME


def classify(
    expr: Expr, zones: dict[str, ZoneMap], specs: dict[str, ColumnSpec], nrows: int
) -> int:
    """NONE, SOME or ALL for one chunk; ``zones`` maps column names to the chunk's zone maps."""
    if isinstance(expr, Op):
        if expr.op == "not":
            return ALL + NONE - classify(expr.args[0], zones, specs, nrows)
        if expr.op in ("and", "or"):
            parts = [classify(a, zones, specs, nrows) for a in expr.args]
            return min(parts) if expr.op == "and" else max(parts)
        if expr.op in _FLIP and len(expr.args) == 2:
            a, b = expr.args
            op = expr.op
            if isinstance(a, Const) and isinstance(b, Col):
                a, b, op = b, a, _FLIP[op]
            if isinstance(a, Col) and isinstance(b, Const) and a.name in zones:
                spec = specs[a.name]
                if spec.has_zone_map and not isinstance(b.value, str | bytes):
                    return _leaf(op, zones[a.name], spec, nrows, b.value)
    return SOME
