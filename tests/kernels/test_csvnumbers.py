"""CSV number kernels read what ``pandas.read_csv`` reads, and floats bit for bit as Python does.

Fields are laid out in a block with one separator byte between them (as the tokenizer leaves
them), so offsets never coincide with the block's ends. The pandas reference reads a one-row CSV
with one column per field (``sep=";"``, no quoting, no NA values): the dtype of each column says
whether pandas took the field as an integer; a second row holding ``1.5`` says whether it took
the field as a float.
"""

from __future__ import annotations

import io
import math
import re
import struct
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from colvault.kernels.csv.numbers import (
    FITS_INT64,
    IS_BOOL,
    IS_FLOAT64,
    IS_INT64,
    IS_UINT64,
    NEEDS_FLOAT64,
    NEEDS_UINT64,
    classify,
    classify_kernel,
    fix_slow_floats,
    infer_type,
    parse_bool,
    parse_float64,
    parse_float64_kernel,
    parse_float64_py,
    parse_int64,
    parse_int64_kernel,
    parse_int64_numpy,
    parse_uint64,
    parse_uint64_kernel,
)

I64_MAX = 2**63 - 1


def fields(texts: list[str], sep: bytes = b";") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buf, starts, ends) of ``texts`` written one after the other with ``sep`` between."""
    raw = [t.encode() for t in texts]
    lens = np.fromiter(map(len, raw), np.int64, len(raw))
    ends = np.cumsum(lens + len(sep)) - len(sep)
    buf = np.frombuffer(sep.join(raw) + sep, np.uint8).copy()
    return buf, ends - lens, ends


def bits(values: np.ndarray | list[float]) -> np.ndarray:
    return np.asarray(values, np.float64).view(np.uint64)


def pyfloat(text: str, decimal: str = ".", thousands: str | None = None) -> float:
    """Python's correctly rounded float of a field, separators normalized."""
    t = text.strip(" \t\n\v\f\r")
    if thousands:
        t = t.replace(thousands, "")
    return float(t.replace(decimal, "."))


_PLUS_SPACED_EXPONENT = re.compile(r"\s*\+[^eE]*[eE]\s")


