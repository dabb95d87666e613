"""The CSV tokenizer reads what Python's csv module wrote and what pandas reads, at once or in
blocks with carry-over, with blank, whitespace and comment lines skipped as pandas skips them."""

from __future__ import annotations

import csv
import io
import re
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from colvault.kernels.csv.tokens import (
    ESCAPED,
    QUOTED,
    TRAILING,
    UNTERMINATED_QUOTE,
    Tokens,
    fields_per_row,
    tokenize,
    tokenize_kernel,
    tokenize_numpy,
    uniform_width,
)

LINE_END = re.compile(rb"\r\n|\r|\n")


def unescape(raw: bytes, q: bytes = b'"') -> bytes:
    """Test oracle: the value of an ESCAPED slice, byte by byte."""
    out = bytearray()
    quoted = True
    i = 0
    while i < len(raw):
        if quoted and raw[i : i + 1] == q:
            if raw[i + 1 : i + 2] == q:
                out += q
                i += 2
                continue
            quoted = False
            i += 1
            continue
        out += raw[i : i + 1]
        i += 1
    return bytes(out)


def rows_of(data: bytes, tok: Tokens) -> list[list[str]]:
    rows = []
    for r in range(tok.nrows):
        row = []
        for f in range(tok.row_first[r], tok.row_first[r + 1]):
            raw = data[tok.starts[f] : tok.ends[f]]
            if tok.flags[f] & ESCAPED:
                raw = unescape(raw)
            row.append(raw.decode("utf-8"))
        rows.append(row)
    return rows


def tok_bytes(data: bytes, delimiter: str = ",", **kw) -> Tokens:
    return tokenize(np.frombuffer(data, np.uint8), ord(delimiter), **kw)


def read(data: bytes, delimiter: str = ",", **kw) -> list[list[str]]:
    return rows_of(data, tok_bytes(data, delimiter, **kw))


# --- generated documents -------------------------------------------------------------------------

CHARS = st.sampled_from(list("ab ,;\t|\"'\r\n#é€𝄞0.-x"))
DELIMITERS = [",", ";", "\t", "|", " "]
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]
TERMINATORS = ["\n", "\r\n", "\r"]


@st.composite
def documents(draw, comments: bool = False, extras: bool = True, spaces: bool | None = None):
    """(bytes, delimiter, expected rows, expected row lines, line ends in total). With
    ``extras``, skipped lines between rows: blank ones, lines of spaces and tabs (with
    ``spaces``, which defaults to ``comments``) and comment lines (with ``comments``, which also
    adds trailing comments and keeps the comment character out of the cells)."""
    if spaces is None:
        spaces = comments
    delimiter = draw(st.sampled_from(DELIMITERS))
    quoting = draw(st.sampled_from(QUOTING))
    mixed = draw(st.booleans())
    term = draw(st.sampled_from(TERMINATORS))
    ncols = draw(st.integers(1, 4))
    nrows = draw(st.integers(0, 8))
    text = st.text(CHARS, max_size=5)
    if comments:
        text = text.map(lambda s: s.replace("#", ""))
    cell = st.one_of(text, st.integers(-50, 50)) if quoting == csv.QUOTE_NONNUMERIC else text
    blanks = "".join(c for c in " \t" if c != delimiter)
    lines: list[tuple[str, list[str] | None]] = []  # (line text, row or None if skipped)
    for _ in range(nrows):
        if extras and draw(st.integers(0, 3)) == 0:
            kinds = ["blank"] + ["spaces"] * spaces + ["comment"] * comments
            kind = draw(st.sampled_from(kinds))
            if kind == "spaces":
                lines.append((draw(st.text(st.sampled_from(blanks), min_size=1, max_size=3)), None))
            elif kind == "comment":
                lines.append(("#" + draw(st.text(st.sampled_from('ab #,"'), max_size=4)), None))
            else:
                lines.append(("", None))
        cells = [draw(cell) for _ in range(ncols)]
        out = io.StringIO()
        # "\r\n" as the writer's terminator makes QUOTE_MINIMAL quote fields with CR or LF.
        csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\r\n").writerow(cells)
        line = out.getvalue()[:-2]
        if comments and not line.endswith('"') and draw(st.booleans()):
            line += "#" + draw(st.text(st.sampled_from('ab ,"'), max_size=3))
        skipped = line != "" and all(c in blanks for c in line)
        lines.append((line, None if skipped else [str(c) for c in cells]))
    doc = b""
    rows, row_lines = [], []
    for k, (line, row) in enumerate(lines):
        if row is not None:
            rows.append(row)
            row_lines.append(len(LINE_END.findall(doc)))
        end = draw(st.sampled_from(TERMINATORS)) if mixed else term
        if k == len(lines) - 1 and draw(st.booleans()):
            end = ""  # a last line without a line end
        doc += (line + end).encode("utf-8")  # a CR, then a blank LF line, is one CRLF
    return doc, delimiter, rows, row_lines, len(LINE_END.findall(doc))


