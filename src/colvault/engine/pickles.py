"""Pickling for ``node.objects`` with a restricted unpickler.

A pickle can call any global it names, so loading one from a store someone else wrote is running
their code. The allow-list names exact ``(module, qualname)`` pairs — builtin containers and
scalars, numpy's array/dtype/scalar reconstruction functions, ``datetime`` types, ``OrderedDict``,
``Decimal``, ``Fraction`` (and ``_codecs.encode``, for bytes in protocols 0-2) — never whole
modules, so gadgets such as ``builtins.eval`` or ``numpy.testing._private.utils.runstring`` are
refused. ``trust_pickles=True`` lifts the list.

The list alone does not make loading safe: allowed globals can crash the reader (a dtype whose
``__setstate__`` puts a field outside the item, read through ``_frombuffer``; a 1000-deep tuple
hashed as a dict key; slices or object arrays nested 10**5 deep, freed recursively in C) or
exhaust it (``list(range(3 * 10**8))`` is 57 bytes). So the loader is pickle's pure-Python
unpickler with every opcode that calls or mutates something guarded:

- each call's arguments are type-checked, and what it creates is charged to a budget of
  ``BUDGET_BASE + BUDGET_PER_BYTE * len(pickle)`` bytes (a range, array or string iterated into a
  container counts per element); ``numpy.ndarray`` is never called directly;
- ``BUILD`` is accepted once, on a dtype or array just made by numpy's own unpickling call and
  not yet used. A dtype's state is checked (fields and subarrays inside the itemsize) and rebuilt
  by numpy's constructor; the dtype gets numpy's state of that clean dtype, never the pickle's;
- items go only into lists, dicts and sets; hashed tuples and object arrays in object arrays nest
  at most ``MAX_DEPTH`` deep;
- the result is walked (iteratively) before it is returned: every dtype, array and numpy scalar
  is checked again, and the result unfolded as a tree (a shared object counted at every
  reference, as ``repr`` or ``==`` visit it) must stay within the budget.

Contract of ``loads(data, where, trusted=False)``: it returns the object or raises
:class:`UnsafePickleError` (a ``pickle.UnpicklingError``) naming ``where``, the object and the
reason; any other failure while loading (a truncated stream, a constructor's ``ValueError``)
becomes an ``UnsafePickleError`` too, chained to the original.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import datetime
import decimal
import fractions
import importlib
import io
import math
import pickle
import re
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any, cast

import numpy as np

from ..errors import UnsafePickleError

PROTOCOL = 5

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in (
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "range", "set", "slice", "str", "tuple",
    )]
    + [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("collections", "OrderedDict"), ("decimal", "Decimal"), ("fractions", "Fraction")]
    + [("numpy", "dtype"), ("numpy", "ndarray")]
    + [(f"numpy.{core}.multiarray", n)
       for core in ("core", "_core") for n in ("_reconstruct", "scalar")]
    + [(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")]
    + [("_codecs", "encode")]  # bytes in protocols 0-2: _codecs.encode(str, "latin1")
)  # fmt: skip

BUDGET_BASE = 16 << 20  # bytes any pickle may make its calls create
BUDGET_PER_BYTE = 32  # and this many more per byte of pickle
MAX_DEPTH = 1000  # tuples hashed inside tuples, object arrays inside object arrays
MAX_DTYPE_DEPTH = 64  # structured dtypes inside structured dtypes
MAX_INT_BITS = 8192  # ints given to a constructor (Fraction's gcd, Decimal's conversion)
MAX_DIMS = 64  # numpy's NPY_MAXDIMS

_REF = 8  # a reference copied into a new container
_HASHED = 32  # an entry of a new set or dict
_NEW = 64  # a new object made per element (iterating a range, array or string)
_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a dtype state's flags
_DTYPE_SPEC = re.compile(r"[A-Za-z?][0-9]{0,10}")  # numpy's own dtype(spec) in a pickle
_DATETIME_UNITS = frozenset(
    ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "μs", "ns", "ps", "fs", "as", "generic"]
)
_LATIN1 = frozenset(["latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"])
_LEAVES = frozenset(
    [type(None), bool, int, float, complex, range, decimal.Decimal, fractions.Fraction, type,
     datetime.date, datetime.datetime, datetime.time, datetime.timedelta, datetime.timezone]
)  # fmt: skip
_TEXT = (str, bytes, bytearray)


_np_dtype = cast(Callable[..., np.dtype], np.dtype)  # numpy's typing knows no dict specs


def _numpy_global(module: str, name: str) -> Any:
    # numpy.core.* names in old pickles are numpy._core's objects
    core = "multiarray" if module.endswith("multiarray") else "numeric"
    return getattr(importlib.import_module(f"numpy._core.{core}"), name)


def _resolve(module: str, name: str) -> Any:
    if module.startswith("numpy.") and module != "numpy":
        return _numpy_global(module, name)
    mod = {
        "builtins": vars(builtins),
        "datetime": vars(datetime),
        "collections": vars(collections),
        "decimal": vars(decimal),
        "fractions": vars(fractions),
        "numpy": vars(np),
        "_codecs": vars(sys.modules["_codecs"]),
    }[module]
    return mod[name]


_GLOBALS: dict[tuple[str, str], Any] = {key: _resolve(*key) for key in ALLOWED}


class _What:
    """What a message names, put into words only if a message is made."""

    __slots__ = ("_make", "_text")

    def __init__(self, make: Callable[[], str]) -> None:
        self._make: Callable[[], str] | None = make
        self._text = ""

    def __str__(self) -> str:
        if self._make is not None:
            self._text, self._make = self._make(), None
        return self._text


class _Refusal(Exception):
    """Raised inside a guard: ``what`` could not be accepted because of ``reason``."""

    def __init__(self, what: object, reason: str) -> None:
        super().__init__(what, reason)
        self.what, self.reason = what, reason


def _describe(obj: Any) -> str:
    """A short, cheap description of ``obj`` for messages (never a full repr)."""
    t = type(obj)
    if t is int and obj.bit_length() > 64:
        text = f"int of {obj.bit_length()} bits"
    elif t in (str, bytes, bytearray):
        text = repr(obj[:40]) + ("..." if len(obj) > 40 else "")
    elif t in (list, tuple, set, frozenset, dict, collections.OrderedDict):
        text = f"{t.__name__} of {len(obj)} items"
    elif t is np.ndarray:
        text = f"numpy.ndarray of shape {obj.shape}, dtype {obj.dtype.str}"
    elif isinstance(obj, np.dtype):
        text = f"numpy.dtype({obj.str!r}, {len(obj.names or ())} fields)"
    elif t in _LEAVES or obj is None:
        text = repr(obj)
    else:
        text = f"a {t.__module__}.{t.__qualname__}"
    return text if len(text) <= 100 else text[:97] + "..."


def _reason(exc: Exception) -> str:
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__.lstrip('_')}.{name}"
    return f"{name}: {exc}"[:300] if str(exc) else name


def _shape(value: Any, what: object) -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > MAX_DIMS:
        raise _Refusal(what, f"shape {_describe(value)} is not a tuple of at most {MAX_DIMS} ints")
    for n in value:
        if type(n) is not int or n < 0 or n.bit_length() > 62:
            raise _Refusal(what, f"shape {_describe(value)} holds {_describe(n)}")
    return tuple(value)


def _cells(shape: tuple[int, ...]) -> int:
    """What iterating or tolist() makes of an array: an empty (10**9, 0) array gives 10**9
    lists, so a zero-length axis counts as one."""
    return math.prod(max(n, 1) for n in shape)


def _range_len(r: range) -> int:
    try:
        return len(r)
    except OverflowError:
        return 1 << 64


def _dtype_layout_error(d: np.dtype) -> str | None:
    """Why ``d``'s own layout (not its children's) could make numpy read outside an item."""
    size = d.itemsize
    if size < 0:
        return f"itemsize {size}"
    has_object = d.kind == "O"
    if d.fields is not None:
        names = d.names or ()
        for key, entry in d.fields.items():
            sub, offset = entry[0], entry[1]
            if not isinstance(sub, np.dtype) or type(offset) is not int:
                return f"field {key!r} is not a (dtype, offset) pair"
            if offset < 0 or offset + sub.itemsize > size:
                return (
                    f"field {key!r} of {sub.itemsize} bytes at offset {offset} "
                    f"beyond its itemsize {size}"
                )
            has_object = has_object or sub.hasobject
        if any(name not in d.fields for name in names):
            return "names that are not fields"
    if d.subdtype is not None:
        base, shape = d.subdtype
        if any(n < 0 for n in shape) or math.prod(shape) * base.itemsize != size:
            return f"subarray {shape} of {base.itemsize}-byte items in an itemsize of {size}"
        has_object = has_object or base.hasobject
    if bool(d.hasobject) != has_object:
        return "flags that disagree with its fields about holding objects"
    return None


class _Dispatch(dict[int, Any]):
    def __missing__(self, key: int) -> Any:
        raise pickle.UnpicklingError(f"invalid load key {bytes([key])!r}")


# The pure-Python unpickler is pickle's private class: its dispatch table per opcode is what lets
# each opcode be checked; the C unpickler has none.
_PyUnpickler = pickle._Unpickler  # noqa: SLF001
_Stop = pickle._Stop  # type: ignore[attr-defined]  # noqa: SLF001


class _Loader(_PyUnpickler):
    """The restricted unpickler for one pickle (see the module docstring)."""

    dispatch = _Dispatch(_PyUnpickler.dispatch)  # filled in below
    # set up by pickle._Unpickler (not in its type stubs)
    stack: list[Any]
    append: Callable[[Any], None]
    read: Callable[[int], bytes]
    pop_mark: Callable[[], list[Any]]
    proto: int
    fix_imports: bool

    def __init__(self, data: bytes, where: str) -> None:
        self._data = memoryview(data)
        self._file = io.BytesIO(data)
        super().__init__(self._file)
        self.where = where
        self.size = len(data)
        self.budget = BUDGET_BASE + BUDGET_PER_BYTE * len(data)
        self.spent = 0
        # dtypes and arrays made by dtype(..., copy=True) and _reconstruct, awaiting their BUILD
        self.fresh_dtypes: dict[int, tuple[np.dtype, str]] = {}
        self.fresh_arrays: dict[int, np.ndarray] = {}
        # memos by id; the values hold the objects so that ids stay theirs
        self.tuples: dict[int, tuple[int, int, tuple[Any, ...]]] = {}  # depth, unfolded size
        self.array_depth: dict[int, tuple[int, np.ndarray]] = {}
        self.good_dtypes: dict[int, tuple[int, np.dtype]] = {}

    # -- errors and budget ----------------------------------------------------------------------

    def refuse(self, what: object, reason: str) -> UnsafePickleError:
        return UnsafePickleError(f"{self.where}: refusing to unpickle {what}: {reason}")

    def charge(self, amount: int, what: object) -> None:
        if self.spent + amount > self.budget:
            raise _Refusal(
                what,
                f"it would create about {amount} bytes, beyond the {self.budget}-byte budget of "
                f"this {self.size}-byte pickle ({self.spent} already used)",
            )
        self.spent += amount

    # -- globals and calls ----------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        sys.audit("pickle.find_class", module, name)
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) not in ALLOWED:
            raise UnsafePickleError(
                f"{self.where}: refusing to unpickle global '{module}.{name}' (not on the "
                "allow-list); open the store with trust_pickles=True if you trust its author"
            )
        return _GLOBALS[(module, name)]

    def call(self, func: Any, args: Any) -> Any:
        entry = _GUARDS.get(id(func))
        if entry is None or entry[0] is not func:
            raise self.refuse(f"a call of {_describe(func)}", "only allowed globals can be called")
        _, label, guard = entry
        if type(args) is not tuple:
            raise self.refuse(f"a call of {label}", f"its arguments are {_describe(args)}")
        what = _What(lambda: f"{label}({', '.join(_describe(a) for a in args[:5])})")
        try:
            for a in args:
                if type(a) is int and a.bit_length() > MAX_INT_BITS:
                    raise _Refusal(what, f"an int of {a.bit_length()} bits is too large")
            return guard(self, what, func, args)
        except _Refusal as exc:
            raise self.refuse(exc.what, exc.reason) from None
        except UnsafePickleError:
            raise
        except Exception as exc:
            raise self.refuse(what, _reason(exc)) from exc

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self.call(self.stack[-1], args)

    def load_refused(self) -> None:
        raise self.refuse("the stream", "it uses an opcode that no allowed object needs")

    # -- hashing and nesting --------------------------------------------------------------------

    def tuple_cost(self, t: tuple[Any, ...]) -> int:
        """What hashing ``t`` costs: its items unfolded as a tree (tuples do not cache their hash,
        so a tuple holding one tuple twice, 60 deep, takes 2**60 steps); refuses tuples nested
        more than MAX_DEPTH deep (hashing recurses in C). Iterative and memoised."""
        memo = self.tuples
        known = memo.get(id(t))
        if known is not None:
            return known[1]
        frames: list[list[Any]] = [[t, iter(t), 1, 1]]  # tuple, items, depth, unfolded size
        while frames:
            frame = frames[-1]
            for x in frame[1]:
                if type(x) is tuple and x:
                    known = memo.get(id(x))
                    if known is None:
                        if len(frames) >= MAX_DEPTH:
                            raise self.refuse(
                                "a tuple", f"it nests tuples more than {MAX_DEPTH} deep"
                            )
                        frames.append([x, iter(x), 1, 1])
                        break
                    frame[2] = max(frame[2], known[0] + 1)
                    frame[3] += known[1]
                else:
                    frame[3] += 1
            else:
                frames.pop()
                tup, _, depth, size = frame
                if depth > MAX_DEPTH:
                    raise self.refuse("a tuple", f"it nests tuples more than {MAX_DEPTH} deep")
                memo[id(tup)] = (depth, size, tup)
                if frames:
                    frames[-1][2] = max(frames[-1][2], depth + 1)
                    frames[-1][3] += size
        return memo[id(t)][1]

    def hashable(self, items: Iterable[Any]) -> None:
        """Check and charge the tuples among ``items`` before anything hashes them."""
        for x in items:
            if type(x) is tuple and x:
                try:
                    self.charge(self.tuple_cost(x), "a tuple to hash")
                except _Refusal as exc:
                    raise self.refuse(exc.what, exc.reason) from None

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self.setitems(self.stack[-1], [key, value])

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self.setitems(self.stack[-1], items)

    def setitems(self, target: Any, items: list[Any]) -> None:
        if type(target) not in (dict, collections.OrderedDict):
            raise self.refuse(f"items set on {_describe(target)}", "only dicts take items")
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for SETITEMS")
        self.hashable(items[::2])
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for DICT")
        self.hashable(items[::2])
        self.append({items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)})

    def load_append(self) -> None:
        value = self.stack.pop()
        self.appends(self.stack[-1], [value])

    def load_appends(self) -> None:
        items = self.pop_mark()
        self.appends(self.stack[-1], items)

    def appends(self, target: Any, items: list[Any]) -> None:
        if type(target) is not list:
            raise self.refuse(f"items appended to {_describe(target)}", "only lists take them")
        target.extend(items)

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise self.refuse(f"items added to {_describe(target)}", "only sets take them")
        self.hashable(items)
        target.update(items)

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        self.hashable(items)
        self.append(frozenset(items))

    def load(self) -> Any:
        """pickle._Unpickler.load, reading the in-memory pickle straight from its BytesIO: a
        frame (protocol 4+) is only a length prefix, checked in load_frame."""
        self.read = self._file.read
        self.readline = self._file.readline
        self.metastack: list[list[Any]] = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        read = self.read
        dispatch = self.dispatch
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                dispatch[key[0]](self)
        except _Stop as stop:
            return stop.value

    def load_frame(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if self._file.tell() + n > self.size:
            raise pickle.UnpicklingError("pickle exhausted before end of frame")

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        start = self._file.tell()
        if start + n > self.size:
            raise self.refuse("a bytearray", f"it claims {n} bytes, past the pickle's end")
        self._file.seek(start + n)
        self.append(bytearray(self._data[start : start + n]))  # one copy, from the pickle

    # -- numpy ----------------------------------------------------------------------------------

    def check_dtype(self, d: Any, what: object) -> np.dtype:
        """``d`` as a dtype whose layout, and its fields' and subarrays', numpy can read safely;
        it can no longer take a BUILD (it may now be part of other objects)."""
        if not isinstance(d, np.dtype):
            raise _Refusal(what, f"{_describe(d)} is not a numpy.dtype")
        good = self.good_dtypes
        if id(d) in good:
            return d
        frames: list[list[Any]] = [[d, iter(self.dtype_children(d, what)), 1]]
        while frames:
            frame = frames[-1]
            for child in frame[1]:
                known = good.get(id(child))
                if known is None:
                    if len(frames) >= MAX_DTYPE_DEPTH:
                        raise _Refusal(what, f"dtypes nest more than {MAX_DTYPE_DEPTH} deep")
                    frames.append([child, iter(self.dtype_children(child, what)), 1])
                    break
                frame[2] = max(frame[2], known[0] + 1)
            else:
                frames.pop()
                if frame[2] > MAX_DTYPE_DEPTH:
                    raise _Refusal(what, f"dtypes nest more than {MAX_DTYPE_DEPTH} deep")
                good[id(frame[0])] = (frame[2], frame[0])
                if frames:
                    frames[-1][2] = max(frames[-1][2], frame[2] + 1)
        return d

    def dtype_children(self, d: np.dtype, what: object) -> list[np.dtype]:
        self.fresh_dtypes.pop(id(d), None)
        error = _dtype_layout_error(d)
        if error is not None:
            raise _Refusal(what, f"numpy.dtype {d.str!r} with {error}")
        if d.itemsize > self.budget:
            raise _Refusal(what, f"numpy.dtype {d.str!r} has an itemsize of {d.itemsize} bytes")
        children = [entry[0] for entry in (d.fields or {}).values()]
        if d.subdtype is not None:
            children.append(d.subdtype[0])
        return children

    def build_dtype(self, inst: np.dtype, spec: str, state: Any) -> None:
        what = f"numpy.dtype({spec!r}) state"
        del self.fresh_dtypes[id(inst)]
        if (
            type(state) is not tuple
            or len(state) not in (8, 9)
            or type(state[0]) is not int
            or state[0] != len(state) - 5
        ):
            raise _Refusal(what, f"{_describe(state)} is not a numpy dtype state of version 3/4")
        _, endian, sub, names, fields, elsize, _alignment, flags, *extra = state
        if type(elsize) is not int or type(flags) is not int or endian not in ("<", ">", "|", "="):
            raise _Refusal(what, "its endianness, itemsize or flags are not of their types")
        metadata = extra[0] if extra else None
        datetime_meta = None
        if spec[0] in "Mm":
            if type(metadata) is not tuple or len(metadata) != 2:
                raise _Refusal(what, "a datetime dtype state lacks its unit")
            metadata, datetime_meta = metadata
        if metadata is not None and type(metadata) is not dict:
            raise _Refusal(what, f"its metadata is {_describe(metadata)}")
        kwargs: dict[str, Any] = {} if metadata is None else {"metadata": metadata}
        if names is not None:
            clean = self.structured(inst, what, names, fields, elsize, flags, kwargs)
        elif sub is not None:
            if type(sub) is not tuple or len(sub) != 2:
                raise _Refusal(what, f"its subarray is {_describe(sub)}")
            base = self.check_dtype(sub[0], what)
            shape = _shape(sub[1], what)
            if base is inst or math.prod(shape) * base.itemsize != elsize:
                raise _Refusal(
                    what,
                    f"numpy.dtype with a subarray {shape} of {base.itemsize}-byte items "
                    f"in its itemsize {elsize}",
                )
            clean = _np_dtype((base, shape), **kwargs)
        else:
            text = spec
            if datetime_meta is not None:
                if type(datetime_meta) is not tuple or len(datetime_meta) != 4:
                    raise _Refusal(what, f"its datetime unit is {_describe(datetime_meta)}")
                unit, num, den, events = datetime_meta
                unit = unit.decode("ascii") if type(unit) is bytes else unit
                if unit not in _DATETIME_UNITS or type(num) is not int or (den, events) != (1, 1):
                    raise _Refusal(what, f"its datetime unit is {_describe(datetime_meta)}")
                if unit != "generic":
                    text = f"{spec}[{num}{unit}]"
            if endian in "<>":
                text = endian + text
            clean = _np_dtype(text, **kwargs)
            if elsize not in (-1, clean.itemsize):
                raise _Refusal(what, f"numpy.dtype {spec!r} with itemsize {elsize}")
        made = clean.__reduce__()
        if made[1][0] != spec:
            raise _Refusal(what, f"it describes a {clean.str!r}, not the {spec!r} it was made as")
        setstate = cast(Any, inst).__setstate__
        setstate(made[2])  # numpy's state of the clean dtype, never the pickle's
        if inst != clean or inst.flags != clean.flags or inst.fields != clean.fields:
            raise _Refusal(what, f"numpy rebuilt {inst!s} from the state of {clean!s}")
        self.check_dtype(inst, what)

    def structured(
        self,
        inst: np.dtype,
        what: object,
        names: Any,
        fields: Any,
        elsize: int,
        flags: int,
        kwargs: dict[str, Any],
    ) -> np.dtype:
        if type(names) is not tuple or type(fields) is not dict:
            raise _Refusal(what, "its names and fields are not a tuple and a dict")
        formats, offsets, titles = [], [], []
        for name in names:
            entry = fields.get(name) if type(name) is str else None
            if type(entry) is not tuple or len(entry) not in (2, 3):
                raise _Refusal(what, f"field {_describe(name)} has no (dtype, offset) entry")
            sub = self.check_dtype(entry[0], what)
            offset, title = entry[1], entry[2] if len(entry) == 3 else None
            if sub is inst or type(offset) is not int or type(title) not in (str, type(None)):
                raise _Refusal(what, f"field {name!r} is {_describe(entry)}")
            if offset < 0 or offset + sub.itemsize > elsize:
                raise _Refusal(
                    what,
                    f"numpy.dtype with field {name!r} of {sub.itemsize} bytes at offset "
                    f"{offset} beyond its itemsize {elsize}",
                )
            formats.append(sub)
            offsets.append(offset)
            titles.append(title)
        if len(fields) != len(names) + sum(t is not None for t in titles):
            raise _Refusal(what, "its fields and names disagree")
        spec: dict[str, Any] = {
            "names": list(names), "formats": formats, "offsets": offsets, "itemsize": elsize
        }  # fmt: skip
        if any(t is not None for t in titles):
            spec["titles"] = titles
        return _np_dtype(spec, align=bool(flags & _ALIGNED_STRUCT), **kwargs)

    def build_array(self, inst: np.ndarray, state: Any) -> None:
        what = "numpy.ndarray state"
        del self.fresh_arrays[id(inst)]
        if type(state) is tuple and len(state) == 5 and type(state[0]) is int and state[0] == 1:
            state = state[1:]
        if type(state) is not tuple or len(state) != 4:
            raise _Refusal(what, f"{_describe(state)} is not a numpy array state of version 1")
        shape = _shape(state[0], what)
        dtype = self.check_dtype(state[1], what)
        fortran, raw = state[2], state[3]
        if type(fortran) not in (bool, int) or fortran not in (0, 1):
            raise _Refusal(what, f"its Fortran flag is {_describe(fortran)}")
        size = math.prod(shape)
        nbytes = size * dtype.itemsize
        self.charge(
            max(nbytes, _cells(shape)), f"numpy.ndarray of shape {shape}, dtype {dtype.str}"
        )
        if dtype.hasobject:
            if type(raw) is not list or len(raw) != size:
                raise _Refusal(what, f"{size} objects expected, got {_describe(raw)}")
            depth = 1 + self.elements_depth(raw, structured=dtype.fields is not None, what=what)
            if depth > MAX_DEPTH:
                raise _Refusal(what, f"object arrays nest more than {MAX_DEPTH} deep")
            if depth > 1:
                self.array_depth[id(inst)] = (depth, inst)
        elif type(raw) not in (bytes, bytearray) or len(raw) != nbytes:
            raise _Refusal(what, f"{nbytes} bytes of data expected, got {_describe(raw)}")
        cast(Any, inst).__setstate__((1, shape, dtype, bool(fortran), raw))

    def elements_depth(self, raw: list[Any], structured: bool, what: object) -> int:
        """How deeply the arrays among an object array's elements nest object arrays (numpy
        frees them recursively). A structured dtype's items are tuples, and numpy converts the
        values of its non-object fields, so a lazy range, or a Decimal whose int() would have
        more than 4300 digits, is refused there."""
        depth = 0
        todo: list[Any] = list(raw)
        seen: set[int] = set()
        while todo:
            x = todo.pop()
            if type(x) is np.ndarray:
                self.fresh_arrays.pop(id(x), None)  # its content is final now
                depth = max(depth, self.array_depth.get(id(x), (1,))[0])
            elif structured and type(x) in (tuple, list) and id(x) not in seen:
                seen.add(id(x))
                todo.extend(x)
            elif structured and type(x) is range:
                raise _Refusal(what, "a range as the value of a field")
            elif (
                structured and type(x) is decimal.Decimal and x.is_finite() and x.adjusted() > 4300
            ):
                raise _Refusal(what, f"Decimal {x} as the value of a field")
        return depth

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        try:
            fresh_dtype = self.fresh_dtypes.get(id(inst))
            if fresh_dtype is not None and fresh_dtype[0] is inst:
                self.build_dtype(inst, fresh_dtype[1], state)
            elif (fresh_array := self.fresh_arrays.get(id(inst))) is not None and (
                fresh_array is inst
            ):
                self.build_array(fresh_array, state)
            else:
                raise _Refusal(
                    f"a state for {_describe(inst)}",
                    "only a dtype or array just made by numpy's unpickling calls takes one",
                )
        except _Refusal as exc:
            raise self.refuse(exc.what, exc.reason) from None
        except UnsafePickleError:
            raise
        except Exception as exc:
            raise self.refuse(f"a state for {_describe(inst)}", _reason(exc)) from exc

    # -- the result -----------------------------------------------------------------------------

    def check_array(self, a: np.ndarray) -> None:
        what = _What(lambda: f"numpy.ndarray of shape {a.shape}, dtype {a.dtype.str}")
        self.check_dtype(a.dtype, what)
        if a.ndim > MAX_DIMS or max(a.nbytes, _cells(a.shape)) > self.budget:
            raise _Refusal(what, "it is larger than this pickle's budget")
        if a.size == 0:
            return
        start = a.__array_interface__["data"][0]
        low, high = start, start + a.itemsize
        for n, stride in zip(a.shape, a.strides, strict=True):
            low, high = (
                (low + (n - 1) * stride, high) if stride < 0 else (low, high + (n - 1) * stride)
            )
        owner = a
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        if owner.base is None:
            begin, length = owner.__array_interface__["data"][0], owner.nbytes
        else:
            view = memoryview(owner.base)
            begin = np.frombuffer(view, np.uint8).__array_interface__["data"][0]
            length = view.nbytes
        if low < begin or high > begin + length:
            raise _Refusal(what, "it reaches outside its buffer")

    def children(self, obj: Any) -> Iterable[Any] | None:
        t = type(obj)
        if t in (list, tuple, set, frozenset):
            if t is tuple and obj:
                self.tuple_cost(obj)
            return cast(Iterable[Any], obj)
        if t is dict or t is collections.OrderedDict:
            return [*obj.keys(), *obj.values()]
        if t is np.ndarray:
            self.check_array(obj)
            if not obj.dtype.hasobject:
                return (obj.dtype,)
            return [obj.dtype, *(obj.flat if obj.dtype.fields is None else obj.tolist())]
        if isinstance(obj, np.dtype):
            self.check_dtype(obj, _What(lambda: f"numpy.dtype {obj.str!r}"))
            found: list[Any] = [entry[0] for entry in (obj.fields or {}).values()]
            if obj.subdtype is not None:
                found.append(obj.subdtype[0])
            if obj.metadata:
                found.extend([*obj.metadata.keys(), *obj.metadata.values()])
            return found
        if isinstance(obj, np.generic):
            self.check_dtype(obj.dtype, _What(lambda: f"numpy scalar of dtype {obj.dtype.str}"))
            if obj.nbytes != obj.dtype.itemsize or obj.dtype.subdtype is not None:
                raise _Refusal(
                    f"numpy scalar of dtype {obj.dtype.str}", "it is not a scalar numpy makes"
                )
            return (obj.dtype,)
        if t is slice:
            return (obj.start, obj.stop, obj.step)
        return None

    def inspect(self, root: Any) -> None:
        """Check every numpy object in the result, and that the result unfolded as a tree (each
        shared object counted at every reference) stays within the budget."""
        limit = self.budget
        done: dict[int, int] = {}  # containers walked: their unfolded size
        active: set[int] = set()
        keep: list[Any] = []  # temporaries (children lists), so their ids stay theirs
        frames: list[list[Any]] = []

        def visit(obj: Any) -> int | None:
            t = type(obj)
            if t in _TEXT:
                return 1 + len(obj)
            if t in _LEAVES:
                return 1
            known = done.get(id(obj))
            if known is not None:
                return known
            if id(obj) in active:
                return 1
            found = self.children(obj)
            if found is None:
                done[id(obj)] = 1
                return 1
            keep.append(found)
            active.add(id(obj))
            frames.append([obj, iter(found), 1])
            return None

        first = visit(root)
        total = first or 0
        while frames:
            frame = frames[-1]
            for child in frame[1]:
                if type(child) in _LEAVES:  # the bulk of most results: no call
                    frame[2] += 1
                    continue
                size = visit(child)
                if size is None:
                    break
                frame[2] += size
                if frame[2] > limit:
                    raise _Refusal(
                        f"{_describe(frame[0])}",
                        f"unfolded as a tree it has more than {limit} items and characters, "
                        f"out of proportion to this {self.size}-byte pickle",
                    )
            else:
                frames.pop()
                active.discard(id(frame[0]))
                done[id(frame[0])] = frame[2]
                if frames:
                    frames[-1][2] += frame[2]
                else:
                    total = frame[2]
        if total > limit:
            raise _Refusal(_describe(root), f"unfolded as a tree it has more than {limit} items")


_DISPATCH: dict[int, Callable[[_Loader], None]] = cast(Any, _Loader.dispatch)
for _code in (
    pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.PERSID, pickle.BINPERSID,
    pickle.EXT1, pickle.EXT2, pickle.EXT4, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER,
):  # fmt: skip
    _DISPATCH[_code[0]] = _Loader.load_refused
for _code, _method in (
    (pickle.REDUCE, _Loader.load_reduce),
    (pickle.BUILD, _Loader.load_build),
    (pickle.SETITEM, _Loader.load_setitem),
    (pickle.SETITEMS, _Loader.load_setitems),
    (pickle.DICT, _Loader.load_dict),
    (pickle.APPEND, _Loader.load_append),
    (pickle.APPENDS, _Loader.load_appends),
    (pickle.ADDITEMS, _Loader.load_additems),
    (pickle.FROZENSET, _Loader.load_frozenset),
    (pickle.BYTEARRAY8, _Loader.load_bytearray8),
    (pickle.FRAME, _Loader.load_frame),
):
    _DISPATCH[_code[0]] = _method


# -- guards: one per allowed callable, each given (loader, what, func, args) ----------------------

_Guard = Callable[[_Loader, object, Any, tuple[Any, ...]], Any]


def _arity(what: object, args: tuple[Any, ...], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        raise _Refusal(what, f"it takes {low} to {high} arguments, not {len(args)}")


def _types(what: object, args: Iterable[Any], allowed: tuple[type, ...]) -> None:
    for a in args:
        if type(a) not in allowed:
            raise _Refusal(what, f"{_describe(a)} is not an accepted argument")


def _elements(loader: _Loader, what: object, source: Any, hashed: bool) -> None:
    """Charge for iterating ``source`` into a new container; refuse what is not a finite,
    in-memory collection (a lazy iterable counts by the elements it would make)."""
    t = type(source)
    if t in (list, tuple, set, frozenset, dict, collections.OrderedDict):
        n, each = len(source), _REF
        if hashed:
            loader.hashable(source)
    elif t in _TEXT:
        n, each = len(source), _NEW if t is str else _REF
    elif t is range:
        n, each = _range_len(source), _NEW
    elif t is np.ndarray:  # rows or scalars, or (bytes of it) a copy of its data
        loader.check_array(source)
        n, each = (len(source) if source.ndim else 0), _NEW * 2
        loader.charge(source.nbytes, what)
    else:
        raise _Refusal(what, f"{_describe(source)} is not a collection this can be made from")
    loader.charge(n * (each + (_HASHED if hashed else 0)), what)


def _numeric(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # bool, int, float, complex: from numbers and numeric text only
    _arity(what, args, 0, 2)
    _types(what, args, (bool, int, float, complex, str, bytes, bytearray))
    loader.charge(sum(len(a) for a in args if type(a) in _TEXT) + _NEW, what)
    return func(*args)


def _text(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # str, bytes, bytearray
    _arity(what, args, 0, 3)
    if len(args) >= 2:  # (text, encoding[, errors]): latin-1 is what pickle writes
        if type(args[0]) not in _TEXT or type(args[1]) is not str or args[1].lower() not in _LATIN1:
            raise _Refusal(what, "only latin-1 text conversions are accepted")
        _types(what, args[2:], (str,))
        loader.charge(len(args[0]) * 4 + _NEW, what)
    elif args and type(args[0]) is int and func is not str:
        loader.charge(args[0] + _NEW, what)  # bytes(n): n zero bytes
    elif args and type(args[0]) in (bool, int, float, complex, type(None), *_TEXT):
        loader.charge(len(args[0]) * 4 if type(args[0]) in _TEXT else _NEW, what)
    elif args:
        if func is str:
            raise _Refusal(what, "str() of a container or object is not accepted")
        _elements(loader, what, args[0], hashed=False)
    return func(*args)


def _container(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # list, tuple, set, frozenset
    _arity(what, args, 0, 1)
    if args:
        _elements(loader, what, args[0], hashed=func in (set, frozenset))
    return func(*args)


def _mapping(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # dict, OrderedDict: from a mapping or a list/tuple of 2-item lists/tuples
    _arity(what, args, 0, 1)
    if args:
        source = args[0]
        if type(source) in (dict, collections.OrderedDict):
            pass
        elif type(source) in (list, tuple):
            for pair in source:
                if type(pair) not in (list, tuple) or len(pair) != 2:
                    raise _Refusal(what, f"{_describe(pair)} is not a (key, value) pair")
            loader.hashable(pair[0] for pair in source)
        else:
            raise _Refusal(what, f"{_describe(source)} is not a mapping or a list of pairs")
        loader.charge(len(source) * (_REF + _HASHED), what)
    return func(*args)


def _lazy(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # range, slice: ints (and None for slice) only, so nothing nests inside them
    _arity(what, args, 1, 3)
    _types(what, args, (int, bool) if func is range else (int, bool, type(None)))
    return func(*args)


def _when(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # date, datetime, time, timedelta, timezone: numbers, their pickled bytes, a tz
    _arity(what, args, 0, 8)
    _types(
        what,
        args,
        (int, bool, float, str, bytes, type(None), datetime.timedelta, datetime.timezone),
    )
    return func(*args)


def _decimal(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    _arity(what, args, 0, 1)
    if args and type(args[0]) in (tuple, list):  # (sign, digits, exponent)
        parts = args[0]
        if len(parts) != 3 or type(parts[1]) not in (tuple, list):
            raise _Refusal(what, f"{_describe(parts)} is not (sign, digits, exponent)")
        _types(what, (parts[0], *parts[1]), (int,))
        _types(what, (parts[2],), (int, str))
        if type(parts[2]) is int and parts[2].bit_length() > 64:
            raise _Refusal(what, "its exponent is too large")
        loader.charge(len(parts[1]) * 2 + _NEW, what)
    else:
        _types(what, args, (int, float, str, decimal.Decimal))
        loader.charge(sum(len(a) for a in args if type(a) is str) + _NEW, what)
    return func(*args)


def _fraction(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # Fraction("1e999999999") would compute 10**999999999: no exponents in its text
    _arity(what, args, 0, 2)
    _types(what, args, (int, str, float, fractions.Fraction))
    for a in args:
        if type(a) is str and ("e" in a or "E" in a):
            raise _Refusal(what, "a Fraction's text with an exponent is not accepted")
    loader.charge(sum(len(a) for a in args if type(a) is str) + _NEW, what)
    return func(*args)


def _codecs_encode(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    _arity(what, args, 2, 3)
    if type(args[0]) is not str or type(args[1]) is not str or args[1].lower() not in _LATIN1:
        raise _Refusal(what, "only _codecs.encode(text, 'latin1') is accepted")
    _types(what, args[2:], (str,))
    loader.charge(len(args[0]) + _NEW, what)
    return func(*args)


def _dtype(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # numpy pickles dtype(f"{kind}{size}", False, True), then BUILDs its state
    _arity(what, args, 1, 3)
    spec = args[0].decode("latin-1") if type(args[0]) is bytes else args[0]
    if type(spec) is not str or not _DTYPE_SPEC.fullmatch(spec):
        raise _Refusal(what, "only a type code such as 'f8' or 'V12' is accepted as a spec")
    flags = args[1:]
    if any(type(f) not in (bool, int) or f not in (0, 1) for f in flags):
        raise _Refusal(what, "align and copy must be booleans")
    loader.charge(_NEW * 4, what)
    made = np.dtype(spec, *map(bool, flags))
    if len(flags) == 2 and flags[1] and made is not np.dtype(spec):
        loader.fresh_dtypes[id(made)] = (made, spec)
    return made


def _ndarray(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    raise _Refusal(
        what, "numpy.ndarray is not called directly by numpy's pickles (it may map any memory)"
    )


def _reconstruct(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # numpy pickles _reconstruct(ndarray, (0,), b"b"), then BUILDs its state
    if (
        len(args) != 3
        or args[0] is not np.ndarray
        or type(args[1]) not in (tuple, list)
        or list(args[1]) != [0]
        or type(args[2]) not in (bytes, str)
        or args[2] not in (b"b", "b")
    ):
        raise _Refusal(what, "only _reconstruct(numpy.ndarray, (0,), b'b') is accepted")
    made = func(np.ndarray, (0,), b"b")
    loader.fresh_arrays[id(made)] = made
    return made


def _scalar(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    _arity(what, args, 2, 2)
    dtype = loader.check_dtype(args[0], what)
    if dtype.subdtype is not None:  # numpy makes a void that crashes when read
        raise _Refusal(what, "a scalar of a subarray dtype is not accepted")
    if dtype.hasobject:
        if dtype.kind != "O" or dtype.fields is not None:
            raise _Refusal(what, "a scalar of a structured dtype holding objects is not accepted")
        return args[1]  # numpy's scalar(object dtype, obj) is obj
    if type(args[1]) is not bytes or len(args[1]) != dtype.itemsize:
        raise _Refusal(what, f"{dtype.itemsize} bytes expected, got {_describe(args[1])}")
    loader.charge(dtype.itemsize + _NEW, what)
    return func(dtype, args[1])


def _frombuffer(loader: _Loader, what: object, func: Any, args: tuple[Any, ...]) -> Any:
    # numpy pickles _frombuffer(buffer, dtype, shape, order[, axis_order]) in protocol 5
    _arity(what, args, 4, 5)
    buf = args[0]
    dtype = loader.check_dtype(args[1], what)
    shape = _shape(args[2], what)
    order = args[3]
    axis_order = args[4] if len(args) == 5 else None
    if type(buf) not in (bytes, bytearray):
        raise _Refusal(what, f"its buffer is {_describe(buf)}, not bytes")
    if dtype.hasobject or dtype.itemsize == 0:
        raise _Refusal(what, f"an array of dtype {dtype.str} cannot come from bytes")
    if math.prod(shape) * dtype.itemsize != len(buf):
        raise _Refusal(
            what, f"shape {shape} of {dtype.itemsize}-byte items is not {len(buf)} bytes"
        )
    if order not in ("C", "F", "K") or (
        axis_order is not None
        and (
            order != "K"
            or type(axis_order) is not tuple
            or sorted(axis_order) != list(range(len(shape)))
        )
    ):
        raise _Refusal(what, f"order {_describe(order)} / axis order {_describe(axis_order)}")
    loader.charge(_NEW * 4 + _cells(shape), what)  # a view, but tolist() makes its cells
    return func(*args)


_GUARDS: dict[int, tuple[Any, str, _Guard]] = {}
for (_module, _name), _guard in {
    **{("builtins", n): _numeric for n in ("bool", "int", "float", "complex")},
    **{("builtins", n): _text for n in ("str", "bytes", "bytearray")},
    **{("builtins", n): _container for n in ("list", "tuple", "set", "frozenset")},
    ("builtins", "dict"): _mapping,
    ("collections", "OrderedDict"): _mapping,
    ("builtins", "range"): _lazy,
    ("builtins", "slice"): _lazy,
    **{("datetime", n): _when for n in ("date", "datetime", "time", "timedelta", "timezone")},
    ("decimal", "Decimal"): _decimal,
    ("fractions", "Fraction"): _fraction,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): _ndarray,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}.items():
    _obj = _GLOBALS[(_module, _name)]
    _GUARDS[id(_obj)] = (_obj, f"{_module}.{_name}", _guard)


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=PROTOCOL)


def loads(data: bytes, where: str, trusted: bool) -> Any:
    """Unpickle ``data``; ``where`` names the node and key in error messages."""
    if trusted:
        return pickle.loads(data)
    loader = _Loader(data, where)
    try:
        obj = loader.load()
        loader.inspect(obj)
    except _Refusal as exc:
        raise loader.refuse(exc.what, exc.reason) from None
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise UnsafePickleError(f"{where}: cannot unpickle: {_reason(exc)}") from exc
    return obj
