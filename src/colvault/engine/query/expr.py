"""Condition strings parsed into a typed expression tree, and its lowering to fused kernels.

The language (ARCHITECTURE.md "Queries"): column names (backquoted when they are not
identifiers, as in pandas' ``query``), names from ``condvars``, int, float, bool and string
literals, ``+ - * / // % **``, unary ``-``, comparisons (chained ones too), ``& | ~`` and
``and or not`` on booleans, and the functions in :data:`FUNCTIONS`. Nothing else parses, and
nothing is ever evaluated: the text goes through length and nesting checks, then ``ast.parse``,
then a walk that accepts a fixed set of node types.

Types follow numpy exactly, because every answer must be checkable against numpy: each operator
is typed by ``ufunc.resolve_dtypes`` with Python int/float literals as NEP 50 "weak" scalars
(``int32_col + 1`` stays int32, ``float32_col * 2.5`` stays float32), and a literal that numpy
would refuse (``int8_col + 300``) is a :class:`QueryError` here. Subexpressions of constants
only are folded now: Python scalars by Python's rules (as ``eval`` would), anything involving a
numpy scalar by numpy's. ``**`` is ``np.power`` (the ``**`` operator of an array takes a
``sqrt`` shortcut for ``0.5``, ``np.power`` does not). Where numpy computes in float16
(``sqrt(int8_col)``), so do the kernels. Python's ``True``/``False`` are numpy bools.

Not supported (a :class:`QueryError` says so): complex values, arithmetic on datetime64 and
timedelta64 (comparisons are fine), and comparing datetimes whose units have no fixed ratio
(months with days).
"""

from __future__ import annotations

import ast
import datetime
import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from ...errors import QueryError
from ...kernels import exprgen

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

_BIN_OPS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_CMP_OPS: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
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
_BOOL = np.dtype(bool)
_OBJECT = np.dtype(object)
_DT_UNITS = frozenset(exprgen._UNIT_AS) | {"Y", "M"}
#: Folded Python integers are capped (``9**9**9`` would take minutes to compute).
_MAX_INT_BITS = 4096


@dataclass(frozen=True)
class Col:
    """A table column (scalar cells only). ``dtype`` is ``object`` for category columns."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True, eq=False)
class Const:
    """A literal or condvar. ``dtype`` is ``None`` for NEP 50 "weak" Python int and float
    scalars (their type comes from the other operand) and for str/bytes literals.

    Equal only with the same type of value: ``1`` and ``1.0`` type an expression differently.
    """

    value: Any
    dtype: np.dtype | None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Const):
            return NotImplemented
        same = self.value is other.value or bool(self.value == other.value)
        return type(self.value) is type(other.value) and same and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value, self.dtype))


@dataclass(frozen=True)
class Op:
    """An operator applied to typed operands; ``dtype`` is numpy's result dtype."""

    op: str
    args: tuple[Expr, ...]
    dtype: np.dtype


Expr: TypeAlias = Col | Const | Op


# ---------------------------------------------------------------------------------------------
# raw-text checks (before ast.parse, which fails with MemoryError/RecursionError on deep input)

_IDENT_START = re.compile(r"[^\W\d]", re.UNICODE)
_IDENT = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(
    r"(?:0[xXoObB][0-9a-fA-F_]*|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)"
)
_NESTING_OPS = frozenset("+-*/%&|^~@.")
_NESTING_WORDS = frozenset(("not", "lambda", "if", "for", "await", "yield"))
_FLAT_OPS = frozenset("<>=!,")
_FLAT_WORDS = frozenset(("and", "or", "in", "is"))


@dataclass(frozen=True)
class _Source:
    """The condition as ast sees it (backquoted names replaced by placeholders) and the way
    back to the user's text for error messages."""

    original: str
    text: str
    names: dict[str, str]  # placeholder -> column name
    spans: tuple[tuple[int, int, int, int], ...]  # (text start, text end, orig start, orig end)

    @property
    def lead(self) -> int:
        """Leading whitespace, which ast.parse refuses ("unexpected indent")."""
        return len(self.text) - len(self.text.lstrip())

    @property
    def parsed(self) -> str:
        return self.text[self.lead :]

    def original_offset(self, pos: int) -> int:
        shift = 0
        for start, end, ostart, oend in self.spans:
            if pos < start:
                break
            if pos < end:
                return ostart
            shift = oend - end
        return pos + shift

    def restore(self, segment: str) -> str:
        for placeholder, name in self.names.items():
            segment = segment.replace(placeholder, f"`{name}`")
        return segment


