"""Source generation for fused predicate kernels: validation of the neutral description,
the canonical text of a shape, and the Python/Numba source of its loops (see :mod:`.exprgen`)."""

from __future__ import annotations

from typing import Any

#: Returned by a kernel when some row raised an integer to a negative integer power.
ERR_NEGATIVE_POWER = -1
MODES = ("select", "count", "mask")

_ARITH = ("+", "-", "*", "/", "//", "%", "**")
_UNARY_FLOAT = ("sqrt", "exp", "log", "log10", "sin", "cos", "tan", "arcsin", "arccos", "arctan")
_UNARY = ("neg", "abs", "floor", "ceil", "isnan", "isfinite", *_UNARY_FLOAT)
_CMP = ("<", "<=", ">", ">=", "==", "!=")
_LOGIC = ("and", "or", "not")
_MISSING = ("isna", "notna")
#: Nodes whose value is decided for every row, missing operands included (a comparison of a
#: missing value is false, except ``!=``, as with NaN); the others are missing where any
#: column under them is.
_DEFINITE = frozenset(("catcode", "catlut", "isin", "isnan", "isfinite", *_CMP, *_LOGIC, *_MISSING))
_NUMERIC = frozenset(
    ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"]
)
_DT_UNITS = frozenset(["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"])
_TEXT = frozenset(("U", "S"))

_NAT = "-9223372036854775808"

# ``select`` runs in two passes: the condition of every row into one byte each (a loop without
# stores at a moving position, which LLVM vectorizes), then the positions of the set bytes
# (``wordops.compact_flags``, compiled once and cached, not in every kernel: a new condition
# compiles only its own loop). Measured on the benchmark condition: 65 us per 128 Ki-row chunk,
# against 150 us for one branch-free pass that stores every row's position. The bytes live in
# the last n bytes of ``out[:n]`` (int64; see ``compact_flags`` for why that is safe).
_SELECT_PROLOGUE = ["    flags = select_flags(out, n)"]
_SELECT_EPILOGUE = ["    return compact_flags(out, n)"]


# ---------------------------------------------------------------------------------------------
# validation and the canonical text of a shape


def _is_datetime(dt: str) -> bool:
    if len(dt) < 5 or dt[0] != "<" or dt[1:3] not in ("M8", "m8"):
        return False
    return dt[3] == "[" and dt[-1] == "]" and dt[4:-1] in _DT_UNITS


def value_dtype(dt: str) -> bool:
    return dt in _NUMERIC or _is_datetime(dt)


def set_dtype(dt: Any) -> bool:
    """``"set" + dt``: a constant that is an ascending array of distinct ``dt`` values, no NaN
    or NaT (datetimes as int64), the right operand of an ``isin``."""
    if not isinstance(dt, str) or not dt.startswith("set"):
        return False
    return value_dtype(dt[3:]) and dt[3:] not in ("|b1", "<f2")


def _index(j: Any) -> int:
    if type(j) is not int or not 0 <= j < 100_000:
        raise ValueError(f"bad argument index {j!r}")
    return j


def dtype_of(node: tuple[Any, ...]) -> str:
    """The dtype string of a node's value (after :func:`validate`)."""
    kind = node[0]
    if kind in ("col", "const"):
        return str(node[2])
    if kind in ("catcode", "catlut"):
        return "|b1"
    return str(node[1])  # isin too: "|b1"