@given(documents(comments=False))
def test_reads_what_csv_writer_wrote(doc):
    data, delimiter, rows, row_lines, nlines = doc
    tok = tok_bytes(data, delimiter)
    assert tok.error == 0
    assert rows_of(data, tok) == rows
    assert tok.row_line.tolist() == row_lines
    assert tok.consumed == len(data)
    assert tok.lines == nlines
    assert tok.starts.dtype == np.int64 and tok.flags.dtype == np.uint8
    assert tok.row_first[0] == 0 and tok.row_first[-1] == len(tok.starts)


@given(documents(comments=True))
def test_comment_lines_and_trailing_comments(doc):
    data, delimiter, rows, row_lines, nlines = doc
    tok = tok_bytes(data, delimiter, comment=ord("#"))
    assert rows_of(data, tok) == rows
    assert tok.row_line.tolist() == row_lines
    assert (tok.consumed, tok.lines) == (len(data), nlines)


def pandas_drops_a_delimiter(data: bytes, delimiter: str) -> bool:
    """Whether ``data`` has a line starting with the delimiter right after a CR-ended line that
    is blank, blank-ish or a comment: pandas drops that delimiter, the tokenizer (on purpose, see
    its docstring) does not, so such documents are no test of agreement with pandas."""
    d = re.escape(delimiter.encode())
    return re.search(rb"(^|[\r\n])[ \t]*(#[^\r\n]*)?\r" + d, data) is not None


def test_the_pandas_cr_quirk_is_recognised():
    assert pandas_drops_a_delimiter(b"a,x\r\r,b\r", ",")
    assert pandas_drops_a_delimiter(b"\r,\r", ",")
    assert pandas_drops_a_delimiter(b"#c\r,b\r", ",")
    assert not pandas_drops_a_delimiter(b"a,x\r\nb,c\r\n", ",")


@given(st.booleans().flatmap(lambda c: st.tuples(documents(comments=c, spaces=True), st.just(c))))
def test_same_rows_as_pandas(case):
    """Read with a comment character: a document with comment lines and trailing comments.
    Read without one: a document whose cells may hold that character as text."""
    doc, with_comments = case
    data, delimiter, rows, _, _ = doc
    comment = "#" if with_comments else None
    assume(not pandas_drops_a_delimiter(data, delimiter))
    tok = tok_bytes(data, delimiter, comment=ord("#") if with_comments else -1)
    if not rows:
        assert tok.nrows == 0
        return
    frame = pd.read_csv(
        io.BytesIO(data),
        sep=delimiter,
        header=None,
        dtype=str,
        na_filter=False,
        index_col=False,
        comment=comment,
        engine="c",
    )
    assert rows_of(data, tok) == frame.to_numpy().tolist()