def pandas_reads(texts: list[str], **kw: object) -> tuple[list[bool], list[bool], list[float]]:
    """Per field: (pandas reads it as an integer, as a float, the float it reads)."""
    opts: dict = dict(sep=";", header=None, index_col=False, quoting=3)
    opts.update(keep_default_na=False, na_values=[], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = pd.read_csv(io.StringIO(";".join(texts) + "\n"), **opts)
        dec = str(kw.get("decimal", "."))
        two = ";".join(texts) + "\n" + ";".join(["1" + dec + "5"] * len(texts)) + "\n"
        both = pd.read_csv(io.StringIO(two), **opts)
    as_int = [one[i].dtype.kind in "iu" for i in range(len(texts))]
    as_float = [both[i].dtype.kind == "f" for i in range(len(texts))]
    values = [float(both[i][0]) if as_float[i] else math.nan for i in range(len(texts))]
    return as_int, as_float, values


def pandas_column(texts: list[str], **kw: object) -> pd.Series:
    opts: dict = dict(sep=";", index_col=False, quoting=3, keep_default_na=False)
    opts.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.read_csv(io.StringIO("a\n" + "\n".join(texts) + "\n"), **opts)["a"]


# --- integers ----------------------------------------------------------------------------------

INT_OK = {
    "12": 12,
    " 12 ": 12,
    "\t12\t": 12,
    "\f12\v": 12,
    "12\r": 12,
    "+12": 12,
    "-12": -12,
    "012": 12,
    "-0": 0,
    "9223372036854775807": I64_MAX,
    "-9223372036854775808": -(2**63),
}
INT_BAD = ["", " ", "+", "-", "+-12", "- 12", "1 2", "1_000", "0x10", "1.0", "1e3", "١٢", "12a"]


def test_integers_as_pandas_reads_them() -> None:
    texts = list(INT_OK)
    values, status = parse_int64(*fields(texts))
    assert status == FITS_INT64
    assert values.tolist() == list(INT_OK.values())
    col = pandas_column(texts)
    assert col.dtype == np.int64 and col.tolist() == values.tolist()
    as_int, _, _ = pandas_reads(INT_BAD)
    assert not any(as_int)
    for bad in INT_BAD:
        assert parse_int64(*fields(["7", bad, "x"]))[1] == 1, bad


def test_integer_overflow_statuses() -> None:
    # Beyond int64 but within uint64: pandas reads uint64, and so does the status say.
    values, status = parse_int64(*fields(["9223372036854775808", "18446744073709551615", "1"]))
    assert status == NEEDS_UINT64
    assert values.view(np.uint64).tolist() == [2**63, 2**64 - 1, 1]
    assert pandas_column(["9223372036854775808", "18446744073709551615"]).dtype == np.uint64
    # Beyond uint64, or below int64: pandas gives an object column of Python ints; the type
    # lattice says float64, so the status asks for floats.
    for texts in (["18446744073709551616"], ["-9223372036854775809"], ["1", "99" * 20]):
        assert parse_int64(*fields(texts))[1] == NEEDS_FLOAT64
        assert pandas_column(texts).dtype == object
    # 2**63 next to a negative value: pandas falls back to strings; neither int64 nor uint64
    # holds both, so the right answer is float64.
    assert parse_int64(*fields(["9223372036854775808", "-1"]))[1] == NEEDS_FLOAT64
    assert pandas_column(["9223372036854775808", "-1"]).dtype != np.uint64
    # pandas' uint64 path refuses trailing whitespace and falls back to float64, rounding
    # 2**63 + 1; the right answer is the exact uint64, as without the whitespace.
    assert pandas_column(["9223372036854775809 "]).tolist() == [2.0**63]
    values, status = parse_int64(*fields(["9223372036854775809 "]))
    assert status == NEEDS_UINT64 and values.view(np.uint64).tolist() == [2**63 + 1]
    # -0 is zero, not negative: it does not stop a uint64 column.
    assert parse_int64(*fields(["9223372036854775808", "-0"]))[1] == NEEDS_UINT64


def test_parse_uint64() -> None:
    values, status = parse_uint64(*fields(["0", "-0", " 18446744073709551615 ", "+7"]))
    assert status == FITS_INT64
    assert values.tolist() == [0, 0, 2**64 - 1, 7]
    assert parse_uint64(*fields(["1", "-1"]))[1] == NEEDS_FLOAT64
    assert parse_uint64(*fields(["18446744073709551616"]))[1] == NEEDS_FLOAT64
    assert parse_uint64(*fields(["1", "2", "x1"]))[1] == 2


def test_integer_thousands_separators_as_pandas() -> None:
    # pandas' str_to_int64 skips the separator anywhere after the first digit.
    good = {"1,234,567": 1234567, "12,34": 1234, "1,2,3": 123, "1,,234": 1234, "123,": 123}
    good |= {"-1,234": -1234, " 1,234 ": 1234, "+1,000": 1000}
    bad = [",123", "-,1", ",", "1.2"]
    values, status = parse_int64(*fields(list(good)), None, ",")
    assert status == FITS_INT64 and values.tolist() == list(good.values())
    as_int, _, _ = pandas_reads(list(good) + bad, thousands=",")
    assert as_int == [True] * len(good) + [False] * len(bad)
    for b in bad:
        assert parse_int64(*fields([b]), None, ",")[1] == 0
    # A separator is only a separator when asked for.
    assert parse_int64(*fields(["1,234"]))[1] == 0


@st.composite
def int_texts(draw: st.DrawFn) -> tuple[int, str]:
    """An integer (int64 or uint64 range) and a way pandas would accept to write it."""
    v = draw(st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(-1000, 1000)))
    digits = str(abs(v))
    if draw(st.booleans()):
        digits = "0" * draw(st.integers(0, 3)) + digits
    sign = "-" if v < 0 else draw(st.sampled_from(["", "+"]))
    pad = st.sampled_from(["", " ", "\t", "  "])
    return v, draw(pad) + sign + digits + draw(pad)


@given(st.lists(int_texts(), min_size=1, max_size=30))
def test_integers_property(items: list[tuple[int, str]]) -> None:
    ints = [v for v, _ in items]
    texts = [t for _, t in items]
    values, status = parse_int64(*fields(texts))
    if all(-(2**63) <= v <= I64_MAX for v in ints):
        assert status == FITS_INT64 and values.tolist() == ints
        assert pandas_column(texts).tolist() == ints
    elif all(v >= 0 for v in ints):
        assert status == NEEDS_UINT64 and values.view(np.uint64).tolist() == ints
        if not any(t != t.rstrip() for t in texts):  # see test_integer_overflow_statuses
            assert pandas_column(texts).tolist() == ints
    else:
        assert status == NEEDS_FLOAT64
    uvalues, ustatus = parse_uint64(*fields(texts))
    if all(v >= 0 for v in ints):
        assert ustatus == FITS_INT64 and uvalues.tolist() == ints
    else:
        assert ustatus == NEEDS_FLOAT64


