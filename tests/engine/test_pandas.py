"""pandas DataFrames in (duck-typed, engine/ never imports pandas) and out (io/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import colvault
from colvault import SchemaError


def frame(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": pd.date_range("2025-03-01", periods=n, freq="s"),
            "sensor": np.arange(n, dtype="i4"),
            "value": np.linspace(0, 1, n),
            "station": [f"st{i % 2}" for i in range(n)],
        }
    )


def test_create_table_from_a_dataframe_and_append_more(store_path):
    df = frame()
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", df)
        assert t.pending_rows == 5
        t.append(frame(3))
    with colvault.open(store_path) as store:
        t = store["/t"]
        out = t.to_pandas()
        assert list(out.columns) == ["t", "sensor", "value", "station"]
        want = pd.concat([df, frame(3)], ignore_index=True)
        pd.testing.assert_frame_equal(out, want, check_dtype=False)
        assert out["t"].dtype == df["t"].dtype
        assert t.to_pandas(columns=["value"]).shape == (8, 1)


def test_dataframe_with_bad_columns_is_rejected(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"sensor": "i4", "value": "f8"})
        with pytest.raises(SchemaError, match="missing column"):
            t.append(pd.DataFrame({"sensor": [1]}))
        with pytest.raises(SchemaError, match="column 'sensor'"):
            t.append(pd.DataFrame({"sensor": [1.5], "value": [1.0]}))
        with pytest.raises(SchemaError, match="column 'sensor'"):
            t.append(pd.DataFrame({"sensor": pd.array([1, None], "Int64"), "value": [1.0, 2]}))
        assert t.pending_rows == 0


def test_structured_array_as_schema_brings_its_rows(store_path):
    rec = np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")])
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", rec)
        store.commit()
        assert np.array_equal(t.read(), rec)
        empty = store.create_table("/e", rec.dtype)
        assert empty.pending_rows == 0