@given(documents(comments=True), st.lists(st.integers(0, 200), max_size=6), st.booleans())
def test_blocks_with_carry_over_match_one_pass(doc, cuts, with_comments):
    """The importer's loop: tokenize carry + block, keep buf[consumed:] for the next block."""
    data, delimiter, _, _, nlines = doc
    comment = ord("#") if with_comments else -1
    whole = tok_bytes(data, delimiter, comment=comment)
    bounds = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    fields, flags, row_sizes, row_lines = [], [], [], []
    carry = b""
    offset = 0  # file position of carry[0]
    base_line = 0
    prev = 0
    for b in bounds:
        block = carry + data[prev:b]
        prev = b
        final = b == len(data)
        tok = tok_bytes(block, delimiter, comment=comment, final=final)
        if tok.error != 0:
            # a document that is no valid CSV read this way (comment text with a quote, read
            # without comments): the last block finds the unterminated quote, as one pass does
            assert final and (tok.error, whole.error) == (1, 1)
            assert offset + tok.error_pos == whole.error_pos
            return
        fields += list(
            zip((tok.starts + offset).tolist(), (tok.ends + offset).tolist(), strict=True)
        )
        flags += tok.flags.tolist()
        row_sizes += fields_per_row(tok.row_first).tolist()
        row_lines += (tok.row_line + base_line).tolist()
        assert 0 <= tok.consumed <= len(block)
        assert tok.lines == len(LINE_END.findall(block[: tok.consumed]))
        carry = block[tok.consumed :]
        offset += tok.consumed
        base_line += tok.lines
    assert carry == b"" and whole.error == 0
    assert fields == list(zip(whole.starts.tolist(), whole.ends.tolist(), strict=True))
    assert flags == whole.flags.tolist()
    assert row_sizes == np.diff(whole.row_first).tolist()
    assert row_lines == whole.row_line.tolist()
    assert base_line == whole.lines == nlines


def same_as_general_path(data: bytes, delimiter: int, quotechar: int, comment: int, final: bool):
    """The fast path (special bytes found through bit masks) gives exactly what the general
    state machine gives."""
    buf = np.frombuffer(data, np.uint8)
    args = (buf, np.int64(delimiter), np.int64(quotechar), np.int64(comment), final)
    gbuf, mem = guarded(data)  # the fast path must not read past the block
    fast = tokenize_kernel(*((buf if gbuf is None else gbuf), *args[1:]), True)
    if mem is not None:
        del gbuf
        mem.close()
    general = tokenize_kernel(*args, False)
    wide = np.zeros(2 * len(buf), np.uint8)
    wide[::2] = buf
    strided = tokenize_kernel(wide[::2], *args[1:], True)  # a non-contiguous block
    for a, b, c in zip(fast, general, strided, strict=True):
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.tolist() == b.tolist() == c.tolist()
        else:
            assert a == b == c


RAW = st.text(st.sampled_from(list(',;\t "#\r\nab1.é\x0b')), max_size=300)


@given(RAW, st.sampled_from(",;\t "), st.booleans(), st.booleans(), st.booleans())
def test_fast_path_equals_general_path_on_any_bytes(text, delimiter, quoting, comments, final):
    """Quotes anywhere, text after closing quotes, CR at the end, control bytes, comments."""
    same_as_general_path(
        text.encode(), ord(delimiter), 34 if quoting else -1, ord("#") if comments else -1, final
    )


@given(documents(comments=True), st.booleans(), st.booleans(), st.integers(1, 4))
def test_fast_path_equals_general_path_on_documents(doc, comments, final, repeat):
    data, delimiter, _, _, _ = doc
    same_as_general_path(data * repeat, ord(delimiter), 34, ord("#") if comments else -1, final)


PLAINISH = st.text(st.sampled_from(list(",;\t ab1\n\n\n")), max_size=200)


@given(
    st.one_of(RAW, PLAINISH), st.sampled_from(",;\t "), st.booleans(), st.booleans(),
    st.booleans(),
)  # fmt: skip
def test_numpy_tokenizer_equals_the_kernel_where_it_reads(
    text, delimiter, quoting, comments, final
):
    """The numpy tokenizer of a small file's plain blocks (while the kernels are not compiled)
    gives the kernels' output exactly, or declines (quotes, comments, CR, blank lines)."""
    buf = np.frombuffer(text.encode(), np.uint8)
    args = (ord(delimiter), 34 if quoting else -1, ord("#") if comments else -1, final)
    got = tokenize_numpy(buf, *args)
    if got is None:
        data = text.encode()
        assert re.search(rb'[\r"#]', data) or re.search(rb"(^|\n)[\n \t]", data)
        return
    want = tokenize_kernel(buf, *args)
    for a, b in zip(got, want, strict=True):
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.tolist() == b.tolist()
        else:
            assert a == b


