"""``import_hdf5``: PyTables, h5py and pandas files copied into a store, as one transaction.

Files are written here with PyTables and h5py; what colvault reads back is compared with what
PyTables (or h5py) reads from the same file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault
from colvault.errors import ColvaultError, NodeError
from colvault.io.hdf5 import HDF5Warning, import_hdf5

tables = pytest.importorskip("tables")

HERE = Path(__file__).resolve().parent
#: Peak ``RssAnon`` of a 4 M-row import over a 1 M-row one: keeping the rows read until the
#: commit would add 130 MB.
MAX_GROWTH = 20_000_000

NUMERIC = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8", "c8", "c16", "?"]


def _store(tmp_path: Path, name: str = "s.colvault") -> colvault.Store:
    return colvault.open(tmp_path / name, "w")


def _flat(a: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """The leaf columns of a (nested) structured array, named ``outer/inner``."""
    out: dict[str, np.ndarray] = {}
    assert a.dtype.names is not None
    for name in a.dtype.names:
        col = a[name]
        if col.dtype.names is not None:
            out.update(_flat(col, f"{prefix}{name}/"))
        else:
            out[f"{prefix}{name}"] = col
    return out


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    """Column by column, NaN equal to NaN."""
    flat_got, flat_want = _flat(got), _flat(want)
    assert list(flat_got) == list(flat_want)
    for name, w in flat_want.items():
        g = flat_got[name]
        assert g.shape == w.shape, name
        if w.dtype.kind in "fc":
            np.testing.assert_array_equal(g, w.astype(g.dtype), err_msg=name)
        else:
            assert g.dtype == w.dtype.newbyteorder("="), name
            assert (g == w).all(), name


# -- PyTables tables ------------------------------------------------------------------------------


def test_a_pytables_table_of_every_numeric_dtype(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    dtype = [(f"c_{np.dtype(k).name}", k) for k in NUMERIC]
    dtype += [("text", "S12"), ("cell", "f8", (2, 3))]
    data = np.zeros(n, dtype)
    for name in data.dtype.names:
        kind = data.dtype[name].base.kind
        if kind in "iu":
            base = data.dtype[name].base
            info = np.iinfo(base)
            data[name] = rng.integers(
                info.min, info.max, data[name].shape, base.newbyteorder("="), True
            )
        elif kind in "fc":
            data[name] = rng.normal(size=data[name].shape) * 1e3
        elif kind == "b":
            data[name] = rng.integers(0, 2, n).astype(bool)
        else:
            data[name] = [f"row {i}".encode() for i in range(n)]
    data["c_float64"][5] = np.nan
    h5 = tmp_path / "t.h5"
    with tables.open_file(h5, "w") as f:
        t = f.create_table("/", "readings", data, "Sensor readings", expectedrows=n)
        t.attrs.gain = np.float32(1.5)
        t.attrs.site = "Lyon"
    with _store(tmp_path) as store:
        created = import_hdf5(h5, store, progress=False)
        assert created == ["/readings"]
        got = store["/readings"]
        assert got.nrows == n
        with tables.open_file(h5) as f:
            _assert_same(got.read(), f.root.readings.read())
        assert got.dtypes["c_bool"] == np.dtype(bool)
        assert got.dtypes["cell"] == np.dtype(("f8", (2, 3)))
        assert dict(got.attrs) == {"TITLE": "Sensor readings", "gain": 1.5, "site": "Lyon"}
        assert type(got.objects["gain"]) is np.float32


def test_nested_columns_time_columns_enums_and_float16(tmp_path: Path) -> None:
    class Row(tables.IsDescription):
        when = tables.Time64Col(pos=0)
        day = tables.Time32Col(pos=1)
        state = tables.EnumCol(["off", "on", "error"], "off", base="uint8", pos=2)
        half = tables.Float16Col(pos=3)

        class pos(tables.IsDescription):  # PyTables' nested column
            _v_pos = 4
            x = tables.Float64Col(pos=0)
            y = tables.Int16Col(pos=1)

    h5 = tmp_path / "t.h5"
    times = 1_600_000_000 + np.array([0.25, 1.5, -86_400.75, 3.000001])
    with tables.open_file(h5, "w") as f:
        t = f.create_table("/", "log", Row)
        for i, when in enumerate(times):
            t.append([(when, int(when), i % 3, i / 4, (i * 1.5, -i))])
        t.flush()
        want = t.read()
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        t = store["/log"]
        assert t.colnames == ["when", "day", "state", "half", "pos/x", "pos/y"]
        got = t.read()
    assert got["when"].dtype == np.dtype("M8[us]")
    # PyTables reads Time64 back as float seconds; colvault has the stored microseconds
    expected_us = np.round(want["when"] * 1e6).astype(np.int64)
    assert (got["when"].astype(np.int64) == expected_us).all()
    assert str(got["when"][1]) == "2020-09-13T12:26:41.500000"
    assert (got["day"] == want["day"].astype("M8[s]")).all()
    assert (got["state"] == want["state"]).all()
    assert (got["half"] == want["half"].astype(np.float32)).all()
    assert (got["pos/x"] == want["pos"]["x"]).all() and (got["pos/y"] == want["pos"]["y"]).all()
    with colvault.open(tmp_path / "s.colvault") as store:
        attrs = dict(store["/log"].attrs)
    assert attrs["hdf5_enums"] == {"state": {"off": 0, "on": 1, "error": 2}}
    notes = " ".join(attrs["hdf5_notes"])
    assert "Time64" in notes and "Time32" in notes and "float16" in notes


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_time_cells_and_time_earrays_in_either_byte_order(tmp_path: Path, byteorder: str) -> None:
    class Row(tables.IsDescription):
        day = tables.Time32Col(pos=0)
        when = tables.Time64Col(shape=(2,), pos=1)

    h5 = tmp_path / "times.h5"
    seconds = np.array([1.5, -2.25, 1e9 + 0.000001, -86_400.000002, 0.0])
    with tables.open_file(h5, "w") as f:
        t = f.create_table("/", "t", Row, byteorder=byteorder)
        t.append([(7, (1.6e9 + 0.25, -5.5)), (-3, (-1.75, 0.0))])
        e = f.create_earray("/", "e", tables.Time64Atom(), (0,), byteorder=byteorder)
        e.append(seconds)
        want_t, want_e = t.read(), e.read()
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        got_t, got_e = store["/t"].read(), store["/e"][:]
    assert got_t["day"].astype(np.int64).tolist() == want_t["day"].tolist()
    assert (got_t["when"].astype(np.int64) == np.round(want_t["when"] * 1e6)).all()
    assert got_e.dtype == np.dtype("M8[us]")
    assert (got_e.astype(np.int64) == np.round(want_e * 1e6)).all()


def test_a_big_endian_table(tmp_path: Path) -> None:
    h5 = tmp_path / "be.h5"
    data = np.zeros(100, [("a", ">i8"), ("b", ">f8"), ("c", ">c8", (2,))])
    data["a"], data["b"], data["c"] = np.arange(100), np.arange(100) / 3, 1 + 2j
    with tables.open_file(h5, "w") as f:
        f.create_table("/", "be", data, byteorder="big")
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        t = store["/be"]
        assert t.dtypes == {
            "a": np.dtype("<i8"),
            "b": np.dtype("<f8"),
            "c": np.dtype(("<c8", (2,))),
        }
        _assert_same(t.read(), data)


def test_an_empty_table_and_a_pytables_index_that_is_not_copied(tmp_path: Path) -> None:
    h5 = tmp_path / "t.h5"
    with tables.open_file(h5, "w") as f:
        full = np.zeros(10, [("a", "i8")])
        full["a"] = np.arange(10)
        t = f.create_table("/", "full", full)
        t.cols.a.create_index()
        f.create_table("/", "empty", np.zeros(0, [("a", "i8"), ("b", "f4")]))
    with _store(tmp_path) as store:
        assert import_hdf5(h5, store, progress=False) == ["/empty", "/full"]
        assert store.keys() == ["/empty", "/full"]
        assert store["/empty"].nrows == 0 and store["/empty"].colnames == ["a", "b"]
        assert (store["/full"].cols.a[:] == np.arange(10)).all()


# -- arrays ----------------------------------------------------------------------------------------


def test_pytables_arrays_and_h5py_datasets_become_arrays(tmp_path: Path) -> None:
    h5 = tmp_path / "a.h5"
    rng = np.random.default_rng(2)
    earray = rng.normal(size=(5000, 3)).astype("f4")
    carray = rng.integers(0, 1000, (700, 2, 5)).astype("i2")
    with tables.open_file(h5, "w") as f:
        ea = f.create_earray("/", "ea", tables.Float32Atom(), (0, 3), expectedrows=5000)
        ea.append(earray[:2500])
        ea.append(earray[2500:])
        ca = f.create_carray("/", "ca", tables.Int16Atom(), (700, 2, 5), chunkshape=(64, 2, 5))
        ca[:] = carray
        f.create_array("/", "plain", np.arange(20, dtype=">u8"))
        f.create_array("/", "scalar", 42.5)
    with h5py.File(h5, "a") as f:
        f.create_dataset("h5/chunked", data=rng.normal(size=(3000, 4, 2)), chunks=(100, 4, 2),
                         compression="gzip", maxshape=(None, 4, 2))  # fmt: skip
        f.create_dataset("h5/text", data=np.array([b"a", b"bcd", b""], "S3"))
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        assert (store["/ea"][:] == earray).all() and store["/ea"].shape == (5000, 3)
        assert (store["/ca"][:] == carray).all() and store["/ca"].dtype == np.dtype("i2")
        assert (store["/plain"][:] == np.arange(20)).all()
        assert store["/plain"].dtype == np.dtype("<u8")
        assert store["/scalar"][:].tolist() == [42.5]
        assert "scalar" in store["/scalar"].attrs["hdf5_notes"][0]
        with h5py.File(h5) as f:
            assert (store["/h5/chunked"][:] == f["h5/chunked"][:]).all()
            assert (store["/h5/text"][:] == f["h5/text"][:]).all()
        assert isinstance(store["/h5"], colvault.Group)
        # the copied array grows along axis 0, as an EArray does
        store["/ea"].append(np.zeros((1, 3), "f4"))
        store.commit()
        assert store["/ea"].shape == (5001, 3)


def test_variable_length_strings_become_fixed_width_text(tmp_path: Path) -> None:
    h5 = tmp_path / "s.h5"
    words = ["", "é", "naïve text", "x" * 40] * 1000
    with h5py.File(h5, "w") as f:
        f.create_dataset("utf8", data=words, dtype=h5py.string_dtype())
        f.create_dataset("ascii", data=[w.encode() for w in ["a", "bc", ""]],
                         dtype=h5py.string_dtype("ascii"))  # fmt: skip
        f.create_dataset("grid", data=np.array([["a", "bb"], ["ccc", ""]], dtype=object),
                         dtype=h5py.string_dtype())  # fmt: skip
        f["scalar"] = "one"
        f["cols/name"] = np.array(["ab", "c"], dtype=object).astype(h5py.string_dtype())
        f["cols/n"] = np.arange(2)
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False, group_as_table=True)
        assert store["/utf8"].dtype == np.dtype("U40") and store["/utf8"][:].tolist() == words
        assert store["/ascii"][:].tolist() == [b"a", b"bc", b""]
        assert store["/grid"][:].tolist() == [["a", "bb"], ["ccc", ""]]
        assert store["/scalar"][:].tolist() == ["one"]
        assert store["/cols"].read().tolist() == [(0, "ab"), (1, "c")]  # HDF5's name order


def test_objects_without_a_colvault_type_are_left_out_with_a_warning(tmp_path: Path) -> None:
    h5 = tmp_path / "v.h5"
    with tables.open_file(h5, "w") as f:
        f.create_vlarray("/", "ragged", tables.Int32Atom()).append([1, 2, 3])
        f.create_array("/", "kept", np.arange(3))
    with h5py.File(h5, "a") as f:
        f["link"] = h5py.SoftLink("/kept")
    with _store(tmp_path) as store:
        with pytest.warns(HDF5Warning) as caught:
            assert import_hdf5(h5, store, progress=False) == ["/kept"]
        assert sorted(str(w.message).split(": ")[1] for w in caught) == [
            "/link is left out",
            "/ragged is left out",
        ]
        skipped = store.attrs["hdf5_skipped"]
        assert set(skipped) == {"ragged", "link"}
        assert "VLArray" in skipped["ragged"]
        with pytest.raises(ColvaultError, match=r"v\.h5.*/ragged.*VLArray"):
            import_hdf5(h5, store, paths=["/ragged"], progress=False)


# -- attributes and groups ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::tables.NaturalNameWarning")  # the group "2025"
def test_attributes_of_groups_and_datasets_keep_their_numpy_types(tmp_path: Path) -> None:
    h5 = tmp_path / "g.h5"
    with tables.open_file(h5, "w") as f:
        g = f.create_group("/runs/2025", "march", createparents=True)
        g._v_attrs.operator = "Ada"
        g._v_attrs.count = np.int16(3)
        g._v_attrs.window = np.array([0.5, 1.5])
        g._v_attrs.config = {"gain": 2, "modes": ["a", "b"]}  # pickled by PyTables
        g._v_attrs.raw = b"\x00\x01"
        g._v_attrs.z = np.complex64(1 + 2j)
        arr = f.create_array(g, "data", np.arange(4))
        arr.attrs.unit = "m/s"
        f.root._v_attrs.project = "colvault"
    with h5py.File(h5, "a") as f:
        f["plain"] = np.arange(3)
        f["plain"].attrs["labels"] = np.array([b"x", b"y"])
        f["plain"].attrs["TITLE"] = "not PyTables' bookkeeping here"
        f["plain"].attrs["name"] = "vlen text"
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        assert store.keys() == ["/plain", "/runs", "/runs/2025", "/runs/2025/march",
                                "/runs/2025/march/data"]  # fmt: skip
        assert dict(store.attrs) == {"project": "colvault"}
        g = store["/runs/2025/march"]
        assert dict(g.attrs) == {
            "config": {"gain": 2, "modes": ["a", "b"]},
            "count": 3,
            "operator": "Ada",
            "raw": "\x00\x01",
            "window": [0.5, 1.5],
        }
        objects = dict(g.objects)
        assert type(objects["count"]) is np.int16
        assert objects["window"].dtype == np.float64 and objects["window"].tolist() == [0.5, 1.5]
        assert objects["raw"] == b"\x00\x01"
        assert objects["z"] == np.complex64(1 + 2j) and type(objects["z"]) is np.complex64
        assert dict(store["/runs/2025/march/data"].attrs) == {"unit": "m/s"}
        plain = dict(store["/plain"].attrs)
        assert plain == {
            "TITLE": "not PyTables' bookkeeping here",
            "labels": ["x", "y"],
            "name": "vlen text",
        }
        assert store["/plain"].objects["labels"].tolist() == [b"x", b"y"]


def test_a_group_of_columns_as_a_table(tmp_path: Path) -> None:
    h5 = tmp_path / "c.h5"
    with h5py.File(h5, "w") as f:
        g = f.create_group("run")
        g["t"] = np.arange(100, dtype="i8")
        g["v"] = np.linspace(0, 1, 100, dtype=">f4")
        g["v"].attrs["unit"] = "V"
        g.attrs["site"] = "Lyon"
        f["ragged/a"] = np.arange(3)
        f["ragged/b"] = np.arange(4)
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False, group_as_table=True)
        t = store["/run"]
        assert isinstance(t, colvault.Table) and t.colnames == ["t", "v"]
        assert (t.cols.t[:] == np.arange(100)).all()
        assert (t.cols.v[:] == np.linspace(0, 1, 100, dtype="f4")).all()
        assert dict(t.attrs) == {"site": "Lyon", "v/unit": "V"}
        assert isinstance(store["/ragged"], colvault.Group)  # lengths differ: a group
        assert store.ls("/ragged") == ["a", "b"]
    with _store(tmp_path, "plain.colvault") as store:
        import_hdf5(h5, store, progress=False)
        assert isinstance(store["/run"], colvault.Group) and store.ls("/run") == ["t", "v"]


def test_a_pytables_group_of_arrays_as_a_table(tmp_path: Path) -> None:
    h5 = tmp_path / "pc.h5"
    with tables.open_file(h5, "w") as f:
        g = f.create_group("/", "run")
        f.create_array(g, "a", np.arange(5)).attrs.unit = "s"
        f.create_earray(g, "b", tables.Float32Atom(), (0,)).append(np.ones(5, "f4"))
        g._v_attrs.site = "Lyon"
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False, group_as_table=True)
        t = store["/run"]
        assert t.read().tolist() == [(i, 1.0) for i in range(5)]
        assert dict(t.attrs) == {"a/unit": "s", "site": "Lyon"}  # no CLASS, VERSION, TITLE


def test_paths_into_and_names_colvault_does_not_allow(tmp_path: Path) -> None:
    h5 = tmp_path / "n.h5"
    with h5py.File(h5, "w") as f:
        f["a/temp (C)"] = np.arange(3)
        f["b/x"] = np.arange(2)
    with _store(tmp_path) as store:
        created = import_hdf5(h5, store, paths=["/a"], into="/imported", progress=False)
        assert created == ["/imported/a", "/imported/a/temp__C_"]
        node = store["/imported/a/temp__C_"]
        assert node.attrs["hdf5_name"] == "temp (C)" and node[:].tolist() == [0, 1, 2]
        assert "/imported/b" not in store


# -- pandas --------------------------------------------------------------------------------------


def test_a_pandas_hdfstore_table(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    h5 = tmp_path / "p.h5"
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2025-03-01", periods=50, freq="min"),
            "value": np.arange(50.0),
            "site": ["a", "b"] * 25,
        }
    )
    frame.to_hdf(h5, key="df", format="table", data_columns=["when"])
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        t = store["/df/table"]
        assert t.nrows == 50
        assert t.dtypes["when"] == frame["when"].dtype  # pandas' unit, whatever it is
        assert (t.cols.when[:] == frame["when"].to_numpy()).all()
        assert (t.cols.index[:] == np.arange(50)).all()
        # pandas' values blocks split into the frame's own columns, text decoded
        assert t.colnames[0] == "index"
        assert sorted(t.colnames[1:]) == ["site", "value", "when"]
        assert (t.cols.value[:] == frame["value"].to_numpy()).all()
        assert t.dtypes["site"] == np.dtype("U1")
        assert t.cols.site[:].tolist() == frame["site"].tolist()
        df_attrs = dict(store["/df"].attrs)
        assert df_attrs["pandas_type"] == "frame_table"
        assert df_attrs["non_index_axes"] == [[1, ["when", "value", "site"]]]
        assert "/df/_i_table" not in store


def test_pandas_zones_timedeltas_categories_and_missing_text(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    h5 = tmp_path / "z.h5"
    n = 20
    frame = pd.DataFrame(
        {
            "at": pd.date_range("2025-03-30", periods=n, freq="h", tz="Europe/Paris"),
            "lag": pd.to_timedelta(np.arange(n), unit="s"),
            "kind": pd.Categorical(["a", "b"] * 10),
            "note": ["x", None] * 10,
        }
    )
    frame.to_hdf(h5, key="x", format="table", data_columns=["at"])
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        t = store["/x/table"]
        assert t.dtypes["at"] == f"datetime64[{np.datetime_data(t.schema['at'])[0]}, Europe/Paris]"
        got = t.to_pandas()
        assert (got["at"] == frame["at"]).all()
        assert (got["lag"].to_numpy() == frame["lag"].to_numpy()).all()
        assert t.cols.kind[:].tolist() == [0, 1] * 10  # pandas' codes, categories beside
        assert t.cols.note[:].tolist() == ["x", "nan"] * 10  # pandas' nan_rep, as stored
        assert any(p.endswith("/meta/table") for p in store.paths("/x/meta"))
        notes = " ".join(t.attrs["hdf5_notes"])
        assert "'kind': pandas category codes" in notes and "'note': text 'nan'" in notes


def test_a_pandas_table_with_several_columns_per_block(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    h5 = tmp_path / "w.h5"
    n = 1000
    frame = pd.DataFrame(
        {
            "x": np.arange(n) / 2,
            "y": np.arange(n) * -1.5,
            "k": np.arange(n, dtype="i8"),
            "at": pd.date_range("2025-01-01", periods=n, freq="s"),
            "name": [f"n{i % 7}" for i in range(n)],
        },
        index=pd.RangeIndex(10, 10 + n),
    )
    frame.to_hdf(h5, key="wide", format="table")
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        t = store["/wide/table"]
        assert sorted(t.colnames) == sorted(["index", "x", "y", "k", "at", "name"])
        got = t.read()
    for name in ("x", "y", "k", "at"):
        assert (got[name] == frame[name].to_numpy()).all(), name
    assert got["at"].dtype == frame["at"].dtype
    assert got["name"].tolist() == frame["name"].tolist()
    assert (got["index"] == frame.index.to_numpy()).all()


# -- failures change nothing ---------------------------------------------------------------------


def _prior(store: colvault.Store) -> None:
    store.create_table("/prior", {"x": "i8"}).append({"x": np.arange(5)})
    store.commit()


def _assert_prior_only(path: Path) -> None:
    with colvault.open(path) as store:
        assert store.keys() == ["/prior"]
        assert store["/prior"].cols.x[:].tolist() == [0, 1, 2, 3, 4]
        assert store.verify().ok


def _big_file(path: Path) -> None:
    with tables.open_file(path, "w") as f:
        f.create_table("/", "a", np.zeros(1000, [("x", "i8")]))
        f.create_earray("/", "noise", tables.Float64Atom(), (0,), filters=tables.Filters(0))
        f.root.noise.append(np.random.default_rng(3).normal(size=400_000))


def test_a_truncated_file_raises_naming_it_and_changes_nothing(tmp_path: Path) -> None:
    whole, half = tmp_path / "whole.h5", tmp_path / "half.h5"
    _big_file(whole)
    data = whole.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with _store(tmp_path) as store:
        _prior(store)
        with pytest.raises(ColvaultError, match=r"half\.h5"):
            import_hdf5(half, store, progress=False)
        assert not store.has_pending
    _assert_prior_only(tmp_path / "s.colvault")


def test_a_damaged_chunk_midway_raises_naming_file_and_object(tmp_path: Path) -> None:
    h5 = tmp_path / "d.h5"
    with h5py.File(h5, "w") as f:
        f["first"] = np.arange(1000)
        ds = f.create_dataset("second", data=np.arange(200_000.0), chunks=(10_000,),
                              compression="gzip")  # fmt: skip
        info = ds.id.get_chunk_info(7)
    with open(h5, "r+b") as fh:
        fh.seek(info.byte_offset + 8)
        fh.write(b"\xff" * 64)
    with _store(tmp_path) as store:
        _prior(store)
        with pytest.raises(ColvaultError, match=r"d\.h5.*/second"):
            import_hdf5(h5, store, progress=False)
    _assert_prior_only(tmp_path / "s.colvault")


def test_a_node_that_exists_aborts_the_whole_import(tmp_path: Path) -> None:
    h5 = tmp_path / "e.h5"
    with h5py.File(h5, "w") as f:
        f["new"] = np.arange(3)
        f["prior"] = np.arange(3)
    with _store(tmp_path) as store:
        _prior(store)
        with pytest.raises(NodeError, match="/prior"):
            import_hdf5(h5, store, progress=False)
    _assert_prior_only(tmp_path / "s.colvault")


@pytest.mark.parametrize("complib", ["blosc", "blosc:lz4", "blosc:zstd", "blosc2"])
def test_pytables_blosc_files_import_through_hdf5plugin(tmp_path: Path, complib: str) -> None:
    # PyTables' usual compressors: h5py decodes them with hdf5plugin (the "hdf5" extra)
    h5 = tmp_path / "blosc.h5"
    rows = np.zeros(50_000, [("a", "i8"), ("b", "f4")])
    rows["a"] = np.arange(50_000) * 7
    rows["b"] = np.linspace(0, 1, 50_000)
    with tables.open_file(h5, "w") as f:
        f.create_table("/", "t", rows, filters=tables.Filters(5, complib, shuffle=True))
        f.create_earray("/", "e", obj=rows["a"].reshape(-1, 10), filters=tables.Filters(5, complib))
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=False)
        assert store["/t"].read().tolist() == rows.tolist()
        assert np.array_equal(store["/e"][:], rows["a"].reshape(-1, 10))


def test_a_filter_h5py_lacks_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h5 = tmp_path / "blosc.h5"
    with tables.open_file(h5, "w") as f:
        f.create_table("/", "t", np.zeros(10, [("a", "i8")]), filters=tables.Filters(5, "blosc"))
    # as on a machine without hdf5plugin: h5py's HDF5 has no blosc filter
    avail = h5py.h5z.filter_avail
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: code != 32001 and avail(code))
    with _store(tmp_path) as store:
        with pytest.raises(ColvaultError, match=r"blosc\.h5.*/t.*blosc.*hdf5plugin"):
            import_hdf5(h5, store, progress=False)
        assert store.keys() == []


def test_pending_changes_are_refused_and_kept(tmp_path: Path) -> None:
    h5 = tmp_path / "p.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(3)
    with _store(tmp_path) as store:
        store.create_table("/mine", {"a": "i4"}).append({"a": [1, 2]})
        with pytest.raises(ColvaultError, match="pending changes"):
            import_hdf5(h5, store, progress=False)
        assert store.has_pending
        store.commit()
        assert store["/mine"].cols.a[:].tolist() == [1, 2] and "/x" not in store


def test_not_an_hdf5_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.h5"
    bad.write_text("a,b\n1,2\n")
    with _store(tmp_path) as store, pytest.raises(ColvaultError, match=r"x\.h5.*not|x\.h5"):
        import_hdf5(bad, store, progress=False)


def test_the_import_is_exported_lazily_and_takes_a_store_path(tmp_path: Path) -> None:
    h5 = tmp_path / "l.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(3)
    assert colvault.import_hdf5 is import_hdf5
    created = colvault.import_hdf5(h5, tmp_path / "new.colvault", progress=False)
    assert created == ["/x"]
    with colvault.open(tmp_path / "new.colvault") as store:
        assert store["/x"][:].tolist() == [0, 1, 2]


def test_a_progress_bar_counts_the_bytes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    h5 = tmp_path / "b.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(1000, dtype="i8")
    with _store(tmp_path) as store:
        import_hdf5(h5, store, progress=True)
    err = capsys.readouterr().err
    assert "import" in err and "8.00k" in err


# -- property: round trips against PyTables' own read() ----------------------------------------

_DTYPES = st.sampled_from([*NUMERIC, "S1", "S7", ">i8", ">f4", "<f2"])
_CELLS = st.sampled_from([(), (), (2,), (3, 2)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    columns=st.lists(st.tuples(_DTYPES, _CELLS), min_size=1, max_size=5),
    rows=st.integers(0, 3000),
    array_cell=_CELLS,
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_against_pytables(
    columns: list[tuple[str, tuple[int, ...]]], rows: int, array_cell: tuple[int, ...], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    # PyTables refuses tables of mixed byte orders: the table's columns are native
    native = [(np.dtype(d).newbyteorder("="), cell) for d, cell in columns]
    dtype = np.dtype([(f"c{i}", d, cell) for i, (d, cell) in enumerate(native)])
    data = np.zeros(rows, dtype)
    raw = rng.integers(0, 256, rows * dtype.itemsize, dtype=np.uint8)
    data = raw.view(dtype).copy() if rows else data  # every bit pattern: NaNs, infs, bytes
    for name in dtype.names or ():
        if dtype[name].base.kind == "b":
            data[name] = data[name].view(np.uint8) & 1
    array_dtype = columns[0][0]
    array = rng.integers(0, 256, rows * int(np.prod(array_cell)) * np.dtype(array_dtype).itemsize,
                         dtype=np.uint8).view(array_dtype).reshape((rows, *array_cell))  # fmt: skip
    if array.dtype.kind == "b":
        array = array.view(np.uint8) & 1 == 1
    with tempfile.TemporaryDirectory() as tmp:
        h5 = os.path.join(tmp, "r.h5")
        with tables.open_file(h5, "w") as f:
            f.create_table("/", "t", dtype, expectedrows=max(rows, 1)).append(data)
            ea = f.create_earray("/", "a", tables.Atom.from_dtype(array.dtype), (0, *array_cell))
            ea.append(array)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HDF5Warning)
            with colvault.open(os.path.join(tmp, "s.colvault"), "w") as store:
                import_hdf5(h5, store, progress=False)
                got_t, got_a = store["/t"].read(), store["/a"][:]
        with tables.open_file(h5) as f:
            want_t, want_a = f.root.t.read(), f.root.a.read()
    assert len(got_t) == rows
    for name in dtype.names or ():
        g, w = got_t[name], want_t[name]
        _same_values(g, w, name)
    _same_values(got_a, want_a, "array")


def _same_values(g: np.ndarray, w: np.ndarray, what: str) -> None:
    assert g.shape == w.shape, what
    if w.dtype.kind in "fc":
        # bit for bit (float16 widened to float32 exactly), NaN payloads included
        w = w.astype(np.float32) if w.dtype.itemsize == 2 else w
        assert g.dtype == w.dtype.newbyteorder("="), what
        assert g.tobytes() == w.astype(g.dtype).tobytes(), what
    else:
        assert g.dtype == w.dtype.newbyteorder("="), what
        assert (g == w).all(), what


# -- memory ----------------------------------------------------------------------------------------

_CHILD = r"""
import json, sys, time
import numpy as np
import tables
import colvault
from colvault.diagnostics import PeakRss

