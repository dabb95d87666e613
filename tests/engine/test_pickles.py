"""The restricted unpickler of ``node.objects``: legitimate pickles of every protocol round-trip;
hostile ones made only of allowed globals are refused with ``UnsafePickleError`` instead of
crashing or exhausting the reader. Hostile pickles are loaded in a child process
(``_child_unpickle.py``) under an address-space limit, so a crash or a runaway allocation fails
the test instead of pytest or the machine.
"""

from __future__ import annotations

import _codecs
import collections
import datetime
import decimal
import fractions
import math
import pickle
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from colvault import UnsafePickleError
from colvault.engine import pickles

from ._spawn import Child

WHERE = "objects['k'] of /t"
HEADROOM = 1 << 30  # the child may grow by 1 GiB beyond what it has after its imports

_frombuffer = np._core.numeric._frombuffer
_reconstruct = np._core.multiarray._reconstruct
_scalar = np._core.multiarray.scalar


# -- building pickles ---------------------------------------------------------------------------


class Call:
    """Pickles as ``func(*args)``, then ``BUILD`` with ``state`` if given: any stream of calls
    of allowed globals, with any arguments (pickle memoises a Call used twice)."""

    def __init__(self, func: Any, *args: Any, state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple[Any, ...]:
        if self.state is None:
            return (self.func, self.args)
        return (self.func, self.args, self.state)


def dtype_call(spec: str, state: tuple[Any, ...]) -> Call:
    """A dtype as numpy pickles one: ``dtype(spec, False, True)`` and a BUILD of ``state``."""
    return Call(np.dtype, spec, False, True, state=state)


def struct_state(fields: dict[str, tuple[Any, int]], itemsize: int, flags: int = 16) -> tuple:
    return (3, "|", None, tuple(fields), fields, itemsize, 1, flags)


def array_call(shape: tuple[int, ...], dtype: Any, raw: Any, fortran: bool = False) -> Call:
    """An array as numpy pickles one in protocols 2-4: ``_reconstruct`` and a BUILD."""
    return Call(_reconstruct, np.ndarray, (0,), b"b", state=(1, shape, dtype, fortran, raw))


def dumps(obj: Any, protocol: int = 5) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def op_int(n: int) -> bytes:
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_put(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def op_get(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def op_str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def op_dtype(spec: str) -> bytes:
    """Pushes numpy.dtype(spec, False, True), as numpy's pickles call it."""
    return op_global("numpy", "dtype") + op_str(spec) + b"\x89\x88\x87R"


def op_struct_state(name: str, offset: int) -> bytes:
    """Pushes (3, '|', None, (name,), {name: (float64, offset)}, 8, 1, 16)."""
    field = op_str(name) + op_dtype("f8") + op_int(offset) + b"\x86"
    return b"(K\x03" + op_str("|") + b"N" + op_str(name) + b"\x85}" + field + b"sK\x08K\x01K\x10t"


def stream(*parts: bytes) -> bytes:
    return b"\x80\x04" + b"".join(parts) + b"."


# -- the child ----------------------------------------------------------------------------------


class Reader:
    """``_child_unpickle.py``, started again after it dies, so each check gets a live one."""

    def __init__(self) -> None:
        self.child: Child | None = None

    def load(self, blobs: list[bytes], timeout: float = 60.0) -> list[str]:
        """One line per pickle; fails if the child dies or goes silent on one."""
        if self.child is None or self.child.proc.poll() is not None:
            self.child = Child("_child_unpickle.py", HEADROOM, stdin=True)
            self.child.expect("ready")
        child = self.child
        out = []
        for blob in blobs:
            child.send(blob.hex())
            try:
                out.append(child.line(timeout))
            except AssertionError as exc:
                self.child = None
                raise AssertionError(f"on the pickle {blob[:200].hex()}...: {exc}") from None
        return out

    def close(self) -> None:
        if self.child is not None and self.child.proc.poll() is None:
            assert self.child.proc.stdin is not None
            self.child.proc.stdin.close()
            self.child.finish()


@pytest.fixture(scope="module")
def reader():
    r = Reader()
    yield r
    r.close()


def refused(reader: Reader, blob: bytes, *parts: str) -> str:
    (line,) = reader.load([blob])
    assert line.startswith("refused: "), line
    for part in parts:
        assert part in line, (part, line)
    assert WHERE.replace("'k'", "'fuzz'") in line
    return line


# -- the two attacks of issue 12, defect 4 ------------------------------------------------------


def test_dtype_with_a_field_beyond_its_itemsize_is_refused(reader):
    """A dtype rebuilt with field 'a' at offset 10**9 of an 8-byte item, viewed over 8 bytes by
    _frombuffer: loaded without complaint, it segfaulted when the field was read."""
    bad = dtype_call("V8", struct_state({"a": (np.dtype("f8"), 10**9)}, 8))
    blob = dumps(Call(_frombuffer, bytearray(8), bad, (1,), "C"))
    refused(reader, blob, "numpy.dtype", "field 'a'", "offset 1000000000", "itemsize 8")


def test_list_of_a_huge_range_is_refused(reader):
    """57 bytes, two allowed globals, 11 GB and 24 s: list(range(3 * 10**8))."""
    blob = dumps(Call(list, Call(range, 3 * 10**8)))
    assert len(blob) == 57
    refused(reader, blob, "builtins.list(range(0, 300000000))", "budget", "57-byte pickle")


# -- more pickles of allowed globals that crashed or exhausted the reader ------------------------


def deep_tuple_key(depth: int) -> bytes:
    """{((((...)))): None} with ``depth`` tuples: hashing the key recursed in C."""
    return stream(b"}", b")", b"\x85" * depth, b"N", b"s")


def slice_chain(depth: int) -> bytes:
    """slice(slice(...slice(None)...)): freed recursively in C."""
    funcs = op_global("builtins", "slice") + op_put(0) + op_get(0) * (depth - 1)
    return stream(funcs, b"N", b"\x85R" * depth)


def object_array_chain(depth: int) -> bytes:
    """Object arrays each holding the next: numpy frees them recursively."""
    head = [
        op_global("numpy._core.multiarray", "_reconstruct"), op_put(0),
        b"(", op_global("numpy", "ndarray"), b"(K\x00t", b"C\x01b", b"t", op_put(1),
        op_dtype("O8"), op_put(2), b"(K\x01t", op_put(3), b"0" * 4,
    ]  # fmt: skip
    body = []
    for i in range(depth):  # make the arrays, memoised from 10 on
        body += [op_get(0), op_get(1), b"R", op_put(10 + i), b"0"]
    for i in reversed(range(depth)):  # then fill each with the next
        inner = op_get(10 + i + 1) if i + 1 < depth else b"N"
        body += [op_get(10 + i), b"(K\x01", op_get(3), op_get(2), b"\x89]", inner, b"atb0"]
    return stream(*head, *body, op_get(10))


def tuple_dag(levels: int) -> list[bytes]:
    """Opcodes pushing t_n, where t_k = (t_k-1, t_k-1): hashing it takes 2**levels steps."""
    level = op_get(0) + op_get(0) + b"\x86" + op_put(0) + b"0"
    return [b")", op_put(0), b"0", level * levels, op_get(0)]


def doubling_dag(levels: int) -> bytes:
    """A list holding the same list twice, ``levels`` deep: tiny, but 2**levels as a tree."""
    x: list[Any] = ["leaf"]
    for _ in range(levels):
        x = [x, x]
    return dumps(x)


ONE_MB_ARRAY = Call(_frombuffer, bytes(1 << 20), np.dtype("u1"), (1 << 20,), "C")

HOSTILE = {
    "deep tuple as a dict key": (deep_tuple_key(10**6), "nests tuples more than 1000 deep"),
    "slice chain": (slice_chain(10**5), "builtins.slice(a builtins.slice)"),
    "object array chain": (object_array_chain(3000), "object arrays nest more than 1000"),
    "bytes(10**10)": (dumps(Call(bytes, 10**10)), "budget"),
    "bytearray(10**10)": (dumps(Call(bytearray, 10**10)), "budget"),
    "tuple over a range": (dumps(Call(tuple, range(10**9))), "budget"),
    "set over a range": (dumps(Call(frozenset, range(10**9))), "budget"),
    "bytes over a range": (dumps(Call(bytes, range(10**9))), "budget"),
    "dict over range pairs": (dumps(Call(dict, [range(10**9)])), "not a (key, value) pair"),
    "list over a big array": (
        dumps(Call(list, Call(_frombuffer, bytes(8 << 20), np.dtype("u1"), (8 << 20,), "C"))),
        "budget",
    ),
    "bytes of one array, 1000 times": (
        dumps([Call(bytes, ONE_MB_ARRAY) for _ in range(1000)]),
        "budget",
    ),
    "exponential DAG": (doubling_dag(60), "unfolded as a tree"),
    "ndarray called with a huge shape": (dumps(Call(np.ndarray, (10**12,), "f8")), "directly"),
    "ndarray over a buffer with offsets": (
        dumps(Call(np.ndarray, (10,), "f8", b"12345678", 10**9, (0,))),
        "directly",
    ),
    "_reconstruct with a huge shape": (
        dumps(Call(_reconstruct, np.ndarray, (10**12,), b"b")),
        "_reconstruct(numpy.ndarray, (0,), b'b')",
    ),
    "huge Decimal into a record's int field": (
        dumps(
            array_call(
                (1,), np.dtype([("a", "i8"), ("b", "O")]), [(decimal.Decimal("1e999999999"), "x")]
            )
        ),
        "Decimal 1E+999999999 as the value of a field",
    ),
    "array state longer than its data": (
        dumps(array_call((10**6,), np.dtype("f8"), b"\x00" * 8)),
        "8000000 bytes of data expected",
    ),
    "array state larger than the budget": (
        dumps(array_call((10**6, 10**6), np.dtype("f8"), b"")),
        "budget",
    ),
    "BUILD on the float64 singleton": (
        dumps(Call(np.dtype, "f8", state=(3, ">", None, None, None, -1, -1, 0))),
        "only a dtype or array just made",
    ),
    "BUILD on a dtype already used by an array": (
        stream(
            op_dtype("V8"),
            op_put(0),
            op_struct_state("a", 0),
            b"b0",  # a valid dtype
            op_global("numpy._core.numeric", "_frombuffer"),  # an array of it
            b"(\x96" + struct.pack("<Q", 8) + bytes(8),
            op_get(0),
            b"K\x01\x85",
            op_str("C"),
            b"tR",
            op_put(1),
            b"0",
            op_get(0),
            op_struct_state("a", 10**9),
            b"b0",  # the dtype rebuilt under it
            op_get(1),
        ),
        "only a dtype or array just made",
    ),
    "subarray beyond its itemsize": (
        dumps(
            Call(
                _frombuffer,
                bytearray(8),
                dtype_call("V8", (3, "|", (np.dtype("f8"), (10**8,)), None, None, 8, 8, 0)),
                (1,),
                "C",
            )
        ),
        "subarray (100000000,) of 8-byte items in its itemsize 8",
    ),
    "negative field offset": (
        dumps(dtype_call("V8", struct_state({"a": (np.dtype("i4"), -4)}, 8))),
        "offset -4",
    ),
    "object field through _frombuffer": (
        dumps(
            Call(
                _frombuffer,
                bytearray(b"\x41" * 8),
                dtype_call("V8", struct_state({"o": (np.dtype("O"), 0)}, 8, flags=0)),
                (1,),
                "C",
            )
        ),
        "cannot come from bytes",
    ),
    "object field in a scalar": (
        dumps(
            Call(
                _scalar,
                dtype_call("V8", struct_state({"o": (np.dtype("O"), 0)}, 8)),
                b"\x41" * 8,
            )
        ),
        "structured dtype holding objects",
    ),
    "scalar of a subarray dtype": (  # numpy's void of it crashed when read
        dumps(Call(_scalar, np.dtype(("S3", (2,))), b"abcdef")),
        "a scalar of a subarray dtype",
    ),
    "scalar shorter than its dtype": (dumps(Call(_scalar, np.dtype("V64"), b"ab")), "64 bytes"),
    "field dtype that is itself": (
        stream(
            op_dtype("V8"),
            op_put(0),
            b"(K\x03",
            op_str("|"),
            b"N",
            op_str("a"),
            b"\x85}",
            op_str("a"),
            op_get(0),
            b"K\x00\x86s",  # {'a': (the dtype itself, 0)}
            b"K\x08K\x01K\x10tb",
        ),
        "field 'a'",
    ),
    "Fraction with a huge exponent": (
        dumps(Call(fractions.Fraction, "1e999999999")),
        "exponent",
    ),
    "int of a huge Decimal": (
        dumps(Call(int, decimal.Decimal("1e999999999"))),
        "not an accepted argument",
    ),
    "Fraction of huge ints": (dumps(Call(fractions.Fraction, 3**200000, 2**300000)), "bits"),
    "BYTEARRAY8 claiming 2**60 bytes": (
        stream(b"\x96" + struct.pack("<Q", 2**60)),
        "claims 1152921504606846976 bytes",
    ),
    "str over a DAG": (
        dumps(Call(str, [[["x"] * 2] * 2] * 2)),
        "str() of a container",
    ),
    "_codecs.encode with another codec": (
        dumps(Call(_codecs.encode, "x" * 10, "zlib")),
        "latin1",
    ),
    "BUILD on an OrderedDict": (
        dumps(Call(collections.OrderedDict, state={"x": 1})),
        "only a dtype or array just made",
    ),
    "items set on an array": (
        stream(
            dumps(Call(_frombuffer, bytearray(8), np.dtype("f8"), (1,), "C"), protocol=3)[2:-1],
            b"K\x00K\x01s",
        ),
        "only dicts take items",
    ),
    "tuple DAG as a dict key": (
        stream(b"}", *tuple_dag(70), b"N", b"s"),
        "budget",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_pickles_of_allowed_globals_are_refused(reader, name):
    blob, reason = HOSTILE[name]
    refused(reader, blob, reason)


def test_modest_expansions_still_load():
    """The budget is proportional, not a ban: a range or an int within it is fine."""
    assert pickles.loads(dumps(Call(list, range(1000))), WHERE, False) == list(range(1000))
    assert pickles.loads(dumps(Call(bytes, 1000)), WHERE, False) == bytes(1000)
    assert pickles.loads(dumps(range(10**18)), WHERE, False) == range(10**18)  # a lazy value


def test_every_failure_is_an_unsafe_pickle_error():
    """The contract: one error type, naming where and why, chained to the original."""
    good = dumps({"a": np.arange(3.0)})
    for blob, reason in [
        (good[:-10], "pickle exhausted before end of frame"),
        (pickle.dumps([1, 2], protocol=2)[:-3], "IndexError"),
        (good[:5], "struct.error: unpack requires a buffer of 8 bytes"),
        (b"\x80\x05\xff.", "invalid load key"),
        (dumps(Call(int, "not a number")), "ValueError: invalid literal"),
        (dumps(Call(datetime.date, 2025, 13, 1)), "ValueError: month must be in 1..12"),
    ]:
        with pytest.raises(UnsafePickleError, match=r"objects\['k'\] of /t") as info:
            pickles.loads(blob, WHERE, False)
        assert isinstance(info.value, pickle.UnpicklingError)
        assert reason in str(info.value)


# -- legitimate pickles round-trip in every protocol --------------------------------------------


def same(got: Any, want: Any) -> None:
    """``got`` is what pickle.loads made of the same bytes: same types, values and layout."""
    todo = [(got, want)]
    seen: set[int] = set()
    while todo:
        g, w = todo.pop()
        assert type(g) is type(w), (g, w)
        if id(w) in seen:
            continue
        seen.add(id(w))
        if isinstance(w, np.ndarray):
            assert (g.dtype, g.dtype.str, g.shape, g.strides) == (
                w.dtype,
                w.dtype.str,
                w.shape,
                w.strides,
            )
            assert g.dtype.metadata == w.dtype.metadata and g.flags.writeable == w.flags.writeable
            if w.dtype.hasobject:
                todo.extend(zip(g.ravel().tolist(), w.ravel().tolist(), strict=True))
            else:
                assert g.tobytes() == w.tobytes()
        elif isinstance(w, np.generic):
            assert g.dtype == w.dtype and g.tobytes() == w.tobytes()
        elif isinstance(w, (list, tuple)):
            assert len(g) == len(w)
            todo.extend(zip(g, w, strict=True))
        elif isinstance(w, dict):
            assert list(g) == list(w)
            todo.extend(zip(g.values(), w.values(), strict=True))
        elif isinstance(w, (float, complex, decimal.Decimal)):
            assert repr(g) == repr(w)
        else:
            assert g == w


def struct_dtypes() -> st.SearchStrategy[np.dtype]:
    leaves = hnp.scalar_dtypes() | hnp.byte_string_dtypes() | hnp.unicode_string_dtypes()
    return hnp.nested_dtypes(leaves, max_leaves=4) | hnp.array_dtypes(leaves, min_size=1)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(
        hnp.scalar_dtypes() | struct_dtypes() | st.sampled_from([np.dtype("M8[7s]"), np.dtype("O")])
    )
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if dtype.hasobject:
        a = np.empty(shape, dtype)
        for i, x in enumerate(draw(st.lists(st.integers() | st.text(), min_size=a.size))[: a.size]):
            a.flat[i] = x
    else:
        a = draw(hnp.arrays(dtype, shape))
    view = draw(st.sampled_from(["c", "fortran", "transposed", "strided", "reversed"]))
    if view == "fortran":
        a = np.asfortranarray(a)
    elif view == "transposed":
        a = a.T
    elif view == "strided" and a.ndim:
        a = a[::2]
    elif view == "reversed" and a.ndim:
        a = a[::-1]
    return a


def fixed_zones() -> st.SearchStrategy[datetime.tzinfo]:
    hours = datetime.timedelta(hours=23)
    return st.builds(datetime.timezone, st.timedeltas(-hours, hours), st.text(max_size=3))


def leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        arrays(),
        arrays().filter(lambda a: a.size > 0).map(lambda a: a.flat[0]),  # numpy scalars
        st.decimals(),
        st.fractions(),
        st.datetimes(timezones=st.none() | st.just(datetime.UTC) | fixed_zones()),
        st.dates() | st.times() | st.timedeltas(),
        st.integers() | st.floats() | st.complex_numbers() | st.text() | st.binary(),
        st.none() | st.booleans(),
        st.builds(range, st.integers(-(2**70), 2**70), st.integers(), st.integers(1, 5)),
    )


def values() -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=4),
            st.dictionaries(st.text(max_size=3), inner, max_size=4).map(collections.OrderedDict),
            st.frozensets(st.integers() | st.text(), max_size=4),
            st.sets(st.integers() | st.tuples(st.integers(), st.text()), max_size=4),
            st.binary().map(bytearray),
        ),
        max_leaves=8,
    )


@given(value=values(), protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_legitimate_pickles_round_trip(value, protocol):
    blob = pickle.dumps(value, protocol=protocol)
    same(pickles.loads(blob, WHERE, False), pickle.loads(blob))


OBJECTS = {
    "record": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "aligned": np.zeros(3, dtype=np.dtype([("a", "i1"), ("b", "f8")], align=True)),
    "titles": np.zeros(2, dtype=[(("T", "a"), "i4"), ("b", ">f8", (2, 3))]),
    "nested": np.zeros(2, dtype=[("n", [("x", "i2"), ("y", "f4", (2,))]), ("s", "S3")]),
    "objects in a record": np.array([(1, "x")], dtype=[("a", "i4"), ("b", "O")]),
    "void scalar": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])[0],
    "datetimes": [np.datetime64("2025-01-01", "ns"), np.array([1, 2], "m8[25s]")],
    "dtypes": [
        np.dtype(">i2"),
        np.dtype("f8", metadata={"unit": "K"}),
        np.dtype("M8[ns]", metadata={"k": "v"}),
        np.dtype([]),
        np.dtype(("f4", (0,))),
    ],
    "object array": np.array([1, "a", np.arange(3)], dtype=object),
    "transposed": np.arange(24.0).reshape(2, 3, 4).transpose(1, 0, 2),
    "zero-size records": np.zeros((2, 3), dtype=[]),
    "shared": [np.arange(3)] * 3,
    "tuple keys": {(1, (2, 3)): "k"},
    "datetime": [datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC), datetime.timedelta(3)],
    "exact": (decimal.Decimal("1.10"), fractions.Fraction(1, 3), complex(1, 2)),
    "sets": (set([1, 2]), frozenset(["x"]), bytearray(b"ab"), b"", range(3), slice(1, 9)),
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_stdlib_objects_round_trip_in_every_protocol(protocol):
    for value in OBJECTS.values():
        blob = pickle.dumps(value, protocol=protocol)
        same(pickles.loads(blob, WHERE, False), pickle.loads(blob))
    cycle: list[Any] = [1]
    cycle.append(cycle)
    got = pickles.loads(pickle.dumps(cycle, protocol=protocol), WHERE, False)
    assert got[1] is got


