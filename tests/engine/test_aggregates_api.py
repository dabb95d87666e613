"""stats() and histogram() over tables agree with numpy's nan-functions and numpy.histogram."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import QueryError


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 7000
    data = {
        "value": np.round(rng.normal(10, 8, n), 3),
        "temp": (20 + rng.normal(0, 2, n)).astype(np.float32),
        "sensor": rng.integers(-50, 50, n, dtype=np.int16),
        "count": rng.integers(0, 2**62, n, dtype=np.uint64),
        "flag": rng.integers(0, 2, n).astype(bool),
        "t": np.arange(n).astype("M8[s]"),
    }
    data["value"][rng.integers(0, n, 50)] = np.nan
    path = str(tmp_path_factory.mktemp("agg") / "a.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=1024)
        t.append(data)
    return path, data


def check_stats(got: dict, values: np.ndarray) -> None:
    valid = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    assert got["count"] == len(valid)
    assert got["nan_count"] == len(values) - len(valid)
    if not len(valid):
        assert got["min"] is None
        return
    assert got["min"] == valid.min() and got["max"] == valid.max()
    if values.dtype.kind in "Mm":
        return
    if values.dtype.kind in "iub":
        assert got["sum"] == np.sum(valid)
    else:
        assert got["sum"] == pytest.approx(np.sum(valid.astype(np.float64)), rel=1e-12)
    wide = valid.astype(np.float64)
    assert got["mean"] == pytest.approx(np.mean(wide), rel=1e-12)
    assert got["std"] == pytest.approx(np.std(wide), rel=1e-12)


@pytest.mark.parametrize("column", ["value", "temp", "sensor", "count", "flag", "t"])
@pytest.mark.parametrize("where", [None, "(value > 5) & (sensor < 20)", "value > 1000"])
def test_stats_match_numpy(table_path, column, where):
    path, data = table_path
    mask = np.ones(len(data["value"]), bool)
    if where is not None:
        mask = eval(where, {"__builtins__": {}}, data)
    with colvault.open(path) as store:
        check_stats(store["/t"].stats(column, where=where), data[column][mask])


@given(st.integers(1, 40), st.booleans(), st.sampled_from(["value", "temp", "sensor"]))
def test_histogram_matches_numpy(table_path, bins, filtered, column):
    path, data = table_path
    values = data[column]
    mask = data["sensor"] > 0 if filtered else np.ones(len(values), bool)
    rng = (-20.0, 40.0) if column == "value" else None  # temp, sensor: numpy finds the range
    want_counts, want_edges = np.histogram(values[mask], bins, range=rng)
    with colvault.open(path) as store:
        counts, edges = store["/t"].histogram(
            column, bins, range=rng, where="sensor > 0" if filtered else None
        )
    assert np.array_equal(counts, want_counts)
    assert np.array_equal(edges, want_edges)


def test_aggregate_errors(table_path):
    path, _ = table_path
    with colvault.open(path) as store:
        t = store["/t"]
        with pytest.raises(QueryError, match="datetime"):
            t.histogram("t", range=(0, 1))
        with pytest.raises(ValueError, match="no column"):
            t.stats("nope")