def validate(node: Any, n_columns: int, n_constants: int) -> None:
    """Raise ``ValueError`` unless ``node`` is a well-formed description (iteratively, so a
    deep tree cannot exhaust the stack)."""
    stack = [node]
    while stack:
        nd = stack.pop()
        if not isinstance(nd, tuple) or not nd or not isinstance(nd[0], str):
            raise ValueError(f"bad node {nd!r}")
        kind = nd[0]
        if kind == "col":
            if len(nd) != 3 or _index(nd[1]) >= n_columns:
                raise ValueError(f"bad column node {nd!r}")
            if not (value_dtype(nd[2]) or nd[2] in _TEXT or nd[2] == "cat"):
                raise ValueError(f"bad column dtype {nd!r}")
        elif kind == "const":
            if len(nd) != 3 or _index(nd[1]) >= n_constants:
                raise ValueError(f"bad constant node {nd!r}")
            if not (value_dtype(nd[2]) or nd[2] in _TEXT or nd[2] == "lut" or set_dtype(nd[2])):
                raise ValueError(f"bad constant dtype {nd!r}")
        elif kind == "cast":
            if len(nd) != 3 or not value_dtype(nd[1]):
                raise ValueError(f"bad cast {nd!r}")
            stack.append(nd[2])
        elif kind == "catcode":
            ok = len(nd) == 4 and nd[1] in ("==", "!=")
            ok = ok and nd[2][0] == "col" and nd[2][2] == "cat"
            if not (ok and nd[3][0] == "const" and nd[3][2] == "<i8"):
                raise ValueError(f"bad category comparison {nd!r}")
            stack.extend(nd[2:])
        elif kind == "catlut":
            ok = len(nd) == 3 and nd[1][0] == "col" and nd[1][2] == "cat"
            if not (ok and nd[2][0] == "const" and nd[2][2] == "lut"):
                raise ValueError(f"bad category lookup {nd!r}")
            stack.extend(nd[1:])
        elif kind in _MISSING:
            if len(nd) != 3 or nd[1] != "|b1":
                raise ValueError(f"bad missing-value test {nd!r}")
            stack.append(nd[2])
        elif kind == "isin":
            ok = len(nd) == 4 and nd[1] == "|b1" and isinstance(nd[3], tuple) and len(nd[3]) == 3
            if not (ok and nd[3][0] == "const" and set_dtype(nd[3][2])):
                raise ValueError(f"bad set test {nd!r}")
            stack.extend(nd[2:])
        else:
            arity = 1 if kind in _UNARY or kind == "not" else 2
            if kind not in (*_ARITH, *_UNARY, *_CMP, *_LOGIC) or len(nd) != 2 + arity:
                raise ValueError(f"bad operator node {nd!r}")
            if not value_dtype(nd[1]):
                raise ValueError(f"bad result dtype {nd!r}")
            stack.extend(nd[2:])


def shape_text(node: tuple[Any, ...]) -> str:
    """Canonical text of a description: the cache key of its kernels.

    >>> shape_text((">", "|b1", ("col", 0, "<f8"), ("const", 0, "<f8")))
    '>:|b1(c0:<f8,k0:<f8)'
    """
    kind = node[0]
    if kind == "col":
        return f"c{node[1]}:{node[2]}"
    if kind == "const":
        return f"k{node[1]}:{node[2]}"
    if kind == "catcode":
        return f"cat{node[1]}({shape_text(node[2])},{shape_text(node[3])})"
    if kind == "catlut":
        return f"lut({shape_text(node[1])},{shape_text(node[2])})"
    inner = ",".join(shape_text(a) for a in node[2:])
    return f"{kind}:{node[1]}({inner})"


# ---------------------------------------------------------------------------------------------
# code generation

_INT_NAMES = {
    "|i1": "int8",
    "|u1": "uint8",
    "<i2": "int16",
    "<u2": "uint16",
    "<i4": "int32",
    "<u4": "uint32",
    "<i8": "int64",
    "<u8": "uint64",
}
#: float16 values live in float32 variables; every float16 operation is done in float32 and
#: rounded to float16 (``_to_half``), which is how numpy's own float16 loops compute.
_FLOAT_NAMES = {"<f2": "float32", "<f4": "float32", "<f8": "float64"}

#: Numba inlines the helpers into a kernel that calls them at most this many times; a kernel
#: that calls them more often calls them (LLVM may still inline): 20 float floor divisions
#: inlined took 12 s to compile, called 2.4 s, and ran no slower (two loaded cores); 85 took
#: 55 s inlined (idle), 2.4 s called.
INLINE_CALLS = 4