@given(st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=20), st.data())
def test_integers_with_thousands_property(ints: list[int], data: st.DataObject) -> None:
    sep = data.draw(st.sampled_from([",", ".", " ", "'"]))
    texts = [f"{v:,}".replace(",", sep) for v in ints]
    values, status = parse_int64(*fields(texts, b";"), None, sep)
    assert status == FITS_INT64 and values.tolist() == ints
    assert pandas_column(texts, thousands=sep).tolist() == ints


def test_missing_fields_are_skipped_and_strided_views_work() -> None:
    texts = ["1", "NA", "3", "x", "5", "6"]
    buf, starts, ends = fields(texts)
    na = np.array([t in ("NA", "x") for t in texts])
    values, status = parse_int64(buf, starts, ends, na)
    assert status == FITS_INT64 and values.tolist() == [1, 0, 3, 0, 5, 6]
    assert parse_int64(buf, starts, ends)[1] == 1
    # Column 0 and 1 of a 3 x 2 table: non-contiguous views of the offsets.
    values, status = parse_int64(buf, starts[0::2], ends[0::2], na[0::2])
    assert status == FITS_INT64 and values.tolist() == [1, 3, 5]
    values, status = parse_int64(buf, starts[1::2], ends[1::2], na[1::2])
    assert status == FITS_INT64 and values.tolist() == [0, 0, 6]
    fvalues, bad = parse_float64_py(buf, starts[1::2], ends[1::2], na[1::2])
    assert bad == -1 and np.isnan(fvalues[:2]).all() and fvalues[2] == 6.0
    assert classify(buf, starts[0::2], ends[0::2]) == IS_INT64 | IS_UINT64 | IS_FLOAT64


# --- floats ------------------------------------------------------------------------------------

FLOAT_EDGES = [
    "1.5",
    " 1.5 ",
    ".5",
    "5.",
    "-.5",
    "+.5e-3",
    "1.e5",
    "1E5",
    "1e+05",
    "-0.0",
    "-0",
    "0e999",
    "0.000000000000000000000000000000000000001",
    "4.9e-324",
    "5e-324",
    "2e-324",
    "3e-324",
    "2.4703282292062328e-324",
    "2.4703282292062327e-324",
    "2.2250738585072011e-308",
    "2.2250738585072012e-308",
    "1.2345678901234567e-310",
    "1e400",
    "-1e400",
    "1e-400",
    "-1e-400",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "9007199254740993",
    "9007199254740993.0",
    "9007199254740993.0000001",
    "7.3177701707893310e+15",
    "1e23",
    "8.98846567431158e307",
    "0.1",
    "0.3",
    "123456789012345678901234567890",
    "1.00000000000000011102230246251565404236316680908203125",  # halfway: ties to even, 1.0
    "1.00000000000000011102230246251565404236316680908203126",  # just above: rounds up
    "1" + "0" * 400 + ".0",
    "0." + "0" * 400 + "1",
    "0.1e1000000000000000000000",
    "1e0000000000000000000005",
    "17976931348623157" + "0" * 292,
    "0012.50",
    "1e-7",
    "-1e22",
    "1e37",
]
FLOAT_BAD = [
    "",
    ".",
    "-",
    "1e",
    "1e+",
    "1e5.5",
    "1.5.2",
    ".e5",
    "e5",
    "nan",
    "NaN",
    "-nan",
    "1.5d3",
    "0x1p3",
    "1 .5",
    "1e 5",
    " inf",
    "inf ",
    "1,5",
    "--1",
    "1e5e5",
    "i",
    "infinit",
]


