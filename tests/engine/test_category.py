"""category columns: a dictionary per chunk, values read back as str arrays."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import SchemaError

words = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6
)


@given(st.lists(st.lists(words, max_size=40), max_size=5), st.integers(1, 30))
def test_category_round_trip(tmp_path_factory, batches, chunk_rows):
    path = str(tmp_path_factory.mktemp("cat") / "s.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"station": "category", "n": "i4"}, chunk_rows=chunk_rows)
        for b in batches:
            t.append({"station": b, "n": np.arange(len(b))})
            store.commit()
    want = np.array([w for b in batches for w in b], dtype=str)
    with colvault.open(path) as store:
        t = store["/t"]
        got = t.col("station")
        assert got.tolist() == want.tolist()
        assert t.read()["station"].tolist() == want.tolist()
        if len(want):
            rows = np.array([len(want) - 1, 0, len(want) // 2])
            assert t.cols.station[rows].tolist() == want[rows].tolist()
            a = len(want) // 3
            assert t.cols.station[a : a + 7].tolist() == want[a : a + 7].tolist()
            n = np.concatenate([np.arange(len(b)) for b in batches])
            assert t.read_where("n < 3")["station"].tolist() == want[n < 3].tolist()
            codes, dictionary = t.col("station", codes=True)
            assert dictionary[codes].tolist() == want.tolist()
            assert dictionary.tolist() == sorted(set(want.tolist()))
        assert store.verify().ok


def test_category_sizes_and_codes(store_path):
    many = [f"value-{i}" for i in range(65_536)]
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"c": "category"}, chunk_rows=70_000)
        t.append({"c": many})
        t.append({"c": ["", "Zürich", "東京"] * 2})
        store.commit()
        codes, dictionary = t.col("c", codes=True, chunk=0)
        assert codes.dtype == np.uint32 and len(dictionary) == 65_539
        assert t.col("c")[-3:].tolist() == ["", "Zürich", "東京"]
        one = store.create_table("/one", {"c": "category"})
        one.append({"c": ["only"] * 1000})
        store.commit()
        codes, dictionary = one.col("c", codes=True, chunk=0)
        assert codes.dtype == np.uint8 and dictionary.tolist() == ["only"]
        assert one.stored_bytes < 200


def test_category_bad_input(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"c": "category"})
        with pytest.raises(SchemaError, match="column 'c'"):
            t.append({"c": [1, 2]})
        with pytest.raises(SchemaError, match="column 'c'"):
            t.append({"c": ["a", None]})
        with pytest.raises(SchemaError, match="cells"):
            store.create_table("/u", {"c": ("category", (2,))})
        with pytest.raises(SchemaError, match="not a category"):
            store.create_table("/v", {"x": "f8"}).col("x", codes=True)
        assert t.pending_rows == 0


WRITER = textwrap.dedent(
    """
    import sys, colvault
    path, name = sys.argv[1], sys.argv[2]
    with colvault.open(path, "a") as store:
        t = store["/t"]
        for i in range(30):
            t.append({"c": [f"{name}-{i % 7}"] * 5, "who": [name] * 5})
            store.commit()
    """
)


def test_two_writers_with_different_categories(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"c": "category", "who": "category"})
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store_path, name]) for name in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with colvault.open(store_path) as store:
        t = store["/t"]
        c, who = t.col("c"), t.col("who")
        assert len(c) == 300
        for name in "ab":
            mine = c[who == name]
            assert mine.tolist() == [f"{name}-{i % 7}" for i in range(30) for _ in range(5)]
        assert store.verify().ok