#: Helpers the generated code may call; each is emitted only when used. Integer helpers work
#: in int64/uint64 and the caller truncates (numpy's integer arithmetic wraps, and a truncation
#: of the 64-bit result is the same residue); they guard the two cases where x86 division
#: traps. Float helpers mirror numpy's npy_divmod in the operands' own precision.
_HELPERS = {
    "_sfloordiv": """
def _sfloordiv(a, b):
    if b == 0:
        return np.int64(0)
    if b == -1:
        return np.int64(0) - a
    return a // b
""",
    "_ufloordiv": """
def _ufloordiv(a, b):
    if b == 0:
        return np.uint64(0)
    return a // b
""",
    "_smod": """
def _smod(a, b):
    if b == 0 or b == -1:
        return np.int64(0)
    return a % b
""",
    "_umod": """
def _umod(a, b):
    if b == 0:
        return np.uint64(0)
    return a % b
""",
    "_ipow": """
def _ipow(a, b):
    if b <= 0:
        return np.uint64(1)
    out = np.uint64(1)
    base = np.uint64(a)
    e = np.uint64(b)
    while e > np.uint64(0):
        if e & np.uint64(1):
            out = out * base
        base = base * base
        e = e >> np.uint64(1)
    return out
""",
    "_lt_iu": """
def _lt_iu(a, b):
    return a < 0 or np.uint64(a) < b
""",
    "_le_iu": """
def _le_iu(a, b):
    return a < 0 or np.uint64(a) <= b
""",
    "_eq_iu": """
def _eq_iu(a, b):
    return a >= 0 and np.uint64(a) == b
""",
    "_to_half": """
def _to_half(x):
    v = np.float64(x)
    a = abs(v)
    if not a < np.inf:
        return np.float32(x)
    if a < 6.103515625e-05:  # subnormal float16: multiples of 2**-24
        r = np.rint(v * 16777216.0) / 16777216.0
    else:  # 11 significant bits, ties to even
        e = math.frexp(v)[1]
        scale = 2.0 ** (11 - e)
        r = np.rint(v * scale) / scale
    if abs(r) > 65504.0:
        r = np.inf if r > 0 else -np.inf
    return np.float32(r)
""",
    "_dtcast": """
def _dtcast(a, factor):
    if a == NAT:
        return a
    return a * factor
""",
    # The last of the ascending values at or below x, found in log2(len) steps of a fixed
    # count without a data-dependent branch (a mispredicted one per step cost 3x); NaN is
    # below nothing and equals nothing.
    "_isin": """
def _isin(x, values):
    n = len(values)
    if n == 0:
        return False
    base = 0
    while n > 1:
        half = n >> 1
        base += half * (values[base + half] <= x)
        n -= half
    return values[base] == x
""",
}
for _t in ("float32", "float64"):
    _HELPERS[f"_divmod_{_t}"] = f"""
def _divmod_{_t}(a, b):
    mod = np.fmod(a, b)
    if b == np.{_t}(0.0):
        return a / b, mod
    div = (a - mod) / b
    if mod != np.{_t}(0.0):
        if (b < np.{_t}(0.0)) != (mod < np.{_t}(0.0)):
            mod = mod + b
            div = div - np.{_t}(1.0)
    else:
        mod = np.copysign(np.{_t}(0.0), b)
    if div != np.{_t}(0.0):
        floordiv = np.floor(div)
        if div - floordiv > np.{_t}(0.5):
            floordiv = floordiv + np.{_t}(1.0)
    else:
        floordiv = np.copysign(np.{_t}(0.0), a / b)
    return floordiv, mod
"""
    _HELPERS[f"_ffloordiv_{_t}"] = f"""
def _ffloordiv_{_t}(a, b):
    if b == np.{_t}(0.0):
        return a / b
    return _divmod_{_t}(a, b)[0]
"""
    _HELPERS[f"_fmod_{_t}"] = f"""
def _fmod_{_t}(a, b):
    if b == np.{_t}(0.0):
        return np.fmod(a, b)
    return _divmod_{_t}(a, b)[1]
"""
_HELPER_DEPS = {f"_ffloordiv_{t}": f"_divmod_{t}" for t in ("float32", "float64")}
_HELPER_DEPS.update({f"_fmod_{t}": f"_divmod_{t}" for t in ("float32", "float64")})

#: Length of each datetime unit in attoseconds (months and years have no fixed length).
UNIT_AS = {
    "W": 7 * 86400 * 10**18,
    "D": 86400 * 10**18,
    "h": 3600 * 10**18,
    "m": 60 * 10**18,
    "s": 10**18,
    "ms": 10**15,
    "us": 10**12,
    "ns": 10**9,
    "ps": 10**6,
    "fs": 10**3,
    "as": 1,
}


