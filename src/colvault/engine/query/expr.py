"""The typed expression tree of a condition, and numpy's typing rules for it.

The parser is in :mod:`.parse` (raw-text checks in :mod:`.source`), the lowering to fused
kernels and the per-chunk :class:`~.predicate.Predicate` in :mod:`.predicate`.

The language (ARCHITECTURE.md "Queries"): column names (backquoted when they are not
identifiers, as in pandas' ``query``), names from ``condvars``, int, float, bool and string
literals, ``+ - * / // % **``, unary ``-``, comparisons (chained ones too), ``& | ~`` and
``and or not`` on booleans, the functions in :data:`FUNCTIONS`, and ``isna``/``notna``
(:data:`MISSING_TESTS`; a missing entry of a nullable column compares as NaN does). Nothing
else parses, and nothing is ever evaluated: the text goes through length and nesting checks,
then ``ast.parse``, then a walk that accepts a fixed set of node types.

Types follow numpy exactly, because every answer must be checkable against numpy: each operator
is typed by ``ufunc.resolve_dtypes`` with Python int/float literals as NEP 50 "weak" scalars
(``int32_col + 1`` stays int32, ``float32_col * 2.5`` stays float32), and a literal that numpy
would refuse (``int8_col + 300``) is a :class:`QueryError` here. Subexpressions of constants
only are folded now: Python scalars by Python's rules (as ``eval`` would), anything involving a
numpy scalar by numpy's. ``**`` is ``np.power`` (the ``**`` operator of an array takes a
``sqrt`` shortcut for ``0.5``, ``np.power`` does not). Where numpy computes in float16
(``sqrt(int8_col)``), so do the kernels. Python's ``True``/``False`` are numpy bools.

A missing entry of a nullable column behaves as NaN does in numpy and in pandas' float and
``str`` columns: comparisons with it are false, ``!=`` is true, ``~`` flips (``~(x == 3)``
selects it), a nullable bool column used as a condition selects nothing there. pandas' own
nullable dtypes (``Int64``, ``boolean``, ``string``) use three-valued logic instead, in which
``x != 3`` and ``~(x == 3)`` leave a missing ``x`` out; write ``(x != 3) & notna(x)`` for that.

Not supported (a :class:`QueryError` says so): complex values, arithmetic on datetime64 and
timedelta64 (comparisons are fine), and comparing datetimes whose units have no fixed ratio
(months with days).
"""

from __future__ import annotations

import ast
import datetime
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ...errors import QueryError
from ...kernels.query import exprcode  # no Numba: the unit table
from ...lazy import kernel_module

if TYPE_CHECKING:
    from ...kernels.query import exprgen
else:
    exprgen = kernel_module("query.exprgen")

MAX_LENGTH = 10_000
MAX_DEPTH = 100

FUNCTIONS: dict[str, np.ufunc] = {
    "abs": np.absolute,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "floor": np.floor,
    "ceil": np.ceil,
    "isnan": np.isnan,
    "isfinite": np.isfinite,
}
#: Tests for a missing value: NaN, NaT, or a masked entry of a nullable column (as pandas'
#: ``isna``/``notna``); any operand type, always boolean.
MISSING_TESTS = ("isna", "notna")
ARITHMETIC: dict[str, np.ufunc] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "//": np.floor_divide,
    "%": np.remainder,
    "**": np.power,
}
COMPARISONS: dict[str, np.ufunc] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
UNARY: dict[str, np.ufunc] = {"neg": np.negative, **FUNCTIONS}
LOGICAL: dict[str, np.ufunc] = {"and": np.logical_and, "or": np.logical_or, "not": np.logical_not}
#: ``a OP b`` is ``b SWAPPED[OP] a``.
SWAPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

BIN_OPS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
CMP_OPS: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
BOOL = np.dtype(bool)
OBJECT = np.dtype(object)
_DT_UNITS = frozenset(exprcode.UNIT_AS) | {"Y", "M"}
#: Folded Python integers are capped (``9**9**9`` would take minutes to compute).
MAX_INT_BITS = 4096