# -- fuzzing ------------------------------------------------------------------------------------

ODD_SIZES = [0, 1, 3, 7, 8, 9, 16, 2**31 - 1, 10**9, 2**62]
SIMPLE = [np.dtype(c) for c in ("u1", "i4", ">f8", "c16", "O", "S3", "U2", "V5", "M8[s]")]


@st.composite
def hostile_dtypes(draw: st.DrawFn, depth: int = 0) -> tuple[Any, int]:
    """``dtype(spec, False, True)`` and a BUILD whose state may lie about anything (often it
    does not, so that arrays of odd but valid layouts get read too); and the itemsize claimed."""
    kind = draw(st.sampled_from(["fields", "fields", "subarray", "plain", "numpy"]))
    if kind == "numpy" or depth >= 2:
        simple = draw(st.sampled_from(SIMPLE))
        return simple, simple.itemsize
    honest = draw(st.integers(0, 2)) > 0  # then only the sizes and offsets are odd
    itemsize = draw(st.integers(0, 40) | st.sampled_from(ODD_SIZES))
    spec = f"V{itemsize}"
    if not honest and draw(st.booleans()):
        spec = draw(st.sampled_from(["V8", "f8", "O8", "M8", "U4", "V1"]))
    flags = 16 if honest else draw(st.sampled_from([0, 27, 63, 128, 144, 255]))
    if kind == "plain":
        endian = draw(st.sampled_from(["<", ">", "|", "="]))
        meta = [(), (None,), ({"k": 1},), ((None, (b"ns", 3, 1, 1)),), (({}, (b"D", 1, 1, 1)),)]
        extra = draw(st.sampled_from(meta))
        size = draw(st.sampled_from([-1, itemsize]))
        state = (3 + len(extra), endian, None, None, None, size, -1, flags, *extra)
        return dtype_call(spec, state), itemsize
    if kind == "subarray":
        base, base_size = draw(hostile_dtypes(depth + 1))
        shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 10**9, -1]), max_size=3)))
        if honest:
            itemsize = max(base_size, 0) * math.prod(shape)
            spec = f"V{itemsize}"
        state = (3, "|", (base, shape), None, None, itemsize, 1, flags)
        return dtype_call(spec, state), itemsize
    names = draw(st.lists(st.sampled_from("abc"), unique=True, max_size=3))
    fields: dict[str, Any] = {}
    for name in names:
        child, child_size = draw(hostile_dtypes(depth + 1))
        if honest:
            offset = draw(st.integers(0, max(0, itemsize - max(child_size, 0))))
        else:
            offset = draw(st.sampled_from([-1, 1, 7, itemsize, itemsize - 1, 10**9]))
        fields[name] = (child, offset)
    if names and not honest and draw(st.booleans()):
        fields["extra"] = fields[names[0]]
    return dtype_call(spec, (3, "|", None, tuple(names), fields, itemsize, 1, flags)), itemsize