def test_numpy_tokenizer_reads_plain_records():
    data = b"a,b,c\n1,,3\n4,5,6"
    for final, consumed in ((True, len(data)), (False, 11)):
        got = tokenize_numpy(np.frombuffer(data, np.uint8), ord(","), 34, -1, final)
        assert got is not None and got[5] == consumed and got[6] == 2
        assert got[3].tolist() == ([0, 3, 6, 9] if final else [0, 3, 6])
    assert uniform_width(np.array([0, 3, 6, 9])) == 3


def test_fast_path_edge_cases():
    docs = [
        b"abcdefgh,ijklmnop,q\r\nrstuvwxyz0123,4\r",  # CR as the last byte
        b'"abcdefgh","ij""kl",""\n"unterminated quote\n',
        b'"abcdefgh"x,"ijkl"#c\n1234567,"89\r\n0"\n',  # text after quotes, quoted CRLF
        b"a\tb\x0bc\x01d,efghijklmnop\n\n  \n#x\n,,,,,,,,,,,,\n",
        b"1234567,\n" * 40 + b"12345678901234567890123456789012345678901234567890\n",
    ]
    for data in docs:
        for final in (True, False):
            for comment in (-1, ord("#")):
                for quotechar in (34, -1):
                    same_as_general_path(data, ord(","), quotechar, comment, final)


@pytest.mark.parametrize(
    "doc",
    [
        b'"","","0"\n"0","000""","00000"\n-10,",000""","0"\n',
        b'ab,"c,d",e\r\n"x""y",,"z"\r"",1\n',
        b'a"b,c"d,"e"\n"f"g,h\n"i\nj",k\n',
        b"1,2#c\n#x\n\n  \n3,4\r\n",
    ],
)
def test_fast_path_at_every_word_boundary(doc):
    """Each byte of the document lands once on each position of a 64-bit mask word."""
    for offset in range(65):
        data = b"a" * offset + b"\n" + doc * 3
        for final in (True, False):
            for comment in (-1, ord("#")):
                same_as_general_path(data, ord(","), 34, comment, final)


# --- explicit cases ------------------------------------------------------------------------------


def test_blank_and_whitespace_lines_yield_no_row():
    data = b"a,b\n\n  \n\t\r\n,\nc,d\r\r\n"
    tok = tok_bytes(data)
    assert rows_of(data, tok) == [["a", "b"], ["", ""], ["c", "d"]]
    assert tok.row_line.tolist() == [0, 4, 5]
    assert tok.lines == 7
    # blanks followed by text belong to the first field; a blank that is the delimiter is not
    # a blank line but a row of empty fields, as in pandas
    assert read(b"a,x\n  b,y\n") == [["a", "x"], ["  b", "y"]]
    assert read(b"a\tx\n\t\nb\ty\n", "\t") == [["a", "x"], ["", ""], ["b", "y"]]
    assert read(b"a\tx\n \t\nb\ty\n", "\t") == [["a", "x"], [" ", ""], ["b", "y"]]
    assert read(b"a x\n\t\nb y\n", " ") == [["a", "x"], ["b", "y"]]
    assert read(b"a x\n  \n", " ") == [["a", "x"], ["", "", ""]]
    assert read(b"a,b\n   ") == [["a", "b"]]
    assert read(b"a\n\x0c\nb\n") == [["a"], ["\x0c"], ["b"]]  # only space and tab are blanks


