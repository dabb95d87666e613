"""A category column's Column.dtype is numpy's str (``<U0``), of the kind its reads give;
``t.dtypes`` names it ``"category"`` (issue 13 item 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import colvault


def test_category_column_dtype(tmp_path: Path) -> None:
    with colvault.open(str(tmp_path / "s.colvault"), "w") as store:
        t = store.create_table("/t", {"station": "category", "x": "i4"}, chunk_rows=2)
        col = t.cols.station
        assert col.dtype == np.dtype(str) and col.dtype.kind == "U" and col.dtype.itemsize == 0
        assert np.asarray(col).dtype.kind == "U"  # no rows yet
        t.append({"station": ["north", "east", "south-west", "n"], "x": [1, 2, 3, 4]})
        t.flush()
        got = np.asarray(col)
        assert got.dtype.kind == col.dtype.kind and np.issubdtype(col.dtype, np.str_)
        assert got.dtype == np.dtype("U10")  # the longest entry read
        assert got.tolist() == ["north", "east", "south-west", "n"]
        assert col[:2].dtype.kind == "U"
        same = np.asarray(col, dtype=col.dtype)  # asking for the column's dtype is no cast
        assert same.tolist() == got.tolist() and same.dtype == got.dtype
        assert t.dtypes["station"] == "category"
        assert t.cols.x.dtype == t.dtypes["x"] == np.dtype("i4")
        assert "station: category" in repr(col)
        assert "x: int32" in repr(t.cols.x)
