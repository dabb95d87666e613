"""A corpus of hand-made CSV files with edge cases, each with the result ``import_csv`` must give.

Every case states its expected columns (name, type, values) here. Where ``pandas.read_csv(path,
index_col=False, keep_default_na=False, na_values=<our defaults>)`` reads the file right, the
case gives the pandas options that match ours (``sep``, ``decimal``, ...) and the test checks
that pandas reads the same values; where pandas' reading is not the right answer, ``why`` says
so and pandas is not consulted.

Each case runs twice: with the default block size and with 16-byte blocks, so that every record,
quote and line end also crosses block boundaries. Types are inferred from the first block, so
with tiny blocks a text column may be ``category`` or plain text (the values are the same);
cases that depend on the block size (widening, a late misfit) give their own.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import colvault
from colvault import CSVError, CSVWarning, import_csv

NA = ["", "NA", "N/A", "NaN", "nan", "null", "NULL"]
NAN = float("nan")
TINY = 16


@dataclass
class Case:
    id: str
    data: bytes
    #: (name, kind, values): kind is a dtype name, "text" (a ``U`` column) or "category";
    #: datetimes are ISO strings in UTC (None for NaT)
    cols: list[tuple[str, str, list[Any]]] | None = None
    kw: dict[str, Any] = field(default_factory=dict)
    #: pandas.read_csv options under which pandas reads the same; None: see ``why``
    pandas: dict[str, Any] | None = field(default_factory=dict)
    #: why pandas' reading is not the right answer (pandas None), or a note on the comparison
    why: str = ""
    #: (message regex, line, column or None, text or None) of the CSVError expected
    error: tuple[str, int | None, str | None, str | None] | None = None
    pandas_raises: bool = False  # pandas rejects the file too
    warns: str | None = None  # regex of the CSVWarning expected
    chunks: tuple[int | None, ...] = (None, TINY)
    #: pandas datetime format per datetime column (pandas reads them as text; its own parser,
    #: ``pandas.to_datetime(utc=True)``, must then agree)
    dates: dict[str, str] = field(default_factory=dict)
    suffix: str = ".csv"  # the file's name ends so (pandas infers compression from it)


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _many(header: bytes, rows: list[bytes]) -> bytes:
    return header + b"\n" + b"\n".join(rows) + b"\n"


TMY3 = (
    b'690150,"TWENTYNINE PALMS",CA,-8.0,34.300,-116.167,626\n'
    b"Date (MM/DD/YYYY),Time (HH:MM),GHI (W/m^2),Dry-bulb (C)\n"
    b"01/01/1988,01:00,0,12.5\n"
    b"01/01/1988,02:00,0,11.0\n"
    b"01/01/1988,03:00,5,10.5\n"
)

LONG_LABEL = "a label much longer than sixteen"
#: integers for 40 rows, then one float: with 64-byte blocks the float is blocks later
LATE_FLOAT = _many(
    b"n,label",
    [b"%d,x%d" % (i, i % 3) for i in range(40)] + [b"2.5," + LONG_LABEL.encode()],
)
LATE_TEXT = _many(b"value,n", [b"%d.25,%d" % (i, i) for i in range(40)] + [b"abc,40"])
LATE_NOT_DATE = _many(
    b"when", [b"2021-03-%02d" % (i + 1) for i in range(28)] + [b"soon", b"2021-04-01"]
)

CASES = [
    Case(
        "empty-file",
        b"",
        error=(r"an empty file", None, None, None),
        pandas_raises=True,
    ),
    Case(
        "blank-lines-only",
        b"\n\r\n\n",
        error=(r"an empty file", None, None, None),
        pandas_raises=True,
    ),
    Case(
        "header-only",
        b"a,b,c\n",
        [("a", "float64", []), ("b", "float64", []), ("c", "float64", [])],
        pandas=None,
        why="pandas gives object columns; with no value to type them, ours are float64, as a "
        "column whose values are all missing (pandas reads such a column as float64 too)",
    ),
    Case("one-column", b"x\n1\n2\n3\n", [("x", "int64", [1, 2, 3])]),
    Case(
        "one-column-no-final-newline-crlf",
        b"x\r\n-1\r\n2",
        [("x", "int64", [-1, 2])],
    ),
    Case(
        "trailing-delimiter-every-line",
        b"a,b,\n1,2,\n3,4,\n",
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
        pandas=None,
        why="pandas makes the trailing delimiter of the header a column 'Unnamed: 2' of NaN; "
        "an exporter that ends every line with a delimiter has no third column",
    ),
    Case(
        "trailing-delimiter-data-lines",
        b"a,b\n1,2,\n3,4,\n",
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
    ),
    Case(
        "trailing-delimiter-header-line",
        # the header's one field more than the rows is its trailing delimiter, no metadata line
        b"a,b,\n1,2\n3,4\n",
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
        pandas={"usecols": ["a", "b"]},
    ),
    Case(
        "trailing-delimiter-header-below-metadata",
        # a BLS series export (statsmodels' macrodata/src/unemp.csv): the names were lost
        b"Series Id:  LNS14000000Q\n\nSeasonally Adjusted\n\nSeries id,Year,Period,Value,\n"
        b"L1,1959,Q01,5.8\nL1,1959,Q02,5.1\nL1,1960,Q01,5.25\n",
        [
            ("Series id", "category", ["L1", "L1", "L1"]),
            ("Year", "int64", [1959, 1959, 1960]),
            ("Period", "text", ["Q01", "Q02", "Q01"]),
            ("Value", "float64", [5.8, 5.1, 5.25]),
        ],
        pandas={"skiprows": 4, "usecols": ["Series id", "Year", "Period", "Value"]},
    ),
    Case(
        "trailing-delimiter-header-below-a-padded-title",
        # the title has as many fields as the header, but only the header is above the rows
        b"Quarterly rates,,,,\nid,Year,Period,Value,\nL1,1959,Q01,5.8\nL1,1959,Q02,5.1\n"
        b"L1,1960,Q01,5.25\n",
        [
            ("id", "category", ["L1", "L1", "L1"]),
            ("Year", "int64", [1959, 1959, 1960]),
            ("Period", "text", ["Q01", "Q02", "Q01"]),
            ("Value", "float64", [5.8, 5.1, 5.25]),
        ],
        pandas={"skiprows": 1, "usecols": ["id", "Year", "Period", "Value"]},
    ),
    Case(
        "empty-last-header-name-with-data",
        b"a,b,\n1,2,3\n4,5,6\n",
        [("a", "int64", [1, 4]), ("b", "int64", [2, 5]), ("col2", "int64", [3, 6])],
        pandas=None,
        why="same values; pandas names the column 'Unnamed: 2', ours 'col2' (issue 5)",
    ),
    Case(
        "empty-last-column-filled-after-the-sample",
        _many(b"a,b,c,", [b"%d,2,," % i for i in range(300)] + [b"300,2,3,4"]),
        [
            ("a", "int64", list(range(301))),
            ("b", "int64", [2] * 301),
            ("c", "Int64", [None] * 300 + [3]),
            ("col3", "Int64", [None] * 300 + [4]),
        ],
        pandas=None,
        why="same values; pandas names the column 'Unnamed: 3', ours 'col3'. The first 300 rows "
        "look like lines that end with a delimiter; the last fills that column, so the header's "
        "empty last name is a column (the file is read again), not a '4 fields where the "
        "header has 3' error",
    ),
    Case(
        "blank-lines",
        b"\na,b\n\n1,2\n \n\r\n\n3,4\n\n",
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
    ),
    Case(
        "quoted-newlines-and-quotes",
        b'id,note\n1,"two\nlines"\n2,"crlf\r\ninside"\n3,"say ""hi"", then, go"\n4,"cr\ronly"\n',
        [
            ("id", "int64", [1, 2, 3, 4]),
            ("note", "text", ["two\nlines", "crlf\r\ninside", 'say "hi", then, go', "cr\ronly"]),
        ],
    ),
    Case(
        "unterminated-quote",
        b'a,b\n1,"fine"\n2,"open\n3,4\n',
        error=(r"unterminated quote", 3, None, '"open'),
        pandas_raises=True,
    ),
    Case(
        "utf8-bom",
        b"\xef\xbb\xbfa,b\n1,2\n",
        [("a", "int64", [1]), ("b", "int64", [2])],
    ),
    Case(
        "latin-1-with-encoding",
        _latin1("name,t\ncafé,1\nnaïve,2\nÆsir,3\n"),
        [("name", "text", ["café", "naïve", "Æsir"]), ("t", "int64", [1, 2, 3])],
        kw={"encoding": "latin-1"},
        pandas={"encoding": "latin-1"},
    ),
    Case(
        "latin-1-read-as-utf-8",
        _latin1("name,t\ncafe,1\nnaïve,2\n"),
        error=(r"not UTF-8", 3, "name", "na"),
        pandas_raises=True,
    ),
    Case(
        "latin-1-header-read-as-utf-8",
        _latin1("température,t\n1,2\n"),
        error=(r"not UTF-8 in header field 0", 1, None, None),
        pandas_raises=True,
    ),
    Case(
        "ragged-row",
        b"a,b\n1,2\n3,4,5\n6,7\n",
        error=(r"3 fields where the header has 2", 3, None, "3,4,5"),
        pandas_raises=True,
    ),
    Case(
        "ragged-row-below-a-trailing-delimiter-header",
        _many(b"a,b,", [b"1,2,"] * 250 + [b"3,4,5,6"]),
        error=(r"4 fields where the header has 3 \(the last empty", 252, None, "3,4,5,6"),
        pandas_raises=True,
        # the header's real field count (3), not the 2 columns its trailing delimiter leaves
        # (the sample's rows all end with a delimiter)
    ),
    Case(
        "ragged-row-below-an-r-row-name-header",
        b'"a","b"\n"1",3,4\n"2",5\n',
        error=(r"2 fields where the header has 2 names over 3 fields", 3, None, "2,5"),
        pandas=None,
        why="pandas reads the short row with a missing value; a short row is ragged",
    ),
    Case(
        "ragged-row-without-header",
        b"1,2\n3,4\n5\n",
        error=(r"1 field where the first row has 2", 3, None, "5"),
        pandas=None,
        why="pandas reads the short row with a missing value; a short row is ragged",
    ),
    Case(
        "ragged-rows-skipped",
        b"a,b\n1,2\n3,4,5\n6,7\n8\n9,10\n",
        [("a", "int64", [1, 6, 9]), ("b", "int64", [2, 7, 10])],
        kw={"on_bad_lines": "skip"},
        warns=r"skipped 2 ragged rows \(first lines: 3, 5\)",
        pandas=None,
        why="pandas skips the long row but pads the short one ('8') with NaN; a short row is "
        "as ragged as a long one",
    ),
    Case(
        "2**63-is-uint64",
        b"n\n9223372036854775808\n1\n18446744073709551615\n",
        [("n", "uint64", [2**63, 1, 2**64 - 1])],
    ),
    Case(
        "-2**63-1-is-an-error",
        b"n\n-9223372036854775809\n1\n",
        error=(r"an integer that float64 cannot hold", 2, "n", "-9223372036854775809"),
        pandas=None,
        why="pandas keeps Python ints in an object column; numpy has no such type, and float64 "
        "would read -2**63 (issue 12, defect 7: integers are not rounded without a word)",
    ),
    Case(
        "-2**63-1-with-schema-float64-is-rounded-with-a-warning",
        b"n\n-9223372036854775809\n1\n",
        [("n", "float64", [-9.223372036854775808e18, 1.0])],
        kw={"schema": {"n": "float64"}},
        warns=r"column 'n': 1 integer rounded to float64.*line 2, '-9223372036854775809'",
        pandas={"dtype": {"n": "float64"}},
    ),
    Case(
        "negative-and-2**63-is-float64",
        b"n\n-1\n9223372036854775808\n",
        [("n", "float64", [-1.0, 9.223372036854775808e18])],
        pandas=None,
        why="pandas reads this mix as strings; int64 and uint64 widen to float64 here",
    ),
    Case(
        "1e400-overflows-to-inf",
        b"x\n1e400\n-1e400\n1e-400\n1.7976931348623157e308\n",
        [("x", "float64", [np.inf, -np.inf, 0.0, 1.7976931348623157e308])],
    ),
    Case(
        "negative-zero",
        b"x\n-0.0\n0.0\n-0e5\n-.0\n",
        [("x", "float64", [-0.0, 0.0, -0.0, -0.0])],
    ),
    Case(
        "minus-zero-integer-with-missing-values",
        b"a,b\n,1\n-0,2\n3,3\n",
        [("a", "Int64", [None, 0, 3]), ("b", "int64", [1, 2, 3])],
        # the column holds integers with a missing value: nullable, -0 is the integer 0
    ),
    Case(
        "minus-zero-integer-in-a-float-column",
        b"a\n1.5\n-0\n",
        [("a", "float64", [1.5, -0.0])],
    ),
    Case(
        "integers-then-a-float-later",
        _many(b"a", [b"NA", b"-0"] * 20 + [b"0.5"]),
        [("a", "float64", [NAN, -0.0] * 20 + [0.5])],
        chunks=(None, 16, 64),
        # once the column holds a float, "-0" is read as the float -0.0, as pandas reads it
    ),
    Case(
        "subnormals",
        b"x\n4.9e-324\n2.4703282292062328e-324\n2.2250738585072009e-308\n1e-320\n"
        b"4.35000000000000000000000000000000000000000000001e-320\n",
        [
            (
                "x",
                "float64",
                [
                    float(s)
                    for s in (
                        "4.9e-324",
                        "2.4703282292062328e-324",
                        "2.2250738585072009e-308",
                        "1e-320",
                        "4.35000000000000000000000000000000000000000000001e-320",
                    )
                ],
            )
        ],
    ),
    Case(
        "integers-a-float64-column-would-round-are-an-error",
        b"x\n9007199254740993\n0.1\n",
        error=(r"an integer that float64 cannot hold", 2, "x", "9007199254740993"),
        pandas=None,
        why="pandas reads 9007199254740993 as 9007199254740992.0 without a word; with 16-byte "
        "blocks the column is int64 until 0.1 widens it (issue 12, defect 7)",
    ),
    Case(
        "hard-roundings",
        b"x\n9007199254740993\n0.1\n2.2250738585072011e-308\n123456789012345678901234567890\n"
        b"1.00000000000000011102230246251565404236316680908203125\n",
        [
            (
                "x",
                "float64",
                [
                    9007199254740992.0,
                    0.1,
                    float("2.2250738585072011e-308"),
                    1.2345678901234568e29,
                    1.0,
                ],
            )
        ],
        # two integer texts float64 rounds: the schema asks for float64, so they are rounded
        kw={"schema": {"x": "float64"}},
        warns=r"column 'x': 2 integers rounded to float64, .*first: line 2, '9007199254740993'",
    ),
    Case(
        "decimal-comma-semicolon",
        b"sensor;value;temp\n1;0,5;-3,25\n2;1234,125;NA\n",
        [
            ("sensor", "int64", [1, 2]),
            ("value", "float64", [0.5, 1234.125]),
            ("temp", "float64", [-3.25, NAN]),
        ],
        kw={"decimal": ","},
        pandas={"sep": ";", "decimal": ","},
    ),
    Case(
        "thousands-separators",
        b"count;amount\n1.234.567;1.234,5\n-2;0,5\n",
        [("count", "int64", [1234567, -2]), ("amount", "float64", [1234.5, 0.5])],
        kw={"decimal": ",", "thousands": "."},
        pandas={"sep": ";", "decimal": ",", "thousands": "."},
    ),
    Case(
        "quoted-thousands",
        b'count,b\n"1,234",5\n"12,345,678",6\n',
        [("count", "int64", [1234, 12345678]), ("b", "int64", [5, 6])],
        kw={"thousands": ","},
        pandas={"thousands": ","},
    ),
    Case(
        "metadata-line-tmy3",
        TMY3,
        [
            ("Date (MM/DD/YYYY)", "category", ["01/01/1988"] * 3),
            ("Time (HH:MM)", "text", ["01:00", "02:00", "03:00"]),
            ("GHI (W/m^2)", "int64", [0, 0, 5]),
            ("Dry-bulb (C)", "float64", [12.5, 11.0, 10.5]),
        ],
        pandas={"skiprows": 1},
    ),
    Case(
        "comment-lines",
        b"# exported by logger 7\na,b\n1,2\n# paused\n3,4 # after a value\n",
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
        kw={"comment": "#"},
        pandas={"comment": "#"},
    ),
    Case(
        "mixed-line-ends",
        b"a,b\r\n1,2\r3,4\n5,6\r\n7,8",
        [("a", "int64", [1, 3, 5, 7]), ("b", "int64", [2, 4, 6, 8])],
    ),
    Case(
        "cr-line-ends",
        b"a,b\r1,x\r2,y\r",
        [("a", "int64", [1, 2]), ("b", "text", ["x", "y"])],
    ),
    Case(
        "tab-delimiter",
        b"a\tb c\n1\t2.5\n3\t4.5\n",
        [("a", "int64", [1, 3]), ("b c", "float64", [2.5, 4.5])],
        pandas={"sep": "\t"},
    ),
    Case(
        "pipe-delimiter",
        b"a|b\n1|x,y\n2|z;w\n",
        [("a", "int64", [1, 2]), ("b", "text", ["x,y", "z;w"])],
        pandas={"sep": "|"},
    ),
    Case(
        "space-delimiter",
        b"a b\n1 2.5\n3 4.5\n",
        [("a", "int64", [1, 3]), ("b", "float64", [2.5, 4.5])],
        pandas={"sep": " "},
    ),
    Case(
        "headerless-numeric",
        b"1,2.5\n3,4.5\n5,6.5\n",
        [("col0", "int64", [1, 3, 5]), ("col1", "float64", [2.5, 4.5, 6.5])],
        pandas={"header": None, "names": ["col0", "col1"]},
    ),
    Case(
        "headerless-first-row-with-a-missing-value",
        b"1,,x\n2,3.5,y\n4,5.5,x\n",
        [
            ("col0", "int64", [1, 2, 4]),
            ("col1", "float64", [NAN, 3.5, 5.5]),
            ("col2", "text", ["x", "y", "x"]),
        ],
        pandas={"header": None, "names": ["col0", "col1", "col2"]},
    ),
    Case(
        "numeric-names-quoted-header",
        b'"year","1940","1945"\n"a",1.5,2\n"b",3.5,4\n',
        [
            ("year", "text", ["a", "b"]),
            ("1940", "float64", [1.5, 3.5]),
            ("1945", "int64", [2, 4]),
        ],
        # R's write.csv quotes names and text, not numbers: a quoted "1940" over unquoted
        # numbers is a name (pydataset's R data sets, issue 13)
    ),
    Case(
        "r-write-csv-row-names",
        b'"","1940","1945"\n"1",1.5,2\n"2",3.5,4\n',
        [
            ("col0", "int64", [1, 2]),
            ("1940", "float64", [1.5, 3.5]),
            ("1945", "int64", [2, 4]),
        ],
        pandas=None,
        why="same values; pandas names the row-name column 'Unnamed: 0', ours 'col0' (issue 5)",
    ),
    Case(
        "row-names-header-unquoted",
        b",1940,1945\n1,1.5,2\n2,3.5,4\n",
        [
            ("col0", "int64", [1, 2]),
            ("1940", "float64", [1.5, 3.5]),
            ("1945", "int64", [2, 4]),
        ],
        pandas=None,
        why="same values; pandas names the column 'Unnamed: 0', ours 'col0'. A first field "
        "empty in the first row only is R's row-name header, whatever the other names are",
        warns=r"the first row read as a header .*give header=False if it is data",
    ),
    Case(
        "header-guess-from-mixed-evidence",
        b"id,1940\n1,2.5\n2,3.5\n",
        [("id", "int64", [1, 2]), ("1940", "float64", [2.5, 3.5])],
        warns=r"the first row read as a header .*give header=False if it is data",
        # 'id' over numbers says header, '1940' over numbers says data: a guess, said so
    ),
    Case(
        "r-header-one-field-short",
        b'"a","b"\n"1",3,4\n"2",5,6\n',
        [("col0", "int64", [1, 2]), ("a", "int64", [3, 5]), ("b", "int64", [4, 6])],
        pandas=None,
        why="R's write.table writes no name above the row names; pandas.read_csv makes that "
        "first column the index (reset_index() names it 'index'; index_col=False drops the "
        "last column). Ours imports every field, the nameless first column as 'col0', as the "
        "empty first name write.csv writes there",
    ),
    Case(
        "r-write-table-default-space-separated",
        b'"mpg" "cyl"\n"Mazda RX4" 21 6\n"Datsun 710" 22.8 4\n"Valiant" 18.1 6\n',
        [
            ("col0", "text", ["Mazda RX4", "Datsun 710", "Valiant"]),
            ("mpg", "float64", [21.0, 22.8, 18.1]),
            ("cyl", "int64", [6, 4, 6]),
        ],
        pandas=None,
        why="R's write.table writes spaces, quoted text and no name above the row names; "
        "pandas.read_csv(sep=' ') makes the row names the index, ours the column 'col0'",
    ),
    Case(
        "r-write-table-one-column",
        b'"x"\n"1" 9172\n"2" 9350\n"3" 9483.5\n',
        [("col0", "int64", [1, 2, 3]), ("x", "float64", [9172.0, 9350.0, 9483.5])],
        pandas=None,
        why="R's write.table of one column (MASS galaxies, 22 of pydataset's data sets): a "
        "quoted name over a quoted row name and a value; the space is the delimiter, not part "
        "of one column's text as in 'time' over '2021-03-01 10:00'. pandas.read_csv(sep=' ') "
        "makes the row names the index",
    ),
    Case(
        "r-write-table-comma-in-some-texts",
        b'"n" "job"\n"1" 17 "Managers, Officials"\n"2" 13 "Trade"\n"3" 9 "Clerks, kindred"\n'
        b'"4" 2 "Craftsmen, foremen"\n',
        [
            ("col0", "int64", [1, 2, 3, 4]),
            ("n", "int64", [17, 13, 9, 2]),
            (
                "job",
                "text",
                ["Managers, Officials", "Trade", "Clerks, kindred", "Craftsmen, foremen"],
            ),
        ],
        pandas=None,
        why="R's write.table (Ecdat Males, vcd Trucks): the commas inside some quoted texts "
        "split some lines, the spaces every line alike. pandas.read_csv(sep=' ') makes the row "
        "names the index",
    ),
    Case(
        "r-write-table-na-in-the-first-row",
        b'"a","b"\n"x1",NA,2\n"x2",3,NA\n"x3",4,5\n',
        [
            ("col0", "text", ["x1", "x2", "x3"]),
            ("a", "Int64", [None, 3, 4]),
            ("b", "Int64", [2, None, 5]),
        ],
        pandas=None,
        why="R's write.table, sep=',' (Ecdat Garch, boot urine, car UN): a missing value 'NA' "
        "is no evidence that the first full row is a header. pandas makes the row names the "
        "index",
    ),
    Case(
        "r-write-table-all-text",
        b'"Content"\n"V1" "Do you often long for excitement?"\n"V2" "Are you carefree?"\n',
        [
            ("col0", "text", ["V1", "V2"]),
            ("Content", "text", ["Do you often long for excitement?", "Are you carefree?"]),
        ],
        warns=r"R's write.table header \(one name short .* all text.*skiprows=1 if it is a title",
        pandas=None,
        why="R's write.table of text (psych epi.dictionary): no type says which row is the "
        "header, the quotes R writes around every name and row name do; a guess, said so. "
        "pandas.read_csv(sep=' ') makes the row names the index",
    ),
    Case(
        "headerless-missing-value-in-the-first-row",
        b"1,NA\n2,3.5\n3,4.5\n",
        [("col0", "int64", [1, 2, 3]), ("col1", "float64", [NAN, 3.5, 4.5])],
        pandas={"header": None, "names": ["col0", "col1"]},
        # 'NA' is a missing value, no name: the first row is data (it was a guessed header)
    ),
    Case(
        "duplicate-header-names",
        b"a,a,b,a\n1,2,3,4\n",
        [
            ("a", "int64", [1]),
            ("a.1", "int64", [2]),
            ("b", "int64", [3]),
            ("a.2", "int64", [4]),
        ],
    ),
    Case(
        "empty-header-name",
        b"a,,b\n1,2,3\n",
        [("a", "int64", [1]), ("col1", "int64", [2]), ("b", "int64", [3])],
        pandas=None,
        why="same values; pandas names the column 'Unnamed: 1', ours 'col1' (issue 5)",
    ),
    Case(
        "na-and-minus-9999",
        b"a,b,c\n1,NA,x\n-9999,2,NA\n3,4,-9999\n",
        [
            ("a", "Int64", [1, None, 3]),
            ("b", "Int64", [None, 2, 4]),
            ("c", "text", ["x", None, None]),
        ],
        kw={"na_values": [*NA, "-9999"]},
        pandas={"na_values": [*NA, "-9999"]},
    ),
    Case(
        "quoted-na-tokens",
        b'a,b\n"NA",1\n"",2\n5,"null"\n',
        [("a", "Int64", [None, None, 5]), ("b", "Int64", [1, 2, None])],
    ),
    Case(
        "int-with-missing-is-nullable",
        b"a,b\n1,2\n,3\nnan,4\n",
        [("a", "Int64", [1, None, None]), ("b", "int64", [2, 3, 4])],
    ),
    Case(
        "all-missing-column",
        b"a,b\n1,\n2,NA\n",
        [("a", "int64", [1, 2]), ("b", "float64", [NAN, NAN])],
    ),
    Case(
        "bool-column",
        b"a,b\ntrue,1\nFalse,0\nTRUE,1\n",
        [("a", "bool", [True, False, True]), ("b", "int64", [1, 0, 1])],
    ),
    Case(
        "bool-with-missing-is-nullable",
        b"a\ntrue\n\nfalse\nNA\n",
        [("a", "boolean", [True, False, None])],
    ),
    Case(
        "iso-timestamps-to-utc",
        b"t,v\n2020-01-01T10:20:30,1\n2020-01-02 10:20:30.123456789,2\n2020-01-03T00:00Z,3\n"
        b"2020-01-04T10:00+02:00,4\n2020-01-05T23:30:00.5-05:30,5\n2020-01-06,6\n,7\n",
        [
            (
                "t",
                "datetime64[ns]",
                [
                    "2020-01-01T10:20:30",
                    "2020-01-02T10:20:30.123456789",
                    "2020-01-03T00:00",
                    "2020-01-04T08:00",
                    "2020-01-06T05:00:00.5",
                    "2020-01-06",
                    None,
                ],
            ),
            ("v", "int64", [1, 2, 3, 4, 5, 6, 7]),
        ],
        dates={"t": "ISO8601"},
        why="pandas.read_csv leaves the timestamps as text (and refuses to mix offsets without "
        "utc=True); its to_datetime(format='ISO8601', utc=True) reads them as we do",
    ),
    Case(
        "one-timestamp-column-with-spaces",
        b"time\n2021-03-01 10:00\n2021-03-01 10:10:30\n",
        [("time", "datetime64[ns]", ["2021-03-01T10:00", "2021-03-01T10:10:30"])],
        dates={"time": "ISO8601"},
        why="the space is no delimiter: it would split the values but not the header",
    ),
    Case(
        "datetime-format",
        b"when,v\n01/02/2020 10:20,1\n31/12/2020 23:59,2\n",
        [
            ("when", "datetime64[ns]", ["2020-02-01T10:20", "2020-12-31T23:59"]),
            ("v", "int64", [1, 2]),
        ],
        kw={"datetime_formats": ["%d/%m/%Y %H:%M"]},
        dates={"when": "%d/%m/%Y %H:%M"},
    ),
    Case(
        "category-few-distinct",
        _many(b"status,n", [b"%s,%d" % ((b"ok", b"fail")[i % 5 == 0], i) for i in range(40)]),
        [
            ("status", "category", ["fail" if i % 5 == 0 else "ok" for i in range(40)]),
            ("n", "int64", list(range(40))),
        ],
    ),
    Case(
        "text-many-distinct",
        _many(b"name", [b"sample-%d" % i for i in range(40)]),
        [("name", "text", [f"sample-{i}" for i in range(40)])],
    ),
    Case(
        "unicode-text",
        "city,°C\nZürich,1\n東京,2\n\U0001f600 ok,3\n".encode(),
        [("city", "text", ["Zürich", "東京", "\U0001f600 ok"]), ("°C", "int64", [1, 2, 3])],
    ),
    Case(
        "quoted-numbers",
        b'a,b\n"1","2.5"\n"12"3,4\n',
        [("a", "int64", [1, 123]), ("b", "float64", [2.5, 4.0])],
    ),
    Case(
        "whitespace-around-numbers",
        b"a,b\n 1 , 2.5 \n3,4\n",
        [("a", "int64", [1, 3]), ("b", "float64", [2.5, 4.0])],
    ),
    Case(
        "infinities",
        b"a,b\ninf,-inf\nInfinity,-Infinity\n",
        [("a", "float64", [np.inf, np.inf]), ("b", "float64", [-np.inf, -np.inf])],
    ),
    Case(
        "later-block-widens-int-to-float-and-text",
        LATE_FLOAT,
        [
            ("n", "float64", [float(i) for i in range(40)] + [2.5]),
            ("label", "text", [f"x{i % 3}" for i in range(40)] + [LONG_LABEL]),
        ],
        chunks=(64,),
    ),
    Case(
        "later-value-fits-no-path",
        LATE_TEXT,
        error=(r"not a number in a float64 column", 42, "value", "abc"),
        chunks=(64,),
        pandas=None,
        why="pandas reads the column as text; float64 -> text is no widening path",
    ),
    Case(
        "datetime-widens-to-text",
        LATE_NOT_DATE,
        [("when", "text", [f"2021-03-{i + 1:02d}" for i in range(28)] + ["soon", "2021-04-01"])],
        chunks=(64,),
    ),
    Case(
        "bool-then-number-is-an-error",
        _many(b"flag", [b"true", b"false"] * 20 + [b"7"]),
        error=(r"does not fit the column's type bool", 42, "flag", "7"),
        chunks=(64,),
        pandas=None,
        why="pandas reads the column as text; no number kernel reads true/false, so bool -> "
        "int64 cannot hold the column",
    ),
    Case(
        "zip-one-member",
        _zip({"data.csv": b"a,b\n1,2\n3,4\n"}),
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
        suffix=".zip",
    ),
    Case(
        "zip-two-members-are-two-files",
        _zip({"2020.csv": b"a,b\n1,2\n", "2021.csv": b"a,b\n3,4\n", "notes/": b""}),
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
        suffix=".zip",
        pandas=None,
        why="pandas refuses a zip of several files; ours imports each member (folders "
        "aside), in the archive's order, into one table, as a list of files",
    ),
    Case(
        "zip-without-csv-extension",
        _zip({"data.txt": b"a;b\n1;2\n"}),
        [("a", "int64", [1]), ("b", "int64", [2])],
        pandas=None,
        why="pandas infers compression from the name only and reads the zip's bytes as text; "
        "ours knows a zip by its first bytes",
    ),
    Case(
        "zip-made-on-macos",
        _zip({"data.csv": b"a,b\n1,2\n", "__MACOSX/._data.csv": b"\x00\x05\x16\x07\x00\x02"}),
        [("a", "int64", [1]), ("b", "int64", [2])],
        suffix=".zip",
        pandas=None,
        why="pandas refuses a zip of two files; the Finder adds __MACOSX/._* resource forks "
        "to the zips it makes, which are no data",
    ),
    Case(
        "zip-of-a-gzipped-csv",
        _zip({"data.csv.gz": gzip.compress(b"a,b\n1,2\n3,4\n")}),
        [("a", "int64", [1, 3]), ("b", "int64", [2, 4])],
        suffix=".zip",
        pandas=None,
        why="pandas reads the zip's one member as it is, the gzip bytes as text; ours "
        "decompresses a member named .gz, .bz2 or .xz",
    ),
    Case(
        "empty-zip",
        _zip({}),
        error=(r"a zip archive without files", None, None, None),
        suffix=".zip",
        pandas_raises=True,
    ),
    Case(
        "xlsx-is-refused",
        _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
        error=(r"an Excel workbook \(\.xlsx\), not CSV", None, None, None),
        suffix=".xlsx",
        pandas=None,
        why="pandas.read_csv reads the zip's bytes as text, to a parser error or garbage; "
        "ours names the format",
    ),
    Case(
        "schema-fixes-types",
        b"a,b,c\n1,x,2\n2,y,3\n",
        [("a", "float32", [1.0, 2.0]), ("b", "category", ["x", "y"]), ("c", "int16", [2, 3])],
        kw={"schema": {"a": "float32", "b": "category", "c": "int16"}},
        pandas=None,
        why="the schema overrides what pandas infers (int64, text)",
    ),
    Case(
        "schema-int-with-missing",
        b"a,b\n1,2\n,3\n",
        error=(r"a missing value in a int64 column", 3, "a", ""),
        kw={"schema": {"a": "int64"}},
        pandas=None,
        why="pandas has no schema; an int column cannot hold a missing value",
    ),
    Case(
        "schema-int-out-of-range",
        b"a\n1\n300\n",
        error=(r"int8", 3, "a", "300"),
        kw={"schema": {"a": "int8"}},
        pandas=None,
        why="pandas has no schema",
    ),
    Case(
        "usecols-by-name",
        b"a,b,c\n1,2,3\n4,5,6\n",
        [("c", "int64", [3, 6]), ("a", "int64", [1, 4])],
        kw={"usecols": ["c", "a"]},
        pandas=None,
        why="pandas keeps the file's order (a, c) whatever the order of usecols; ours is the "
        "order asked for",
    ),
    Case(
        "usecols-by-position",
        b"a,b,c\n1,2,3\n4,5,6\n",
        [("b", "int64", [2, 5])],
        kw={"usecols": [1]},
        pandas={"usecols": [1]},
    ),
]

# a guard against shrinking the corpus below the acceptance's 30 files (35 asked here)
assert len(CASES) >= 35
# where pandas is not consulted, the case says why
assert all(c.why for c in CASES if c.pandas is None)


def _is_category(table: colvault.Table, name: str) -> bool:
    return bool(table.column_specs([name])[0].is_category)


#: The corpus' names of nullable kinds (pandas' names) and the dtype of their values.
NULLABLE = {"Int64": "int64", "UInt64": "uint64", "boolean": "bool"}


def _check_values(kind: str, got: np.ndarray, expected: list[Any], what: str) -> None:
    assert len(got) == len(expected), f"{what}: {len(got)} values, expected {len(expected)}"
    if kind in NULLABLE or (kind in ("text", "category") and None in expected):
        assert isinstance(got, np.ma.MaskedArray), f"{what}: missing values are not masked"
        values = [None if m else v for v, m in zip(got.data.tolist(), got.mask, strict=True)]
        assert values == expected, f"{what}: {values} != {expected}"
        return
    if kind.startswith("float"):
        want = np.array(expected, dtype=got.dtype)
        nan = np.isnan(want)
        assert (np.isnan(got) == nan).all(), f"{what}: NaN at {np.isnan(got)} not {nan}"
        bits = f"u{got.dtype.itemsize}"
        # bit for bit: -0.0 and subnormals included
        assert (got[~nan].view(bits) == want[~nan].view(bits)).all(), (
            f"{what}: {got.tolist()} != {expected}"
        )
    elif kind.startswith("datetime"):
        want = np.array([np.datetime64(v, "ns") if v else np.datetime64("NaT") for v in expected])
        assert got.dtype == np.dtype("datetime64[ns]")
        assert got.view("i8").tolist() == want.view("i8").tolist(), f"{what}: {got} != {want}"
    else:
        assert got.tolist() == expected, f"{what}: {got.tolist()} != {expected}"


def _check_kind(table: colvault.Table, name: str, kind: str, chunk: int | None) -> None:
    dtype = table.schema[name]
    if kind in ("text", "category"):
        if chunk != TINY:  # the first block holds the whole file, or the case chose its size
            assert _is_category(table, name) == (kind == "category"), (name, kind)
        if not _is_category(table, name):
            assert dtype.kind == "U", f"{name}: {dtype}, expected text"
    else:
        assert not _is_category(table, name)
        assert dtype == np.dtype(NULLABLE.get(kind, kind)), f"{name}: {dtype}, expected {kind}"


def _pandas_column(series: pd.Series, kind: str, fmt: str | None) -> np.ndarray:
    """pandas' reading of a column, in the form ours takes."""
    if fmt is not None:
        parsed = pd.to_datetime(series, format=fmt, utc=True)
        return parsed.dt.tz_localize(None).to_numpy("datetime64[ns]")
    if kind in ("text", "category"):
        if series.isna().any():  # missing text as None, ours masked
            return np.ma.MaskedArray(series.fillna("").astype(str).to_numpy(), series.isna())
        return np.array([str(v) for v in series], dtype=str)
    if kind in NULLABLE:  # pandas: floats with NaN, or objects, for ints and bools
        return np.ma.MaskedArray(series.fillna(0).to_numpy(NULLABLE[kind]), series.isna())
    assert str(series.dtype) == kind, f"pandas reads {series.name!r} as {series.dtype}"
    return series.to_numpy()


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / f"{case.id}{case.suffix}"
    path.write_bytes(case.data)
    return path