def _prepare(cond: str) -> _Source:
    """Check length and nesting on the raw text and replace backquoted names."""
    if not isinstance(cond, str):
        raise QueryError(f"a condition must be a str, not {type(cond).__name__}")
    if len(cond) > MAX_LENGTH:
        raise QueryError(f"condition is {len(cond)} characters long; the limit is {MAX_LENGTH}")
    if not cond.strip():
        raise QueryError("empty condition")
    prefix = "_bq"
    while prefix in cond:
        prefix += "_"
    out: list[str] = []
    names: dict[str, str] = {}
    spans: list[tuple[int, int, int, int]] = []
    # Nesting operators in the current operand of each open bracket (the first entry is the
    # top level). A flat separator (a comparison, and/or, a comma) starts a new operand: Python
    # parses those into one flat node, so only runs of other operators and brackets nest.
    runs = [0]
    i, n, pos = 0, len(cond), 0

    def check_depth(at: int) -> None:
        if len(runs) - 1 + sum(runs) > MAX_DEPTH:
            raise QueryError(
                f"condition nests too deeply (more than {MAX_DEPTH} levels of brackets and "
                f"operators) near column {at + 1}"
            )

    while i < n:
        ch = cond[i]
        if ch in "'\"":
            quote = cond[i : i + 3] if cond[i : i + 3] in ("'''", '"""') else ch
            j = i + len(quote)
            while j < n and not cond.startswith(quote, j):
                j += 2 if cond[j] == "\\" else 1
            j = min(j + len(quote), n)
            out.append(cond[i:j])
            pos += j - i
            i = j
            continue
        if ch == "`":
            j = cond.find("`", i + 1)
            if j < 0:
                raise QueryError(f"unclosed backquote at column {i + 1}: {cond[i : i + 30]!r}")
            name = cond[i + 1 : j]
            if not name:
                raise QueryError(f"empty backquoted name at column {i + 1}")
            placeholder = f"{prefix}{len(names)}"
            names[placeholder] = name
            spans.append((pos, pos + len(placeholder), i, j + 1))
            out.append(placeholder)
            pos += len(placeholder)
            i = j + 1
            continue
        m = None
        if ch.isdigit() or (ch == "." and i + 1 < n and cond[i + 1].isdigit()):
            m = _NUMBER.match(cond, i)
        elif _IDENT_START.match(ch):
            m = _IDENT.match(cond, i)
            word = m.group() if m is not None else ""
            if word in _NESTING_WORDS:
                runs[-1] += 1
                check_depth(i)
            elif word in _FLAT_WORDS:
                runs[-1] = 0
        if m is not None and m.end() > i:
            out.append(m.group())
            pos += m.end() - i
            i = m.end()
            continue
        if ch in "([{":
            runs.append(0)
            check_depth(i)
        elif ch in ")]}":
            if len(runs) > 1:
                runs.pop()
        elif ch in _NESTING_OPS:
            runs[-1] += 1
            check_depth(i)
        elif ch in _FLAT_OPS:
            runs[-1] = 0
        out.append(ch)
        pos += 1
        i += 1
    return _Source(cond, "".join(out), names, tuple(spans))