def test_comments():
    hash_ = ord("#")
    data = b"#meta\na,b#x\n#full\r\n  #c\n,#x\nc,d#"
    tok = tok_bytes(data, comment=hash_)
    assert rows_of(data, tok) == [["a", "b"], ["  "], ["", ""], ["c", "d"]]
    assert tok.row_line.tolist() == [1, 3, 4, 5]
    assert read(b'"a#b",c\n', comment=hash_) == [["a#b", "c"]]
    # pandas keeps the byte right after a closing quote, even the comment character
    assert read(b'a,"x"#c\n', comment=hash_) == [["a", "x#c"]]
    assert read(b'a,"x"y#c\n', comment=hash_) == [["a", "xy"]]
    assert read(b"#only", comment=hash_) == []
    assert read(b"a#b\n") == [["a#b"]]  # no comment character by default


def test_trailing_delimiter_gives_an_empty_field():
    assert read(b"a,b,\nc,d,\n") == [["a", "b", ""], ["c", "d", ""]]
    assert read(b"a,b,") == [["a", "b", ""]]
    tok = tok_bytes(b"a,", final=False)
    assert tok.nrows == 0 and tok.consumed == 0


def test_quotes():
    data = b'"a""b",c\n"x\ny",z\n"",\n"ab"c,d\na"b"c,"e,f"\n'
    tok = tok_bytes(data)
    assert rows_of(data, tok) == [
        ['a"b', "c"],
        ["x\ny", "z"],
        ["", ""],
        ["abc", "d"],
        ['a"b"c', "e,f"],
    ]
    assert tok.flags[:6].tolist() == [QUOTED | ESCAPED, 0, QUOTED, 0, QUOTED, 0]
    assert tok.flags[6] == QUOTED | ESCAPED | TRAILING
    assert data[tok.starts[6] : tok.ends[6]] == b'ab"c'
    assert tok.flags[8] == 0 and tok.flags[9] == QUOTED
    assert read(b'"a"b"c",d\n') == [['ab"c"', "d"]]  # as pandas
    assert read(b'"a""b"c\n') == [['a"bc']]
    assert read(b'"ab" ,c\n') == [["ab ", "c"]]
    assert read(b' "a",b\n') == [[' "a"', "b"]]  # a quote that does not start the field
    assert read(b"'a,b',c\n", quotechar=ord("'")) == [["a,b", "c"]]
    assert read(b'"a,b",c\n', quotechar=-1) == [['"a', 'b"', "c"]]


def test_quoted_line_ends_count_as_physical_lines():
    data = b'h1,h2\r\n"a\r\nb\rc\nd",e\n\nf,"g\n"\nh,i'
    tok = tok_bytes(data)
    assert rows_of(data, tok) == [["h1", "h2"], ["a\r\nb\rc\nd", "e"], ["f", "g\n"], ["h", "i"]]
    assert tok.row_line.tolist() == [0, 1, 6, 8]
    assert tok.lines == 8
    assert tok.consumed == len(data)


def test_line_ends_cr_lf_crlf_mixed():
    assert read(b"a,b\r\nc,d\rE,f\ng,h") == [["a", "b"], ["c", "d"], ["E", "f"], ["g", "h"]]
    data = b"a,x\r\r,b\r"
    tok = tok_bytes(data)
    # pandas drops this delimiter after a CR-ended blank line; we keep it, as with LF
    assert rows_of(data, tok) == [["a", "x"], ["", "b"]]
    assert tok.row_line.tolist() == [0, 2]


def test_crlf_split_across_blocks():
    tok = tok_bytes(b"a,b\r", final=False)
    assert (tok.nrows, tok.consumed, tok.lines) == (0, 0, 0)  # the CR may be half a CRLF
    tok = tok_bytes(b"a,b\r\nc,d\r", final=False)
    assert (tok.nrows, tok.consumed, tok.lines) == (1, 5, 1)
    tok = tok_bytes(b"c,d\r\ne", final=False)
    assert (tok.nrows, tok.consumed, tok.lines) == (1, 5, 1)
    tok = tok_bytes(b"a,b\r", final=True)
    assert (tok.nrows, tok.consumed, tok.lines) == (1, 4, 1)
    tok = tok_bytes(b"a,b\n\r", final=False)  # a blank CR line at the end also waits
    assert (tok.nrows, tok.consumed, tok.lines) == (1, 4, 1)
    tok = tok_bytes(b'a,"b\r', final=False)
    assert (tok.nrows, tok.consumed, tok.lines) == (0, 0, 0)


