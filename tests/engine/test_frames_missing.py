"""DataFrames with missing values in and out: every pandas dtype that can hold them comes back
with the same dtype, the same missing positions and the same values, across chunks and
appends; a later frame fills a table made by an earlier one."""

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import colvault

INTS = ["Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"]
TEXTS = ["object", "string", "str"]
WORDS = ["", "a", "bb", "héllo", "日本", "x" * 30]
CATEGORIES = ["red", "green", "blue", "unused"]


def _holes(values, missing, na):
    return [na if m else v for v, m in zip(values, missing, strict=True)]


def _column(draw, kind, n, missing, width=100):
    if kind in INTS:
        info = np.iinfo(kind.lower())
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
        return pd.array(_holes(values, missing, None), dtype=kind)
    if kind == "boolean":
        values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return pd.array(_holes(values, missing, None), dtype="boolean")
    if kind == "Float64":
        values = draw(st.lists(st.floats(allow_nan=False), min_size=n, max_size=n))
        return pd.array(_holes(values, missing, None), dtype="Float64")
    if kind.startswith("datetime"):
        seconds = draw(st.lists(st.integers(-(2**33), 2**33), min_size=n, max_size=n))
        stamps = pd.to_datetime(np.array(seconds, "i8"), unit="s")
        stamps = pd.DatetimeIndex(np.where(missing, np.datetime64("NaT"), stamps.to_numpy()))
        return stamps.tz_localize("UTC").tz_convert(kind[len("datetime64[ns, ") : -1])
    if kind == "float64":
        values = draw(st.lists(st.floats(allow_nan=False), min_size=n, max_size=n))
        return np.array(_holes(values, missing, np.nan), dtype=np.float64)
    if kind == "category":
        values = draw(st.lists(st.sampled_from(CATEGORIES[:3]), min_size=n, max_size=n))
        return pd.Categorical(_holes(values, missing, None), CATEGORIES)
    words = [w for w in WORDS if len(w) <= width]  # text columns are as wide as the first frame's
    values = draw(st.lists(st.sampled_from(words), min_size=n, max_size=n))
    if kind == "object":
        return pd.Series(_holes(values, missing, None), dtype=object)
    na = pd.NA if kind == "string" else np.nan
    return pd.Series(_holes(values, missing, na), dtype=kind)


KINDS = [*INTS, "boolean", "Float64", "float64", "datetime64[ns, Europe/Paris]", "category", *TEXTS]


def _frame(draw, kinds, n, like=None):
    data = {}
    for kind in kinds:
        name = f"c_{kind}"
        text = like is not None and kind in TEXTS
        width = max([1, *like[name].dropna().map(len)]) if text else 100
        missing = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        data[name] = _column(draw, kind, n, missing, width)
    return pd.DataFrame(data)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_frames_with_missing_values_round_trip(tmp_path_factory, data):
    kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5, unique=True))
    first = _frame(data.draw, kinds, data.draw(st.integers(0, 60)))
    later = _frame(data.draw, kinds, data.draw(st.integers(0, 60)), like=first)
    path = tmp_path_factory.mktemp("frames") / "s.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", first, chunk_rows=16)
        t.append(later)
        store.commit()
    expected = pd.concat([first, later], ignore_index=True)
    with colvault.open(path, "r") as store:
        out = store["/t"].to_pandas()
    pd.testing.assert_frame_equal(out, expected)


@pytest.fixture
def store(tmp_path):
    with colvault.open(tmp_path / "s.colvault", "w") as s:
        yield s


def test_missing_values_read_as_masked_arrays(store):
    df = pd.DataFrame(
        {"n": pd.array([1, None, 3], dtype="Int32"), "s": ["a", None, "c"], "f": [1.0, None, 2]}
    )
    t = store.create_table("/t", df)
    store.commit()
    n = t.cols.n[:]
    assert isinstance(n, np.ma.MaskedArray)
    assert n.mask.tolist() == [False, True, False] and n.dtype == np.int32
    assert np.ma.getmaskarray(t.cols.s[:]).tolist() == [False, True, False]
    f = t.cols.f[:]
    assert not isinstance(f, np.ma.MaskedArray) and np.isnan(f[1])  # floats keep NaN


def test_to_pandas_with_columns_where_and_slices(store):
    df = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "s": pd.Series(["a", None, "c", "d", "e", None], dtype="string"),
            "c": pd.Categorical(["x", "y", None, "x", "y", None]),
        }
    )
    t = store.create_table("/t", df, chunk_rows=4)
    store.commit()
    pd.testing.assert_frame_equal(t.to_pandas(columns=["s", "n"]), df[["s", "n"]])
    part = t.to_pandas(start=1, stop=5)
    pd.testing.assert_frame_equal(part, df.iloc[1:5].reset_index(drop=True))
    chosen = t.to_pandas(where="n > 2")
    expected = df[(df.n > 2).fillna(False)].reset_index(drop=True)
    pd.testing.assert_frame_equal(chosen, expected)


def test_a_categorical_keeps_its_categories_and_order(store):
    c = pd.Categorical(["lo", None, "hi"], categories=["lo", "mid", "hi"], ordered=True)
    t = store.create_table("/t", pd.DataFrame({"c": c}))
    t.append(pd.DataFrame({"c": pd.Categorical(["new"])}))
    store.commit()
    out = t.to_pandas()["c"]
    assert list(out.cat.categories) == ["lo", "mid", "hi", "new"]
    assert out.cat.ordered
    assert out.isna().tolist() == [False, True, False, False]


def test_missing_values_into_a_column_that_cannot_hold_them(store):
    t = store.create_table("/t", pd.DataFrame({"n": np.array([1, 2], "i8")}))
    store.commit()
    with pytest.raises(colvault.SchemaError, match=r"column 'n'.*missing value.*not nullable"):
        t.append(pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}))
    assert t.nrows == 2
    store.commit()
    assert t.nrows == 2


def test_read_columns_gives_each_column_as_its_own_array(store):
    t = store.create_table("/t", {"a": "i4", "b": {"dtype": "i2", "nullable": True}})
    t.append({"a": [1, 2, 3], "b": [None, 5, 6]})
    store.commit()
    got = t.read_columns(["b", "a"], 1, 3)
    assert list(got) == ["b", "a"]
    assert got["a"].tolist() == [2, 3] and type(got["a"]) is np.ndarray
    assert got["b"].tolist() == [5, 6] and isinstance(got["b"], np.ma.MaskedArray)
    assert t.read_columns()["b"].mask.tolist() == [True, False, False]
    assert [(s.name, s.nullable) for s in t.column_specs(["b", "a"])] == [("b", True), ("a", False)]


def test_pandas_nat_is_missing_in_a_nullable_text_column(store):
    t = store.create_table("/t", {"s": {"dtype": "U3", "nullable": True}})
    t.append({"s": ["a", pd.NaT, None]})
    store.commit()
    assert t.col("s").tolist() == ["a", None, None]