def test_float_edge_cases_round_correctly() -> None:
    buf, starts, ends = fields(FLOAT_EDGES)
    values, bad = parse_float64_py(buf, starts, ends)
    assert bad == -1
    expected = [pyfloat(t) for t in FLOAT_EDGES]
    assert bits(values).tolist() == bits(expected).tolist()
    assert math.copysign(1, values[FLOAT_EDGES.index("-0.0")]) == -1
    assert values[FLOAT_EDGES.index("1e400")] == math.inf
    assert values[FLOAT_EDGES.index("4.9e-324")] == 5e-324
    # pandas 3 (without thousands separators) rounds correctly too: same bits. Integers beyond
    # uint64 are the exception: pandas keeps them as Python ints (object), here they are floats.
    _, as_float, pd_values = pandas_reads(FLOAT_EDGES)
    huge_ints = [t.isdigit() and int(t) >= 2**64 for t in FLOAT_EDGES]
    assert as_float == [not h for h in huge_ints]
    agree = [k for k in range(len(FLOAT_EDGES)) if not huge_ints[k]]
    assert bits(pd_values)[agree].tolist() == bits(expected)[agree].tolist()


def test_float_spellings_pandas_rejects_are_rejected() -> None:
    _, as_float, _ = pandas_reads(FLOAT_BAD)
    assert not any(as_float)
    for t in FLOAT_BAD:
        assert parse_float64(*fields(["1", t]))[2] == 1, t


def test_infinity_spellings() -> None:
    texts = ["inf", "-inf", "+inf", "Inf", "INF", "infinity", "-Infinity", "+INFINITY", "iNfInItY"]
    values, slow, bad = parse_float64(*fields(texts))
    assert bad == -1 and slow.size == 0
    assert values.tolist() == [math.inf, -math.inf] + [math.inf] * 4 + [-math.inf] + [math.inf] * 2
    _, as_float, _ = pandas_reads(texts)
    assert all(as_float)


def test_slow_fields_are_listed_and_fixed() -> None:
    texts = ["1.5", "4.9e-324", "1e400", "12.25", "1" * 30 + ".5", "0." + "0" * 30 + "7e-300"]
    buf, starts, ends = fields(texts)
    values, slow, bad = parse_float64(buf, starts, ends)
    assert bad == -1
    # subnormal, overflow, more than 19 digits (left to Python), subnormal
    assert slow.tolist() == [1, 2, 4, 5]
    assert values[0] == 1.5 and values[3] == 12.25
    fix_slow_floats(buf, starts, ends, slow, values)
    assert bits(values).tolist() == bits([pyfloat(t) for t in texts]).tolist()


def test_float_missing_values_are_nan() -> None:
    buf, starts, ends = fields(["1.5", "NA", "2", "", "nan"])
    na = np.array([False, True, False, True, True])
    values, bad = parse_float64_py(buf, starts, ends, na)
    assert bad == -1
    assert values[0] == 1.5 and values[2] == 2.0 and np.isnan(values[[1, 3, 4]]).all()


def test_decimal_comma_and_thousands() -> None:
    cases = {"1,5": 1.5, "1.234,5": 1234.5, "1,5e3": 1500.0, ",5": 0.5, "5,": 5.0}
    cases |= {"1.234.567,89": 1234567.89, "-1.234": -1234.0, "1.234,": 1234.0}
    values, bad = parse_float64_py(*fields(list(cases)), None, ",", ".")
    assert bad == -1 and values.tolist() == list(cases.values())
    _, as_float, pd_values = pandas_reads(list(cases), decimal=",", thousands=".")
    assert all(as_float) and pd_values == list(cases.values())
    # With thousands=",": one separator after a digit of the integer part, as pandas.
    ok = {"1,234.5": 1234.5, "12,34.5": 1234.5, "1,234,5.6": 12345.6, "123,": 123.0}
    ok |= {"1,234e3": 1234000.0, "1,.5": 1.5}
    bad = ["1,,234.5", "1,234.5,", "1,234.,5", "1.5e1,0", "1.2,34", ",5"]
    values, badi = parse_float64_py(*fields(list(ok)), None, ".", ",")
    assert badi == -1 and values.tolist() == list(ok.values())
    _, as_float, _ = pandas_reads(list(ok) + bad, thousands=",")
    assert as_float == [True] * len(ok) + [False] * len(bad)
    for b in bad:
        assert parse_float64(*fields([b]), None, ".", ",")[2] == 0, b
    # Slow fields are fixed with the separators normalized.
    texts = ["4,9e-324", "1.000e400", " -1.234,5 ", "0," + "0" * 30 + "1e-300"]
    values, slow, badi = parse_float64(*fields(texts), None, ",", ".")
    assert badi == -1 and slow.tolist() == [0, 1, 3]
    values, badi = parse_float64_py(*fields(texts), None, ",", ".")
    assert bits(values).tolist() == bits([pyfloat(t, ",", ".") for t in texts]).tolist()
    assert values.tolist()[:3] == [5e-324, math.inf, -1234.5]
    # Decimal comma without thousands: a point is not a number character.
    assert parse_float64(*fields(["1.5"]), None, ",")[2] == 0
    with pytest.raises(ValueError):
        parse_float64(*fields(["1"]), None, ",", ",")