def _params() -> list[Any]:
    return [
        pytest.param(case, chunk, id=f"{case.id}-{'tiny' if chunk == TINY else chunk or 'default'}")
        for case in CASES
        for chunk in case.chunks
    ]


@pytest.mark.parametrize(("case", "chunk"), _params())
def test_corpus(case: Case, chunk: int | None, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    with colvault.open(tmp_path / "s.colvault", "w") as store:
        kw = dict(case.kw, chunk_bytes=chunk)
        if case.error is not None:
            message, line, column, text = case.error
            with pytest.raises(CSVError, match=message) as info:
                import_csv(path, store, "/t", **kw)
            err = info.value
            assert err.file == str(path)
            assert err.line == line, str(err)
            assert err.column == column, str(err)
            if text is not None:
                assert err.text is not None and text in err.text, str(err)
            assert "/t" not in store  # nothing of a broken import stays
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = import_csv(path, store, "/t", **kw)
        ours = [w for w in caught if issubclass(w.category, CSVWarning)]
        if case.warns is None:
            assert not ours, [str(w.message) for w in ours]
        else:
            assert len(ours) == 1 and re.search(case.warns, str(ours[0].message)), ours
        assert case.cols is not None
        assert table.colnames == [name for name, _, _ in case.cols]
        assert len(table) == len(case.cols[0][2])
        for name, kind, values in case.cols:
            _check_kind(table, name, kind, chunk)
            # missing values kept as missing (floats and times: NaN and NaT)
            nullable = kind in NULLABLE or (kind in ("text", "category") and None in values)
            assert table.column_specs([name])[0].nullable == nullable, name
            _check_values(kind, table.col(name), values, f"column {name!r}")


PANDAS_CASES = [c for c in CASES if c.pandas is not None]


@pytest.mark.parametrize("case", PANDAS_CASES, ids=[c.id for c in PANDAS_CASES])
def test_pandas_reads_the_same(case: Case, tmp_path: Path) -> None:
    """Where pandas is right, it reads each corpus file as the case says we must."""
    path = _write(tmp_path, case)
    assert case.pandas is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' ParserWarnings about the files it rejects
        if case.error is not None or case.pandas_raises:
            with pytest.raises((ValueError, UnicodeDecodeError)):
                pd.read_csv(
                    path, index_col=False, keep_default_na=False, na_values=NA, **case.pandas
                )
            return
        df = pd.read_csv(
            path,
            index_col=False,
            keep_default_na=False,
            **{"na_values": NA, **case.pandas},
        )
    assert case.cols is not None
    assert list(df.columns) == [name for name, _, _ in case.cols]
    for name, kind, values in case.cols:
        got = _pandas_column(df[name], kind, case.dates.get(name))
        _check_values(kind, got, values, f"pandas column {name!r}")


def test_float_corpus_is_bit_exact_python_float(tmp_path: Path) -> None:
    """The float cases' expected values are Python's correctly rounded float() of the text."""
    for case in CASES:
        if case.id in ("subnormals", "hard-roundings", "negative-zero"):
            lines = case.data.decode().split()[1:]
            assert case.cols is not None
            for text, value in zip(lines, case.cols[0][2], strict=True):
                assert struct.pack("<d", float(text)) == struct.pack("<d", value), text
