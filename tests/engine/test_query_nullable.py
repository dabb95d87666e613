"""Queries over nullable columns against pandas: a missing entry compares as NaN does (false,
except ``!=``; ``~`` flips), ``isna``/``notna`` find it; chunk by chunk (plain kernels for
chunks without missing values, masked ones for the others) and in batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault

# ---------------------------------------------------------------------------------------------
# nullable columns against pandas

#: (colvault condition, the same over pandas' NaN-holding columns: ``i``/``b`` as float64,
#: ``s`` as pandas' ``str`` (NaN for missing)); pandas compares NaN as colvault compares a
#: missing entry.
CONDITIONS = [
    ("i > 0", "i > 0"),
    ("i != 1", "i != 1"),
    ("~(i == 1)", "~(i == 1)"),
    ("isna(i) | (f < 0.5)", "i.isna() | (f < 0.5)"),
    ("notna(i) & ~isna(s)", "i.notna() & ~s.isna()"),
    ("(s != 'a') & (i <= 1)", "(s != 'a') & (i <= 1)"),
    ("s == 'b'", "s == 'b'"),
    ("(b == True) | (i <= -1)", "(b == True) | (i <= -1)"),
    ("~(b == True) & (f > 0.2)", "~(b == True) & (f > 0.2)"),
    ("i + 1 > f * 4", "i + 1 > f * 4"),
    ("isna(f) & notna(i)", "f.isna() & i.notna()"),
    ("~((i > 0) | (s < 'b'))", "~((i > 0) | (s < 'b'))"),
    ("c == 'a'", "c == 'a'"),
    ("c != 'b'", "c != 'b'"),
    ("isna(c) | (c > 'a')", "c.isna() | (c > 'a')"),
    ("~(c <= 'b') & notna(i)", "~(c <= 'b') & i.notna()"),
]
#: Conditions without ``!=`` or ``~``: pandas' own nullable dtypes (Kleene logic, NA selects
#: nothing) give the same rows.
KLEENE_SAFE = {"i > 0", "isna(i) | (f < 0.5)", "s == 'b'", "(b == True) | (i <= -1)"}

SCHEMA = {
    "i": {"dtype": "i8", "nullable": True},
    "b": {"dtype": "bool", "nullable": True},
    "s": {"dtype": "U2", "nullable": True},
    "c": {"dtype": "category", "nullable": True},
    "f": "f8",
}


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """pandas' nullable columns from (i, b, s, f) rows; None is missing."""
    return pd.DataFrame(
        {
            "i": pd.array([r[0] for r in rows], dtype="Int64"),
            "b": pd.array([r[1] for r in rows], dtype="boolean"),
            "s": pd.array([r[2] for r in rows], dtype="string"),
            "c": pd.Categorical([r[2] for r in rows]),
            "f": np.array([np.nan if r[3] is None else r[3] for r in rows], float),
        }
    )