def test_pandas_with_thousands_is_not_correctly_rounded() -> None:
    # With a thousands separator pandas 3.1 switches to its own xstrtod: 661e50 comes out one
    # ulp off, and whitespace after the exponent's 'e' is accepted (strtol skips it). Correct
    # rounding wins here, and 'e' must be followed by the exponent.
    _, _, pd_values = pandas_reads(["661e50", "9e +8"], thousands=",")
    assert pd_values[0] != 6.61e52 and pd_values[1] == 9e8
    values, _slow, bad = parse_float64(*fields(["661e50"]), None, ".", ",")
    assert bad == -1 and values[0] == 6.61e52
    assert parse_float64(*fields(["9e +8"]), None, ".", ",")[2] == 0


def double_texts() -> st.SearchStrategy[str]:
    """Texts of doubles: shortest repr, 17 and 22 significant digits, fixed notation, halfway
    points between neighbours (exact, then nudged), and random digit strings."""
    finite = st.floats(allow_nan=False, allow_infinity=False)

    def halfway(x: float) -> str:
        from decimal import Decimal, getcontext

        getcontext().prec = 800
        b = struct.unpack("<Q", struct.pack("<d", abs(x)))[0]
        y = struct.unpack("<d", struct.pack("<Q", min(b + 1, 0x7FEFFFFFFFFFFFFF)))[0]
        return format((Decimal(abs(x)) + Decimal(y)) / 2, ".30e")

    digits = st.text("0123456789", min_size=1, max_size=30)
    random_decimal = st.builds(
        lambda d, point, e: d[:point] + "." + d[point:] + e,
        digits,
        st.integers(0, 30),
        st.one_of(st.just(""), st.integers(-360, 330).map(lambda k: f"e{k}")),
    )
    return st.one_of(
        finite.map(repr),
        finite.map(lambda x: f"{x:.16e}"),
        finite.map(lambda x: f"{x:.21e}"),
        st.floats(-1e6, 1e6).map(lambda x: f"{x:.4f}"),
        finite.map(halfway),
        random_decimal,
    )


@given(st.lists(double_texts(), min_size=1, max_size=40))
def test_floats_are_python_floats_bit_for_bit(texts: list[str]) -> None:
    values, bad = parse_float64_py(*fields(texts))
    assert bad == -1
    assert bits(values).tolist() == bits([float(t) for t in texts]).tolist()


@given(st.lists(double_texts(), min_size=1, max_size=40))
def test_floats_match_pandas(texts: list[str]) -> None:
    values, bad = parse_float64_py(*fields(texts))
    assert bad == -1
    col = pandas_column(texts, dtype=np.float64)
    assert bits(values).tolist() == bits(col.to_numpy()).tolist()


@given(
    st.lists(st.floats(-1e12, 1e12).map(lambda x: f"{x:,.6f}"), min_size=1, max_size=20),
    st.sampled_from([(".", ","), (",", "."), (",", " "), (".", "'"), (",", None)]),
)
def test_separators_property(texts: list[str], seps: tuple[str, str | None]) -> None:
    dec, tsep = seps
    local = [t.replace(",", "\0").replace(".", dec).replace("\0", tsep or "") for t in texts]
    values, bad = parse_float64_py(*fields(local), None, dec, tsep)
    assert bad == -1
    assert values.tolist() == [pyfloat(t, dec, tsep) for t in local]