def test_incomplete_records_wait_for_more():
    data = b'a,b\n"c\nd",e\n"f""'
    tok = tok_bytes(data, final=False)
    assert rows_of(data, tok) == [["a", "b"], ["c\nd", "e"]]
    assert (tok.consumed, tok.lines) == (12, 3)
    tok = tok_bytes(b"a,b\nc,d", final=False)
    assert (tok.nrows, tok.consumed) == (1, 4)
    tok = tok_bytes(b'"long record without end', final=False)
    assert (tok.nrows, tok.consumed, tok.error) == (0, 0, 0)
    tok = tok_bytes(b"#comment\n\n  \n#partial", comment=ord("#"), final=False)
    assert (tok.nrows, tok.consumed, tok.lines) == (0, 13, 3)


def test_unterminated_quote_is_an_error_with_its_line():
    data = b'a,b\nc,d\ne,"f\ng\nh\n'
    tok = tok_bytes(data)
    assert tok.error == UNTERMINATED_QUOTE
    assert (tok.error_pos, tok.error_line) == (10, 2)
    assert rows_of(data, tok) == [["a", "b"], ["c", "d"]]
    assert (tok.consumed, tok.lines) == (8, 2)
    tok = tok_bytes(b'"x""')  # an escaped quote, then the end
    assert (tok.error, tok.error_pos, tok.error_line) == (UNTERMINATED_QUOTE, 0, 0)
    tok = tok_bytes(b'a,b\n"c"\n')
    assert (tok.error, tok.error_pos, tok.error_line) == (0, -1, -1)


def test_empty_input_and_arrays_that_grow():
    tok = tok_bytes(b"")
    assert tok.nrows == 0 and tok.row_first.tolist() == [0] and tok.consumed == 0
    data = b"," * 1000 + b"\n"  # more fields than the first guess holds
    tok = tok_bytes(data)
    assert tok.nrows == 1 and len(tok.starts) == 1001 and uniform_width(tok.row_first) == 1001
    data = b"1\n" * 5000  # more rows than the first guess holds
    tok = tok_bytes(data)
    assert tok.nrows == 5000 and tok.row_line.tolist() == list(range(5000))
    assert uniform_width(tok.row_first) == 1
    assert uniform_width(tok_bytes(b"a,b\nc\n").row_first) == -1
    assert uniform_width(tok_bytes(b"").row_first) == 0


def test_plain_records_need_no_state_machine(monkeypatch):
    """Unquoted records, the last one incomplete or (final) without its line end, are read by
    the fast kernel alone: the state machine, the larger compile, is never called."""
    from colvault.kernels.csv import tokens as csvtokens

    docs = [b"1,2\n3,4\n5,6", b"1,2\r\n3,4\r\n5,", b"a,b\n" + b"," * 1000, b"x", b"ab,c\n" * 5000]
    want = {
        (doc, final): tokenize_kernel(np.frombuffer(doc, np.uint8), 44, 34, 35, final, False)
        for doc in docs
        for final in (True, False)
    }

    def no_state_machine(*args):
        raise AssertionError("the state machine ran")

    monkeypatch.setattr(csvtokens, "_run_canonical", no_state_machine)
    for (doc, final), general in want.items():
        got = tokenize(doc, ord(","), comment=ord("#"), final=final)
        for a, b in zip(got, general, strict=True):
            assert a.tolist() == b.tolist() if isinstance(a, np.ndarray) else a == b
    assert tokenize(b"1,2\n3,4\n5,6", ord(","), final=False).consumed == 8


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        tokenize(b"a", ord(","), quotechar=ord(","))
    with pytest.raises(ValueError):
        tokenize(b"a", ord("\n"))
    with pytest.raises(ValueError):
        tokenize(b"a", 200)
    with pytest.raises(TypeError):
        tokenize(np.zeros(3, np.int64), ord(","))
    assert tokenize(b"x;y\n", ord(";")).nrows == 1  # bytes are accepted too


