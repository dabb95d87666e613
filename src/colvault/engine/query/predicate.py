"""Lowering a typed condition to the neutral kernel description, the per-chunk constants
(category codes and lookup tables), the compiled :class:`Predicate`, and a numpy reference
evaluator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...lazy import kernel_module
from ..buffers import scratch_array
from .expr import (
    ARITHMETIC,
    BOOL,
    COMPARISONS,
    LOGICAL,
    MISSING_TESTS,
    OBJECT,
    SWAPPED,
    UNARY,
    Col,
    Const,
    Expr,
    Op,
    fits_dtype,
    is_weak,
    operand_kind,
    resolve_operand,
)

if TYPE_CHECKING:
    from ...kernels import compiling
    from ...kernels.query import exprgen
else:
    compiling = kernel_module("compiling")
    exprgen = kernel_module("query.exprgen")

# ---------------------------------------------------------------------------------------------
# lowering to the kernel description

#: The most operations a condition's kernel may have: comparisons, arithmetic, functions, set
#: tests and ``& | ~`` (``and or not``), each counted once however often it recurs. Numba's
#: compile time grows with them: 125 comparisons joined by ``or`` (249 operations) take 0.7 s,
#: 85 float floor divisions (255 operations) 2.4 s, once per shape (the machine code is cached
#: on disk); 900 comparisons took 8 s, or 45 s and a RecursionError in Numba (2-core VM).
#: Hand-written conditions have a few dozen.
MAX_OPERATIONS = 256
#: ``x == a or x == b or ...`` (``x != a and x != b and ...``) with at least this many
#: constants compares ``x`` with all of them in one set test (a binary search), which compiles
#: as one operation whatever their number; fewer stay comparisons, which run faster as long
#: as they are few (on 2 M rows: 16 comparisons 2 ms, a set test of 16 values 25-45 ms; 64
#: comparisons 11 ms, a set test 60-80 ms, as of 900 values).
SET_TEST_MIN = 64


@dataclass(frozen=True)
class _Slot:
    """How one kernel constant is bound: ``value`` (fixed), ``set`` (fixed: ``const.value`` is
    the ascending tuple of a set test's values, ``array`` the same as the kernel takes it), or
    ``code`` or ``lut`` (per chunk, from a category column's dictionary)."""

    kind: str
    const: Const
    column: str = ""
    op: str = ""
    array: Any = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Lowered:
    """A tree as the kernel generator sees it: the neutral description, the column names and
    the constant slots, in the kernel's argument order."""

    node: tuple[Any, ...]
    columns: tuple[str, ...]
    slots: tuple[_Slot, ...]

    @functools.cached_property
    def key(self) -> str:
        """The shape's canonical text (made once: 3.9 us, a third of a small query's plan)."""
        return f"{len(self.columns)}:{len(self.slots)}:{exprgen.shape_text(self.node)}"


def _storage_str(dt: np.dtype) -> str:
    if dt == OBJECT:
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
        v = fits_dtype(c.value, dt)
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
            return self.cast(self.comparison(e), BOOL, want)
        if e.op in ("and", "or"):
            return self.cast(self.logical(e), BOOL, want)
        if e.op in LOGICAL:
            return self.cast((e.op, "|b1", *(self.lower(a, BOOL) for a in e.args)), BOOL, want)
        if e.op in MISSING_TESTS:
            return self.cast((e.op, "|b1", self.lower(e.args[0])), BOOL, want)
        ufunc = ARITHMETIC.get(e.op) or UNARY[e.op]
        loop = ufunc.resolve_dtypes((*(resolve_operand(a) for a in e.args), None))
        args = tuple(self.lower(a, dt) for a, dt in zip(e.args, loop, strict=False))
        return self.cast((e.op, loop[-1].str, *args), loop[-1], want)

    def logical(self, e: Op) -> tuple[Any, ...]:
        """A run of ``and`` (or of ``or``) as a balanced tree, its inequalities (equalities) of
        one operand with at least :data:`SET_TEST_MIN` constants as one set test."""
        terms: list[Expr] = []
        stack: list[Expr] = [e]
        while stack:  # the run's operands, in order, without recursion
            x = stack.pop()
            if isinstance(x, Op) and x.op == e.op:
                stack.extend(reversed(x.args))
            else:
                terms.append(x)
        sym = "==" if e.op == "or" else "!="
        groups: dict[tuple[Expr, np.dtype], list[tuple[int, Const]]] = {}
        for k, t in enumerate(terms):
            member = _set_member(t, sym)
            if member is not None:
                groups.setdefault(member[:2], []).append((k, member[2]))
        first: dict[int, tuple[Expr, np.dtype, list[Const]]] = {}
        taken: set[int] = set()
        for (operand, dt), found in groups.items():
            if len(found) >= SET_TEST_MIN:
                first[found[0][0]] = (operand, dt, [c for _, c in found])
                taken.update(k for k, _ in found)
        parts = []
        for k, t in enumerate(terms):
            if k in first:
                operand, dt, consts = first[k]
                test = self.set_test(operand, dt, consts)
                parts.append(test if sym == "==" else ("not", "|b1", test))
            elif k not in taken:
                parts.append(self.lower(t, BOOL))
        while len(parts) > 1:
            paired = [(e.op, "|b1", parts[k], parts[k + 1]) for k in range(0, len(parts) - 1, 2)]
            parts = paired + parts[len(parts) - len(parts) % 2 :]
        return parts[0]

    def set_test(self, operand: Expr, dt: np.dtype, consts: list[Const]) -> tuple[Any, ...]:
        """``operand`` (computed in ``dt``) equal to one of ``consts``, as numpy compares them:
        each constant converted to ``dt``; NaN, NaT and integers outside ``dt``'s range equal
        nothing and are left out."""
        values = []
        for c in consts:
            if is_weak(c) and type(c.value) is int and dt.kind in "iu":
                info = np.iinfo(dt)
                if not info.min <= c.value <= info.max:
                    continue
            v = fits_dtype(c.value, dt)
            if dt.kind in "Mm":
                if np.isnat(v):
                    continue
                v = v.view(np.int64)
            elif dt.kind == "f" and np.isnan(v):
                continue
            values.append(v)
        storage = np.dtype(np.int64) if dt.kind in "Mm" else dt
        array = np.unique(np.array(values, storage))  # ascending; -0.0 and 0.0 are one value
        const = Const(tuple(array.tolist()), storage)
        k = self.const(_Slot("set", const, array=array), "set" + dt.str)
        return ("isin", "|b1", self.lower(operand, dt), k)

    def cast(self, node: tuple[Any, ...], dt: np.dtype, want: np.dtype | None) -> tuple[Any, ...]:
        if want is None or want == dt:
            return node
        return ("cast", want.str, node)

    def comparison(self, e: Op) -> tuple[Any, ...]:
        a, b = e.args
        sym = e.op
        if operand_kind(a) == "cat":
            assert isinstance(a, Col) and isinstance(b, Const)
            col = self.col(a)
            if sym in ("==", "!="):
                k = self.const(_Slot("code", b, a.name, sym), "<i8")
                return ("catcode", sym, col, k)
            return ("catlut", col, self.const(_Slot("lut", b, a.name, sym), "lut"))
        if operand_kind(a) == "text":
            return (sym, "|b1", self.lower(a), self.lower(b))
        loop = COMPARISONS[sym].resolve_dtypes((resolve_operand(a), resolve_operand(b), None))
        # numpy compares a Python int outside an integer operand's range correctly: clamp it to
        # the range and adjust the operator, which gives the same answer for every value.
        if is_weak(a) and not is_weak(b):
            a, b, sym, loop = b, a, SWAPPED[sym], (loop[1], loop[0], loop[2])
        if is_weak(b) and type(b.value) is int and operand_kind(a) in "iu":  # type: ignore[union-attr]
            assert isinstance(b, Const)
            info = np.iinfo(loop[0])
            if b.value > info.max:
                sym = {">": ">", ">=": ">", "==": ">"}.get(sym, "<=")
                b = Const(int(info.max), None)
            elif b.value < info.min:
                sym = {"<": "<", "<=": "<", "==": "<"}.get(sym, ">=")
                b = Const(int(info.min), None)
        return (sym, "|b1", self.lower(a, loop[0]), self.lower(b, loop[1]))


def _set_member(t: Expr, sym: str) -> tuple[Expr, np.dtype, Const] | None:
    """(operand, loop dtype, constant) of ``t`` when it is ``operand <sym> constant`` (either
    way round) over numbers or datetimes, compared in one dtype: a candidate for a set test."""
    if not (isinstance(t, Op) and t.op == sym):
        return None
    a, b = t.args
    if isinstance(a, Const):
        a, b = b, a
    if isinstance(a, Const) or not isinstance(b, Const):
        return None
    if operand_kind(a) not in ("i", "u", "f", "M", "m") or operand_kind(b) in ("text", "cat"):
        return None
    loop = COMPARISONS[sym].resolve_dtypes((resolve_operand(a), resolve_operand(b), None))
    dt = loop[0]
    if loop[1] != dt or dt.kind not in "iufMm" or dt == np.float16:
        return None
    return a, dt, b


def count_operations(node: tuple[Any, ...]) -> int:
    """Distinct operations of a kernel description (as the kernel computes each once):
    everything but columns, constants and casts."""
    seen: set[tuple[Any, ...]] = set()
    stack = [node]
    while stack:
        nd = stack.pop()
        if nd in seen or nd[0] in ("col", "const"):
            continue
        seen.add(nd)
        stack.extend(a for a in nd[1:] if isinstance(a, tuple))
    return sum(1 for nd in seen if nd[0] != "cast")


@functools.lru_cache(maxsize=1024)
def lower(expr: Expr) -> Lowered:
    """The kernel description of a typed tree (cached per tree), or :class:`QueryError` when
    it has more than :data:`MAX_OPERATIONS` operations."""
    lw = _Lowerer()
    node = lw.lower(expr)
    n = count_operations(node)
    if n > MAX_OPERATIONS:
        raise QueryError(
            f"the condition has {n} operations (comparisons, arithmetic, functions, & | ~); "
            f"the limit is {MAX_OPERATIONS}, as its kernel would take long to compile. "
            "Equalities of one column joined by `or` (x == 1 or x == 2 or ...) count as one "
            "however many; else split the condition into several queries"
        )
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
        if slot.kind == "set":
            out.append(slot.array)
            continue
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


#: Kernels by (shape key, kernel directory), then (mode, masked columns): looked up once per
#: shape, not once per query (making the lookup's text cost ~10 us a query).
_KERNELS: dict[tuple[str, str | None], dict[tuple[str, tuple[int, ...]], Callable[..., int]]] = {}


class Predicate:
    """A condition bound to its fused kernels: what the query executor calls per chunk.

    ``arrays`` map column names (:attr:`columns`) to 1-d chunk arrays in storage form:
    datetime64/timedelta64 as themselves or as int64 views, bool as bool or uint8, category
    columns as their integer codes (with the chunk's dictionary in ``dictionaries``).
    ``valid`` maps columns with missing entries to their validity bits (``np.packbits(valid,
    bitorder="little")``); with it, the masked variant of the kernel runs.
    """

    def __init__(self, expr: Expr, *, cache_dir: str | None = None) -> None:
        self.expr = expr
        self.lowered = lower(expr)
        self.columns = list(self.lowered.columns)
        self.constants = [s.const for s in self.lowered.slots]
        self.key = self.lowered.key
        self.cache_dir = cache_dir
        # the kernels of this shape, shared by every condition of it in this process
        self._kernels = _KERNELS.setdefault((self.key, cache_dir), {})
        fixed = all(s.kind in ("value", "set") for s in self.lowered.slots)
        self.static = kernel_constants(expr) if fixed else None

    @functools.cached_property
    def evaluable_in_numpy(self) -> bool:
        """Whether numpy can evaluate the condition as the kernel does: comparisons of
        columns and constants of one type, joined by ``&``, ``|`` and ``~`` (a walk of the
        tree, once)."""
        return _numpy_evaluable(self.lowered.node)

    def kernel_is_cold(self) -> bool:
        """Whether the select kernel would be compiled first (no cached version)."""
        return not compiling.has_cache(self.kernel("select"))

    def kernel(self, mode: str = "select", masked: tuple[int, ...] = ()) -> Callable[..., int]:
        """The ``mode`` kernel, with validity bits for the columns at positions ``masked``."""
        fn = self._kernels.get((mode, masked))  # looked up once per query, not once per chunk
        if fn is None:
            low = self.lowered
            fn = exprgen.kernel(
                low.node, len(low.columns), len(low.slots), mode, self.cache_dir, masked
            )
            self._kernels[(mode, masked)] = fn
        return fn

    def masked(self, valid: Mapping[str, np.ndarray] | None) -> tuple[int, ...]:
        """Positions of the columns that ``valid`` gives bits for."""
        if not valid:
            return ()
        return tuple(j for j, name in enumerate(self.columns) if name in valid)

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
        valid: Mapping[str, np.ndarray] | None = None,
    ) -> tuple[Any, ...]:
        """``(n, *columns, *constants, *validity)`` for one chunk; ``overrides`` replaces
        constants by slot (a decimal chunk's integer thresholds)."""
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
            self.static
            if self.static is not None
            else _slot_values(self.lowered.slots, dictionaries)
        )
        if overrides:
            consts = tuple(overrides.get(i, c) for i, c in enumerate(consts))
        if not valid:
            return (n, *cols, *consts)
        # writable, C-contiguous uint8: one compiled signature whatever the source of the bits
        bits = [_bits(valid[name]) for name in self.columns if name in valid]
        if any(len(b) < (n + 7) // 8 for b in bits):
            raise QueryError("validity bits are shorter than n")
        return (n, *cols, *consts, *bits)

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
        valid: Mapping[str, np.ndarray] | None = None,
        numpy: bool = False,
    ) -> np.ndarray:
        """int64 positions (within the chunk) of the rows where the condition holds (a new
        array; the kernel writes into this thread's scratch buffer). ``numpy``: evaluate with
        numpy, not the kernel (a small query in a process whose cache lacks the kernel: see
        ``Plan``); chunks with missing values still take the kernel."""
        args = self.args(arrays, dictionaries, n, overrides, valid)
        if numpy and not valid:
            return np.flatnonzero(self._numpy_rows(args)).astype(np.int64)
        out = scratch_array("hits", np.int64, args[0])
        count = self._checked(self.kernel("select", self.masked(valid))(*args, out))
        return out[:count].copy()

    def count(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
        overrides: Mapping[int, Any] | None = None,
        valid: Mapping[str, np.ndarray] | None = None,
        numpy: bool = False,
    ) -> int:
        """How many rows of the chunk satisfy the condition (``numpy``: as in :meth:`select`)."""
        args = self.args(arrays, dictionaries, n, overrides, valid)
        if numpy and not valid:
            return int(np.count_nonzero(self._numpy_rows(args)))
        return self._checked(self.kernel("count", self.masked(valid))(*args))

    def _numpy_rows(self, args: tuple[Any, ...]) -> np.ndarray:
        """The condition of each row, evaluated by numpy from the kernel's arguments."""
        n, ncols = args[0], len(self.columns)
        cols = [a[:n] for a in args[1 : 1 + ncols]]
        consts = args[1 + ncols :]
        return np.broadcast_to(_numpy_node(self.lowered.node, cols, consts), (n,))

    def mask(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Mapping[str, np.ndarray] | None = None,
        n: int | None = None,
        valid: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The condition of every row of the chunk, as a bool array."""
        args = self.args(arrays, dictionaries, n, valid=valid)
        out = np.empty(args[0], np.bool_)
        self._checked(self.kernel("mask", self.masked(valid))(*args, out))
        return out


def evaluate(expr: Expr, arrays: Mapping[str, np.ndarray]) -> Any:
    """Evaluate a tree with numpy itself (the reference the kernels must agree with). Category
    columns are given as text here."""
    if isinstance(expr, Col):
        return np.asanyarray(arrays[expr.name])  # a masked array stays masked
    if isinstance(expr, Const):
        return expr.value
    args = [evaluate(a, arrays) for a in expr.args]
    with np.errstate(all="ignore"):
        if expr.op in COMPARISONS:
            return COMPARISONS[expr.op](*args)
        if expr.op in LOGICAL:
            return LOGICAL[expr.op](*args)
        if expr.op in MISSING_TESTS:
            return _missing(args[0]) == (expr.op == "isna")
        ufunc = ARITHMETIC.get(expr.op) or UNARY[expr.op]
        return ufunc(*args)


def _bits(bits: Any) -> np.ndarray:
    a = np.asarray(bits, np.uint8)
    return a if a.flags.writeable and a.flags.c_contiguous else a.copy()


def _missing(values: Any) -> Any:
    """Where ``values`` are missing: NaN, NaT or masked (numpy's view of pandas' ``isna``)."""
    a = np.asanyarray(values)
    data = np.asarray(a)
    if data.dtype.kind in "fc":
        out = np.isnan(data)
    elif data.dtype.kind in "Mm":
        out = np.isnat(data)
    else:
        out = np.zeros(data.shape, bool)
    return out | np.ma.getmaskarray(a)


_NUMPY_COMPARE: dict[str, Callable[..., Any]] = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal,
}  # fmt: skip


def _numpy_evaluable(node: tuple[Any, ...]) -> bool:
    kind = node[0]
    if kind in ("col", "const"):
        return True
    if kind in _NUMPY_COMPARE:  # operands of one type: the kernel compares them as numpy does
        left, right = node[2], node[3]
        same = left[0] in ("col", "const") and right[0] in ("col", "const") and left[2] == right[2]
        return same and np.dtype(left[2]).kind in "biuf"
    if kind in ("and", "or"):
        return _numpy_evaluable(node[2]) and _numpy_evaluable(node[3])
    if kind == "not":
        return _numpy_evaluable(node[2])
    return False


def _numpy_node(node: tuple[Any, ...], cols: list[np.ndarray], consts: tuple[Any, ...]) -> Any:
    kind = node[0]
    if kind == "col":
        return cols[node[1]]
    if kind == "const":
        return consts[node[1]]
    if kind in _NUMPY_COMPARE:
        return _NUMPY_COMPARE[kind](
            _numpy_node(node[2], cols, consts), _numpy_node(node[3], cols, consts)
        )
    if kind == "and":
        return _numpy_node(node[2], cols, consts) & _numpy_node(node[3], cols, consts)
    if kind == "or":
        return _numpy_node(node[2], cols, consts) | _numpy_node(node[3], cols, consts)
    return ~_numpy_node(node[2], cols, consts)
