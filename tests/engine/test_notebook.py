"""Notebook conveniences: keys/items, natural naming, pandas-like table views, array-like
columns and HTML reprs."""

from __future__ import annotations

import numpy as np
import pytest

import colvault


def test_keys_items_follow_walk_order(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/sensors/run2", {"x": "i4"})
        store.create_table("/sensors/run1", {"x": "i4"})
        store.create_array("/a", "f8")
        walked = [n.path for n in store.walk()][1:]
        assert store.keys() == walked == ["/a", "/sensors", "/sensors/run1", "/sensors/run2"]
        pairs = list(store.items())
        assert [p for p, _ in pairs] == walked
        assert all(store[p] == node and node.path == p for p, node in pairs)
        assert all(p in store for p in walked)


def test_natural_naming(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/sensors/run1", {"x": "i4"})
        store.create_group("/sensors/name")  # shadowed by Group.name: reached by item only
        store.create_group("/sensors/my-run")  # not an identifier
        assert store.root.sensors.run1 == t
        assert store.root.sensors == store["/sensors"]
        assert store.root.sensors.name == "sensors"
        assert store.root.sensors["name"].path == "/sensors/name"
        assert "run1" in dir(store.root.sensors)
        assert "my-run" not in dir(store.root.sensors)
        with pytest.raises(AttributeError, match=r"/sensors.*'run9'"):
            store.root.sensors.run9  # noqa: B018
        with pytest.raises(AttributeError):
            store.root.sensors._hidden  # noqa: B018
        assert not hasattr(store.root, "__array__")


def _filled(store):
    t = store.create_table(
        "/t", {"a": "i8", "b": "f4", "site": "category", "cell": ("f8", (2,))}, chunk_rows=4
    )
    n = 11
    data = {
        "a": np.arange(n),
        "b": np.arange(n, dtype="f4") / 2,
        "site": np.array(["north", "south", "<east>"] * 4)[:n],
        "cell": np.arange(2 * n, dtype="f8").reshape(n, 2),
    }
    t.append(data)
    store.commit()
    return t, data


def test_table_pandas_like_views(store_path):
    with colvault.open(store_path, "w") as store:
        t, data = _filled(store)
        assert t.columns == ["a", "b", "site", "cell"] == t.colnames
        assert t.shape == (11, 4)
        assert t.dtypes == {
            "a": np.dtype("i8"),
            "b": np.dtype("f4"),
            "site": "category",
            "cell": np.dtype(("f8", (2,))),
        }
        for name, rows in [("head", slice(0, 5)), ("tail", slice(6, 11))]:
            got = getattr(t, name)()
            assert got.dtype.names == ("a", "b", "site", "cell")
            for col, values in data.items():
                np.testing.assert_array_equal(got[col], values[rows])
        np.testing.assert_array_equal(t.head(2)["a"], [0, 1])
        np.testing.assert_array_equal(t.tail(3)["a"], [8, 9, 10])
        np.testing.assert_array_equal(t.head(-9)["a"], [0, 1])
        np.testing.assert_array_equal(t.tail(-9)["a"], [9, 10])
        assert len(t.head(0)) == len(t.tail(0)) == 0
        assert len(t.head(100)) == len(t.tail(100)) == 11
        pick = t[["site", "a"]]
        assert pick.dtype.names == ("site", "a")
        np.testing.assert_array_equal(pick["a"], data["a"])
        np.testing.assert_array_equal(pick["site"], data["site"])
        np.testing.assert_array_equal(t[[0, 2]]["a"], [0, 2])  # a list of ints: rows
        with pytest.raises(colvault.SchemaError, match="nope"):
            t[["a", "nope"]]


def test_column_is_array_like(store_path):
    with colvault.open(store_path, "w") as store:
        t, data = _filled(store)
        for name, values in data.items():
            col = t.cols[name]
            assert col.shape == values.shape and len(col) == len(values)
            assert col.ndim == values.ndim
            np.testing.assert_array_equal(np.asarray(col), values)
            np.testing.assert_array_equal(col[3:7], values[3:7])
        # dask.array.from_array slices with tuples, one slice per dimension
        np.testing.assert_array_equal(
            t.cols.cell[(slice(2, 5), slice(1, 2))], data["cell"][2:5, 1:2]
        )
        np.testing.assert_array_equal(t.cols.a[(slice(2, 5),)], data["a"][2:5])
        assert t.cols.cell[4, 1] == data["cell"][4, 1]
        assert t.cols.a.dtype == np.dtype("i8") and t.cols.cell.dtype == np.dtype("f8")
        as_f4 = np.asarray(t.cols.a, dtype="f4")
        assert as_f4.dtype == np.dtype("f4")
        np.testing.assert_array_equal(as_f4, data["a"].astype("f4"))
        with pytest.raises(ValueError, match="cannot avoid a copy"):
            np.array(t.cols.a, copy=False)
        assert float(np.mean(t.cols.b)) == pytest.approx(float(data["b"].mean()))


def test_array_protocol_copies_zero_copy_views(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/r", {"v": "f8"}, codec="none", chunk_rows=1024).append(
            {"v": np.arange(3000.0)}
        )
        store.create_array("/a", "f8", codec="none", chunk_rows=1024).append(np.arange(3000.0))
    with colvault.open(store_path) as store:
        col = store["/r"].cols.v
        assert not np.asarray(col).flags.writeable  # the zero-copy view itself
        owned = np.array(col, copy=True)
        assert owned.flags.writeable
        np.testing.assert_array_equal(owned, np.arange(3000.0))
        arr = np.array(store["/a"], copy=True)
        assert arr.flags.writeable
        np.testing.assert_array_equal(arr, np.arange(3000.0))
        with pytest.raises(ValueError, match="/a"):
            np.array(store["/a"], copy=False)


def test_html_views_are_escaped_and_bounded(tmp_path):
    path = str(tmp_path / "lab<1>.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table(
            "/sensors/run1", {"x<y": "i8", "site": "category", "cell": ("f4", (2,))}
        )
        n = 1000
        t.append(
            {
                "x<y": np.arange(n) * 7,
                "site": np.array(["<north>", "south"] * (n // 2)),
                "cell": np.zeros((n, 2), "f4"),
            }
        )
        store.create_array("/sensors/a", "f8").append(np.arange(5.0))
        for i in range(60):  # more nodes than a view shows
            store.create_group(f"/zmany/g{i:02d}")
        store.commit()

        tree = store._repr_html_()
        assert "lab&lt;1&gt;.colvault" in tree and "<1>" not in tree
        assert "run1</td><td>table</td><td>1,000</td>" in tree
        assert "a</td><td>array</td><td>5</td>" in tree
        assert "more nodes" in tree and "g59" not in tree

        sub = store.root.sensors._repr_html_()
        assert "run1" in sub and "zmany" not in sub

        page = t._repr_html_()
        assert "/sensors/run1: 1,000 rows × 3 columns" in page
        assert "x&lt;y" in page and "x<y" not in page
        assert "&lt;north&gt;" in page and "<north>" not in page
        assert "category" in page and "float32 (2,)" in page
        cells = [str(v) for v in (0, 7, 14, 6979, 6986, 6993)]
        assert all(f"<td>{v}</td>" in page for v in cells)
        assert "<td>7000</td>" not in page and "<td>21</td>" not in page  # only the edges

        col = t.cols["x<y"]._repr_html_()
        assert "x&lt;y" in col and "1,000 rows" in col and "int64" in col
        assert "<td>6993</td>" in col and "<td>21</td>" not in col
        site = t.cols.site._repr_html_()
        assert "category" in site and "&lt;north&gt;" in site


def test_html_of_an_empty_table(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i4"})
        assert "0 rows × 1 columns" in t._repr_html_()
        assert "0 rows" in t.cols.x._repr_html_()
        assert "t</td><td>table</td><td>0</td>" in store._repr_html_()


def test_html_of_an_array(store_path):
    with colvault.open(store_path, "w") as store:
        a = store.create_array("/spectra", "i4", inner_shape=(2,))
        a.append(np.arange(40, dtype="i4").reshape(20, 2) * 3)
        store.commit()
        page = a._repr_html_()
        assert "/spectra: shape (20, 2) int32" in page
        assert "<td>[0 3]</td>" in page and "<td>[114 117]</td>" in page
        assert "<td>[12 15]</td>" in page and "<td>[30 33]</td>" not in page  # only the edges
        a.append(np.zeros((1, 2), "i4"))  # pending rows are not shown
        assert "shape (20, 2)" in a._repr_html_()
