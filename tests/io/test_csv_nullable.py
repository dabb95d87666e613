"""CSV columns with missing values: bool, int, text and category columns keep them as missing
(issue 13), whatever block they first appear in, and schemas can ask for it."""

import io

import numpy as np
import pandas as pd
import pytest

import colvault
from colvault import CSVError, import_csv


@pytest.fixture
def store(tmp_path):
    with colvault.open(tmp_path / "s.colvault", "w") as s:
        yield s


def _csv(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("chunk", [None, 64])
def test_missing_values_first_met_in_a_later_block(store, tmp_path, chunk):
    rows = [f"{i},{i % 2 == 0},w{i % 3},name{i}" for i in range(300)]
    rows += ["300,NA,,", "301,true,w1,last"]
    path = tmp_path / "a.csv"
    path.write_bytes(_csv(["n,b,c,t", *rows]))
    t = import_csv(path, store, "/t", chunk_bytes=chunk)
    specs = {s.name: s for s in t.column_specs()}
    assert not specs["n"].nullable and t.schema["n"] == np.int64
    assert specs["b"].nullable and t.schema["b"] == np.bool_
    assert specs["c"].nullable and specs["c"].is_category == (chunk is None)  # few rows: text
    assert specs["t"].nullable
    frame = t.to_pandas()
    assert str(frame["b"].dtype) == "boolean" and frame["b"].isna().tolist()[-2:] == [True, False]
    assert frame["c"].isna().tolist()[-2:] == [True, False]
    assert frame["t"].isna().sum() == 1 and frame["t"].iloc[-1] == "last"
    assert t.stats("b")["null_count"] == 1


def test_schema_fixes_a_nullable_column(store):
    data = io.BytesIO(b"a,b\n1,x\n,y\n3,\n")
    t = import_csv(data, store, "/t", schema={"a": "Int32", "b": {"dtype": "U4", "nullable": True}})
    assert t.schema["a"] == np.int32
    assert t.col("a").tolist() == [1, None, 3]
    assert t.col("b").tolist() == ["x", "y", None]


def test_a_missing_value_in_a_fixed_int_column_says_how_to_allow_it(store):
    with pytest.raises(CSVError, match=r"missing value.*not nullable.*'Int64'") as e:
        import_csv(io.BytesIO(b"a\n1\n\n2\nNA\n"), store, "/t", schema={"a": "i8"})
    assert e.value.line == 5 and e.value.column == "a"  # a blank line is no row
    assert "/t" not in store


def test_appending_a_file_to_a_nullable_table(store, tmp_path):
    t = store.create_table("/t", pd.DataFrame({"a": pd.array([1, None], dtype="Int64")}))
    store.commit()
    path = tmp_path / "more.csv"
    path.write_bytes(b"a\nNA\n7\n")
    import_csv(path, store, "/t")
    assert t.col("a").tolist() == [1, None, None, 7]


def test_integers_with_missing_values_stay_exact_where_pandas_rounds(store, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"a\n9007199254740993\nNA\n")
    t = import_csv(path, store, "/t")
    assert t.col("a").tolist() == [9007199254740993, None]
    assert int(pd.read_csv(path)["a"].iloc[0]) != 9007199254740993  # pandas: float64, rounded