def lengths() -> st.SearchStrategy[int]:
    return st.sampled_from([0, 1, 2, 8, 1000, 10**6, 3 * 10**8, 10**10, 2**63])


@st.composite
def hostile_values(draw: st.DrawFn) -> Any:
    dtype, itemsize = draw(hostile_dtypes())
    n = draw(lengths())
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 3, 10**9]), max_size=3)))
    nbytes = max(itemsize, 0) * math.prod(shape)
    if nbytes > 4096 or draw(st.integers(0, 3)) == 0:
        nbytes = draw(st.sampled_from([0, 1, 8, 16, 24, 64]))
    order = draw(st.sampled_from(["C", "F", "K", "C", "A"]))
    rng = draw(st.builds(range, lengths()))
    choice = draw(st.integers(0, 15))
    if choice <= 1:
        extra = (draw(st.sampled_from([(0, 1, 2), (1, 0), (0,), None])),) if order == "K" else ()
        return Call(_frombuffer, bytearray(nbytes), dtype, shape, order, *extra)
    if choice == 2:
        size = max(itemsize, 0) if itemsize <= 4096 and draw(st.booleans()) else nbytes
        return Call(_scalar, dtype, bytes(size))
    if choice == 3:
        raw: Any = bytes(nbytes) if draw(st.booleans()) else [None, rng, (1, rng)][: n % 4]
        return array_call(shape, dtype, raw, fortran=draw(st.booleans()))
    if choice == 4:
        return Call(np.ndarray, shape, dtype, bytes(nbytes), n, (n,))
    if choice == 5:
        func = draw(st.sampled_from([list, tuple, set, frozenset, bytes, bytearray, str, dict]))
        source = draw(
            st.sampled_from(
                [rng, n, Call(_frombuffer, bytearray(nbytes), np.dtype("u1"), (nbytes,), "C")]
            )
        )
        return Call(func, source)
    if choice == 6:
        return Call(_reconstruct, np.ndarray, shape, draw(st.sampled_from([b"b", dtype])))
    if choice == 7:
        text = draw(st.sampled_from(["1e999999999", "1/3", "-1_000", "1e-99999999", "nan"]))
        return Call(draw(st.sampled_from([fractions.Fraction, decimal.Decimal, int, float])), text)
    if choice == 8:
        x: Any = ["leaf"]
        for _ in range(draw(st.integers(0, 70))):
            x = [x, x] if draw(st.booleans()) else (x, x)
        return x
    if choice == 9:
        return Call(dict, [(rng, 1), [dtype, 2]])
    if choice == 10:
        return {dtype: Call(_frombuffer, bytearray(nbytes), dtype, shape, "C")}
    if choice == 11:
        return Call(slice, rng, dtype, n)
    if choice == 12:
        return Call(datetime.datetime, bytes(nbytes), n)
    if choice == 13:
        return Call(_codecs.encode, "é" * (n % 100), draw(st.sampled_from(["latin1", "zlib"])))
    if choice == 14:
        return [dtype, Call(_frombuffer, bytearray(nbytes), dtype, shape, order)]
    return Call(collections.OrderedDict, [(rng, rng)])