@given(st.lists(st.text("0123456789+-. \teE,i", min_size=1, max_size=7), min_size=1, max_size=40))
def test_acceptance_matches_pandas(texts: list[str]) -> None:
    texts = [t for t in dict.fromkeys(texts) if t.strip()]  # a blank line is no row for pandas
    # pandas' quirk, not followed: after a leading '+', and only then, it reads "+5e 1" as 50
    # (blanks between the exponent's 'e' and its digits); "5e 1" and "-5e 1" stay text there.
    texts = [t for t in texts if not _PLUS_SPACED_EXPONENT.match(t)]
    assume(texts)
    as_int, as_float, pd_values = pandas_reads(texts)
    for k, t in enumerate(texts):
        buf, starts, ends = fields([t])
        status = parse_int64(buf, starts, ends)[1]
        assert (status in (FITS_INT64, NEEDS_UINT64)) == as_int[k], t
        values, bad = parse_float64_py(buf, starts, ends)
        assert (bad == -1) == as_float[k], t
        if as_float[k]:
            assert bits(values).tolist() == bits([pd_values[k]]).tolist(), t


def test_float_speed() -> None:
    """Prints ns/field on 2 M fields like "12.345" and "-3.1416" (run with -s); no assertion
    on time, only on the values."""
    rng = np.random.default_rng(7)
    n = 2_000_000
    x = np.round(rng.normal(0.0, 100.0, n), 3)
    texts = [f"{v:.3f}" if k % 2 else f"{v / 31:.4f}" for k, v in enumerate(x.tolist())]
    buf, starts, ends = fields(texts, b"\n")
    values, slow, bad = parse_float64(buf, starts, ends)  # compiled already
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        values, slow, bad = parse_float64(buf, starts, ends)
        best = min(best, time.perf_counter() - t0)
    assert bad == -1 and slow.size == 0
    check = rng.integers(0, n, 1000)
    assert values[check].tolist() == [float(texts[k]) for k in check]
    ints = [str(v) for v in rng.integers(-(10**6), 10**6, n).tolist()]
    ibuf, istarts, iends = fields(ints, b"\n")
    parse_int64(ibuf, istarts, iends)
    ibest = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        parse_int64(ibuf, istarts, iends)
        ibest = min(ibest, time.perf_counter() - t0)
    print(
        f"\nparse_float64: {best * 1e9 / n:.1f} ns/field ({n / best / 1e6:.0f} M fields/s); "
        f"parse_int64: {ibest * 1e9 / n:.1f} ns/field, best of 5 on {n} fields"
    )


# --- booleans and inference --------------------------------------------------------------------


def test_booleans_as_pandas() -> None:
    texts = ["True", "TRUE", "true", "tRUE", "False", "FALSE", "false", "FaLsE"]
    values, bad = parse_bool(*fields(texts))
    assert bad == -1 and values.tolist() == [True] * 4 + [False] * 4
    assert pandas_column(texts).dtype == np.bool_
    for b in [" True", "True ", "1", "0", "t", "yes", "", "Truee", "fals"]:
        assert parse_bool(*fields(["true", b]))[1] == 1, b
        if b:  # an empty line is no row for pandas
            assert pandas_column(["True", b]).dtype != np.bool_
    values, bad = parse_bool(*fields(["true", "NA"]), np.array([False, True]))
    assert bad == -1 and values.tolist() == [True, False]


@pytest.mark.parametrize(
    ("texts", "mask", "dtype"),
    [
        (["True", "false"], IS_BOOL, np.bool_),
        (["1", "0"], IS_INT64 | IS_UINT64 | IS_FLOAT64, np.int64),
        (["-1", "2"], IS_INT64 | IS_FLOAT64, np.int64),
        (["9223372036854775808", "1"], IS_UINT64 | IS_FLOAT64, np.uint64),
        (["9223372036854775808", "-1"], IS_FLOAT64, np.float64),
        (["18446744073709551616"], IS_FLOAT64, np.float64),
        (["1.5", "2"], IS_FLOAT64, np.float64),
        (["1e5", "inf"], IS_FLOAT64, np.float64),
        (["True", "1"], 0, None),
        (["1.5", "abc"], 0, None),
        (["2020-01-01"], 0, None),
    ],
)
def test_classify_and_lattice(texts: list[str], mask: int, dtype: type | None) -> None:
    buf, starts, ends = fields(texts)
    got = classify(buf, starts, ends)
    assert got == mask
    assert infer_type(got, False) == (None if dtype is None else np.dtype(dtype))
    # Where pandas infers a number or bool, it is the same type.
    col = pandas_column(texts)
    if col.dtype.kind in "biuf":
        assert np.dtype(dtype) == col.dtype