def _ast_depth(tree: ast.AST) -> int:
    """Depth of an ast, without recursion."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


# ---------------------------------------------------------------------------------------------
# typing helpers


def _is_weak(e: Expr) -> bool:
    return isinstance(e, Const) and e.dtype is None and type(e.value) in (int, float)


def _is_text_const(e: Expr) -> bool:
    return isinstance(e, Const) and e.dtype is None and isinstance(e.value, (str, bytes))


def _kind(e: Expr) -> str:
    """``"cat"`` (category), ``"text"`` (U/S or a str literal) or the numpy dtype kind."""
    if _is_text_const(e):
        return "text"
    if _is_weak(e):
        return "weak"
    dt = e.dtype
    assert dt is not None
    if dt == _OBJECT:
        return "cat"
    if dt.kind in "US":
        return "text"
    return dt.kind


def _resolve_operand(e: Expr) -> Any:
    """What ``ufunc.resolve_dtypes`` takes for an operand: a dtype, or ``int``/``float``."""
    if _is_weak(e):
        assert isinstance(e, Const)
        return type(e.value)
    return e.dtype


def _scalar(value: Any) -> Any:
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


def _const(value: Any) -> Const:
    """A Const of a (checked) scalar: Python bool as numpy bool (NEP 50 has no weak bool)."""
    if isinstance(value, bool):
        return Const(value, _BOOL)
    if type(value) in (int, float, str, bytes):
        return Const(value, None)
    dt = np.asarray(value).dtype
    if dt.kind in "Mm" and np.datetime_data(dt)[0] == "generic" and np.isnat(value):
        value = value.astype(f"{dt.kind}8[s]")  # a unit-less NaT: any unit compares the same
        dt = value.dtype
    _check_dtype(dt, "value")
    return Const(value, dt)


def _check_dtype(dt: np.dtype, what: str) -> None:
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


def _fits(value: Any, dt: np.dtype) -> Any:
    """``value`` converted to ``dt`` as numpy converts a scalar operand (OverflowError where
    numpy raises; a float too large for float32 becomes inf, as in numpy)."""
    with np.errstate(all="ignore"):
        return np.asarray(value, dtype=dt)[()]


def _describe(e: Expr) -> str:
    if _is_text_const(e):
        return "text"
    if _is_weak(e):
        return "a Python number"
    return str(e.dtype)


def _numpy_error(exc: BaseException) -> str:
    msg = str(exc).split("\n")[0]
    return msg or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# the parser


class _Parser:
    """Walks a parsed condition, accepting only the language's node types."""

    def __init__(
        self,
        source: _Source,
        columns: Mapping[str, np.dtype],
        condvars: Mapping[str, Any],
        table: str,
    ) -> None:
        self.src = source
        self.columns = {
            name: _OBJECT if isinstance(dt, str) and dt == "category" else np.dtype(dt)
            for name, dt in columns.items()
        }
        self.condvars = condvars
        self.table = table

    # -- messages

    def where(self, node: ast.AST) -> str:
        text = self.src.parsed
        lineno = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        lines = text.split("\n")
        line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
        char_col = len(line.encode()[:col].decode(errors="ignore"))
        pos = self.src.lead + sum(len(x) + 1 for x in lines[: lineno - 1]) + char_col
        segment = ast.get_source_segment(text, node) or ""
        segment = self.src.restore(segment)
        if len(segment) > 60:
            segment = segment[:57] + "..."
        return f"at column {self.src.original_offset(pos) + 1}: {segment!r}"

    def error(self, node: ast.AST, msg: str) -> QueryError:
        return QueryError(f"{msg} {self.where(node)}")

    def table_names(self) -> str:
        names = sorted(self.columns)
        shown = ", ".join(repr(n) for n in names[:50])
        more = f" and {len(names) - 50} more" if len(names) > 50 else ""
        where = f" of {self.table}" if self.table else ""
        return f"the columns{where} are {shown}{more}" if names else f"the table{where} has none"

    # -- nodes

    def visit(self, node: ast.AST) -> Expr:
        if isinstance(node, ast.Expression):
            return self.visit(node.body)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            return self.logical_chain(node, op, [self.visit(v) for v in node.values], node.values)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.error(node, self.refusal(node))

    def refusal(self, node: ast.AST) -> str:
        kinds = {
            ast.Attribute: "attribute access is not allowed",
            ast.Subscript: "subscripts are not allowed",
            ast.Lambda: "lambda is not allowed",
            ast.IfExp: "conditional expressions are not allowed",
            ast.NamedExpr: "assignment expressions (:=) are not allowed",
            ast.JoinedStr: "f-strings are not allowed",
            ast.Starred: "starred expressions are not allowed",
            ast.Await: "await is not allowed",
            ast.Yield: "yield is not allowed",
            ast.YieldFrom: "yield is not allowed",
        }
        for cls, msg in kinds.items():
            if isinstance(node, cls):
                return msg
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            return "comprehensions are not allowed"
        if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
            return "lists, tuples, sets and dicts are not allowed"
        return f"{type(node).__name__} is not part of the query language"

    def name(self, node: ast.Name) -> Expr:
        ident = node.id
        if ident in self.src.names:
            col = self.src.names[ident]
            if col in self.columns:
                return self.column(node, col)
            raise self.error(node, f"no column {col!r}; {self.table_names()}")
        if ident in self.condvars:
            try:
                value = _scalar(self.condvars[ident])
            except TypeError as exc:
                raise self.error(
                    node, f"condvar {ident!r} is not a usable scalar ({exc})"
                ) from None
            if isinstance(value, complex):
                raise self.error(node, f"condvar {ident!r}: complex numbers are not supported")
            try:
                return _const(value)
            except QueryError as exc:
                raise self.error(node, f"condvar {ident!r}: {exc}") from None
        if ident in self.columns:
            return self.column(node, ident)
        if ident in FUNCTIONS:
            raise self.error(node, f"{ident} is a function; call it as {ident}(...)")
        raise self.error(node, f"unknown name {ident!r}; {self.table_names()}")

    def column(self, node: ast.AST, name: str) -> Col:
        dt = self.columns[name]
        try:
            _check_dtype(dt, f"column {name!r}")
        except QueryError as exc:
            raise self.error(node, str(exc)) from None
        if dt == np.float16:  # kernels hold float16 in float32: no float16 arrays in Numba
            raise self.error(node, f"column {name!r}: float16 columns are not supported")
        return Col(name, dt)

    def literal(self, node: ast.Constant) -> Expr:
        v = node.value
        if isinstance(v, bool):
            return Const(v, _BOOL)
        if type(v) in (int, float, str, bytes):
            if type(v) is int and v.bit_length() > _MAX_INT_BITS:
                raise self.error(node, "integer literal too large")
            return Const(v, None)
        raise self.error(node, f"{type(v).__name__} literals are not allowed")

    def unary(self, node: ast.UnaryOp) -> Expr:
        x = self.visit(node.operand)
        if isinstance(node.op, ast.Not | ast.Invert):
            return self.logical(node, "not", (x,), (node.operand,))
        if isinstance(node.op, ast.UAdd):
            self.check_numeric(node, x, "+")
            if not _is_weak(x):
                self.resolve(node, np.positive, (x,))
            return x
        self.check_numeric(node, x, "-")
        return self.apply(node, "neg", (x,))

    def binop(self, node: ast.BinOp) -> Expr:
        if isinstance(node.op, ast.BitAnd | ast.BitOr):
            op = "and" if isinstance(node.op, ast.BitAnd) else "or"
            args = (self.visit(node.left), self.visit(node.right))
            return self.logical(node, op, args, (node.left, node.right))
        sym = _BIN_OPS.get(type(node.op))
        if sym is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not allowed")
        a, b = self.visit(node.left), self.visit(node.right)
        for e in (a, b):
            self.check_numeric(node, e, sym)
        return self.apply(node, sym, (a, b))

    def call(self, node: ast.Call) -> Expr:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            what = ast.get_source_segment(self.src.parsed, func) or "this"
            allowed = ", ".join(FUNCTIONS)
            raise self.error(
                node, f"cannot call {self.src.restore(what)!r}; the functions are {allowed}"
            )
        if node.keywords:
            raise self.error(node, f"{func.id}() takes no keyword arguments")
        if len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.error(node, f"{func.id}() takes exactly one argument")
        x = self.visit(node.args[0])
        self.check_numeric(node, x, func.id)
        return self.apply(node, func.id, (x,))

    def compare(self, node: ast.Compare) -> Expr:
        for cmp in node.ops:
            if type(cmp) not in _CMP_OPS:
                words = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
                raise self.error(node, f"'{words.get(type(cmp), '?')}' is not allowed")
        operands = [node.left, *node.comparators]
        for sub in operands:
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitAnd | ast.BitOr):
                # ``value > 10 & temp < 20`` parses as ``value > (10 & temp) < 20``.
                vals = [self.visit(sub.left), self.visit(sub.right)]
                if any(v.dtype != _BOOL for v in vals):
                    bit = "&" if isinstance(sub.op, ast.BitAnd) else "|"
                    raise self.error(
                        sub,
                        f"'{bit}' binds more tightly than comparisons: put each comparison in "
                        f"parentheses, e.g. (a > 1) {bit} (b < 2)",
                    )
        exprs = [self.visit(sub) for sub in operands]
        parts: list[Expr] = []
        for k, cmp in enumerate(node.ops):
            parts.append(self.comparison(node, _CMP_OPS[type(cmp)], exprs[k], exprs[k + 1]))
        return self.logical_chain(node, "and", parts, None)

    # -- typing

    def check_numeric(self, node: ast.AST, e: Expr, what: str) -> None:
        kind = _kind(e)
        if kind in ("text", "cat"):
            raise self.error(node, f"{what} does not apply to text")
        if kind in "Mm" and what != "isnan" and what != "isfinite":
            raise self.error(node, f"{what}: arithmetic on datetime64/timedelta64 is not supported")

    def resolve(self, node: ast.AST, ufunc: np.ufunc, args: tuple[Expr, ...]) -> tuple[Any, ...]:
        try:
            loop = ufunc.resolve_dtypes((*(_resolve_operand(a) for a in args), None))
        except (TypeError, ValueError) as exc:
            raise self.error(node, f"numpy refuses this: {_numpy_error(exc)}") from None
        return tuple(loop)

    def apply(self, node: ast.AST, op: str, args: tuple[Expr, ...]) -> Expr:
        """An arithmetic operator or function, typed as numpy types it (or folded)."""
        ufunc = ARITHMETIC.get(op) or UNARY[op]
        if all(isinstance(a, Const) for a in args):
            return self.fold(node, op, ufunc, args)
        loop = self.resolve(node, ufunc, args)
        for a, dt in zip(args, loop, strict=False):
            if isinstance(a, Const):
                self.convert(node, a, dt)
        if op == "**" and loop[1].kind == "i":
            b = args[1]
            if isinstance(b, Const) and self.convert(node, b, loop[1]) < 0:
                raise self.error(node, "numpy refuses integers to negative integer powers")
        return Op(op, args, loop[-1])

    def convert(self, node: ast.AST, c: Const, dt: np.dtype) -> Any:
        try:
            return _fits(c.value, dt)
        except (OverflowError, ValueError, TypeError) as exc:
            raise self.error(node, f"numpy refuses this: {_numpy_error(exc)}") from None

    def fold(self, node: ast.AST, op: str, ufunc: np.ufunc, args: tuple[Expr, ...]) -> Const:
        """Evaluate an operator on constants now: by Python's rules when every operand is a
        Python scalar (as ``eval`` would), else by numpy's."""
        consts = [a for a in args if isinstance(a, Const)]
        values = [c.value for c in consts]
        try:
            if all(_is_weak(c) for c in consts) and op == "neg":
                return _const(-values[0])
            if all(_is_weak(c) for c in consts) and op in _PY_OPS:
                if op == "**" and type(values[0]) is int and type(values[1]) is int:
                    base, exp = values
                    if abs(base) > 1 and exp > 0 and exp * abs(base).bit_length() > _MAX_INT_BITS:
                        raise self.error(node, "constant too large")
                result = _PY_OPS[op](*values)
                if isinstance(result, complex):
                    raise self.error(node, "complex results are not supported")
                if type(result) is int and result.bit_length() > _MAX_INT_BITS:
                    raise self.error(node, "constant too large")
                return _const(result)
            with np.errstate(all="ignore"):
                result = ufunc(*values)
        except QueryError:
            raise
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise self.error(node, f"cannot compute this: {_numpy_error(exc)}") from None
        try:
            return _const(_scalar(result))
        except (TypeError, QueryError) as exc:
            raise self.error(node, f"cannot compute this: {exc}") from None

    def comparison(self, node: ast.AST, sym: str, a: Expr, b: Expr) -> Expr:
        ka, kb = _kind(a), _kind(b)
        if "cat" in (ka, kb) or ("text" in (ka, kb) and not (ka in "Mm" or kb in "Mm")):
            return self.text_comparison(node, sym, a, b)
        if kb in "Mm" and ka == "text":
            a = self.datetime_literal(node, a, b)
        elif ka in "Mm" and kb == "text":
            b = self.datetime_literal(node, b, a)
        if isinstance(a, Const) and isinstance(b, Const):
            return self.fold(node, sym, COMPARISONS[sym], (a, b))
        loop = self.resolve(node, COMPARISONS[sym], (a, b))
        for x, other, dt in ((a, b, loop[0]), (b, a, loop[1])):
            if isinstance(x, Const):
                in_range_free = _is_weak(x) and type(x.value) is int and _kind(other) in "iu"
                if not in_range_free:  # numpy compares out-of-range ints with int columns
                    self.convert(node, x, dt)
        for x, dt in ((a, loop[0]), (b, loop[1])):
            if dt.kind in "Mm" and x.dtype is not None and x.dtype != dt:
                try:
                    exprgen.unit_factor(x.dtype.str, dt.str)
                except ValueError:
                    raise self.error(
                        node, f"comparing {x.dtype} with {dt} is not supported"
                    ) from None
        return Op(sym, (a, b), _BOOL)

    def datetime_literal(self, node: ast.AST, lit: Expr, other: Expr) -> Const:
        """A str literal compared with a datetime64 value, read as a datetime in the other
        side's unit when that loses nothing."""
        assert isinstance(lit, Const)
        dt = other.dtype
        assert dt is not None
        text = lit.value
        if dt.kind != "M" or not isinstance(text, str):
            raise self.error(node, f"cannot compare {dt} with {text!r}")
        s = text.strip()
        if not (s == "NaT" or re.match(r"[+-]?\d", s)):
            raise self.error(node, f"{text!r} is not a date or time")
        try:
            value = np.datetime64(s)
        except ValueError as exc:
            raise self.error(node, f"{text!r} is not a date or time ({exc})") from None
        try:
            same = value.astype(dt)
            if np.isnat(value) or same.astype(value.dtype) == value:
                return Const(same, dt)
        except (ValueError, OverflowError):
            pass
        return Const(value, value.dtype)

    def text_comparison(self, node: ast.AST, sym: str, a: Expr, b: Expr) -> Expr:
        if _is_text_const(a) and _is_text_const(b):
            return self.fold(node, sym, COMPARISONS[sym], (a, b))
        if _is_text_const(a):
            a, b, sym = b, a, SWAPPED[sym]
        ka = _kind(a)
        if not _is_text_const(b) or ka not in ("cat", "text"):
            if ka == "cat" and _kind(b) == "cat":
                raise self.error(node, "two category columns cannot be compared")
            if (
                ka == "text"
                and _kind(b) == "text"
                and a.dtype is not None
                and b.dtype is not None
                and a.dtype.kind == b.dtype.kind
            ):
                return Op(sym, (a, b), _BOOL)
            raise self.error(node, "text can only be compared with text")
        assert isinstance(b, Const) and a.dtype is not None
        if ka == "cat" or a.dtype.kind == "U":
            if not isinstance(b.value, str):
                raise self.error(node, f"compare {a.dtype} text with str, not bytes")
        elif isinstance(b.value, str):
            try:
                b = Const(b.value.encode("ascii"), None)
            except UnicodeEncodeError:
                raise self.error(node, "a bytes (S) column compares with ASCII text only") from None
        if "\0" in (b.value if isinstance(b.value, str) else b.value.decode("latin-1")):
            raise self.error(node, "text literals cannot contain NUL")
        return Op(sym, (a, b), _BOOL)

    def logical(
        self, node: ast.AST, op: str, args: tuple[Expr, ...], subs: Sequence[ast.AST]
    ) -> Expr:
        for e, sub in zip(args, subs, strict=True):
            if e.dtype != _BOOL:
                what = "~/not" if op == "not" else "&, |, and, or"
                kind = (
                    "a str" if _is_text_const(e) else "a Python number" if _is_weak(e) else e.dtype
                )
                raise self.error(sub, f"{what} apply to booleans only, not {kind}")
        if all(isinstance(a, Const) for a in args):
            values = [bool(a.value) for a in args if isinstance(a, Const)]
            result = (not values[0]) if op == "not" else values[0] and values[1]
            if op == "or":
                result = values[0] or values[1]
            return Const(np.bool_(result), _BOOL)
        return Op(op, args, _BOOL)

    def logical_chain(
        self, node: ast.AST, op: str, parts: list[Expr], subs: Sequence[ast.AST] | None
    ) -> Expr:
        """``a and b and c`` as a balanced tree, so a long chain stays shallow."""
        if subs is not None:
            for e, sub in zip(parts, subs, strict=True):
                self.logical(sub, "not", (e,), (sub,))
        while len(parts) > 1:
            paired = [
                self.logical(node, op, (parts[k], parts[k + 1]), (node, node))
                for k in range(0, len(parts) - 1, 2)
            ]
            if len(parts) % 2:
                paired.append(parts[-1])
            parts = paired
        return parts[0]


