"""CSV date-time kernels: ISO 8601 as pandas reads it, formats as ``datetime.strptime`` reads them.

References: ``pandas.to_datetime(..., format="ISO8601", utc=True)`` for ISO fields and Python's
``datetime.strptime`` (converted to UTC) for formats; every value is compared in nanoseconds,
and a field one side rejects must be rejected by the other.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from colvault.kernels.csv import jit as csvjit
from colvault.kernels.csv.dates import (
    NAT,
    compile_format,
    parse_format_datetime,
    parse_iso_datetime,
    parse_iso_datetime_kernel,
)


@pytest.fixture(autouse=True, scope="module", params=["kernels", "python"])
def path(request):
    """Every test runs twice: with the kernels, and with the Python version of the ISO parser
    that reads the fields of small inputs while the kernel is not compiled yet."""
    chosen = csvjit.in_python
    csvjit.in_python = lambda kernel, nfields: request.param == "python"
    yield request.param
    csvjit.in_python = chosen


EPOCH = dt.datetime(1970, 1, 1)
NS_MIN = -(2**63) + 1
NS_MAX = 2**63 - 1


def fields(texts: list[str], sep: bytes = b",") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buf, starts, ends) of ``texts`` written one after the other with ``sep`` between."""
    raw = [t.encode() for t in texts]
    lens = np.fromiter(map(len, raw), np.int64, len(raw))
    ends = np.cumsum(lens + len(sep)) - len(sep)
    buf = np.frombuffer(sep.join(raw) + sep, np.uint8).copy()
    return buf, ends - lens, ends


def iso_one(text: str) -> int | None:
    values, bad = parse_iso_datetime(*fields([text]))
    return None if bad == 0 else int(values[0])