OPCODES = [
    b"N", b"\x88", b"\x89", b")", b"]", b"}", b"\x8f", b"(", b"t", b"\x85", b"\x86", b"\x87",
    b"l", b"d", b"\x91", b"R", b"b", b"a", b"e", b"s", b"u", b"\x90", b"0", b"1", b"2",
    b"\x94", b"h\x00", b"h\x01", b"h\x02", b"K\x00", b"K\x01", b"K\x08", b"J\xff\xff\xff\x7f",
    b"C\x01b", b"C\x08" + bytes(8), b"\x96" + struct.pack("<Q", 8) + bytes(8),
    b"X\x02\x00\x00\x00V8", b"X\x02\x00\x00\x00f8", b"X\x01\x00\x00\x00a", b"X\x01\x00\x00\x00C",
    b"\x81", b"\x92", b"o", b"Q", b"\x97", b"\x98",
    *(op_global(*key) for key in sorted(pickles.ALLOWED)),
]  # fmt: skip


@st.composite
def fuzzed_pickles(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):  # opcode soup over the allowed globals
        return stream(*draw(st.lists(st.sampled_from(OPCODES), max_size=40)))
    value = draw(hostile_values())
    return pickle.dumps(value, protocol=draw(st.integers(0, pickle.HIGHEST_PROTOCOL)))


@given(batch=st.lists(fuzzed_pickles(), min_size=1, max_size=20))
def test_fuzzed_pickles_of_allowed_globals_never_crash_the_reader(reader, batch):
    """Each pickle loads (and everything in it can be read) or is refused with
    UnsafePickleError; the child neither dies, nor hangs, nor sees another exception."""
    for blob, line in zip(batch, reader.load(batch), strict=True):
        assert line.startswith(("ok ", "refused: ")), (line, blob[:200].hex())