def parse(
    cond: str,
    columns: Mapping[str, np.dtype],
    condvars: Mapping[str, Any] | None = None,
    *,
    table: str = "",
) -> Expr:
    """The typed tree of a condition over ``columns`` (name -> dtype; category columns as
    ``np.dtype(object)``), or :class:`QueryError`. The root is boolean.

    >>> parse("`temp (°C)` > 20", {"temp (°C)": np.dtype("f4")})
    Op(op='>', args=(Col(name='temp (°C)', dtype=dtype('float32')), Const(value=20, dtype=None)), dtype=dtype('bool'))
    """  # noqa: E501
    source = _prepare(cond)
    try:
        tree = ast.parse(source.parsed, mode="eval")
    except SyntaxError as exc:
        col = source.original_offset(source.lead + (exc.offset or 1) - 1) + 1
        raise QueryError(f"syntax error at column {col}: {exc.msg}") from None
    except (MemoryError, RecursionError, ValueError) as exc:
        raise QueryError(f"condition cannot be parsed: {type(exc).__name__}") from None
    if _ast_depth(tree) > 2 * MAX_DEPTH:
        raise QueryError(f"condition nests too deeply (more than {MAX_DEPTH} levels)")
    parser = _Parser(source, columns, condvars or {}, table)
    try:
        expr = parser.visit(tree)
    except RecursionError:
        raise QueryError(f"condition nests too deeply (more than {MAX_DEPTH} levels)") from None
    if expr.dtype != _BOOL:
        kind = _describe(expr)
        raise QueryError(
            f"a condition must be boolean, but {cond.strip()!r} is {kind}; compare it, "
            "e.g. (x != 0)"
        )
    return expr