mode, h5 = sys.argv[1], sys.argv[2]
DTYPE = [("t", "i8"), ("value", "f8"), ("temp", "f4"), ("sensor", "i4"), ("tag", "S8"),
         ("more", "f8")]
if mode == "write":
    ROWS, step = int(sys.argv[3]), 250_000
    with tables.open_file(h5, "w") as f:
        t = f.create_table("/", "big", np.dtype(DTYPE), expectedrows=ROWS,
                           filters=tables.Filters(1, "zlib"))
        for start in range(0, ROWS, step):
            i = np.arange(start, min(start + step, ROWS))
            rows = np.zeros(len(i), DTYPE)
            rows["t"], rows["value"], rows["temp"] = i, i * 0.5, (i % 1000) / 10
            rows["sensor"], rows["tag"], rows["more"] = i % 97, b"abc", np.sqrt(i)
            t.append(rows)
    print("wrote", ROWS, flush=True)
else:
    store_path = sys.argv[3]
    # warm up: modules, kernels and pools load with a first small import, not measured
    with tables.open_file(h5 + ".small", "w") as f:
        f.create_table("/", "big", np.zeros(10_000, DTYPE))
    with colvault.open(store_path + ".small", "w") as store:
        colvault.import_hdf5(h5 + ".small", store, progress=False)
    with colvault.open(store_path, "w") as store:
        sampler = PeakRss()
        sampler.start()
        start = time.perf_counter()
        colvault.import_hdf5(h5, store, progress=False)
        seconds = time.perf_counter() - start
        peak = sampler.stop()
        t = store["/big"]
        n = len(t)
        last = t[n - 1]
        exact = int(last["t"]) == n - 1 and float(last["more"]) == float(np.sqrt(n - 1))
        print(json.dumps({"rows": n, "first": sampler.first, "peak": peak, "exact": exact,
                          "samples": sampler.samples, "seconds": seconds}), flush=True)