def test_missing_values_make_int_and_bool_columns_float() -> None:
    buf, starts, ends = fields(["1", "NA", "3"])
    na = np.array([False, True, False])
    mask = classify(buf, starts, ends, na)
    assert mask == IS_INT64 | IS_UINT64 | IS_FLOAT64
    assert infer_type(mask, has_missing=True) == np.float64
    buf, starts, ends = fields(["true", "", "false"])
    na = np.array([False, True, False])
    assert infer_type(classify(buf, starts, ends, na), has_missing=True) == np.float64
    # All missing: every type fits; the column is float64 (all NaN), as in pandas.
    mask = classify(buf, starts, ends, np.ones(3, bool))
    assert mask == IS_BOOL | IS_INT64 | IS_UINT64 | IS_FLOAT64
    assert infer_type(mask, has_missing=True) == np.float64
    assert pandas_column(["NA", "NA"], na_values=["NA"]).dtype == np.float64


# --- fast paths ----------------------------------------------------------------------------------

# Fields the 8-byte fast paths take (short signed decimals) and fields near them that they must
# hand to the general parsers (signs, separators, blanks, exponents, 9 bytes and more).
SHORT_DECIMALS = st.from_regex(r"\A-?[0-9]{0,9}([.,][0-9]{0,9})?\Z")
NEAR_NUMBERS = st.text("0123456789-+.,e \t", max_size=10)
SEPARATORS = [(".", None), (",", None), (",", "."), (".", ","), (".", " ")]


def padded(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fields() with 8 junk bytes at the end, so that every field may take the fast path."""
    buf, starts, ends = fields(texts)
    return np.concatenate([buf, np.frombuffer(b"12345678", np.uint8)]), starts, ends


@given(
    st.lists(st.one_of(SHORT_DECIMALS, NEAR_NUMBERS), min_size=1, max_size=40),
    st.sampled_from(SEPARATORS),
    st.data(),
)
def test_fast_paths_equal_the_general_parsers(
    texts: list[str], seps: tuple[str, str | None], data: st.DataObject
) -> None:
    buf, starts, ends = padded(texts)
    na = np.array(data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts))))
    dec, tsep = ord(seps[0]), -1 if seps[1] is None else ord(seps[1])
    for kernel, dtype in ((parse_int64_kernel, np.int64), (parse_uint64_kernel, np.uint64)):
        fast, general = np.zeros(len(texts), dtype), np.ones(len(texts), dtype)
        status = kernel(buf, starts, ends, na, tsep, fast, True)
        assert status == kernel(buf, starts, ends, na, tsep, general, False)
        done = status if status >= 0 else len(texts)
        assert fast[:done].tolist() == general[:done].tolist()
    fast, general = np.zeros(len(texts)), np.ones(len(texts))
    slow_fast, slow_general = np.empty(len(texts), np.int64), np.empty(len(texts), np.int64)
    nslow, bad = parse_float64_kernel(buf, starts, ends, na, dec, tsep, fast, slow_fast, True)
    expected = parse_float64_kernel(buf, starts, ends, na, dec, tsep, general, slow_general, False)
    assert (nslow, bad) == expected
    done = bad if bad >= 0 else len(texts)
    assert bits(fast[:done]).tolist() == bits(general[:done]).tolist()
    assert slow_fast[:nslow].tolist() == slow_general[:nslow].tolist()
    for k in range(len(texts)):  # every prefix: the masks on the way, not only the last one
        sub = (buf, starts[: k + 1], ends[: k + 1], na[: k + 1], dec, tsep)
        assert classify_kernel(*sub, True) == classify_kernel(*sub, False)
    # a non-contiguous block (8-byte loads then read byte by byte)
    wide = np.zeros(2 * len(buf), np.uint8)
    wide[::2] = buf
    strided = np.zeros(len(texts))
    assert parse_float64_kernel(wide[::2], starts, ends, na, dec, tsep, strided, slow_fast) == (
        nslow,
        bad,
    )
    assert bits(strided[:done]).tolist() == bits(fast[:done]).tolist()


def test_fast_paths_at_the_edges() -> None:
    text = "- . -. -0 -0.0 0. .0 12345678 -1234567 1234.567 -123.456 12345678. 1.2.3 --1 1-2"
    text += " 99999999 0000000. -9.9999999 -0.00 00000001"
    texts = text.split()
    buf, starts, ends = padded(texts)
    for i, t in enumerate(texts):
        one = (buf, starts[i : i + 1], ends[i : i + 1])
        values, status = parse_int64(*one)
        uvalues, ustatus = parse_uint64(*one)
        if re.fullmatch(r"-?[0-9]+", t):
            assert status == FITS_INT64 and values.tolist() == [int(t)], t
            if int(t) >= 0:
                assert ustatus == FITS_INT64 and uvalues.tolist() == [int(t)], t
            else:
                assert ustatus == NEEDS_FLOAT64, t
        else:
            assert status == ustatus == 0, t
    for i, t in enumerate(texts):
        values, bad = parse_float64_py(buf, starts[i : i + 1], ends[i : i + 1])
        try:
            expected = float(t)
        except ValueError:
            assert bad == 0, t
            continue
        assert bad == -1 and bits(values).tolist() == bits([expected]).tolist(), t


_FLOAT_TEXTS = st.sampled_from(
    [
        "0", "-0", "1.5", "-12.25", ".5", "5.", "12345678", "1234567.8", "123456789", "-1.2345678",
        "1e5", " 7", "+3", "inf", "-Infinity", "", "NA", "abc", "2024-01-01", "1,5", "1,234.5",
        "12.", "-", ".", "1.2.3", "9" * 20,
    ]
)  # fmt: skip


@given(
    st.lists(_FLOAT_TEXTS, min_size=1, max_size=30),
    st.integers(0, 9),
    st.sampled_from([(".", None), (".", ","), (",", ".")]),
    st.data(),
)
def test_fast_kernel_first_agrees_with_the_general_kernel(texts, tail, seps, data):
    """parse_float64 (the fast path's kernel, a byte check, then the general kernel from the
    first field the fast one refuses; fields near the block's end included) gives the general
    kernel's values, slow fields and bad index."""
    dec, tsep = seps
    buf, starts, ends = fields(texts)
    buf = np.concatenate([buf, np.zeros(tail, np.uint8)])
    na = np.array(data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts))))
    d, t = ord(dec), -1 if tsep is None else ord(tsep)
    for mask in (None, na):
        values, slow, bad = parse_float64(buf, starts, ends, mask, dec, tsep)
        want = np.empty(len(texts))
        want_slow = np.empty(len(texts), np.int64)
        use = np.zeros(0, np.bool_) if mask is None else mask
        nslow, want_bad = parse_float64_kernel(buf, starts, ends, use, d, t, want, want_slow, False)
        assert bad == want_bad
        if bad < 0:
            assert slow.tolist() == want_slow[:nslow].tolist()
            assert bits(values).tolist() == bits(want).tolist()