# ---------------------------------------------------------------------------------------------
# lowering to the kernel description


@dataclass(frozen=True)
class _Slot:
    """How one kernel constant is bound: ``value`` (fixed), ``code`` or ``lut`` (per chunk,
    from a category column's dictionary)."""

    kind: str
    const: Const
    column: str = ""
    op: str = ""


@dataclass(frozen=True)
class Lowered:
    """A tree as the kernel generator sees it: the neutral description, the column names and
    the constant slots, in the kernel's argument order."""

    node: tuple[Any, ...]
    columns: tuple[str, ...]
    slots: tuple[_Slot, ...]

    @property
    def key(self) -> str:
        return f"{len(self.columns)}:{len(self.slots)}:{exprgen.shape_text(self.node)}"


def _storage_str(dt: np.dtype) -> str:
    if dt == _OBJECT:
        return "cat"
    if dt.kind in "US":
        return dt.kind
    return dt.str


class _Lowerer:
    def __init__(self) -> None:
        self.columns: dict[str, int] = {}
        self.slots: list[_Slot] = []

    def col(self, c: Col) -> tuple[Any, ...]:
        j = self.columns.setdefault(c.name, len(self.columns))
        return ("col", j, _storage_str(c.dtype))

    def const(self, slot: _Slot, dt: str) -> tuple[Any, ...]:
        self.slots.append(slot)
        return ("const", len(self.slots) - 1, dt)

    def value(self, c: Const, dt: np.dtype) -> tuple[Any, ...]:
        v = _fits(c.value, dt)
        return self.const(_Slot("value", Const(v, dt)), dt.str)

    def lower(self, e: Expr, want: np.dtype | None = None) -> tuple[Any, ...]:
        if isinstance(e, Const):
            dt = want if want is not None else e.dtype
            if dt is None:
                if isinstance(e.value, str | bytes):
                    kind = "U" if isinstance(e.value, str) else "S"
                    return self.const(_Slot("value", e), kind)
                raise AssertionError("untyped constant")
            return self.value(e, dt)
        if isinstance(e, Col):
            node = self.col(e)
            return self.cast(node, e.dtype, want)
        if e.op in COMPARISONS:
            return self.comparison(e)
        if e.op in LOGICAL:
            return (e.op, "|b1", *(self.lower(a, _BOOL) for a in e.args))
        ufunc = ARITHMETIC.get(e.op) or UNARY[e.op]
        loop = ufunc.resolve_dtypes((*(_resolve_operand(a) for a in e.args), None))
        args = tuple(self.lower(a, dt) for a, dt in zip(e.args, loop, strict=False))
        return self.cast((e.op, loop[-1].str, *args), loop[-1], want)

    def cast(self, node: tuple[Any, ...], dt: np.dtype, want: np.dtype | None) -> tuple[Any, ...]:
        if want is None or want == dt:
            return node
        return ("cast", want.str, node)

    def comparison(self, e: Op) -> tuple[Any, ...]:
        a, b = e.args
        sym = e.op
        if _kind(a) == "cat":
            assert isinstance(a, Col) and isinstance(b, Const)
            col = self.col(a)
            if sym in ("==", "!="):
                k = self.const(_Slot("code", b, a.name, sym), "<i8")
                return ("catcode", sym, col, k)
            return ("catlut", col, self.const(_Slot("lut", b, a.name, sym), "lut"))
        if _kind(a) == "text":
            return (sym, "|b1", self.lower(a), self.lower(b))
        loop = COMPARISONS[sym].resolve_dtypes((_resolve_operand(a), _resolve_operand(b), None))
        # numpy compares a Python int outside an integer operand's range correctly: clamp it to
        # the range and adjust the operator, which gives the same answer for every value.
        if _is_weak(a) and not _is_weak(b):
            a, b, sym, loop = b, a, SWAPPED[sym], (loop[1], loop[0], loop[2])
        if _is_weak(b) and type(b.value) is int and _kind(a) in "iu":  # type: ignore[union-attr]
            assert isinstance(b, Const)
            info = np.iinfo(loop[0])
            if b.value > info.max:
                sym = {">": ">", ">=": ">", "==": ">"}.get(sym, "<=")
                b = Const(int(info.max), None)
            elif b.value < info.min:
                sym = {"<": "<", "<=": "<", "==": "<"}.get(sym, ">=")
                b = Const(int(info.min), None)
        return (sym, "|b1", self.lower(a, loop[0]), self.lower(b, loop[1]))