def pandas_iso(text: str) -> int | None:
    """pandas' reading of one ISO 8601 text, in ns UTC; None if it refuses it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts = pd.to_datetime(pd.Series([text]), format="ISO8601", utc=True)
        if ts.isna()[0]:
            return None
        return int(ts.dt.as_unit("ns").astype("int64")[0])
    except (ValueError, OverflowError):
        return None


def ns(d: dt.datetime, extra_ns: int = 0) -> int:
    return (d - EPOCH) // dt.timedelta(microseconds=1) * 1000 + extra_ns


# --- ISO 8601 ----------------------------------------------------------------------------------

ISO_OK = [
    "2020-01-01",
    "2020-01-01T10:20",
    "2020-01-01 10:20",
    "2020-01-01T10:20:30",
    "2020-01-01T10:20:30.5",
    "2020-01-01T10:20:30.123456789",
    "2020-01-01T10:20:30.1234567899",  # beyond ns: truncated, as pandas
    "2020-01-01T10:20:30.",  # pandas accepts an empty fraction
    "2020-01-01T10:20:30Z",
    "2020-01-01T10:20Z",
    "2020-01-01 10:20:30 Z",
    "2020-01-01T10:20:30+05:30",
    "2020-01-01T10:20:30+0530",
    "2020-01-01T10:20:30+05",
    "2020-01-01T10:20:30-00",
    "2020-01-01T10:20:30-23:59",
    "2020-01-01T10:20:30.123+01:00",
    "2020-01-01T10:20:30 +05:30",
    "2020-01-01T10:20:30  +05:00",
    "2020-01-01T00:00:00-00:30",
    " 2020-01-01",
    "\t2020-01-01",
    "2020-01-01T10:20:30 ",
    "2000-02-29",
    "1900-02-28",
    "2262-04-11T23:47:16.854775807",  # the largest datetime64[ns]
    "1677-09-21T00:12:43.145224193",  # the smallest one (NaT is one below)
    "2262-04-12T01:00+02:00",  # out of range locally, inside in UTC
]
ISO_BAD = [
    "",
    "2020-01-01T",
    "2020-01-01  10:20",  # two spaces
    "2020-01-01t10:20",
    "2020-01-01T10:20:30z",
    "2020-01-01T10:20.5",  # fraction of minutes
    "2020-01-01Z",
    "2020-01-01+05:00",
    "1900-02-29",
    "2021-02-29",
    "2020-13-01",
    "2020-00-01",
    "2020-01-00",
    "2020-04-31",
    "2020-01-01T24:00",
    "2020-01-01T23:60",
    "2020-01-01T23:59:60",
    "2020-01-01T10:20:30+24:00",
    "2020-01-01T10:20:30+05:60",
    "2020-01-01T10:20:30+05:30:15",
    "2020-01-01T10:20:30+05:00Z",
    "2020-01-01T10:20:30,5",
    "2020-W01-1",
    "2020-01-01T10:20:30UTC",
    "+2020-01-01",
    "2262-04-11T23:47:16.854775808",  # beyond int64 ns
    "1677-09-21T00:12:43.145224192",  # int64 min is NaT
    "1677-09-20",
    "0001-01-01",
]
# pandas reads these, and they are refused here on purpose (see the module docstring):
# years and YYYYMMDD must stay integers; one-digit fields, an hour alone and sloppy offsets
# are more likely typos than dates.
ISO_PANDAS_ONLY = [
    "2020",
    "2020-01",
    "20200101",
    "2020-1-1",
    "2020-01-01T1:20",
    "2020-01-01T10:2",
    "2020-01-01T10",
    "2020-01-01T10:20:30+5",
    "2020-01-01T10:20:30+05:3",
    "2020-01-01T10:20:30+053",
]


def test_iso_accepted_as_pandas() -> None:
    for text in ISO_OK:
        assert iso_one(text) is not None, text
        assert iso_one(text) == pandas_iso(text), text


def test_iso_rejected() -> None:
    for text in ISO_BAD:
        assert iso_one(text) is None, text
        assert pandas_iso(text) is None, text


def test_iso_differences_from_pandas() -> None:
    for text in ISO_PANDAS_ONLY:
        assert iso_one(text) is None, text
        assert pandas_iso(text) is not None, text
    # pandas refuses trailing whitespace after a date alone; here surrounding whitespace is
    # trimmed the same way everywhere.
    assert pandas_iso("2020-01-01 ") is None
    assert iso_one("2020-01-01 ") == ns(dt.datetime(2020, 1, 1))
    # pandas refuses fractions of more than 18 digits; here they are truncated like the others.
    assert iso_one("2020-01-01T00:00:00." + "1" * 24) == ns(dt.datetime(2020, 1, 1), 111111111)


def test_iso_missing_bad_index_and_strides() -> None:
    texts = ["2020-01-01", "NA", "2020-01-02T00:00Z", "oops", "2020-01-03", "x"]
    buf, starts, ends = fields(texts)
    na = np.array([t in ("NA", "x") for t in texts])
    values, bad = parse_iso_datetime(buf, starts, ends, na)
    assert bad == 3
    values, bad = parse_iso_datetime(buf, starts[0::2], ends[0::2], na[0::2])
    day = 86400 * 10**9
    assert bad == -1 and values.tolist() == [18262 * day, 18263 * day, 18264 * day]
    values, bad = parse_iso_datetime(buf, starts[1::2], ends[1::2], na[1::2])
    assert bad == 1 and values[0] == NAT
    assert values[:1].view("datetime64[ns]")[0] != values[:1].view("datetime64[ns]")[0]  # NaT


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """A datetime between 1678 and 2261 written in one of the accepted ISO forms."""
    d = draw(st.datetimes(dt.datetime(1678, 1, 1), dt.datetime(2261, 12, 31)))
    text = d.strftime("%Y-%m-%d")
    precision = draw(st.sampled_from(["date", "minutes", "seconds", "fraction"]))
    if precision == "date":
        return text
    text += draw(st.sampled_from(["T", " "])) + d.strftime("%H:%M")
    if precision in ("seconds", "fraction"):
        text += d.strftime(":%S")
    if precision == "fraction":
        text += "." + draw(st.text("0123456789", min_size=1, max_size=12))
    sign = draw(st.sampled_from(["", "Z", "+", "-"]))
    if sign in ("+", "-"):
        hh = draw(st.integers(0, 23))
        mm = draw(st.integers(0, 59))
        style = draw(st.sampled_from([f"{hh:02d}:{mm:02d}", f"{hh:02d}{mm:02d}", f"{hh:02d}"]))
        sign += style
    return text + draw(st.sampled_from(["", " "])) * bool(sign) + sign


@given(st.lists(iso_texts(), min_size=1, max_size=20))
def test_iso_matches_pandas(texts: list[str]) -> None:
    values, bad = parse_iso_datetime(*fields(texts))
    assert bad == -1
    assert values.tolist() == [pandas_iso(t) for t in texts]


@st.composite
def near_iso_texts(draw: st.DrawFn) -> str:
    """ISO texts, some with one byte replaced or cut short, any year, day or time."""
    date = f"{draw(st.integers(0, 9999)):04d}-{draw(st.integers(0, 19)):02d}-"
    date += f"{draw(st.integers(0, 39)):02d}"
    clock = f"{draw(st.integers(0, 29)):02d}:{draw(st.integers(0, 69)):02d}"
    clock += f":{draw(st.integers(0, 69)):02d}." + draw(st.text("0123456789", max_size=11))
    text = date + draw(st.sampled_from(["T", " ", "t", "_"])) + clock
    text = text[: draw(st.integers(8, len(text)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(list("0:-.T Z+/a"))) + text[at + 1 :]
    return text


@given(
    st.lists(st.one_of(iso_texts(), near_iso_texts()), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
)
def test_iso_fast_path_equals_the_general_parser(texts: list[str], rnd) -> None:
    """Runs of one date (the fast path keeps the last date's day number) and edge texts, with
    32 bytes after the last field so that every field may take the fast path."""
    texts = sorted(texts, key=lambda t: t[:10]) if rnd.random() < 0.5 else texts
    buf, starts, ends = fields(texts)
    buf = np.concatenate([buf, np.frombuffer(b"2020-01-01 00:00:00.0000000000000", np.uint8)])
    na = np.array([rnd.random() < 0.1 for _ in texts])
    fast, general = np.zeros(len(texts), np.int64), np.ones(len(texts), np.int64)
    bad = parse_iso_datetime_kernel(buf, starts, ends, na, fast, True)
    assert bad == parse_iso_datetime_kernel(buf, starts, ends, na, general, False)
    done = bad if bad >= 0 else len(texts)
    assert fast[:done].tolist() == general[:done].tolist()
    for i, t in enumerate(texts):  # each field on its own (no previous date)
        one = (buf, starts[i : i + 1], ends[i : i + 1], na[i : i + 1])
        f, g = np.zeros(1, np.int64), np.ones(1, np.int64)
        assert parse_iso_datetime_kernel(*one, f, True) == parse_iso_datetime_kernel(*one, g, False)
        assert f[0] == g[0] or parse_iso_datetime_kernel(*one, g, False) == 0, t


@given(st.integers(1678, 2261), st.integers(0, 13), st.integers(0, 32))
def test_iso_calendar_validation(year: int, month: int, day: int) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}"
    try:
        expected: int | None = ns(dt.datetime(year, month, day))
    except ValueError:
        expected = None
    assert iso_one(text) == expected
    assert pandas_iso(text) == expected


# --- strptime-like formats ---------------------------------------------------------------------


def strptime_ns(text: str, fmt: str) -> int | None:
    """Python's reading of ``text`` in ns UTC; None if it refuses it or it is out of range."""
    try:
        d = dt.datetime.strptime(text, fmt)
    except ValueError:
        return None
    if d.tzinfo is not None:
        off = d.utcoffset()
        assert off is not None
        v = ns(d.replace(tzinfo=None)) - off // dt.timedelta(microseconds=1) * 1000
    else:
        v = ns(d)
    return v if NS_MIN <= v <= NS_MAX else None


def format_one(text: str, fmt: str) -> int | None:
    values, bad = parse_format_datetime(*fields([text]), None, compile_format(fmt))
    return None if bad == 0 else int(values[0])


FORMAT_CASES = [
    ("2021-03-04 05:06:07", "%Y-%m-%d %H:%M:%S"),
    ("04/03/21 5:06 PM", "%d/%m/%y %I:%M %p"),
    ("September 3, 2021 10:20:30.25 +05:30", "%B %d, %Y %H:%M:%S.%f %z"),
    ("1 2", "%m%d"),  # %m takes "1", then %d matches " 2"
    ("12  5", "%m %d"),  # whitespace in the format matches a run
    ("12\t\n5", "%m %d"),
    ("159", "%H%M"),  # %H backtracks from "15"? no: "15" then %M "9"
    ("1059", "%H%M"),
    ("2021366", "%Y%j"),  # day 366 of a common year: Python gives 2022-01-01
    ("366", "%j"),
    ("061 0229", "%j %m%d"),  # %j wins over month and day; 1904 stands in for the year
    ("12 pm", "%I %p"),
    ("12 am", "%I %p"),
    ("PM 1", "%p %I"),
    ("12", "%I"),
    ("2021-01-05t3", "%Y-%m-%dT%H"),  # literal letters match in any case
    ("+05:30:15.5", "%z"),
    ("Z", "%z"),
    ("-2359", "%z"),
    ("99", "%y"),
    ("68", "%y"),
    ("50%", "%y%%"),
    ("JAN 5", "%b %d"),
    ("mAy", "%B"),
    ("Sep 1", "%b %d"),
    ("2020-02-29", "%Y-%m-%d"),
    ("2021-12-31T23:59:59.999999", "%Y-%m-%dT%H:%M:%S.%f"),
    ("1 1 1 1 1 01", "%m %d %H %M %S %y"),
    (" 5", "%d"),
]
FORMAT_BAD = [
    ("02 29", "%m %d"),  # 1900 is not a leap year
    ("29 feb", "%d %b"),
    ("060 0229", "%j %m%d"),
    ("601", "%S%f"),  # %S takes "60" first, then fails the range check
    ("60", "%S"),
    ("0000", "%Y"),
    ("Sept", "%b"),
    ("jan", "%B"),
    ("z", "%z"),
    ("+2400", "%z"),
    ("+0530:15", "%z"),
    ("+05:3015", "%z"),
    ("125", "%m %d"),
    ("05 ", "%d"),
    ("  5", "%d"),
    ("2021-13-01", "%Y-%m-%d"),
    ("1600-01-01", "%Y-%m-%d"),  # fine for Python, outside datetime64[ns]
    ("", "%Y"),
    ("2021", ""),
]


def test_format_cases_as_strptime() -> None:
    for text, fmt in FORMAT_CASES:
        assert format_one(text, fmt) is not None, (text, fmt)
        assert format_one(text, fmt) == strptime_ns(text, fmt), (text, fmt)
    for text, fmt in FORMAT_BAD:
        assert format_one(text, fmt) is None, (text, fmt)
        assert strptime_ns(text, fmt) is None, (text, fmt)
    assert format_one("", "") == strptime_ns("", "") == ns(dt.datetime(1900, 1, 1))


def test_fraction_takes_nine_digits() -> None:
    # Python's %f stops at 6 digits; pandas' to_datetime (and this) read up to 9, nanoseconds.
    fmt = "%H:%M:%S.%f"
    assert strptime_ns("10:20:30.123456789", fmt) is None
    base = ns(dt.datetime(1900, 1, 1, 10, 20, 30))
    assert format_one("10:20:30.123456789", fmt) == base + 123456789
    assert format_one("10:20:30.1234567", fmt) == base + 123456700
    assert format_one("10:20:30.1234567890", fmt) is None


def test_compile_errors() -> None:
    for fmt, word in [("%a %d", "%a"), ("%Y-%Q", "%Q"), ("%Y%", "stray"), ("% d", "% ")]:
        with pytest.raises(ValueError, match=word):
            compile_format(fmt)
    with pytest.raises(ValueError, match="twice"):
        compile_format("%Y %Y")


def test_format_missing_bad_index_and_strides() -> None:
    texts = ["01/02/2021", "NA", "03/04/2021", "nope", "05/06/2021", ""]
    buf, starts, ends = fields(texts)
    na = np.array([t in ("NA", "") for t in texts])
    program = compile_format("%d/%m/%Y")
    values, bad = parse_format_datetime(buf, starts, ends, na, program)
    assert bad == 3
    values, bad = parse_format_datetime(buf, starts[0::2], ends[0::2], na[0::2], program)
    expected = [
        ns(dt.datetime(2021, 2, 1)),
        ns(dt.datetime(2021, 4, 3)),
        ns(dt.datetime(2021, 6, 5)),
    ]
    assert bad == -1 and values.tolist() == expected
    values, bad = parse_format_datetime(buf, starts[1::2], ends[1::2], na[1::2], program)
    assert bad == 1 and values[0] == NAT


DIRECTIVES = ["Y", "y", "m", "b", "B", "d", "j", "H", "I", "p", "M", "S", "f", "z"]
MONTHS = [dt.date(2000, k, 1).strftime("%B") for k in range(1, 13)]


def render(d: dt.datetime, directive: str, draw: st.DrawFn) -> str:
    """``d`` written under one directive, in one of the ways strptime reads it (padded or not,
    any case)."""

    def num(v: int, width: int) -> str:
        return draw(st.sampled_from([f"{v:0{width}d}", str(v)]))

    def case(word: str) -> str:
        return draw(st.sampled_from([word, word.lower(), word.upper()]))

    if directive == "Y":
        return f"{d.year:04d}"
    if directive == "y":
        return f"{d.year % 100:02d}"
    if directive == "m":
        return num(d.month, 2)
    if directive == "b":
        return case(MONTHS[d.month - 1][:3])
    if directive == "B":
        return case(MONTHS[d.month - 1])
    if directive == "d":
        return draw(st.sampled_from([f"{d.day:02d}", str(d.day), f"{d.day:2d}"]))
    if directive == "j":
        return num(d.timetuple().tm_yday, 3)
    if directive == "H":
        return num(d.hour, 2)
    if directive == "I":
        return num((d.hour - 1) % 12 + 1, 2)
    if directive == "p":
        return case("AM" if d.hour < 12 else "PM")
    if directive == "M":
        return num(d.minute, 2)
    if directive == "S":
        return num(d.second, 2)
    if directive == "f":
        return f"{d.microsecond:06d}"[: draw(st.integers(1, 6))]
    # z
    if draw(st.booleans()):
        return "Z"
    sign = draw(st.sampled_from("+-"))
    hh, mm, ss = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    colon = draw(st.sampled_from([":", ""]))
    tail = draw(st.sampled_from(["", f"{colon}{ss:02d}", f"{colon}{ss:02d}.{ss * 7 % 1000:03d}"]))
    return f"{sign}{hh:02d}{colon}{mm:02d}{tail}"


@st.composite
def formatted(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A random format (distinct directives, literal separators) and texts written with it,
    some of them mutated by one character."""
    chosen = draw(st.lists(st.sampled_from(DIRECTIVES), min_size=1, max_size=6, unique=True))
    seps = draw(st.lists(st.sampled_from(["-", "/", ":", " ", "T", ".", ", ", "", "  ", "%%"]),
                         min_size=len(chosen), max_size=len(chosen)))  # fmt: skip
    if "f" in chosen[:-1] and seps[chosen.index("f")] == "":
        # %f right before another directive: Python's %f stops at 6 digits, this one at 9, so
        # the split differs (see test_fraction_takes_nine_digits)
        seps[chosen.index("f")] = "."
    fmt = "".join(f"%{c}{s}" for c, s in zip(chosen, seps, strict=True))
    texts = []
    for _ in range(draw(st.integers(1, 8))):
        d = draw(st.datetimes(dt.datetime(1678, 1, 1), dt.datetime(2261, 12, 31)))
        text = "".join(
            render(d, c, draw) + s.replace("%%", "%") for c, s in zip(chosen, seps, strict=True)
        )
        if text and draw(st.integers(0, 3)) == 0:
            k = draw(st.integers(0, len(text) - 1))
            text = text[:k] + draw(st.sampled_from(list("0123456789 :-+ZpT"))) + text[k + 1 :]
        texts.append(text)
    return fmt, texts


@given(formatted())
@example(("%j-%b%f  %Y-%y-%m-", ["001-Jan0000000 2000-00-01-"]))  # 7 fraction digits
def test_formats_match_strptime(case: tuple[str, list[str]]) -> None:
    fmt, texts = case
    program = compile_format(fmt)
    for text in texts:
        values, bad = parse_format_datetime(*fields([text]), None, program)
        got = None if bad == 0 else int(values[0])
        want = strptime_ns(text, fmt)
        if want is None and got is not None and "%f" in fmt and re.search(r"\d{7}", text):
            continue  # a mutation made a 7-9 digit fraction: Python's %f stops at 6, ours at 9
        assert got == want, (text, fmt)


_ISO_TEXTS = st.sampled_from(
    [
        "2024-02-29", "2023-12-31 23:59", "2024-01-01T00:00:00", "2024-06-30 12:34:56.123456789",
        "2024-06-30 12:34:56.5", "2024-06-30T12:34:56Z", "2024-06-30 12:34:56+02:00",
        " 2024-06-30 ", "2024-02-30", "2024-13-01", "not a date", "", "NA", "2024-06-30 25:00",
    ]
)  # fmt: skip


@given(st.lists(_ISO_TEXTS, min_size=1, max_size=40), st.integers(0, 3), st.data())
def test_fast_kernel_then_general_agrees_with_the_general_parser(texts, tail, data):
    """parse_iso_datetime (the fast path's kernel, then the general one from the first field it
    refuses, the last fields of a block included) gives the general parser's values and bad
    index."""
    buf, starts, ends = fields(texts, b"\n")
    buf = np.concatenate([buf, np.frombuffer(b"\n" * tail, np.uint8)])  # fields at the end
    na = np.array(data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts))))
    for mask in (None, na):
        got, bad = parse_iso_datetime(buf, starts, ends, mask)
        want = np.empty(len(texts), np.int64)
        use = np.zeros(0, np.bool_) if mask is None else mask
        want_bad = parse_iso_datetime_kernel(buf, starts, ends, use, want, False)
        assert bad == want_bad
        upto = len(texts) if bad < 0 else bad
        assert got[:upto].tolist() == want[:upto].tolist()
