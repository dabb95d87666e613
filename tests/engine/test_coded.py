"""Coded text (codes into values) appended to a category column is stored byte for byte as the
same rows appended as text: per piece and per chunk dictionaries, values listed twice, pieces
mixed with text, and bad codes refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import colvault
from colvault import SchemaError
from colvault.engine.coded import Coded

WORDS = ["ok", "warn", "", "bad", "ünï", "ok "]


def _chunks(table: colvault.Table) -> list[tuple[int, str, str | None, bytes]]:
    """Every chunk as stored: rows, encoding, parameters and payload."""
    out = []
    reader = table._source().reader
    for refs in table._state().columns.values():
        for ref in refs:
            mapping = reader.view(ref.segment, ref.offset, ref.length)
            assert mapping is not None
            payload = bytes(mapping[ref.offset : ref.offset + ref.length])
            out.append((ref.nrows, ref.encoding, payload))
    return out


batches = st.lists(
    st.tuples(
        st.lists(st.integers(0, len(WORDS) - 1), min_size=1, max_size=300),
        st.permutations(range(len(WORDS))),  # the order of this piece's values
        st.booleans(),  # coded, or text
        st.booleans(),  # copy
    ),
    min_size=1,
    max_size=8,
)


@settings(deadline=None)
@given(batches)
def test_coded_rows_are_stored_as_their_text(
    tmp_path_factory: pytest.TempPathFactory,
    pieces: list[tuple[list[int], list[int], bool, bool]],
) -> None:
    tmp = tmp_path_factory.mktemp("coded")
    with colvault.open(tmp / "a", "w") as sa, colvault.open(tmp / "b", "w") as sb:
        schema = {"c": "category", "n": "i4"}
        ta = sa.create_table("/t", schema, chunk_rows=256)
        tb = sb.create_table("/t", schema, chunk_rows=256)
        for rows, order, coded, copy in pieces:
            values = np.array([WORDS[k] for k in order])
            codes = np.array([order.index(r) for r in rows], np.int32)
            n = np.arange(len(rows), dtype=np.int32)
            ta.append({"c": values[codes], "n": n})
            tb.append({"c": Coded(codes, values) if coded else values[codes], "n": n}, copy=copy)
        sa.commit()
        sb.commit()
        assert ta.read()["c"].tolist() == tb.read()["c"].tolist()
        assert _chunks(ta) == _chunks(tb)


def test_values_listed_twice_are_one_value(tmp_path: Path) -> None:
    with colvault.open(tmp_path / "s", "w") as s:
        t = s.create_table("/t", {"c": "category"})
        t.append({"c": Coded(np.array([0, 1, 2, 1]), np.array(["a", "", ""]))})
        s.commit()
        codes, dictionary = t.col("c", codes=True, chunk=0)  # as stored
        assert dictionary.tolist() == ["a", ""] and codes.tolist() == [0, 1, 1, 1]


@pytest.mark.parametrize(
    ("coded", "message"),
    [
        (Coded(np.array([0, 3]), np.array(["a", "b"])), "codes outside 0..1"),
        (Coded(np.array([-1]), np.array(["a"])), "codes outside"),
        (Coded(np.array([0.5]), np.array(["a"])), "1-d integer array"),
        (Coded(np.array([0]), np.array([1])), "1-d str array"),
    ],
)
def test_bad_codes_are_refused(tmp_path: Path, coded: Coded, message: str) -> None:
    with colvault.open(tmp_path / "s", "w") as s:
        t = s.create_table("/t", {"c": "category", "x": "f8"})
        with pytest.raises(SchemaError, match=message):
            t.append({"c": coded, "x": np.zeros(len(coded))})
        with pytest.raises(SchemaError, match="category columns"):
            t.append({"c": ["a"], "x": Coded(np.array([0]), np.array(["a"]))})
        assert t.pending_rows == 0