@functools.lru_cache(maxsize=1024)
def lower(expr: Expr) -> Lowered:
    """The kernel description of a typed tree (cached per tree)."""
    lw = _Lowerer()
    node = lw.lower(expr)
    return Lowered(node, tuple(lw.columns), tuple(lw.slots))


def shape_key(expr: Expr) -> str:
    """Canonical text of the expression's shape: column positions and loop dtypes, constants as
    typed placeholders, so ``v > 3`` and ``v > 4`` (or ``w > 5`` on another float64 column)
    share a key and a kernel."""
    return lower(expr).key


def constants(expr: Expr) -> list[Const]:
    """The constants in the order the kernel takes them, each already converted to the dtype
    its operation runs in (``int8_col > 3`` gives ``int8(3)``). A constant compared with a
    category column stays the literal: :func:`kernel_constants` turns it into the chunk's code
    or lookup table."""
    return [s.const for s in lower(expr).slots]


def columns_used(expr: Expr) -> list[str]:
    """Column names in the order the kernel takes them (first appearance)."""
    return list(lower(expr).columns)


def category_code(dictionary: np.ndarray, literal: str) -> np.int64:
    """The code of ``literal`` in a chunk's dictionary, or -1 when the chunk lacks it."""
    hits = np.flatnonzero(np.asarray(dictionary) == literal)
    return np.int64(hits[0] if hits.size else -1)