def _numeric_csv(nrows: int) -> bytes:
    rng = np.random.default_rng(1)
    part = 100_000
    body = "".join(
        f"{s},{v:.3f},{t:.4f}\n"
        for s, v, t in zip(
            rng.integers(0, 5000, part).tolist(),
            rng.normal(100, 50, part).tolist(),
            rng.normal(20, 5, part).tolist(),
            strict=True,
        )
    ).encode()
    return b"sensor,value,temp\n" + body * (nrows // part)


def _throughput(data: np.ndarray, block: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        pos = 0
        rows = 0
        while pos < len(data):
            tok = tokenize(data[pos : pos + block], ord(","), final=pos + block >= len(data))
            pos += tok.consumed
            rows += tok.nrows
        best = min(best, time.perf_counter() - t0)
    return len(data) / best / 1e6


def test_throughput_is_printed():
    """Prints MB/s (run with -s); asserts only the result, never the time."""
    data = np.frombuffer(_numeric_csv(2_000_000), np.uint8)
    tok = tokenize(data, ord(","))
    assert tok.nrows == 2_000_001 and uniform_width(tok.row_first) == 3
    mixed = "".join(
        f'2024-01-{d % 28 + 1:02d}T12:{d % 60:02d}:00,{d},{d / 7:.3f},"st ""{d % 2}""",{d}\n'
        for d in range(100_000)
    ).encode()
    quoted = np.frombuffer(mixed * 4, np.uint8)
    for name, buf in (("numeric", data), ("mixed, quoted", quoted)):
        mbs = _throughput(buf, 4 << 20)
        print(f"\ntokenize {name} ({len(buf) / 1e6:.0f} MB, 4 MiB blocks): {mbs:.0f} MB/s")


def test_kernels_on_the_benchmark_files_print_ns_per_field():
    """The issue's two benchmark files (500 k rows here), read as the importer reads them: per
    4 MiB block, tokenize, then per column gather the offsets, match the NA tokens and parse.
    Prints each kernel's best-of-3 ns per field (run with -s); asserts only the values."""
    import sys
    from pathlib import Path

    from colvault.benchdata import benchmark_data
    from colvault.kernels.csv import dates as csvdates
    from colvault.kernels.csv import numbers as csvnumbers
    from colvault.kernels.csv import text as csvtext

    sys.path.insert(0, str(Path(__file__).parents[2]))
    from asv_benchmarks.csvfiles import MIXED, NUMERIC, frame

    rows = 500_000
    d = benchmark_data(rows)
    na_tokens = csvtext.pack_tokens(["", "NA", "N/A", "NaN", "nan", "null", "NULL"])
    for kind, kernels in ((NUMERIC, "ifF"), (MIXED, "tifFs")):
        data = np.frombuffer(frame(kind, rows).to_csv(index=False).encode(), np.uint8)
        best: dict[str, float] = {}
        for _ in range(3):
            took: dict[str, float] = {}
            values: dict[int, list[np.ndarray]] = {j: [] for j in range(len(kernels))}
            pos, r0 = 0, 1
            while pos < len(data):
                buf = data[pos : pos + (4 << 20)]
                t0 = time.perf_counter()
                tok = tokenize(buf, ord(","), final=pos + (4 << 20) >= len(data))
                took["tokenize"] = took.get("tokenize", 0.0) + time.perf_counter() - t0
                first = tok.row_first[r0 : tok.nrows]
                for j, k in enumerate(kernels):
                    s, e, f = tok.starts[first + j], tok.ends[first + j], tok.flags[first + j]
                    t0 = time.perf_counter()
                    na = csvtext.match_tokens(buf, s, e, f, *na_tokens)
                    t1 = time.perf_counter()
                    if k == "i":
                        v, status = csvnumbers.parse_int64(buf, s, e, na)
                        assert status == csvnumbers.FITS_INT64
                        name = "parse_int64"
                    elif k in "fF":
                        v, slow, bad = csvnumbers.parse_float64(buf, s, e, na)
                        assert bad == -1 and len(slow) == 0
                        name = "parse_float64"
                    elif k == "t":
                        v, bad = csvdates.parse_iso_datetime(buf, s, e, na)
                        assert bad == -1
                        name = "parse_iso_datetime"
                    else:
                        codes, firsts, _ = csvtext.dictionary_encode_fields(buf, s, e, f)
                        name = "dictionary_encode"
                    t2 = time.perf_counter()
                    if k == "s":
                        v = np.array([bytes(buf[s[i] : e[i]]) for i in firsts])[codes]
                    assert not na.any()
                    values[j].append(v)
                    key = f"{name}[{j}]"
                    took["match_tokens" + key[key.index("[") :]] = (
                        took.get("match_tokens" + key[key.index("[") :], 0.0) + t1 - t0
                    )
                    took[key] = took.get(key, 0.0) + t2 - t1
                pos += tok.consumed
                r0 = 0
            best = {k: min(v, best.get(k, v)) for k, v in took.items()}
        got = [np.concatenate(values[j]) for j in range(len(kernels))]
        expected = {"i": d["sensor"], "f": d["value"], "F": np.round(d["temp"].astype(float), 4)}
        expected["t"] = d["t"].astype(np.int64)
        for j, k in enumerate(kernels):
            if k == "s":
                assert got[j].tolist() == np.where(d["value"] > 45.0, b"fault", b"ok").tolist()
            else:
                assert np.array_equal(got[j], expected[k])
        print(f"\n{kind} file, {rows} rows, {len(data) / 1e6:.0f} MB, 4 MiB blocks, best of 3:")
        for k, t in best.items():
            per = t * 1e9 / rows / (len(kernels) if k == "tokenize" else 1)
            print(f"  {k:24s} {t * 1e3:7.1f} ms {per:6.1f} ns/field")


def guarded(data: bytes):
    """``data`` as a uint8 array ending right where an unreadable page starts: a kernel that
    reads past the end of the block crashes the test (Linux only; None elsewhere). Returns
    (array, mapping to keep alive)."""
    import ctypes
    import mmap
    import sys

    if not sys.platform.startswith("linux"):
        return None, None
    page = mmap.PAGESIZE
    size = (len(data) // page + 2) * page
    mem = mmap.mmap(-1, size)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(addr + size - page, page, 0) == 0  # PROT_NONE
    start = size - page - len(data)
    mem[start : start + len(data)] = data
    return np.frombuffer(mem, np.uint8, len(data), start), mem


@pytest.mark.parametrize(
    "doc",
    [
        b"1,2.5,2020-01-01,ok\n3,4.25,2020-01-02 10:20:30.123456,no",
        b'1,2.5,2020-01-01,"ok"\r\n3,4.25,2020-01-02,"n""o"\r',
        b"12345678,-1234.56,2020-01-02T10:20,abcdefgh\n,,,\n",
        b"#c\n\n1,2,3,4,",
    ],
)
def test_no_kernel_reads_past_the_block(doc):
    """The fast paths load 8 bytes (or 32 for dates) only where the block has them."""
    from colvault.kernels.csv import dates as csvdates
    from colvault.kernels.csv import numbers as csvnumbers
    from colvault.kernels.csv import text as csvtext

    for cut in range(len(doc) + 1):
        buf, mem = guarded(doc[:cut])
        if buf is None:
            pytest.skip("needs Linux")
        for final in (True, False):
            for comment in (-1, ord("#")):
                tokenize(buf, ord(","), comment=comment, final=final)
        tok = tokenize(buf, ord(","))
        s, e, f = tok.starts, tok.ends, tok.flags
        csvnumbers.parse_int64(buf, s, e)
        csvnumbers.parse_uint64(buf, s, e)
        csvnumbers.parse_float64(buf, s, e)
        csvnumbers.classify(buf, s, e)
        csvnumbers.parse_bool(buf, s, e)
        csvdates.parse_iso_datetime(buf, s, e)
        csvtext.match_tokens(buf, s, e, f, *csvtext.pack_tokens(["", "NA", "12345678"]))
        csvtext.dictionary_encode_fields(buf, s, e, f)
        csvtext.fields_to_ucs4(buf, s, e, f)
        del buf, tok
        mem.close()
