"""The row kernel parses plain records as the tokenizer and the column kernels do, bit for bit,
and stops at the first record it does not handle, saying where.

Reference: the same block tokenized (:mod:`colvault.kernels.csv.tokens`) and each column parsed
by its kernel; the row kernel's rows must equal theirs, and the record it stops at must be one the
general path treats differently (a missing value, a slow float, a ragged row, ...).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from colvault.kernels.csv import dates as csvdates
from colvault.kernels.csv import numbers as csvnumbers
from colvault.kernels.csv import rows as csvrows
from colvault.kernels.csv import tokens as csvtokens

KINDS = (csvrows.INT64, csvrows.FLOAT64, csvrows.DATETIME, csvrows.TEXT, csvrows.SKIP)
COMMA, QUOTE, CR = 44, 34, 13


def parse(
    data: bytes,
    kinds: list[int],
    comment: int | None = None,
    cap: int | None = None,
    quote: int | None = QUOTE,
    cr: int | None = CR,
) -> tuple[int, int, list[np.ndarray]]:
    """(rows, stop byte, per field position its values: int64, float64 bits, ns, text)."""
    buf = np.frombuffer(data, np.uint8) if data else np.empty(0, np.uint8)
    k = np.array(kinds, np.int64)
    slots = np.zeros(len(kinds), np.int64)
    counts = [0] * 5
    for p, kind in enumerate(kinds):
        slots[p] = counts[kind]
        counts[kind] += 1
    n = cap if cap is not None else len(data) + 1
    layout = ((1, np.int64), (2, np.float64), (3, np.int64), (4, np.int64), (4, np.int64))
    out = [np.zeros((counts[kind], n), dt) for kind, dt in layout]
    rows, end = csvrows.parse_rows_kernel(
        buf, 0, 0, COMMA, quote, comment, cr, k, slots, 46, -1, *out
    )
    got = []
    for p, kind in enumerate(kinds):
        s = slots[p]
        if kind == csvrows.INT64:
            got.append(out[0][s, :rows])
        elif kind == csvrows.FLOAT64:
            got.append(out[1][s, :rows].view(np.uint64))
        elif kind == csvrows.DATETIME:
            got.append(out[2][s, :rows])
        elif kind == csvrows.TEXT:
            pairs = zip(out[3][s, :rows], out[4][s, :rows], strict=True)
            got.append(np.array([data[a:b] for a, b in pairs]))
        else:
            got.append(np.empty(0))
    return int(rows), int(end), got


def reference(data: bytes, kinds: list[int], rows: int) -> list[np.ndarray]:
    """The first ``rows`` records as the tokenizer and the column kernels read them."""
    buf = np.frombuffer(data, np.uint8)
    tok = csvtokens.tokenize(buf, COMMA, QUOTE, -1, True)
    width = len(kinds)
    out = []
    for p, kind in enumerate(kinds):
        s = tok.starts[p : rows * width : width]
        e = tok.ends[p : rows * width : width]
        if kind == csvrows.INT64:
            v, status = csvnumbers.parse_int64(buf, s, e)
            assert status == csvnumbers.FITS_INT64
            out.append(v)
        elif kind == csvrows.FLOAT64:
            v, slow, bad = csvnumbers.parse_float64(buf, s, e)
            assert bad < 0 and len(slow) == 0
            out.append(v.view(np.uint64))
        elif kind == csvrows.DATETIME:
            v, bad = csvdates.parse_iso_datetime(buf, s, e)
            assert bad < 0
            out.append(v)
        elif kind == csvrows.TEXT:
            out.append(np.array([data[a:b] for a, b in zip(s, e, strict=True)]))
        else:
            out.append(np.empty(0))
    return out


def test_plain_rows_equal_the_column_kernels() -> None:
    data = (
        b"1,0.5,2024-01-02T03:04:05.123,ok,x\n"
        b"-12,1e3,2024-01-02 03:04,warn,\n"
        b"007, 3.25 ,2024-02-29,,y\r\n"
        b"9223372036854775807,-0.0,1970-01-01T00:00:00Z,a b,z\n"
    )
    kinds = [csvrows.INT64, csvrows.FLOAT64, csvrows.DATETIME, csvrows.TEXT, csvrows.SKIP]
    rows, end, got = parse(data, kinds)
    assert (rows, end) == (4, len(data))
    want = reference(data, kinds, rows)
    for g, w in zip(got, want, strict=True):
        assert g.tolist() == w.tolist()


STOPS = {
    "missing number": b"1,2.5\n,3.5\n",
    "quoted field": b'1,2.5\n"2",3.5\n',
    "ragged short": b"1,2.5\n2\n",
    "ragged long": b"1,2.5\n2,3.5,4\n",
    "trailing delimiter": b"1,2.5\n2,3.5,\n",
    "blank line": b"1,2.5\n\n2,3.5\n",
    "comment line": b"1,2.5\n#x\n",
    "comment after a field": b"1,2.5\n2,3.5#x\n",
    "leading blank": b"1,2.5\n 2,3.5\n",
    "bare CR": b"1,2.5\n2,3.5\r3,4.5\n",
    "no line end": b"1,2.5\n2,3.5",
    "float in int column": b"1,2.5\n2.5,3.5\n",
    "beyond int64": b"1,2.5\n9223372036854775808,3.5\n",
    "not a number": b"1,2.5\nx,3.5\n",
    "slow float": b"1,2.5\n2,1e400\n",
}


def test_stops_at_the_first_record_it_does_not_handle() -> None:
    for name, data in STOPS.items():
        rows, end, got = parse(data, [csvrows.INT64, csvrows.FLOAT64], comment=35)
        assert (rows, end) == (1, 6), name
        assert got[0].tolist() == [1] and got[1].view(np.float64).tolist() == [2.5], name


def test_without_the_cr_and_comment_tests_only_lf_and_the_delimiter_end_fields() -> None:
    # what a caller promises by passing None: bytes it names are data (the importer passes None
    # only for blocks without them, and the text kernels then see the same fields)
    data = b"a#b,1\nc,2\n"
    rows, end, got = parse(data, [csvrows.TEXT, csvrows.INT64], comment=None, cr=None)
    assert (rows, end) == (2, len(data)) and got[0].tolist() == [b"a#b", b"c"]
    rows, end, _ = parse(data, [csvrows.TEXT, csvrows.INT64], comment=35)
    assert (rows, end) == (0, 0)
    crlf = b"1,2.5\r\n3,4.5\r\n"
    rows, end, got = parse(crlf, [csvrows.INT64, csvrows.FLOAT64], cr=CR)
    assert (rows, end) == (2, len(crlf)) and got[1].view(np.float64).tolist() == [2.5, 4.5]


def test_stops_when_the_outputs_are_full_and_resumes() -> None:
    data = b"".join(b"%d,%d.5\n" % (i, i) for i in range(10))
    kinds = [csvrows.INT64, csvrows.FLOAT64]
    rows, end, _ = parse(data, kinds, cap=4)
    assert rows == 4 and data[:end].count(b"\n") == 4


def test_empty_text_fields_are_kept() -> None:
    rows, end, got = parse(b"a,,1\n,,2\n", [csvrows.TEXT, csvrows.TEXT, csvrows.INT64])
    assert (rows, end) == (2, 9)
    assert got[0].tolist() == [b"a", b""] and got[1].tolist() == [b"", b""]


number = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.integers(0, 10**6).map(lambda i: f"{i // 1000}.{i % 1000:03d}"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: f"{f:.6g}"),
    st.sampled_from(["-0", "+5", "1e5", "5.", ".5", "-.5e-3", "0001", " 7", "7 "]),
)
stamp = st.integers(0, 4_000_000_000).map(
    lambda s: str(np.datetime64(s, "s")).replace("T", " " if s % 2 else "T")
)
text = st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n#'), max_size=8)


@given(st.lists(st.tuples(number, number, stamp, text), min_size=1, max_size=40))
def test_random_rows_parse_as_the_general_path_reads_them(
    records: list[tuple[str, str, str, str]],
) -> None:
    data = "".join(",".join(r) + "\n" for r in records).encode()
    kinds = [csvrows.FLOAT64, csvrows.FLOAT64, csvrows.DATETIME, csvrows.TEXT]
    rows, end, got = parse(data, kinds)
    assert data[:end].count(b"\n") == rows
    # the data has no quote, CR or comment byte: the kernel compiled without their tests agrees
    rows2, end2, got2 = parse(data, kinds, quote=None, cr=None)
    assert (rows2, end2) == (rows, end)
    assert all(a.tolist() == b.tolist() for a, b in zip(got, got2, strict=True))
    if rows:
        for g, w in zip(got, reference(data, kinds, rows), strict=True):
            assert g.tolist() == w.tolist()
    if end < len(data):  # it stopped at a record the general path must read
        if data[end] == ord(" "):
            return  # a line starting with a blank (maybe a line of blanks, which is no row)
        buf = np.frombuffer(data, np.uint8)
        tok = csvtokens.tokenize(buf, COMMA, QUOTE, -1, True)
        s, e = tok.starts[rows * 4 : rows * 4 + 2], tok.ends[rows * 4 : rows * 4 + 2]
        _, slow, bad = csvnumbers.parse_float64(buf, s, e)
        assert bad >= 0 or len(slow) > 0, records[rows]