def category_lut(dictionary: np.ndarray, op: str, literal: str) -> np.ndarray:
    """``lut[code]`` = the comparison of dictionary entry ``code`` with ``literal``."""
    return np.ascontiguousarray(COMPARISONS[op](np.asarray(dictionary, dtype=str), literal))


def kernel_constants(
    expr: Expr, dictionaries: Mapping[str, np.ndarray] | None = None
) -> tuple[Any, ...]:
    """The constant arguments of the kernel for one chunk. ``dictionaries`` maps each category
    column in the condition to the chunk's dictionary (entry ``c`` is the text of code ``c``)."""
    out: list[Any] = []
    for slot in lower(expr).slots:
        c = slot.const
        if slot.kind == "value":
            v = c.value
            if c.dtype is not None and c.dtype.kind in "Mm":
                v = np.int64(v.astype(np.int64))
            elif c.dtype == np.float16:  # the kernel keeps float16 values in float32
                v = np.float32(v)
            out.append(v)
            continue
        if dictionaries is None or slot.column not in dictionaries:
            raise QueryError(f"the dictionary of category column {slot.column!r} is needed")
        d = dictionaries[slot.column]
        if slot.kind == "code":
            out.append(category_code(d, c.value))
        else:
            out.append(category_lut(d, slot.op, c.value))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# compiled predicates and a numpy reference evaluator