def _masked(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The frame as numpy masked arrays (what an append takes)."""
    out = {}
    for name, fill in (("i", 0), ("b", False), ("s", "")):
        col = df[name]
        out[name] = np.ma.masked_array(
            col.to_numpy(dtype=object, na_value=fill).astype(SCHEMA[name]["dtype"]),
            mask=col.isna().to_numpy(),
        )
    c = df["c"]
    text = c.astype(object).where(c.notna(), "").to_numpy(dtype=object)
    out["c"] = np.ma.masked_array(text, mask=c.isna().to_numpy())
    out["f"] = df["f"].to_numpy()
    return out


def _nan_frame(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": df["i"].astype("float64"),
            "b": df["b"].astype("float64"),
            "s": df["s"].astype("str"),
            "c": df["c"].astype("str").where(df["c"].notna(), np.nan).astype("str"),
            "f": df["f"],
        }
    )


def _rows_of(df: pd.DataFrame, cond: str) -> np.ndarray:
    picked = df.eval(cond, engine="python")
    return np.flatnonzero(picked.fillna(False).to_numpy(dtype=bool))


_ROW = st.tuples(
    st.one_of(st.none(), st.integers(-2, 2)),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    st.one_of(st.none(), st.floats(0, 1)),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, min_size=1, max_size=60), pending=st.lists(_ROW, max_size=5))
def test_conditions_on_nullable_columns_match_pandas(tmp_path, rows, pending):
    df = _frame(rows)
    ref = _nan_frame(df)
    path = tmp_path / f"t{abs(hash((tuple(rows), tuple(pending))))}.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", SCHEMA, chunk_rows=7)
        half = len(df) // 2
        t.append(_masked(df.iloc[:half]))
        t.append(_masked(df.iloc[half:]))
        t.flush()
        if pending:  # appended, not flushed: queries see committed rows only
            t.append(_masked(_frame(pending)))
        for cond, pandas_cond in CONDITIONS:
            want = _rows_of(ref, pandas_cond)
            assert np.array_equal(t.get_where_list(cond), want), cond
            assert t.count_where(cond) == len(want), cond
            got = t.read_where(cond)
            assert np.array_equal(np.ma.getmaskarray(got["i"]), df["i"].isna().to_numpy()[want])
            assert got["f"].tolist() == df["f"].to_numpy()[want].tolist() or np.array_equal(
                got["f"], df["f"].to_numpy()[want], equal_nan=True
            )
            if cond in KLEENE_SAFE:
                assert np.array_equal(want, _rows_of(df, pandas_cond)), cond
        picked = [r["i"] for r in t.where("i >= 0")]
        assert len(picked) == len(_rows_of(ref, "i >= 0"))
        assert all(r["i"] is np.ma.masked for r in t.where("isna(i)"))
        assert len(list(t.where("isna(i)"))) == int(df["i"].isna().sum())
        bare = t.get_where_list("b")
        assert np.array_equal(bare, np.flatnonzero(df["b"].fillna(False).to_numpy(bool)))
        inverted = t.get_where_list("~b")
        assert np.array_equal(inverted, np.flatnonzero(~df["b"].fillna(False).to_numpy(bool)))


def test_large_chunks_mix_batched_plain_and_masked_chunks(tmp_path):
    """Sealed chunks without missing values take the batch path, those with them the masked
    kernel; zone maps count missing values as NaN; projections keep masks."""
    rng = np.random.default_rng(11)
    n, chunk = 20_000, 2048
    x = rng.integers(-50, 50, n)
    valid = np.ones(n, bool)
    valid[3 * chunk : 5 * chunk] = rng.random(2 * chunk) > 0.3  # missing in chunks 3 and 4
    valid[9 * chunk : 10 * chunk] = False  # chunk 9 all missing
    f = rng.random(n)
    df = pd.DataFrame({"x": pd.array(np.where(valid, x, 0), dtype="Int64"), "f": f})
    df.loc[~valid, "x"] = pd.NA
    ref = pd.DataFrame({"x": df["x"].astype("float64"), "f": f})
    path = tmp_path / "big.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table(
            "/t", {"x": {"dtype": "i8", "nullable": True}, "f": "f8"}, chunk_rows=chunk
        )
        t.append({"x": np.ma.masked_array(x, mask=~valid), "f": f})
        t.flush()
    with colvault.open(path, "r") as store:
        t = store["/t"]
        for cond in [
            "x > 10",
            "x != 3",
            "~(x < 100)",
            "(x >= -10) & (x < 10)",
            "isna(x)",
            "notna(x) & (f < 0.5)",
            "x < 1000",
            "x > -1000",
        ]:
            pandas_cond = cond.replace("isna(x)", "x.isna()").replace("notna(x)", "x.notna()")
            want = _rows_of(ref, pandas_cond)
            assert np.array_equal(t.get_where_list(cond), want), cond
            assert t.count_where(cond) == len(want), cond
            got = t.read_where(cond, columns=["x", "f"])
            assert np.array_equal(np.ma.getmaskarray(got["x"]), ~valid[want]), cond
            assert np.array_equal(got["x"].compressed(), x[want][valid[want]]), cond
            assert np.array_equal(got["f"], f[want]), cond
            parts = list(t.iter_where(cond, columns=["x"]))
            joined = np.ma.concatenate([p["x"] for p in parts]) if parts else np.ma.empty(0)
            assert np.array_equal(np.ma.getmaskarray(joined), ~valid[want]), cond
            assert t.read_where(cond, columns=["f"], start=5000, stop=15000).shape == (
                int(((want >= 5000) & (want < 15000)).sum()),
            )