def unit_factor(src: str, dst: str) -> int:
    """How many ``dst`` units make one ``src`` unit (``dst`` as fine or finer), or ``ValueError``.

    >>> unit_factor("<M8[s]", "<M8[ms]")
    1000
    """
    a, b = src[4:-1], dst[4:-1]
    if a == b:
        return 1
    if (a, b) == ("Y", "M"):
        return 12
    if a in UNIT_AS and b in UNIT_AS and UNIT_AS[a] % UNIT_AS[b] == 0:
        return UNIT_AS[a] // UNIT_AS[b]
    raise ValueError(f"cannot convert {src} to {dst} by a fixed factor")


class _Gen:
    """Emits one SSA assignment per distinct subtree (so equal subtrees are computed once).

    Columns in ``masked`` have validity bits (argument ``v{j}``); a subtree's validity is
    computed once too, and only in kernels that have such columns (a plain kernel's text does
    not depend on them)."""

    def __init__(self, masked: frozenset[int] = frozenset()) -> None:
        self.lines: list[str] = []
        self.helpers: set[str] = set()
        self.calls = 0  # helper calls in the kernel body
        self.memo: dict[tuple[Any, ...], str] = {}
        self.power_checks: list[str] = []
        self.masked = masked
        self.valid_memo: dict[tuple[Any, ...], str | None] = {}

    def emit(self, code: str) -> str:
        name = f"t{len(self.lines)}"
        self.lines.append(f"{name} = {code}")
        return name

    def use(self, helper: str) -> str:
        self.helpers.add(helper)
        self.calls += 1
        if helper in _HELPER_DEPS:
            self.helpers.add(_HELPER_DEPS[helper])
        return helper

    def node(self, nd: tuple[Any, ...]) -> str:
        if nd in self.memo:
            return self.memo[nd]
        name = self._node(nd)
        if self.masked and nd[0] in _DEFINITE and nd[0] not in _LOGIC and nd[0] not in _MISSING:
            name = self._decided(nd, name)
        self.memo[nd] = name
        return name

    def valid(self, nd: tuple[Any, ...]) -> str | None:
        """The name of a bool that is true where ``nd`` is not missing, or None where it
        never is."""
        if not self.masked or nd[0] == "const" or nd[0] in _DEFINITE:
            return None
        if nd in self.valid_memo:
            return self.valid_memo[nd]
        if nd[0] == "col":
            j = nd[1]
            name = self.emit(f"__valid{j}__") if j in self.masked else None  # see _validity
        else:
            parts = [v for a in nd[2:] if (v := self.valid(a)) is not None]
            name = parts[0] if parts else None
            for v in parts[1:]:
                name = self.emit(f"{name} & {v}")
        self.valid_memo[nd] = name
        return name

    def definite(self, nd: tuple[Any, ...]) -> str:
        """A boolean node's value with missing rows false (a bool column's missing entry
        selects nothing; ``~`` of it selects them)."""
        x = self.node(nd)
        v = self.valid(nd)
        return x if v is None else self.emit(f"{v} & {x}")

    def _decided(self, nd: tuple[Any, ...], raw: str) -> str:
        """A comparison (or set test, ``isnan``, ``isfinite``) of possibly missing operands:
        false where one is missing, but ``!=`` and ``isnan`` true, as for NaN."""
        kind = nd[0]
        if kind == "catlut":
            operands = nd[1:2]
        else:
            operands = nd[2:3] if kind in ("catcode", "isin") else nd[2:]
        parts = [v for a in operands if (v := self.valid(a)) is not None]
        if not parts:
            return raw
        v = parts[0] if len(parts) == 1 else self.emit(" & ".join(parts))
        if kind in ("!=", "isnan") or (kind == "catcode" and nd[1] == "!="):
            return self.emit(f"{raw} | (not {v})")
        return self.emit(f"{v} & {raw}")

    def _missing(self, nd: tuple[Any, ...]) -> str:
        """``isna``/``notna``: NaN, NaT or a missing entry under the operand."""
        arg = nd[2]
        dt = dtype_of(arg)
        parts = []
        if dt in _FLOAT_NAMES:
            x = self.node(arg)
            parts.append(f"({x} != {x})")
        elif _is_datetime(dt):
            parts.append(f"({self.node(arg)} == NAT)")
        v = self.valid(arg)
        if v is not None:
            parts.append(f"(not {v})")
        code = " | ".join(parts) or "False"
        return self.emit(code if nd[0] == "isna" else f"not ({code})")

    def _node(self, nd: tuple[Any, ...]) -> str:
        kind = nd[0]
        if kind in _MISSING:
            return self._missing(nd)
        if kind == "col":
            j, dt = nd[1], nd[2]
            if dt == "|b1":
                return self.emit(f"c{j}[i] != 0")
            return self.emit(f"c{j}[i]")
        if kind == "const":
            if nd[2] == "|b1":
                return self.emit(f"k{nd[1]} != 0")
            return f"k{nd[1]}"
        if kind == "catcode":
            codes = self.node(nd[2])
            op = nd[1]
            return self.emit(f"np.int64({codes}) {op} {self.node(nd[3])}")
        if kind == "catlut":
            codes = self.node(nd[1])
            return self.emit(f"{self.node(nd[2])}[{codes}] != 0")
        if kind == "cast":
            return self._cast(nd)
        if kind == "isin":
            if nd[3][2] != "set" + dtype_of(nd[2]):
                raise ValueError(f"a set test needs values of its operand's dtype: {nd!r}")
            x, values = self.node(nd[2]), self.node(nd[3])
            return self.emit(f"{self.use('_isin')}({x}, {values})")
        if kind in _LOGIC:
            args = [self.definite(a) for a in nd[2:]]
        else:
            args = [self.node(a) for a in nd[2:]]
        in_dts = [dtype_of(a) for a in nd[2:]]
        return self._op(kind, nd[1], args, in_dts)

    def _cast(self, nd: tuple[Any, ...]) -> str:
        dst, src_node = nd[1], nd[2]
        src = dtype_of(src_node)
        x = self.node(src_node)
        if src == dst:
            return x
        if _is_datetime(dst):
            if not _is_datetime(src) or src[1] != dst[1]:
                raise ValueError(f"cannot cast {src} to {dst}")
            factor = unit_factor(src, dst)
            return self.emit(f"{self.use('_dtcast')}({x}, np.int64({factor}))")
        if dst in _INT_NAMES or dst in _FLOAT_NAMES:
            if src not in _NUMERIC:
                raise ValueError(f"cannot cast {src} to {dst}")
            name = _INT_NAMES.get(dst) or _FLOAT_NAMES[dst]
            if src in _FLOAT_NAMES and dst in _INT_NAMES:
                raise ValueError(f"numpy loops never cast {src} to {dst}")
            if dst == "<f2":
                return self.emit(f"{self.use('_to_half')}(np.float32({x}))")
            return self.emit(f"np.{name}({x})")
        raise ValueError(f"cannot cast {src} to {dst}")

    def _op(self, op: str, out: str, a: list[str], dts: list[str]) -> str:
        dt = dts[0]
        if op in _CMP:
            return self._compare(op, a, dts)
        if op in ("isnan", "isfinite") and _is_datetime(dt) and out == "|b1":
            return self.emit(f"{a[0]} {'==' if op == 'isnan' else '!='} NAT")
        if op in _LOGIC:
            if any(d != "|b1" for d in dts) or out != "|b1":
                raise ValueError(f"{op} needs booleans")
            if op == "not":
                return self.emit(f"not {a[0]}")
            return self.emit(f"{a[0]} {'&' if op == 'and' else '|'} {a[1]}")
        if any(d != dt for d in dts) or dt not in _NUMERIC:
            raise ValueError(f"{op} on {dts} is not a numpy loop colvault generates")
        if op in ("isnan", "isfinite"):
            if dt in _FLOAT_NAMES:
                code = f"{a[0]} != {a[0]}" if op == "isnan" else f"np.isfinite({a[0]})"
            else:
                code = "False" if op == "isnan" else "True"
            return self.emit(code)
        if dt == "|b1":
            return self._bool_op(op, out, a)
        if dt in _FLOAT_NAMES:
            if out != dt:
                raise ValueError(f"{op} on {dt} gives {dt}, not {out}")
            result = self._float_op(op, a, _FLOAT_NAMES[dt])
            if dt == "<f2":
                return self.emit(f"{self.use('_to_half')}({result})")
            return result
        return self._int_op(op, out, a, dt)

    def _compare(self, op: str, a: list[str], dts: list[str]) -> str:
        x, y = a
        if dts == ["<i8", "<u8"] or dts == ["<u8", "<i8"]:
            # numpy's exact mixed loop (numba would compare in float64).
            swap = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
            if dts[0] == "<u8":
                x, y, op = y, x, swap[op]
            if op in ("<", "<="):
                helper = "_lt_iu" if op == "<" else "_le_iu"
                return self.emit(f"{self.use(helper)}({x}, {y})")
            if op in (">", ">="):
                helper = "_le_iu" if op == ">" else "_lt_iu"
                return self.emit(f"not {self.use(helper)}({x}, {y})")
            eq = f"{self.use('_eq_iu')}({x}, {y})"
            return self.emit(eq if op == "==" else f"not {eq}")
        if dts[0] != dts[1]:
            raise ValueError(f"comparison of {dts} is not a numpy loop colvault generates")
        dt = dts[0]
        if dt in _TEXT or value_dtype(dt):
            if _is_datetime(dt):  # NaT compares false except with !=
                if op == "!=":
                    return self.emit(f"({x} == NAT) | ({y} == NAT) | ({x} != {y})")
                return self.emit(f"({x} != NAT) & ({y} != NAT) & ({x} {op} {y})")
            return self.emit(f"{x} {op} {y}")
        raise ValueError(f"cannot compare {dt}")

    def _bool_op(self, op: str, out: str, a: list[str]) -> str:
        if op == "+" and out == "|b1":
            return self.emit(f"{a[0]} | {a[1]}")
        if op == "*" and out == "|b1":
            return self.emit(f"{a[0]} & {a[1]}")
        if op in ("abs", "floor", "ceil") and out == "|b1":
            return a[0]
        raise ValueError(f"numpy has no boolean loop for {op}")

    def _float_op(self, op: str, a: list[str], t: str) -> str:
        if op in ("+", "-", "*", "/"):
            return self.emit(f"np.{t}({a[0]} {op} {a[1]})")
        if op == "//":
            return self.emit(f"{self.use(f'_ffloordiv_{t}')}({a[0]}, {a[1]})")
        if op == "%":
            return self.emit(f"{self.use(f'_fmod_{t}')}({a[0]}, {a[1]})")
        if op == "**":
            return self.emit(f"np.power({a[0]}, {a[1]})")
        if op == "neg":
            return self.emit(f"-{a[0]}")
        if op == "abs":
            return self.emit(f"np.abs({a[0]})")
        if op in ("floor", "ceil", *_UNARY_FLOAT):
            return self.emit(f"np.{op}({a[0]})")
        raise ValueError(f"unknown float op {op}")

    def _int_op(self, op: str, out: str, a: list[str], dt: str) -> str:
        t = _INT_NAMES[dt]
        signed = dt[1] == "i"
        wide = "np.int64" if signed else "np.uint64"
        if op in ("floor", "ceil", "abs") and out == dt:
            if op == "abs" and signed:
                return self.emit(f"np.{t}(abs(np.int64({a[0]})))")
            return a[0]
        if out != dt:
            raise ValueError(f"{op} on {t} gives {t}, not {out}")
        if op == "neg":
            return self.emit(f"np.{t}(-np.int64({a[0]}))")
        x, y = (f"{wide}({v})" for v in a)
        if op in ("+", "-", "*"):
            return self.emit(f"np.{t}({x} {op} {y})")
        if op == "//":
            helper = "_sfloordiv" if signed else "_ufloordiv"
            return self.emit(f"np.{t}({self.use(helper)}({x}, {y}))")
        if op == "%":
            helper = "_smod" if signed else "_umod"
            return self.emit(f"np.{t}({self.use(helper)}({x}, {y}))")
        if op == "**":
            if signed:
                self.power_checks.append(a[1])
            return self.emit(f"np.{t}({self.use('_ipow')}({x}, {y}))")
        raise ValueError(f"unknown integer op {op}")