class Predicate:
    """A condition bound to its fused kernels: what the query executor calls per chunk.

    ``arrays`` map column names (:attr:`columns`) to 1-d chunk arrays in storage form:
    datetime64/timedelta64 as themselves or as int64 views, bool as bool or uint8, category
    columns as their integer codes (with the chunk's dictionary in ``dictionaries``).
    """

    def __init__(self, expr: Expr, *, cache_dir: str | None = None) -> None:
        self.expr = expr
        self.lowered = lower(expr)
        self.columns = list(self.lowered.columns)
        self.constants = [s.const for s in self.lowered.slots]
        self.key = self.lowered.key
        self.cache_dir = cache_dir
        self._static = (
            kernel_constants(expr) if all(s.kind == "value" for s in self.lowered.slots) else None
        )

    def kernel(self, mode: str = "select") -> Callable[..., int]:
        low = self.lowered
        return exprgen.kernel(
            low.node, len(low.columns), len(low.slots), mode, cache_dir=self.cache_dir
        )

    def args(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
    ) -> tuple[Any, ...]:
        """``(n, *columns, *constants)`` for one chunk."""
        cols = []
        for name in self.columns:
            a = np.asarray(arrays[name])
            if a.dtype.kind in "Mm":
                a = a.view(np.int64)
            cols.append(a)
        if n is None:
            if not cols:
                raise QueryError("a condition without columns needs the row count n")
            n = len(cols[0])
        if any(len(a) < n for a in cols):
            raise QueryError("chunk arrays are shorter than n")
        consts = (
            self._static if self._static is not None else kernel_constants(self.expr, dictionaries)
        )
        return (n, *cols, *consts)

    @staticmethod
    def _checked(count: int) -> int:
        if count == exprgen.ERR_NEGATIVE_POWER:
            raise QueryError("numpy refuses integers to negative integer powers")
        return int(count)

    def select(
        self,
        arrays: Mapping[str, np.ndarray],
        out: np.ndarray | None = None,
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
    ) -> np.ndarray:
        """int64 positions (within the chunk) of the rows where the condition holds. ``out``,
        when given, is an int64 buffer of at least ``n`` slots reused across chunks."""
        args = self.args(arrays, dictionaries, n)
        if out is None:
            out = np.empty(args[0], np.int64)
        count = self._checked(self.kernel("select")(*args, out))
        return out[:count]

    def count(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
    ) -> int:
        """How many rows of the chunk satisfy the condition."""
        return self._checked(self.kernel("count")(*self.args(arrays, dictionaries, n)))

    def mask(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
    ) -> np.ndarray:
        """The condition of every row of the chunk, as a bool array."""
        args = self.args(arrays, dictionaries, n)
        out = np.empty(args[0], np.bool_)
        self._checked(self.kernel("mask")(*args, out))
        return out


def evaluate(expr: Expr, arrays: Mapping[str, np.ndarray]) -> Any:
    """Evaluate a tree with numpy itself (the reference the kernels must agree with). Category
    columns are given as text here."""
    if isinstance(expr, Col):
        return np.asarray(arrays[expr.name])
    if isinstance(expr, Const):
        return expr.value
    args = [evaluate(a, arrays) for a in expr.args]
    with np.errstate(all="ignore"):
        if expr.op in COMPARISONS:
            return COMPARISONS[expr.op](*args)
        if expr.op in LOGICAL:
            return LOGICAL[expr.op](*args)
        ufunc = ARITHMETIC.get(expr.op) or UNARY[expr.op]
        return ufunc(*args)
