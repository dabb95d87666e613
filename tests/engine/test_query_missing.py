"""Missing values in conditions: ``isna``/``notna`` in the language, and missing entries of
nullable columns compared as NaN is (false, except ``!=``; ``~`` flips), checked against
pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import colvault
from colvault import QueryError
from colvault.engine.query.parse import parse
from colvault.engine.query.predicate import evaluate


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A table without nullable columns: NaN floats, NaT datetimes, ints, text."""
    rng = np.random.default_rng(5)
    n = 3000
    data = {
        "f": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        "i": rng.integers(0, 5, n),
        "t": np.where(
            rng.random(n) < 0.3,
            np.datetime64("NaT"),
            np.datetime64("2020-01-01") + rng.integers(0, 100, n).astype("m8[D]"),
        ).astype("M8[s]"),
        "s": np.array(["a", "b"])[rng.integers(0, 2, n)],
    }
    path = tmp_path_factory.mktemp("plain") / "x.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=512)
        t.append(data)
    return path, data


@pytest.mark.parametrize(
    "cond, pandas_cond",
    [
        ("isna(f)", "f.isna()"),
        ("notna(f) & (i > 2)", "f.notna() & (i > 2)"),
        ("isna(t)", "t.isna()"),
        ("notna(t) | (i == 0)", "t.notna() | (i == 0)"),
        ("isna(i)", "i.isna()"),
        ("notna(s)", "s.notna()"),
        ("~isna(f + 1)", "~(f + 1).isna()"),
        ("isna(i) | (i == 1)", "i.isna() | (i == 1)"),
        ("isna(f) + 1 > 1", "f.isna() + 1 > 1"),
    ],
)
def test_isna_on_plain_columns_matches_pandas(plain, cond, pandas_cond):
    path, data = plain
    df = pd.DataFrame(data)
    want = np.flatnonzero(df.eval(pandas_cond, engine="python").to_numpy())
    with colvault.open(path, "r") as store:
        t = store["/t"]
        assert np.array_equal(t.get_where_list(cond), want)
        assert t.count_where(cond) == len(want)
        assert np.array_equal(t.read_where(cond)["i"], data["i"][want])


def test_isna_of_constants_folds():
    cols = {"f": np.dtype("f8")}
    e = parse("isna(f) | isna(1.5) | notna(nan_value)", cols, {"nan_value": np.nan})
    assert e.args[1].value == np.False_ or e.args[0].args[1].value == np.False_
    folded = parse("(f > 0) & notna(2)", cols)
    assert folded.op == "and"


def test_isna_errors_are_clear():
    cols = {"f": np.dtype("f8")}
    with pytest.raises(QueryError, match="exactly one argument"):
        parse("isna(f, f)", cols)
    with pytest.raises(QueryError, match="call it as isna"):
        parse("isna", cols)
    with pytest.raises(QueryError, match="isna"):
        parse("foo(f) > 1", cols)


def test_numpy_reference_evaluates_isna():
    cols = {"f": np.dtype("f8"), "x": np.dtype("i8")}
    f = np.array([1.0, np.nan])
    x = np.ma.masked_array([1, 2], mask=[True, False])
    assert evaluate(parse("isna(f)", cols), {"f": f, "x": x}).tolist() == [False, True]
    assert evaluate(parse("notna(x)", cols), {"f": f, "x": x}).tolist() == [False, True]
