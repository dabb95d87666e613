"""histogram() skips NaN: with range=None its range is that of the values that are not NaN, as
numpy.histogram(values[~np.isnan(values)]) gives it (issue 13 item 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import QueryError


@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")), st.sampled_from([0.5, 2.0])),
        max_size=200,
    ),
    bins=st.integers(1, 30),
    dtype=st.sampled_from(["f4", "f8"]),
    filtered=st.booleans(),
)
def test_histogram_skips_nan_like_numpy(
    tmp_path_factory: pytest.TempPathFactory, values: list[float], bins: int, dtype: str,
    filtered: bool,
) -> None:  # fmt: skip
    x = np.array(values, dtype)
    k = np.arange(len(x)) % 3
    path = tmp_path_factory.mktemp("h") / "s.colvault"
    with colvault.open(str(path), "w") as store:
        t = store.create_table("/t", {"x": x.dtype, "k": k.dtype}, chunk_rows=16)
        t.append({"x": x, "k": k})
        store.commit()
        mask = k != 1 if filtered else np.ones(len(x), bool)
        kept = x[mask]
        kept = kept[~np.isnan(kept)]
        where = "k != 1" if filtered else None
        try:
            want_counts, want_edges = np.histogram(kept, bins)
        except ValueError:  # too many bins for a float32 range: numpy refuses, and so do we
            with pytest.raises(QueryError, match="bins"):
                t.histogram("x", bins, where=where)
            return
        counts, edges = t.histogram("x", bins, where=where)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(edges, want_edges)
    assert edges.dtype == want_edges.dtype


def test_all_nan_and_given_range(tmp_path: Path) -> None:
    x = np.array([np.nan, 1.0, np.nan, 3.0, 2.0, np.nan])
    with colvault.open(str(tmp_path / "s.colvault"), "w") as store:
        t = store.create_table("/t", {"x": "f8", "n": "f8"})
        t.append({"x": x, "n": np.full(6, np.nan)})
        store.commit()
        for got, want in [
            (t.histogram("x", 4), np.histogram(x[~np.isnan(x)], 4)),
            (t.histogram("x", 3, range=(0, 5)), np.histogram(x, 3, range=(0, 5))),
            (t.histogram("n", 5), np.histogram(np.empty(0), 5)),  # no values: range (0, 1)
        ]:
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        with pytest.raises(ValueError):  # numpy itself refuses NaN without a range
            np.histogram(x, 4)
