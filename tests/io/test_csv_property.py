"""Property test: random tables written by Python's ``csv`` module with random dialects, imported
with ``import_csv``, read as ``pandas.read_csv`` reads them and as the source data says.

Tables mix integer (int64 and uint64 range), float (``repr`` round-trip and other formats, with a
decimal point or comma), bool, text (delimiters, quotes, CR and LF, unicode; unique values, or a
few labels: a category) and ISO 8601 timestamp columns (``T`` or space, fractions up to
nanoseconds, ``Z`` and offsets), any of them with missing values. They are written with a
delimiter among ``, ; \\t |``, quoting MINIMAL, ALL or NONNUMERIC, and line ends LF, CRLF or CR,
then imported in blocks of a random small size, so that records, quotes and line ends straddle
block boundaries and later blocks widen the types inferred from the first.

Each import must give, column by column:

* what ``pandas.read_csv(path, sep=..., index_col=False, keep_default_na=False,
  na_values=<ours>)`` reads: floats bit for bit, integers and booleans exactly, text equal (our
  missing text is ``""`` where pandas has NaN); timestamps, which pandas leaves as text, equal to
  ``pandas.to_datetime(format="ISO8601", utc=True)`` of that text; a bool column with missing
  values, which pandas keeps as an object column of True/False/NaN, as 1.0/0.0/NaN, and
  integers beyond int64 with missing values, which pandas leaves as text, as float64 (issue 5:
  an int or bool column with missing values becomes float64);
* the source data back (the round trip), with the types issue 5 gives: int64, or uint64 when a
  value is beyond int64; float64 for an int or bool column with missing values; text or category;
* or, when an int column with missing values holds an integer that float64 would round, a
  ``CSVError`` naming the column's first such integer (issue 12, defect 7).

``HYPOTHESIS_PROFILE=ci`` runs 240 examples (four times the profile's 60, tests/conftest.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import colvault
from colvault import import_csv

NA = ["", "NA", "N/A", "NaN", "nan", "null", "NULL"]
DELIMITERS = [",", ";", "\t", "|"]
QUOTING: dict[str, Literal[0, 1, 2, 3]] = {
    "minimal": csv.QUOTE_MINIMAL,
    "all": csv.QUOTE_ALL,
    "nonnumeric": csv.QUOTE_NONNUMERIC,
}
LINE_ENDS = ["\n", "\r\n", "\r"]
EPOCH = dt.datetime(1970, 1, 1)
_DATELIKE = re.compile(r"^\s*\d{4}-\d")


@dataclass
class Column:
    """A source column: the fields as the writer gets them (``""`` for missing), and the
    values they stand for (None for missing)."""

    name: str
    kind: str  # int, float, bool, text, time
    fields: list[Any]
    values: list[Any]


# -- values -----------------------------------------------------------------------------------


def _looks_typed(s: str) -> bool:
    """Text that a reader would take for a number, bool, date or missing value (a text column
    of the round trip holds none of them; pandas would type them too)."""
    t = s.strip()
    if t == "" or s in NA or t.lower() in ("true", "false") or _DATELIKE.match(t):
        return True
    try:
        float(t.replace(",", "."))  # a decimal comma too
    except ValueError:
        return False
    return True


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",;\t|\"'\r\n #.-:éß東\U0001f600 ")),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: not _looks_typed(s))

FLOAT_FORMATS = ["repr", "%.3f", "%.17g", "%e", "%.0e", "%.25f"]


@st.composite
def float_field(draw: st.DrawFn, fmt: str, decimal: str) -> tuple[Any, float]:
    x = draw(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=True),
            st.floats(min_value=-1e6, max_value=1e6),
            st.sampled_from([0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]),
        )
    )
    if x != x or abs(x) == float("inf") or (fmt == "repr" and decimal == "."):
        return x, x  # the writer's own repr (a Python float: unquoted under NONNUMERIC)
    text = repr(x) if fmt == "repr" else fmt % x
    spelled = draw(st.sampled_from(["{}", "{}", " {} ", "{}" if text[0] == "-" else "+{}"]))
    return spelled.format(text.replace(".", decimal)), float(text)


@st.composite
def time_field(draw: st.DrawFn) -> tuple[str, int]:
    """An ISO 8601 text and its nanoseconds since the epoch, UTC."""
    when = draw(st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2250, 1, 1)))
    date = when.strftime("%Y-%m-%d")
    seconds = (when.replace(hour=0, minute=0, second=0, microsecond=0) - EPOCH).days * 86400
    form = draw(st.sampled_from(["date", "minutes", "seconds", "fraction"]))
    if form == "date":
        return date, seconds * 10**9
    sep = draw(st.sampled_from(["T", " "]))
    text = f"{date}{sep}{when:%H:%M}"
    seconds += when.hour * 3600 + when.minute * 60
    nanos = 0
    if form in ("seconds", "fraction"):
        text += f":{when:%S}"
        seconds += when.second
    if form == "fraction":
        digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=9))
        text += "." + digits
        nanos = int(digits.ljust(9, "0"))
    zone = draw(st.sampled_from(["", "Z", "+HH:MM", "+HHMM", "+HH"]))
    if zone == "Z":
        text += "Z"
    elif zone:
        sign = draw(st.sampled_from([1, -1]))
        hours = draw(st.integers(0, 14))
        minutes = draw(st.sampled_from([0, 15, 30, 45])) if zone != "+HH" else 0
        text += "+-"[sign < 0] + zone[1:].replace("HH", f"{hours:02d}").replace(
            "MM", f"{minutes:02d}"
        )
        seconds -= sign * (hours * 3600 + minutes * 60)
    return text, seconds * 10**9 + nanos


@st.composite
def column(draw: st.DrawFn, j: int, nrows: int, decimal: str) -> Column:
    kind = draw(st.sampled_from(["int", "uint", "float", "bool", "text", "label", "time"]))
    labels = draw(st.lists(TEXT, min_size=1, max_size=3))  # a label column's few values
    name = f"c{j}" + draw(st.text(alphabet="abc xyz,;|\"'é_", max_size=4))
    missing_rate = draw(st.sampled_from([0.0, 0.0, 0.2, 1.0]))
    fmt = draw(st.sampled_from(FLOAT_FORMATS))
    # an int column's integers: any, or ones float64 holds (a column with missing values is
    # float64, where an integer it would round is an error)
    span = draw(st.sampled_from(["any", "exact", "double"]))
    ints, uints = {
        "any": (st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**64 - 1)),
        "exact": (st.integers(-(2**53), 2**53), st.integers(0, 2**53)),
        "double": (
            st.integers(-(2**62), 2**62).map(lambda v: int(float(v))),
            st.integers(0, 2**63).map(lambda v: int(float(v))),
        ),
    }[span]
    fields: list[Any] = []
    values: list[Any] = []
    for _ in range(nrows):
        if missing_rate and draw(st.floats(0, 1)) < missing_rate:
            text = kind in ("text", "label")
            fields.append(draw(st.sampled_from(["", "NA", "nan"])) if not text else "")
            values.append(None)
            continue
        v: Any
        if kind == "int":
            v = draw(st.one_of(ints, st.integers(-3, 3)))
            # spellings pandas reads as the same integer: a sign, leading zeros, spaces
            field: Any = draw(
                st.sampled_from([v, v, f"+{v}" if v >= 0 else v, f"{v:05d}", f" {v} "])
                if v
                else st.sampled_from([0, "-0", "+0", "000", " 0 "])
            )
        elif kind == "uint":
            v = draw(st.one_of(uints, st.integers(0, 1000)))
            field = v
        elif kind == "float":
            field, v = draw(float_field(fmt, decimal))
        elif kind == "bool":
            v = draw(st.booleans())
            field = draw(st.sampled_from([str(v), str(v).lower(), str(v).upper()]))
        elif kind == "text":
            v = field = draw(TEXT)
        elif kind == "label":  # few distinct values: a category
            v = field = draw(st.sampled_from(labels))
        else:
            field, v = draw(time_field())
        fields.append(field)
        values.append(v)
    present = [f for f, v in zip(fields, values, strict=True) if v is not None]
    if kind == "float" and present and all(re.fullmatch(r" ?[-+]?\d+ ?", str(f)) for f in present):
        # "%.17g" writes integral values as integers: the column is one of integers
        kind = "int"
        values = [None if v is None else int(f) for f, v in zip(fields, values, strict=True)]
    return Column(name, kind, fields, values)


@dataclass
class Case:
    cols: list[Column]
    delimiter: str
    quoting: str
    line_end: str
    decimal: str
    chunk: int | None


@st.composite
def cases(draw: st.DrawFn) -> Case:
    delimiter = draw(st.sampled_from(DELIMITERS))
    decimal = "." if delimiter == "," else draw(st.sampled_from([".", ".", ","]))
    nrows = draw(st.one_of(st.integers(1, 12), st.integers(1, 150)))
    ncols = draw(st.integers(1, 5))
    return Case(
        cols=[draw(column(j, nrows, decimal)) for j in range(ncols)],
        delimiter=delimiter,
        quoting=draw(st.sampled_from(sorted(QUOTING))),
        line_end=draw(st.sampled_from(LINE_ENDS)),
        decimal=decimal,
        chunk=draw(st.one_of(st.none(), st.integers(1, 300))),
    )


def _write(cols: list[Column], delimiter: str, quoting: str, line_end: str) -> bytes:
    """The table as the csv module writes it. Rows are written with CRLF line ends, so that
    QUOTE_MINIMAL quotes every field holding a CR or an LF, and the row ends are then replaced
    (the writer ends each row with exactly one CRLF)."""
    out = []
    rows = [[c.name for c in cols]] + [list(r) for r in zip(*(c.fields for c in cols), strict=True)]
    for row in rows:
        s = io.StringIO()
        csv.writer(
            s, delimiter=delimiter, quoting=QUOTING[quoting], lineterminator="\r\n"
        ).writerow(row)
        text = s.getvalue()
        assert text.endswith("\r\n")
        out.append(text[:-2] + line_end)
    return "".join(out).encode("utf-8")


# -- the expected values ------------------------------------------------------------------------


def _bits(a: np.ndarray) -> list[int]:
    """float64 bit patterns, every NaN as one."""
    a = np.asarray(a, np.float64)
    return [
        0x7FF8000000000000 if x != x else struct.unpack("<Q", struct.pack("<d", x))[0] for x in a
    ]


def _expected_dtype(c: Column) -> str:
    """Our type for the column (issue 5): text may also be category."""
    present = [v for v in c.values if v is not None]
    if not present:
        return "float64"  # all missing: NaN
    if c.kind in ("int", "uint"):  # missing values or not: nullable then (issue 13)
        return "uint64" if max(present) > 2**63 - 1 else "int64"
    if c.kind == "bool":
        return "bool"
    return {"float": "float64", "text": "text", "label": "text", "time": "datetime64[ns]"}[c.kind]


def _nullable(c: Column) -> bool:
    """Whether the column holds missing values in a validity bitmap: a bool, int or text one
    with missing values and some value (all missing: float64 of NaN)."""
    present = [v for v in c.values if v is not None]
    return bool(present) and len(present) < len(c.values) and c.kind not in ("float", "time")


def _check_round_trip(c: Column, got: np.ndarray, kind: str) -> None:
    assert isinstance(got, np.ma.MaskedArray) == _nullable(c), (c.name, type(got), c.fields)
    if kind == "float64":
        want = [np.nan if v is None else float(v) for v in c.values]
        assert _bits(got) == _bits(np.array(want)), (c.name, got, c.fields)
    elif kind == "text":
        assert got.tolist() == c.values, c.name
    elif kind == "datetime64[ns]":
        nat = np.iinfo(np.int64).min
        assert got.view("i8").tolist() == [nat if v is None else v for v in c.values], (
            c.name,
            c.fields,
        )
    else:
        assert got.tolist() == c.values, (c.name, c.fields)


def _check_pandas(c: Column, got: np.ndarray, kind: str, series: pd.Series) -> None:
    if kind == "datetime64[ns]":
        theirs = pd.to_datetime(series, format="ISO8601", utc=True)
        ns = theirs.dt.tz_localize(None).to_numpy("datetime64[ns]").view("i8")
        assert got.view("i8").tolist() == ns.tolist(), (c.name, c.fields)
    elif kind == "text":
        assert got.tolist() == [None if v != v else v for v in series.tolist()], c.name
    elif _nullable(c):
        # pandas' own answer differs in type, not value: integers with missing values as
        # float64 (or as text beyond int64), true/false with missing values as objects; it
        # leaves some missing values in such text as written ("" among them)
        python = bool if kind == "bool" else float if series.dtype.kind == "f" else int
        theirs = [None if v != v or v in NA else python(v) for v in series.tolist()]
        ours = [None if v is None else python(v) for v in got.tolist()]  # pandas' floats round
        assert ours == theirs, (c.name, series.dtype, c.fields)
    else:
        assert str(series.dtype) == kind, (c.name, series.dtype, c.fields)
        if kind == "float64":
            assert _bits(got) == _bits(series.to_numpy()), (c.name, c.fields)
        else:
            assert got.tolist() == series.tolist(), c.name


# four times the profile's examples (240 in "ci"): 10-20 s on 2 cores
@settings(deadline=None, max_examples=4 * settings().max_examples)
@given(case=cases())
def test_import_reads_what_pandas_reads_and_what_was_written(case: Case) -> None:
    cols, delimiter = case.cols, case.delimiter
    data = _write(cols, delimiter, case.quoting, case.line_end)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(data)
        with colvault.open(Path(tmp) / "s.colvault", "w") as store:
            table = import_csv(
                path,
                store,
                "/t",
                delimiter=delimiter,
                decimal=case.decimal,
                chunk_bytes=case.chunk,
            )
            ours = {name: table.col(name) for name in table.colnames}
            assert table.colnames == [c.name for c in cols]
            dtypes = {name: table.schema[name] for name in table.colnames}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' DtypeWarnings
            df = pd.read_csv(
                path,
                sep=delimiter,
                decimal=case.decimal,
                index_col=False,
                keep_default_na=False,
                na_values=NA,
            )
    assert list(df.columns) == [c.name for c in cols]
    for c in cols:
        got = ours[c.name]
        kind = _expected_dtype(c)
        if kind == "text":
            assert dtypes[c.name].kind in "UO", (c.name, dtypes[c.name])  # text or category
        else:
            assert dtypes[c.name] == np.dtype(kind), (c.name, dtypes[c.name], kind, c.fields)
        _check_round_trip(c, got, kind)
        _check_pandas(c, got, kind, df[c.name])