@dataclass(frozen=True)
class Col:
    """A table column (scalar cells only). ``dtype`` is ``object`` for category columns."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True, eq=False)
class Const:
    """A literal or condvar. ``dtype`` is ``None`` for NEP 50 "weak" Python int and float
    scalars (their type comes from the other operand) and for str/bytes literals.

    Equal only with the same type of value (``1`` and ``1.0`` type an expression differently)
    and the same sign (``x / 0.0`` and ``x / -0.0`` differ: trees are cache keys).
    """

    value: Any
    dtype: np.dtype | None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Const):
            return NotImplemented
        a, b = self.value, other.value
        same = a is b or (bool(a == b) and (a != 0 or _sign(a) == _sign(b)))
        return type(a) is type(b) and same and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value, self.dtype))


def _sign(value: Any) -> tuple[bool, bool]:
    """The sign bits of a float's or complex number's parts (a zero may be negative)."""
    if isinstance(value, float | np.floating):
        return bool(np.signbit(value)), False
    if isinstance(value, complex | np.complexfloating):
        return bool(np.signbit(value.real)), bool(np.signbit(value.imag))
    return False, False


@dataclass(frozen=True)
class Op:
    """An operator applied to typed operands; ``dtype`` is numpy's result dtype."""

    op: str
    args: tuple[Expr, ...]
    dtype: np.dtype


Expr: TypeAlias = Col | Const | Op


# ---------------------------------------------------------------------------------------------
# typing helpers


def is_weak(e: Expr) -> bool:
    """A Python int or float literal: weakly typed, as NEP 50 says."""
    return isinstance(e, Const) and e.dtype is None and type(e.value) in (int, float)


def is_text_const(e: Expr) -> bool:
    """A str or bytes literal (typed by the column it meets)."""
    return isinstance(e, Const) and e.dtype is None and isinstance(e.value, (str, bytes))


def operand_kind(e: Expr) -> str:
    """``"cat"`` (category), ``"text"`` (U/S or a str literal) or the numpy dtype kind."""
    if is_text_const(e):
        return "text"
    if is_weak(e):
        return "weak"
    dt = e.dtype
    assert dt is not None
    if dt == OBJECT:
        return "cat"
    if dt.kind in "US":
        return "text"
    return dt.kind


def resolve_operand(e: Expr) -> Any:
    """What ``ufunc.resolve_dtypes`` takes for an operand: a dtype, or ``int``/``float``."""
    if is_weak(e):
        assert isinstance(e, Const)
        return type(e.value)
    return e.dtype


def scalar_of(value: Any) -> Any:
    """A condvar value as a tree constant's value (numpy scalar, Python scalar or text)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError("arrays are not scalars")
        value = value[()]
    if isinstance(value, datetime.datetime | datetime.date) and not isinstance(value, np.generic):
        return np.datetime64(value)
    if isinstance(value, datetime.timedelta):
        return np.timedelta64(value)
    if isinstance(value, np.str_ | np.bytes_):
        return value.item()
    if type(value) in (bool, int, float, str, bytes) or isinstance(value, np.generic):
        return value
    raise TypeError(f"{type(value).__name__} is not a scalar")


def make_const(value: Any) -> Const:
    """A Const of a (checked) scalar: Python bool as numpy bool (NEP 50 has no weak bool)."""
    if isinstance(value, bool):
        return Const(value, BOOL)
    if type(value) in (int, float, str, bytes):
        return Const(value, None)
    dt = np.asarray(value).dtype
    if dt.kind in "Mm" and np.datetime_data(dt)[0] == "generic" and np.isnat(value):
        value = value.astype(f"{dt.kind}8[s]")  # a unit-less NaT: any unit compares the same
        dt = value.dtype
    check_operand_dtype(dt, "value")
    return Const(value, dt)


def check_operand_dtype(dt: np.dtype, what: str) -> None:
    """Refuse an operand dtype conditions cannot compute with (complex, unitless dates)."""
    if dt.kind == "c":
        raise QueryError(f"{what}: complex numbers are not supported in conditions")
    if dt.kind in "Mm":
        unit = np.datetime_data(dt)[0]
        if unit not in _DT_UNITS:
            raise QueryError(f"{what}: {dt} is not supported in conditions (no unit)")
        return
    if dt.kind == "f" and dt.itemsize > 8:
        raise QueryError(f"{what}: {dt} is not supported in conditions")
    if dt.kind not in "biufUSO" or dt.subdtype is not None:
        raise QueryError(f"{what}: {dt} is not supported in conditions")


def fits_dtype(value: Any, dt: np.dtype) -> Any:
    """``value`` converted to ``dt`` as numpy converts a scalar operand (OverflowError where
    numpy raises; a float too large for float32 becomes inf, as in numpy)."""
    with np.errstate(all="ignore"):
        return np.asarray(value, dtype=dt)[()]


def describe_operand(e: Expr) -> str:
    """An operand's type as an error message names it ("text", "a Python number", a dtype)."""
    if is_text_const(e):
        return "text"
    if is_weak(e):
        return "a Python number"
    return str(e.dtype)


def numpy_error(exc: BaseException) -> str:
    """numpy's message for a failed operation, first line only, for a QueryError."""
    msg = str(exc).split("\n")[0]
    return msg or type(exc).__name__
