"""codec "none": committed chunks lying back to back in a sealed segment are read without a copy."""

from __future__ import annotations

import numpy as np

import colvault


def test_raw_columns_are_views_of_the_mapping(store_path):
    values = np.arange(10_000, dtype="f8")
    cells = np.arange(30_000, dtype="i4").reshape(10_000, 3)
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"v": "f8", "c": ("i4", (3,))}, codec="none", chunk_rows=1024)
        t.append({"v": values, "c": cells})
    with colvault.open(store_path) as store:
        t = store["/t"]
        v = t.col("v")
        assert np.array_equal(v, values) and not v.flags.writeable and not v.flags.owndata
        part = t.cols.c[1500:4500]
        assert np.array_equal(part, cells[1500:4500]) and not part.flags.writeable
        assert np.array_equal(t.cols.v[::7], values[::7])
        copy = t.read(10, 20)  # structured results are assembled, hence copies
        assert copy.flags.writeable and np.array_equal(copy["v"], values[10:20])
        del v, part
        assert store.verify().ok


def test_compressed_and_unsealed_columns_are_copies(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/z", {"v": "f8"}, chunk_rows=1024)
        t.append({"v": np.arange(5000.0)})
        raw = store.create_table("/r", {"v": "f8"}, codec="none", chunk_rows=1024)
        raw.append({"v": np.arange(5000.0)})
        store.commit()  # still open for writing: the segments are not sealed yet
        assert t.col("v").flags.writeable
        assert raw.col("v").flags.writeable
