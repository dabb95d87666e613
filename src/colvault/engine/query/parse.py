"""The condition parser: ``ast`` nodes of a fixed set, typed as numpy types them."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...lazy import kernel_module
from .expr import (
    ARITHMETIC,
    BIN_OPS,
    BOOL,
    CMP_OPS,
    COMPARISONS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_INT_BITS,
    MISSING_TESTS,
    OBJECT,
    PY_OPS,
    SWAPPED,
    UNARY,
    Col,
    Const,
    Expr,
    Op,
    check_operand_dtype,
    describe_operand,
    fits_dtype,
    is_text_const,
    is_weak,
    make_const,
    numpy_error,
    operand_kind,
    resolve_operand,
    scalar_of,
)
from .kept import Kept
from .source import ConditionText, ast_depth, prepare_condition

if TYPE_CHECKING:
    from ...kernels.query import exprgen
else:
    exprgen = kernel_module("query.exprgen")

# ---------------------------------------------------------------------------------------------
# the parser


class _Parser:
    """Walks a parsed condition, accepting only the language's node types."""

    def __init__(
        self,
        source: ConditionText,
        columns: Mapping[str, np.dtype],
        condvars: Mapping[str, Any],
        table: str,
    ) -> None:
        self.src = source
        self.columns = {
            name: OBJECT if isinstance(dt, str) and dt == "category" else np.dtype(dt)
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
                value = scalar_of(self.condvars[ident])
            except TypeError as exc:
                raise self.error(
                    node, f"condvar {ident!r} is not a usable scalar ({exc})"
                ) from None
            if isinstance(value, complex):
                raise self.error(node, f"condvar {ident!r}: complex numbers are not supported")
            try:
                return make_const(value)
            except QueryError as exc:
                raise self.error(node, f"condvar {ident!r}: {exc}") from None
        if ident in self.columns:
            return self.column(node, ident)
        if ident in FUNCTIONS or ident in MISSING_TESTS:
            raise self.error(node, f"{ident} is a function; call it as {ident}(...)")
        raise self.error(node, f"unknown name {ident!r}; {self.table_names()}")

    def column(self, node: ast.AST, name: str) -> Col:
        dt = self.columns[name]
        try:
            check_operand_dtype(dt, f"column {name!r}")
        except QueryError as exc:
            raise self.error(node, str(exc)) from None
        if dt == np.float16:  # kernels hold float16 in float32: no float16 arrays in Numba
            raise self.error(node, f"column {name!r}: float16 columns are not supported")
        return Col(name, dt)

    def literal(self, node: ast.Constant) -> Expr:
        v = node.value
        if isinstance(v, bool):
            return Const(v, BOOL)
        if type(v) in (int, float, str, bytes):
            if type(v) is int and v.bit_length() > MAX_INT_BITS:
                raise self.error(node, "integer literal too large")
            return Const(v, None)
        raise self.error(node, f"{type(v).__name__} literals are not allowed")

    def unary(self, node: ast.UnaryOp) -> Expr:
        x = self.visit(node.operand)
        if isinstance(node.op, ast.Not | ast.Invert):
            return self.logical(node, "not", (x,), (node.operand,))
        if isinstance(node.op, ast.UAdd):
            self.check_numeric(node, x, "+")
            if not is_weak(x):
                self.resolve(node, np.positive, (x,))
            return x
        self.check_numeric(node, x, "-")
        return self.apply(node, "neg", (x,))

    def binop(self, node: ast.BinOp) -> Expr:
        if isinstance(node.op, ast.BitAnd | ast.BitOr):
            op = "and" if isinstance(node.op, ast.BitAnd) else "or"
            args = (self.visit(node.left), self.visit(node.right))
            return self.logical(node, op, args, (node.left, node.right))
        sym = BIN_OPS.get(type(node.op))
        if sym is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not allowed")
        a, b = self.visit(node.left), self.visit(node.right)
        for e in (a, b):
            self.check_numeric(node, e, sym)
        return self.apply(node, sym, (a, b))

    def call(self, node: ast.Call) -> Expr:
        func = node.func
        if not isinstance(func, ast.Name) or (
            func.id not in FUNCTIONS and func.id not in MISSING_TESTS
        ):
            what = ast.get_source_segment(self.src.parsed, func) or "this"
            allowed = ", ".join([*FUNCTIONS, *MISSING_TESTS])
            raise self.error(
                node, f"cannot call {self.src.restore(what)!r}; the functions are {allowed}"
            )
        if node.keywords:
            raise self.error(node, f"{func.id}() takes no keyword arguments")
        if len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.error(node, f"{func.id}() takes exactly one argument")
        x = self.visit(node.args[0])
        if func.id in MISSING_TESTS:
            return self.missing_test(func.id, x)
        self.check_numeric(node, x, func.id)
        return self.apply(node, func.id, (x,))

    def missing_test(self, op: str, x: Expr) -> Expr:
        """``isna(x)``/``notna(x)`` of any operand; of a constant, folded (NaN and NaT are
        missing, other values are not)."""
        if isinstance(x, Const):
            v = x.value
            missing = False
            if isinstance(v, float | np.floating):
                missing = bool(np.isnan(v))
            elif isinstance(v, np.datetime64 | np.timedelta64):
                missing = bool(np.isnat(v))
            return Const(np.bool_(missing == (op == "isna")), BOOL)
        return Op(op, (x,), BOOL)

    def compare(self, node: ast.Compare) -> Expr:
        for cmp in node.ops:
            if type(cmp) not in CMP_OPS:
                words = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
                raise self.error(node, f"'{words.get(type(cmp), '?')}' is not allowed")
        operands = [node.left, *node.comparators]
        for sub in operands:
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitAnd | ast.BitOr):
                # ``value > 10 & temp < 20`` parses as ``value > (10 & temp) < 20``.
                vals = [self.visit(sub.left), self.visit(sub.right)]
                if any(v.dtype != BOOL for v in vals):
                    bit = "&" if isinstance(sub.op, ast.BitAnd) else "|"
                    raise self.error(
                        sub,
                        f"'{bit}' binds more tightly than comparisons: put each comparison in "
                        f"parentheses, e.g. (a > 1) {bit} (b < 2)",
                    )
        exprs = [self.visit(sub) for sub in operands]
        parts: list[Expr] = []
        for k, cmp in enumerate(node.ops):
            parts.append(self.comparison(node, CMP_OPS[type(cmp)], exprs[k], exprs[k + 1]))
        return self.logical_chain(node, "and", parts, None)

    # -- typing

    def check_numeric(self, node: ast.AST, e: Expr, what: str) -> None:
        kind = operand_kind(e)
        if kind in ("text", "cat"):
            raise self.error(node, f"{what} does not apply to text")
        if kind in "Mm" and what != "isnan" and what != "isfinite":
            raise self.error(node, f"{what}: arithmetic on datetime64/timedelta64 is not supported")

    def resolve(self, node: ast.AST, ufunc: np.ufunc, args: tuple[Expr, ...]) -> tuple[Any, ...]:
        try:
            loop = ufunc.resolve_dtypes((*(resolve_operand(a) for a in args), None))
        except (TypeError, ValueError) as exc:
            raise self.error(node, f"numpy refuses this: {numpy_error(exc)}") from None
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
            return fits_dtype(c.value, dt)
        except (OverflowError, ValueError, TypeError) as exc:
            raise self.error(node, f"numpy refuses this: {numpy_error(exc)}") from None

    def fold(self, node: ast.AST, op: str, ufunc: np.ufunc, args: tuple[Expr, ...]) -> Const:
        """Evaluate an operator on constants now: by Python's rules when every operand is a
        Python scalar (as ``eval`` would), else by numpy's."""
        consts = [a for a in args if isinstance(a, Const)]
        values = [c.value for c in consts]
        try:
            if all(is_weak(c) for c in consts) and op == "neg":
                return make_const(-values[0])
            if all(is_weak(c) for c in consts) and op in PY_OPS:
                if op == "**" and type(values[0]) is int and type(values[1]) is int:
                    base, exp = values
                    if abs(base) > 1 and exp > 0 and exp * abs(base).bit_length() > MAX_INT_BITS:
                        raise self.error(node, "constant too large")
                result = PY_OPS[op](*values)
                if isinstance(result, complex):
                    raise self.error(node, "complex results are not supported")
                if type(result) is int and result.bit_length() > MAX_INT_BITS:
                    raise self.error(node, "constant too large")
                return make_const(result)
            with np.errstate(all="ignore"):
                result = ufunc(*values)
        except QueryError:
            raise
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise self.error(node, f"cannot compute this: {numpy_error(exc)}") from None
        try:
            return make_const(scalar_of(result))
        except (TypeError, QueryError) as exc:
            raise self.error(node, f"cannot compute this: {exc}") from None

    def comparison(self, node: ast.AST, sym: str, a: Expr, b: Expr) -> Expr:
        ka, kb = operand_kind(a), operand_kind(b)
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
                in_range_free = is_weak(x) and type(x.value) is int and operand_kind(other) in "iu"
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
        return Op(sym, (a, b), BOOL)

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
        if is_text_const(a) and is_text_const(b):
            return self.fold(node, sym, COMPARISONS[sym], (a, b))
        if is_text_const(a):
            a, b, sym = b, a, SWAPPED[sym]
        ka = operand_kind(a)
        if not is_text_const(b) or ka not in ("cat", "text"):
            if ka == "cat" and operand_kind(b) == "cat":
                raise self.error(node, "two category columns cannot be compared")
            if (
                ka == "text"
                and operand_kind(b) == "text"
                and a.dtype is not None
                and b.dtype is not None
                and a.dtype.kind == b.dtype.kind
            ):
                return Op(sym, (a, b), BOOL)
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
        return Op(sym, (a, b), BOOL)

    def logical(
        self, node: ast.AST, op: str, args: tuple[Expr, ...], subs: Sequence[ast.AST]
    ) -> Expr:
        for e, sub in zip(args, subs, strict=True):
            if e.dtype != BOOL:
                what = "~/not" if op == "not" else "&, |, and, or"
                kind = "a str" if is_text_const(e) else "a Python number" if is_weak(e) else e.dtype
                raise self.error(sub, f"{what} apply to booleans only, not {kind}")
        if all(isinstance(a, Const) for a in args):
            values = [bool(a.value) for a in args if isinstance(a, Const)]
            result = (not values[0]) if op == "not" else values[0] and values[1]
            if op == "or":
                result = values[0] or values[1]
            return Const(np.bool_(result), BOOL)
        return Op(op, args, BOOL)

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


