"""Columns as the array libraries of the PyData world take them: dask and xarray, for real."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import colvault


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(3)
    data = {
        "x": rng.normal(size=5000),
        "cell": rng.normal(size=(5000, 3)).astype("f4"),
        "station": np.array(["north", "south", "east"])[rng.integers(0, 3, 5000)],
    }
    with colvault.open(tmp_path / "s.colvault", "w") as store:
        t = store.create_table(
            "/t", {"x": "f8", "cell": ("f4", (3,)), "station": "category"}, chunk_rows=1024
        )
        t.append(data)
        store.commit()
        yield t, data


def test_dask_reads_a_column_lazily_block_by_block(table):
    t, data = table
    lazy = da.from_array(t.cols.x, chunks=700)
    assert lazy.shape == (5000,) and lazy.dtype == np.dtype("f8")
    assert float(lazy.sum().compute()) == pytest.approx(float(data["x"].sum()))
    np.testing.assert_array_equal(lazy[1234:4321:7].compute(), data["x"][1234:4321:7])


def test_dask_reads_multidimensional_cells_and_categories(table):
    t, data = table
    cells = da.from_array(t.cols.cell, chunks=(1000, 3))
    np.testing.assert_array_equal(cells[990:1010, 1:].compute(), data["cell"][990:1010, 1:])
    stations = da.from_array(t.cols.station, chunks=1000)
    np.testing.assert_array_equal(stations[2040:2060].compute(), data["station"][2040:2060])


def test_xarray_wraps_a_column(table):
    t, data = table
    arr = xr.DataArray(t.cols.x, dims="row")
    assert arr.sizes == {"row": 5000}
    assert float(arr.mean()) == pytest.approx(float(data["x"].mean()))
    cells = xr.DataArray(t.cols.cell, dims=("row", "channel"))
    np.testing.assert_array_equal(cells.isel(channel=2).values, data["cell"][:, 2])
