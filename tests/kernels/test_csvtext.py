"""Text kernels over CSV field slices agree with Python: strict UTF-8 decoding, dictionaries in
order of first appearance, NA token membership (and pandas' NA reading)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from colvault.kernels.csv import jit as csvjit
from colvault.kernels.csv.text import (
    dictionary_encode_fields,
    fields_to_ucs4,
    match_tokens,
    pack_tokens,
    unescape_bytes,
)
from colvault.kernels.csv.tokens import ESCAPED, QUOTED, TRAILING, tokenize


@pytest.fixture(autouse=True, scope="module", params=["kernels", "python"])
def path(request):
    """Every test runs twice: with the kernels, and with the Python versions that read the
    fields of small inputs while a kernel is not compiled yet (their results must agree)."""
    chosen = csvjit.in_python
    csvjit.in_python = lambda kernel, nfields: request.param == "python"
    yield request.param
    csvjit.in_python = chosen


NA = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")

TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)


def layout(raws: list[tuple[bytes, int]], gap: bytes = b"|") -> tuple[np.ndarray, ...]:
    """One buffer holding the raw field bytes (with junk between), and starts/ends/flags."""
    buf = bytearray(gap)
    starts, ends, flags = [], [], []
    for raw, fl in raws:
        starts.append(len(buf))
        buf += raw
        ends.append(len(buf))
        flags.append(fl)
        buf += gap
    return (
        np.frombuffer(bytes(buf), np.uint8),
        np.array(starts, np.int64),
        np.array(ends, np.int64),
        np.array(flags, np.uint8),
    )


@st.composite
def fields(draw, values=TEXT):
    """(values, (buf, starts, ends, flags)) with each value stored plain or quoted-escaped."""
    vals = draw(st.lists(values, max_size=12))
    raws = []
    for v in vals:
        b = v.encode("utf-8")
        if draw(st.booleans()):
            raws.append((b.replace(b'"', b'""'), QUOTED | (ESCAPED if b'"' in b else 0)))
        else:
            raws.append((b, 0))  # an unquoted field keeps its quotes as they are
    return vals, layout(raws)


@given(fields())
def test_ucs4_equals_python_decode(case):
    vals, (buf, starts, ends, flags) = case
    text, bad = fields_to_ucs4(buf, starts, ends, flags)
    assert bad == -1
    assert text.tolist() == vals
    assert text.dtype == np.dtype(f"U{max([1, *map(len, vals)])}")


@given(st.lists(st.binary(max_size=6), max_size=10))
def test_invalid_utf8_is_found_like_python_finds_it(raws):
    buf, starts, ends, flags = layout([(r, 0) for r in raws])
    text, bad = fields_to_ucs4(buf, starts, ends, flags)
    expected_bad = -1
    for i, r in enumerate(raws):
        try:
            r.decode("utf-8")
        except UnicodeDecodeError:
            expected_bad = i
            break
    assert bad == expected_bad
    if bad < 0:  # numpy U arrays drop trailing NULs
        assert text.tolist() == [r.decode("utf-8").rstrip("\x00") for r in raws]
    else:
        assert len(text) == 0


def test_invalid_utf8_cases():
    invalid = [
        b"\x80",  # a continuation byte alone
        b"\xc0\x80",  # overlong NUL
        b"\xc1\xbf",  # overlong
        b"\xe0\x80\xaf",  # overlong 3-byte
        b"\xf0\x80\x80\xaf",  # overlong 4-byte
        b"\xed\xa0\x80",  # a surrogate (U+D800)
        b"\xed\xbf\xbf",  # a surrogate (U+DFFF)
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\xe2\x82",  # truncated
        b"ok\xe2\x82",  # truncated at the field's end, valid bytes after it in the buffer
        b"a\xc3(",
    ]
    for raw in invalid:
        buf, starts, ends, flags = layout([(b"fine", 0), (raw, 0), (b"\xe2\x82\xac", 0)], b"\xac")
        assert fields_to_ucs4(buf, starts, ends, flags)[1] == 1, raw
    edge = [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xc2\x80", b"\xef\xbf\xbf"]
    buf, starts, ends, flags = layout([(r, 0) for r in edge])
    text, bad = fields_to_ucs4(buf, starts, ends, flags)
    assert bad == -1 and text.tolist() == [r.decode() for r in edge]


def test_escapes_empty_fields_and_strided_views():
    data = b'a,"",x\n"q""r","""",y\n"ab"c,"\xc3\xa9""",z\n'
    tok = tokenize(data, ord(","))
    buf = np.frombuffer(data, np.uint8)
    text, bad = fields_to_ucs4(buf, tok.starts, tok.ends, tok.flags)
    assert bad == -1
    assert text.tolist() == ["a", "", "x", 'q"r', '"', "y", "abc", 'é"', "z"]
    assert tok.flags[6] & TRAILING
    col = fields_to_ucs4(buf, tok.starts[1::3], tok.ends[1::3], tok.flags[1::3])[0]
    assert col.tolist() == ["", '"', 'é"'] and col.dtype == np.dtype("U2")
    empty = fields_to_ucs4(buf, tok.starts[:0], tok.ends[:0], tok.flags[:0])[0]
    assert empty.shape == (0,) and empty.dtype == np.dtype("U1")
    assert unescape_bytes(b'a""b') == b'a"b' and unescape_bytes(b'ab"c""') == b'abc""'
    assert unescape_bytes(b"it''s'x", ord("'")) == b"it'sx"
    # another quote character
    buf2, s2, e2, f2 = layout([(b"it''s", QUOTED | ESCAPED), (b'say "hi"', 0)])
    assert fields_to_ucs4(buf2, s2, e2, f2, quotechar=ord("'"))[0].tolist() == ["it's", 'say "hi"']


SMALL = st.text(st.sampled_from(["a", "b", '"', "é", " "]), max_size=3)


def check_dictionary(vals, buf, starts, ends, flags, max_distinct):
    codes, first, overflow = dictionary_encode_fields(
        buf, starts, ends, flags, max_distinct=max_distinct
    )
    seen: dict[str, int] = {}
    firsts = []
    for i, v in enumerate(vals):
        if v not in seen:
            seen[v] = len(seen)
            firsts.append(i)
    if 0 <= max_distinct < len(seen):
        assert overflow
        assert first.tolist() == firsts[:max_distinct]
        return
    assert not overflow
    assert codes.dtype == np.int32 and first.dtype == np.int64
    assert codes.tolist() == [seen[v] for v in vals]
    assert first.tolist() == firsts
    values = fields_to_ucs4(buf, starts[first], ends[first], flags[first])[0]
    assert [v.rstrip("\x00") for v in values.tolist()] == [v.rstrip("\x00") for v in seen]


@given(fields(SMALL), st.integers(-1, 6))
def test_dictionary_in_order_of_first_appearance(case, max_distinct):
    vals, (buf, starts, ends, flags) = case
    check_dictionary(vals, buf, starts, ends, flags, max_distinct)


@given(fields(st.text(st.sampled_from(["\x00", "a", "b", '"']), max_size=9)), st.integers(-1, 4))
def test_dictionary_short_values_cache(case, max_distinct):
    """Values of at most 8 bytes are looked up in a cache of their bytes as one word first:
    values differing only by trailing NULs, the empty value, 9 bytes, and 8 bytes of padding
    after the last field (so that every field may use the cache)."""
    vals, (buf, starts, ends, flags) = case
    buf = np.concatenate([buf, np.zeros(8, np.uint8)])
    check_dictionary(vals, buf, starts, ends, flags, max_distinct)


def test_dictionary_of_many_values():
    vals = [f"v{i % 3000}" for i in range(10_000)]
    buf, starts, ends, flags = layout([(v.encode(), 0) for v in vals])
    codes, first, overflow = dictionary_encode_fields(buf, starts, ends, flags)
    assert not overflow and len(first) == 3000
    assert np.array_equal(codes, np.arange(10_000) % 3000)
    _, first, overflow = dictionary_encode_fields(buf, starts, ends, flags, max_distinct=100)
    assert overflow and len(first) == 100


@given(fields(st.sampled_from([*NA, " NA", "NA ", "na", "N", "NULLS", 'N"A', "x", "NaN'"])))
def test_match_tokens_is_set_membership(case):
    vals, (buf, starts, ends, flags) = case
    tokens = [*NA, 'N"A']
    tbuf, toff = pack_tokens(tokens)
    hits = match_tokens(buf, starts, ends, flags, tbuf, toff)
    assert hits.dtype == np.bool_
    assert hits.tolist() == [v in tokens for v in vals]


def test_match_tokens_edge_cases():
    buf, starts, ends, flags = layout([(b"", 0), (b"", QUOTED), (b"NA", 0)])
    none = pack_tokens([])
    assert match_tokens(buf, starts, ends, flags, *none).tolist() == [False] * 3
    only_na = pack_tokens(["NA"])
    assert match_tokens(buf, starts, ends, flags, *only_na).tolist() == [False, False, True]
    assert match_tokens(buf, starts, ends, flags, *pack_tokens(NA)).tolist() == [True] * 3


def test_na_fields_are_what_pandas_reads_as_missing():
    data = (
        b'k,v\n1,\n2,""\n3,"NA"\n4, NA\n5,NA \n6,na\n7,"N""A"\n8,"N"A\n9,NULL\n10,"nan"\n'
        b'11,-\n12,"a,b"\n'
    )
    tok = tokenize(data, ord(","))
    buf = np.frombuffer(data, np.uint8)
    v = slice(3, None, 2)  # the second column, header excluded
    tokens = [*NA, 'N"A']
    hits = match_tokens(buf, tok.starts[v], tok.ends[v], tok.flags[v], *pack_tokens(tokens))
    frame = pd.read_csv(
        io.BytesIO(data), dtype=str, keep_default_na=False, na_values=tokens, index_col=False
    )
    assert hits.tolist() == frame["v"].isna().tolist()
    yes, no = True, False
    assert hits.tolist() == [yes, yes, yes, no, no, no, yes, yes, yes, yes, no, no]


SHORT = st.text('Na/"x€', max_size=4)
LONG = st.text("ab", min_size=62, max_size=66)  # lengths around the 64-bit length mask


@given(st.data())
def test_match_tokens_with_any_tokens_is_set_membership(data):
    """The length mask and first-byte table only skip fields that match no token, whatever the
    tokens: empty, sharing first bytes, with quotes, multi-byte, or 64 bytes and longer."""
    tokens = data.draw(st.lists(st.one_of(SHORT, LONG), max_size=6))
    values = st.one_of(SHORT, LONG, st.sampled_from(tokens)) if tokens else SHORT
    vals, (buf, starts, ends, flags) = data.draw(fields(values))
    hits = match_tokens(buf, starts, ends, flags, *pack_tokens(tokens))
    assert hits.tolist() == [v in tokens for v in vals]
