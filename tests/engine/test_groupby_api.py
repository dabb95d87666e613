"""group_by over integer (dense and hashed), bool and category keys agrees with numpy."""

from __future__ import annotations

import numpy as np
import pytest

import colvault
from colvault import QueryError


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 6000
    data = {
        "sensor": rng.integers(0, 40, n, dtype=np.int32),
        "wide": rng.integers(-(2**62), 2**62, 30)[rng.integers(0, 30, n)],
        "big": (rng.integers(0, 20, n).astype(np.uint64) + np.uint64(2**63)),
        "flag": rng.integers(0, 2, n).astype(bool),
        "station": np.array(["north", "south", "Zürich", ""])[rng.integers(0, 4, n)],
        "value": np.round(rng.normal(10, 5, n), 2),
        "count": rng.integers(0, 1000, n, dtype=np.int64),
    }
    data["value"][rng.integers(0, n, 40)] = np.nan
    path = str(tmp_path_factory.mktemp("g") / "g.colvault")
    schema = {k: ("category" if k == "station" else v.dtype) for k, v in data.items()}
    with colvault.open(path, "w") as store:
        store.create_table("/t", schema, chunk_rows=700).append(data)
    return path, data


def reference(data, key, mask):
    keys = data[key][mask]
    out = {}
    for k in np.unique(keys):
        sel = keys == k
        v = data["value"][mask][sel]
        valid = v[~np.isnan(v)]
        c = data["count"][mask][sel]
        out[k] = {
            "value_count": len(valid),
            "value_mean": valid.mean() if len(valid) else np.nan,
            "value_std": valid.std() if len(valid) else np.nan,
            "value_max": valid.max() if len(valid) else np.nan,
            "count_sum": c.sum(),
            "count_min": c.min(),
        }
    return out


@pytest.mark.parametrize("key", ["sensor", "wide", "big", "flag", "station"])
@pytest.mark.parametrize("where", [None, "value > 8"])
def test_group_by_matches_numpy(table_path, key, where):
    path, data = table_path
    mask = np.ones(len(data["value"]), bool) if where is None else data["value"] > 8
    want = reference(data, key, mask)
    aggs = {"value": ["count", "mean", "std", "max"], "count": ["sum", "min"]}
    with colvault.open(path) as store:
        got = store["/t"].group_by(key, aggs, where=where)
    assert list(got[key]) == sorted(want)
    for i, k in enumerate(got[key]):
        for name, expected in want[k].items():
            if isinstance(expected, float) and np.isnan(expected):
                assert np.isnan(got[name][i])
            elif name.endswith(("mean", "std")):
                assert got[name][i] == pytest.approx(expected, rel=1e-12)
            else:
                assert got[name][i] == expected, (k, name)


def test_group_by_errors(table_path):
    path, _ = table_path
    with colvault.open(path) as store:
        t = store["/t"]
        with pytest.raises(QueryError, match="key"):
            t.group_by("value", {"count": "sum"})
        with pytest.raises(QueryError, match="unknown aggregate"):
            t.group_by("sensor", {"value": "median"})
        with pytest.raises(QueryError, match="needs aggregates"):
            t.group_by("sensor", {})