_INT_TEXTS = st.one_of(
    int_texts().map(lambda item: item[1]),
    st.text("0123456789-+, \t", max_size=22),
    st.from_regex(r"\A-?[0-9]{1,25}\Z"),
    st.sampled_from(["", "-", "+", "1,234", "2024-01-01", "NA", "1e5", "12.5", "1 2", "9" * 30]),
    st.sampled_from([str(v) for v in (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64)]),
)


@given(
    st.lists(_INT_TEXTS, min_size=0, max_size=40),
    st.sampled_from([-1, ord(","), ord(" ")]),
    st.integers(0, 9),
    st.booleans(),
    st.data(),
)
def test_numpy_int_parser_equals_the_kernel(texts, tsep, tail, strided, data):
    """The numpy version that reads a small file's integers while the kernel is not compiled
    gives the kernel's status and values (up to a bad field), missing values, fields at the
    block's end, thousands separators and strided offsets included."""
    buf, starts, ends = (
        fields(texts) if texts else (np.zeros(1, np.uint8), *[np.zeros(0, np.int64)] * 2)
    )
    buf = np.concatenate([buf[: len(buf) - 1], np.frombuffer(b"12345678"[:tail], np.uint8)])
    if strided:  # column 0 of two: every other field
        starts, ends = starts[::2], ends[::2]
    n = len(starts)
    na = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), np.bool_)
    for mask in (np.zeros(0, np.bool_), na):
        got, want = np.full(n, 7, np.int64), np.full(n, 7, np.int64)
        status = parse_int64_numpy(buf, starts, ends, mask, tsep, got)
        assert status == parse_int64_kernel(buf, starts, ends, mask, tsep, want, True)
        done = status if status >= 0 else n
        assert got[:done].tolist() == want[:done].tolist()