"""


def _child(*args: object) -> str:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(HERE.parents[1] / ".numba-cache"))
    env["COLVAULT_FSYNC"] = "0"  # durability is not what this test is about
    out = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True,
                         text=True, env=env, timeout=600)  # fmt: skip
    assert out.returncode == 0, f"child {args} failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def test_peak_memory_stays_well_below_the_table(tmp_path: Path) -> None:
    """As the CSV and query memory tests: two sizes, each imported by a fresh child after a
    small warm-up import; the peaks may differ by less than ``MAX_GROWTH``, and the larger
    import grows ``RssAnon`` by well under its table's size (slices, encoders and the pool's
    buffers are a fixed cost)."""
    row_bytes = 8 + 8 + 4 + 4 + 8 + 8
    got = {}
    for rows in (1_000_000, 4_000_000):
        h5 = tmp_path / f"big{rows}.h5"
        assert _child("write", h5, rows) == f"wrote {rows}"
        got[rows] = m = json.loads(_child("import", h5, tmp_path / f"s{rows}.colvault"))
        h5.unlink()
        assert m["rows"] == rows and m["exact"], m
        assert m["samples"] > 10, m
    small, large = got[1_000_000], got[4_000_000]
    assert large["peak"] - small["peak"] < MAX_GROWTH, (small, large)
    table_bytes = 4_000_000 * row_bytes  # 176 MB
    growth = large["peak"] - large["first"]
    assert growth < table_bytes // 2, (
        f"peak RssAnon grew by {growth / 1e6:.1f} MB importing a {table_bytes / 1e6:.0f} MB "
        f"table: {large}"
    )


def test_import_colvault_still_does_not_load_h5py() -> None:
    code = "import colvault, sys; print('h5py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_source_is_opened_read_only_beside_other_readers(tmp_path: Path) -> None:
    """Another process may have the file open for reading; the import neither locks it out
    nor changes it."""
    h5 = tmp_path / "r.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(3)
    before = h5.read_bytes()
    with _store(tmp_path) as store, h5py.File(h5, "r") as other:
        import_hdf5(h5, store, progress=False)
        assert other["x"][:].tolist() == store["/x"][:].tolist()
    assert h5.read_bytes() == before


def test_a_store_given_by_its_path_is_closed_after_the_import(tmp_path: Path) -> None:
    h5 = tmp_path / "x.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(3)
    path = tmp_path / "s.colvault"
    colvault.open(path, "w").close()
    assert import_hdf5(h5, path, progress=False) == ["/x"]
    fds = Path("/proc/self/fd")
    held = [p for p in fds.iterdir() if str(path) in os.path.realpath(p)]
    assert held == []  # no file of the store is left open by the import
    with colvault.open(path) as store:
        assert store["/x"][:].tolist() == [0, 1, 2]
