"""Aggregates over nullable columns against pandas: missing values skipped (and counted by
``stats``), rows with a missing group key in no group (``groupby(dropna=True)``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault

SCHEMA = {
    "i": {"dtype": "i8", "nullable": True},
    "k": {"dtype": "i2", "nullable": True},
    "h": {"dtype": "i8", "nullable": True},
    "c": {"dtype": "category", "nullable": True},
    "f": "f8",
}
WIDE = 10**12  # ``h`` = k * WIDE: a key range too wide for dense groups (hashed)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    k = pd.array([r[1] for r in rows], dtype="Int64")
    return pd.DataFrame(
        {
            "i": pd.array([r[0] for r in rows], dtype="Int64"),
            "k": k,
            "h": k * WIDE,
            "c": pd.Categorical([r[2] for r in rows]),
            "f": np.array([r[3] for r in rows], float),
        }
    )


def _arrays(df: pd.DataFrame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ("i", "k", "h"):
        col = df[name]
        out[name] = np.ma.masked_array(
            col.to_numpy(dtype="int64", na_value=0).astype(SCHEMA[name]["dtype"]),
            mask=col.isna().to_numpy(),
        )
    c = df["c"]
    out["c"] = np.ma.masked_array(
        c.astype(object).where(c.notna(), "").to_numpy(dtype=object), mask=c.isna().to_numpy()
    )
    out["f"] = df["f"].to_numpy()
    return out


def _close(a, b) -> bool:
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


_ROW = st.tuples(
    st.one_of(st.none(), st.integers(-1000, 1000)),
    st.one_of(st.none(), st.integers(-2, 2)),
    st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    st.floats(0, 1),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, min_size=1, max_size=50), pending=st.lists(_ROW, max_size=3))
def test_aggregates_skip_missing_like_pandas(tmp_path, rows, pending):
    df = _frame(rows)
    path = tmp_path / f"a{abs(hash((tuple(rows), tuple(pending))))}.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", SCHEMA, chunk_rows=6)
        t.append(_arrays(df))
        t.flush()
        if pending:  # not flushed: aggregates see committed rows only
            t.append(_arrays(_frame(pending)))
        # the rows each condition selects (a missing i != 0 is true, as for NaN)
        selected = {
            None: np.ones(len(df), bool),
            "f > 0.3": (df["f"] > 0.3).to_numpy(),
            "notna(k) & (i != 0)": (df["k"].notna() & (df["i"].isna() | (df["i"] != 0)))
            .fillna(True)
            .to_numpy(bool),
        }
        for where, mask in selected.items():
            sub = df[mask]
            i = sub["i"]
            s = t.stats("i", where=where)
            assert s["count"] == i.count()
            assert s["null_count"] == int(i.isna().sum())
            assert s["nan_count"] == 0
            assert int(s["sum"]) == int(i.sum())
            if i.count():
                assert int(s["min"]) == int(i.min()) and int(s["max"]) == int(i.max())
                assert _close(s["mean"], i.mean()) and _close(s["std"], i.std(ddof=0))
            else:
                assert s["min"] is None and math.isnan(s["mean"])
            counts, _ = t.histogram("i", bins=4, range=(-1000, 1000), where=where)
            want, _ = np.histogram(i.dropna().to_numpy(float), 4, (-1000, 1000))
            assert counts.tolist() == want.tolist()
            for key in ("k", "h", "c"):
                aggs = {"i": ["count", "sum", "mean", "max", "null_count"], "f": "null_count"}
                got = t.group_by(key, aggs, where=where)
                grouped = sub.groupby(key, dropna=True, observed=True)["i"]
                ref = grouped.agg(["count", "sum", "mean", "max"])
                labels = got[key].tolist()
                assert labels == [x if key == "c" else int(x) for x in ref.index], key
                assert got["i_count"].tolist() == ref["count"].tolist(), key
                missing = sub["i"].isna().groupby(sub[key], dropna=True, observed=True).sum()
                assert got["i_null_count"].tolist() == missing.tolist(), key
                assert not got["f_null_count"].any()
                assert got["i_sum"].tolist() == ref["sum"].astype(int).tolist(), key
                means = ref["mean"].to_numpy(dtype=float, na_value=np.nan)
                assert all(_close(a, b) for a, b in zip(got["i_mean"], means, strict=True))
                has = ref["count"].to_numpy() > 0
                maxima = ref["max"].to_numpy(dtype=float, na_value=np.nan)[has]
                assert got["i_max"][has].tolist() == maxima.astype(int).tolist(), key


def test_describe_skips_missing(tmp_path):
    rng = np.random.default_rng(3)
    n = 5000
    values = rng.integers(-100, 100, n)
    missing = rng.random(n) < 0.2
    path = tmp_path / "d.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"i": {"dtype": "i8", "nullable": True}}, chunk_rows=700)
        t.append({"i": np.ma.masked_array(values, mask=missing)})
        t.flush()
        got = t.describe()
    want = pd.DataFrame({"i": pd.array(np.where(missing, 0, values), "Int64")})
    want.loc[missing, "i"] = pd.NA
    ref = want.describe()
    assert got["i"]["count"] == ref["i"]["count"] == (~missing).sum()
    for row in ("mean", "std", "min", "25%", "50%", "75%", "max"):
        assert _close(got["i"][row], ref["i"][row]), row


def test_large_table_batches_and_masked_chunks(tmp_path):
    """Chunks without missing values go through the batch kernels, the others through the
    masked ones; a group whose values are all missing still appears (count 0)."""
    rng = np.random.default_rng(8)
    n, chunk = 30_000, 4096
    v = rng.integers(-(10**6), 10**6, n)
    key = rng.integers(0, 5, n).astype(np.int16)
    f = rng.random(n)
    v_missing = np.zeros(n, bool)
    v_missing[2 * chunk : 4 * chunk] = rng.random(2 * chunk) < 0.4
    v_missing[key == 4] = True  # group 4: no value at all
    k_missing = np.zeros(n, bool)
    k_missing[5 * chunk : 6 * chunk] = rng.random(chunk) < 0.5
    path = tmp_path / "big.colvault"
    schema = {
        "v": {"dtype": "i8", "nullable": True},
        "k": {"dtype": "i2", "nullable": True},
        "f": "f8",
    }
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", schema, chunk_rows=chunk)
        t.append(
            {
                "v": np.ma.masked_array(v, mask=v_missing),
                "k": np.ma.masked_array(key, mask=k_missing),
                "f": f,
            }
        )
        t.flush()
    df = pd.DataFrame(
        {
            "v": pd.array(np.where(v_missing, 0, v), "Int64"),
            "k": pd.array(np.where(k_missing, 0, key), "Int64"),
            "f": f,
        }
    )
    df.loc[v_missing, "v"] = pd.NA
    df.loc[k_missing, "k"] = pd.NA
    with colvault.open(path, "r") as store:
        t = store["/t"]
        for where, mask in ((None, np.ones(n, bool)), ("f < 0.7", f < 0.7), ("v > 0", None)):
            if mask is None:
                mask = (df["v"] > 0).fillna(False).to_numpy(bool)
            sub = df[mask]
            s = t.stats("v", where=where)
            assert (s["count"], s["null_count"]) == (sub["v"].count(), sub["v"].isna().sum())
            assert int(s["sum"]) == int(sub["v"].sum())
            assert _close(s["mean"], sub["v"].mean()) and _close(s["std"], sub["v"].std(ddof=0))
            counts, edges = t.histogram("v", bins=7, where=where)
            want, want_edges = np.histogram(sub["v"].dropna().to_numpy(float), 7)
            assert counts.tolist() == want.tolist() and np.allclose(edges, want_edges)
            got = t.group_by("k", {"v": ["count", "sum"]}, where=where)
            ref = sub.groupby("k", dropna=True)["v"].agg(["count", "sum"])
            assert got["k"].tolist() == ref.index.tolist()
            assert got["v_count"].tolist() == ref["count"].tolist()
            assert got["v_sum"].tolist() == ref["sum"].astype(int).tolist()