#: Parsed conditions, by (text, columns and their dtypes, table, boolean, condvars): a notebook
#: asks the same question of a small table hundreds of times, and parsing was a fifth of a
#: ``count_where`` on 1,000 rows. The key holds every input of the parse, so a column changed,
#: renamed or removed makes another key. Condvars are kept only when every value is a scalar
#: (see ``_scalar_key``); a condvar holding an array or a column is parsed every time.
_PARSED_MAX = 512
_PARSED: Kept[tuple[Any, ...], Expr] = Kept(_PARSED_MAX)
_SCALARS = (int, float, bool, str, bytes, np.generic)


def _scalar_key(condvars: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The condvars as part of a cache key: each value by its type and ``repr``, so that values
    that compare equal but parse apart (``3`` and ``3.0``, ``0.0`` and ``-0.0``) differ; None
    when a value is not a scalar."""
    key = []
    for name, value in condvars.items():
        if not isinstance(value, _SCALARS):
            return None
        key.append((name, type(value), repr(value)))
    return tuple(key)


def parse(
    cond: str,
    columns: Mapping[str, np.dtype],
    condvars: Mapping[str, Any] | None = None,
    *,
    table: str = "",
    boolean: bool = True,
) -> Expr:
    """:func:`parse_condition`, its answer kept (the trees are immutable) unless a condvar is
    not a scalar."""
    variables = _scalar_key(condvars) if condvars else ()
    if variables is None or not isinstance(cond, str):
        return parse_condition(cond, columns, condvars, table=table, boolean=boolean)
    key = (cond, tuple(columns.items()), table, boolean, variables)
    expr = _PARSED.get(key)
    if expr is None:
        expr = _PARSED.put(
            key, parse_condition(cond, columns, condvars, table=table, boolean=boolean)
        )
    return expr


def parse_condition(
    cond: str,
    columns: Mapping[str, np.dtype],
    condvars: Mapping[str, Any] | None = None,
    *,
    table: str = "",
    boolean: bool = True,
) -> Expr:
    """The typed tree of a condition over ``columns`` (name -> dtype; category columns as
    ``np.dtype(object)``), or :class:`QueryError`. The root is boolean, unless ``boolean`` is
    false (an expression that computes a column: ``add_column(expr=)``).

    >>> parse("`temp (°C)` > 20", {"temp (°C)": np.dtype("f4")})
    Op(op='>', args=(Col(name='temp (°C)', dtype=dtype('float32')), Const(value=20, dtype=None)), dtype=dtype('bool'))
    """  # noqa: E501
    source = prepare_condition(cond)
    try:
        tree = ast.parse(source.parsed, mode="eval")
    except SyntaxError as exc:
        col = source.original_offset(source.lead + (exc.offset or 1) - 1) + 1
        raise QueryError(f"syntax error at column {col}: {exc.msg}") from None
    except (MemoryError, RecursionError, ValueError) as exc:
        raise QueryError(f"condition cannot be parsed: {type(exc).__name__}") from None
    if ast_depth(tree) > 2 * MAX_DEPTH:
        raise QueryError(f"condition nests too deeply (more than {MAX_DEPTH} levels)")
    parser = _Parser(source, columns, condvars or {}, table)
    try:
        expr = parser.visit(tree)
    except RecursionError:
        raise QueryError(f"condition nests too deeply (more than {MAX_DEPTH} levels)") from None
    if boolean and expr.dtype != BOOL:
        kind = describe_operand(expr)
        raise QueryError(
            f"a condition must be boolean, but {cond.strip()!r} is {kind}; compare it, "
            "e.g. (x != 0)"
        )
    return expr
