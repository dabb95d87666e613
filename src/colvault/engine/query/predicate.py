"""Lowering a typed condition to the neutral kernel description, the per-chunk constants
(category codes and lookup tables), the compiled :class:`Predicate`, and a numpy reference
evaluator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import QueryError
from ...kernels import exprgen
from ..buffers import scratch_array
from .expr import (
    _BOOL,
    _OBJECT,
    ARITHMETIC,
    COMPARISONS,
    LOGICAL,
    SWAPPED,
    UNARY,
    Col,
    Const,
    Expr,
    Op,
    _fits,
    _is_weak,
    _kind,
    _resolve_operand,
)

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
    return _slot_values(lower(expr).slots, dictionaries)


def _slot_values(
    slots: Sequence[Any], dictionaries: Mapping[str, np.ndarray] | None
) -> tuple[Any, ...]:
    out: list[Any] = []
    for slot in slots:
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
        self._kernels: dict[str, Callable[..., int]] = {}
        self._static = (
            kernel_constants(expr) if all(s.kind == "value" for s in self.lowered.slots) else None
        )

    def kernel(self, mode: str = "select") -> Callable[..., int]:
        fn = self._kernels.get(mode)  # looked up once per query, not once per chunk
        if fn is None:
            low = self.lowered
            fn = exprgen.kernel(
                low.node, len(low.columns), len(low.slots), mode, cache_dir=self.cache_dir
            )
            self._kernels[mode] = fn
        return fn

    def constant_values(self) -> list[Any]:
        """The plain constants by slot (category literals, which become per-chunk codes, are
        left as their text)."""
        return [s.const.value for s in self.lowered.slots]

    def args(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
        overrides: Mapping[int, Any] | None = None,
    ) -> tuple[Any, ...]:
        """``(n, *columns, *constants)`` for one chunk; ``overrides`` replaces constants by
        slot (a decimal chunk's integer thresholds)."""
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
            self._static
            if self._static is not None
            else _slot_values(self.lowered.slots, dictionaries)
        )
        if overrides:
            consts = tuple(overrides.get(i, c) for i, c in enumerate(consts))
        return (n, *cols, *consts)

    @staticmethod
    def _checked(count: int) -> int:
        if count == exprgen.ERR_NEGATIVE_POWER:
            raise QueryError("numpy refuses integers to negative integer powers")
        return int(count)

    def select(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
        overrides: Mapping[int, Any] | None = None,
    ) -> np.ndarray:
        """int64 positions (within the chunk) of the rows where the condition holds (a new
        array; the kernel writes into this thread's scratch buffer)."""
        args = self.args(arrays, dictionaries, n, overrides)
        out = scratch_array("hits", np.int64, args[0])
        count = self._checked(self.kernel("select")(*args, out))
        return out[:count].copy()

    def count(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
        overrides: Mapping[int, Any] | None = None,
    ) -> int:
        """How many rows of the chunk satisfy the condition."""
        args = self.args(arrays, dictionaries, n, overrides)
        return self._checked(self.kernel("count")(*args))

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