def _validity(line: str, mode: str) -> str:
    """A body line with column validity placeholders filled for ``mode``: ``count`` reads the
    bit of row ``i`` (its loop runs as fast so), ``select`` and ``mask`` the byte the
    prologue unpacked (a loop storing flags vectorizes only so: 30 us per 128 Ki rows,
    against 120 us reading bits)."""
    if "__valid" not in line:
        return line
    head, _, rest = line.partition("__valid")
    j = rest[: rest.index("__")]
    if mode == "count":
        return f"{head}((v{j}[i >> 3] >> (i & 7)) & 1) != 0"
    return f"{head}u{j}[i] != 0"


def _unpack(masked: tuple[int, ...]) -> list[str]:
    """Prologue of ``select``/``mask``: each masked column's bits as one byte per row."""
    out = []
    for j in masked:
        out += [
            f"    u{j} = np.empty(((n + 7) >> 3) << 3, np.uint8)",
            "    for _b in range((n + 7) >> 3):",
            f"        _w = v{j}[_b]",
            "        for _k in range(8):",
            f"            u{j}[(_b << 3) + _k] = (_w >> _k) & 1",
        ]
    return out


def generate_source(
    node: tuple[Any, ...], n_columns: int, n_constants: int, masked: tuple[int, ...] = ()
) -> str:
    """The text of the kernel module for one description. Columns ``masked`` (ascending) have
    validity bits, arguments ``v{j}`` after the constants: ``np.packbits(valid,
    bitorder="little")`` (uint8, 1 = present); missing entries compare as NaN does."""
    validate(node, n_columns, n_constants)
    if list(masked) != sorted(set(masked)) or any(_index(j) >= n_columns for j in masked):
        raise ValueError(f"bad masked columns {masked!r}")
    gen = _Gen(frozenset(masked))
    result = gen.definite(node)
    if dtype_of(node) != "|b1":
        raise ValueError("the root of a predicate must be boolean")
    params = [f"c{j}" for j in range(n_columns)] + [f"k{j}" for j in range(n_constants)]
    params += [f"v{j}" for j in masked]
    args = ", ".join(["n", *params])
    body = ["        " + line for line in gen.lines]
    checks = [f"        err |= {v} < 0" for v in gen.power_checks]
    deco = '@numba.njit(cache=True, nogil=True, error_model="numpy")'
    inline = ', inline="always"' if gen.calls <= INLINE_CALLS else ""
    helper_deco = f'@numba.njit(cache=True, nogil=True, error_model="numpy"{inline})'
    out = [
        "# Generated by colvault.kernels.query.exprgen; shape:",
        f"# {shape_text(node)}" + (f" masked {list(masked)}" if masked else ""),
        "import math",
        "",
        "import numba",
        "import numpy as np",
        "",
        "from colvault.kernels.wordops import compact_flags, select_flags",
        "",
        f"NAT = np.int64({_NAT})",
    ]
    order = sorted(gen.helpers, key=lambda h: (h not in _HELPER_DEPS.values(), h))
    for h in order:
        out += ["", helper_deco + _HELPERS[h].rstrip("\n")]
    for mode in MODES:
        sig = args + (", out" if mode != "count" else "")
        out += ["", "", deco, f"def {mode}({sig}):"]
        if mode != "select":
            out.append("    m = 0")
        if checks:
            out.append("    err = False")
        if mode == "select":
            out += _SELECT_PROLOGUE
        if mode != "count":
            out += _unpack(masked)
        out.append("    for i in range(n):")
        out += [_validity(line, mode) for line in body] + checks
        if mode == "select":
            out.append(f"        flags[i] = {result}")
        elif mode == "mask":
            out += [f"        out[i] = {result}", f"        m += {result}"]
        else:
            out.append(f"        m += {result}")
        if checks:
            out += ["    if err:", f"        return {ERR_NEGATIVE_POWER}"]
        out += _SELECT_EPILOGUE if mode == "select" else ["    return m"]
    return "\n".join(out) + "\n"
