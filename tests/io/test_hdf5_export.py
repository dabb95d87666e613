"""``export_hdf5``: stores written as HDF5 files that PyTables reads as its own and that
``import_hdf5`` gives back exactly (values, missing values, types, attributes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault
from colvault.errors import ColvaultError
from colvault.io.hdf5 import export as hdf5export
from colvault.io.hdf5 import export_hdf5, import_hdf5

tables = pytest.importorskip("tables")

N = 3000
SCHEMA: dict[str, Any] = {
    "i1": "i1", "i2": "i2", "i4": "i4", "i8": "i8",
    "u1": "u1", "u2": "u2", "u4": "u4", "u8": "u8",
    "f4": "f4", "f8": "f8", "c8": "c8", "c16": "c16", "flag": "?",
    "bytes": "S6", "text": "U4", "cell": ("f8", (2, 3)), "icell": ("i2", (4,)),
    "when": "datetime64[ns, Europe/Paris]", "naive": "M8[us]", "span": "m8[ms]",
    "site": "category",
    "n_int": {"dtype": "i2", "nullable": True}, "n_uint": {"dtype": "u8", "nullable": True},
    "n_bool": {"dtype": "?", "nullable": True}, "n_text": {"dtype": "U3", "nullable": True},
    "n_bytes": {"dtype": "S2", "nullable": True},
    "n_site": {"dtype": "category", "nullable": True},
}  # fmt: skip


def _data(n: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, spec in SCHEMA.items():
        if isinstance(spec, str) and spec[0] in "iu":
            info = np.iinfo(spec)
            out[name] = rng.integers(info.min, info.max, n, spec, endpoint=True)
    out["f4"] = rng.normal(size=n).astype("f4")
    out["f8"] = rng.normal(size=n) * 1e6
    out["f8"][3] = np.nan
    out["c8"] = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype("c8")
    out["c16"] = rng.normal(size=n) - 2j
    out["flag"] = rng.integers(0, 2, n).astype(bool)
    out["bytes"] = np.array([b"ab%d" % (i % 977) for i in range(n)], "S6")
    out["text"] = np.array(["é", "ü€", "x", "", "日本"], "U4")[np.arange(n) % 5]
    out["cell"] = rng.normal(size=(n, 2, 3))
    out["icell"] = rng.integers(-999, 999, (n, 4)).astype("i2")
    out["when"] = np.datetime64("2025-03-30T00:30", "ns") + np.arange(n) * np.timedelta64(
        1_234_567_891, "ns"
    )
    out["naive"] = np.datetime64("1960-01-01", "us") + rng.integers(0, 10**15, n).astype("m8[us]")
    out["naive"][5] = np.datetime64("NaT")
    out["span"] = rng.integers(-(10**9), 10**9, n).astype("m8[ms]")
    out["site"] = np.array(["north", "south", "éast", "west"])[rng.integers(0, 4, n)]
    some = np.arange(n)
    out["n_int"] = np.ma.MaskedArray(rng.integers(-100, 100, n).astype("i2"), some % 7 == 0)
    out["n_uint"] = np.ma.MaskedArray(rng.integers(0, 2**63, n).astype("u8"), some % 3 == 1)
    out["n_bool"] = np.ma.MaskedArray(some % 2 == 0, some % 5 == 0)
    out["n_text"] = np.ma.MaskedArray(np.array(["a", "bb", "ccc"])[some % 3], some % 4 == 0)
    out["n_bytes"] = np.ma.MaskedArray(np.array([b"x", b"yz"])[some % 2], some % 6 == 0)
    out["n_site"] = np.ma.MaskedArray(np.array(["up", "down"])[some % 2], some % 9 == 0)
    return out


def _store(path: Path) -> colvault.Store:
    return colvault.open(path, "w")


def _assert_same_table(got: colvault.Table, want: colvault.Table) -> None:
    """Same columns, types (nullable and zones included), values and missing values."""
    assert got.colnames == want.colnames
    assert got.dtypes == want.dtypes
    assert [s.spec.nullable for s in got.storage()] == [s.spec.nullable for s in want.storage()]
    g, w = got.read(), want.read()
    assert len(g) == len(w)
    for name in want.colnames:
        _assert_same_values(g[name], w[name], name)


def _assert_same_values(g: np.ndarray, w: np.ndarray, name: str) -> None:
    gm, wm = np.ma.getmaskarray(g), np.ma.getmaskarray(w)
    assert (gm == wm).all(), name
    gd, wd = np.ma.getdata(g)[~wm], np.ma.getdata(w)[~wm]
    assert gd.dtype == wd.dtype, name
    if wd.dtype.kind in "fcMm":  # NaN (NaT) equals NaN, and the bits are the same
        assert gd.tobytes() == wd.tobytes(), name
    else:
        assert np.array_equal(gd, wd), name


def _round_trip(tmp_path: Path, store: colvault.Store, **kwargs: Any) -> colvault.Store:
    h5 = tmp_path / "export.h5"
    export_hdf5(store, h5, progress=False, **kwargs)
    back = _store(tmp_path / "back.colvault")
    import_hdf5(h5, back, progress=False)
    return back


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "lzf", None])
def test_every_dtype_round_trips_exactly(tmp_path: Path, compression: str | None) -> None:
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/runs/readings", SCHEMA, chunk_rows=1024)
        t.append(_data(N))
        a = store.create_array("/runs/spectra", "f4", inner_shape=(3, 2), chunk_rows=1024)
        a.append(np.arange(N * 6, dtype="f4").reshape(N, 3, 2))
        stamps = store.create_array("/stamps", "M8[ns]")
        stamps.append((np.arange(50) * 10**12).astype("M8[ns]"))
        words = store.create_array("/words", "U5")
        words.append(np.array(["α", "βγ", "", "plain"]))
        store.create_group("/empty")
        store.commit()
        with _round_trip(tmp_path, store, compression=compression) as back:
            assert back.paths() == store.paths()
            _assert_same_table(back["/runs/readings"], t)
            for path in ("/runs/spectra", "/stamps", "/words"):
                got, want = back[path], store[path]
                assert got.dtype == want.dtype and got.shape == want.shape, path
                assert np.array_equal(got[:], want[:]), path
            assert not list(back["/runs/readings"].objects)
            assert dict(back["/runs/readings"].attrs) == {}
        with _store(tmp_path / "one.colvault") as one:  # the mask comes with its table
            assert import_hdf5(tmp_path / "export.h5", one, paths=["/runs/readings"],
                               progress=False) == ["/runs/readings"]  # fmt: skip
            _assert_same_table(one["/runs/readings"], t)


def test_lzf_is_what_h5py_reads(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": "i8"}).append({"x": np.arange(100)})
        store.commit()
        export_hdf5(store, tmp_path / "x.h5", compression="lzf", progress=False)
    with h5py.File(tmp_path / "x.h5") as f:
        assert f["t"].compression == "lzf" and f["t"].shuffle
        assert f["t"]["x"].tolist() == list(range(100))


def test_deflated_chunks_and_the_padded_last_one_read_back(tmp_path: Path) -> None:
    """gzip chunks are shuffled and deflated by worker threads and written whole: several per
    node here, the last one partly beyond the rows; HDF5 (h5py, PyTables) decodes them all."""
    rows = 100_003
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", {"x": "i8", "y": "f4", "c": "category"}, chunk_rows=10_000)
        x = np.arange(rows) * 7919
        t.append({"x": x, "y": np.sqrt(x).astype("f4"), "c": np.array(["a", "b"])[x % 2]})
        a = store.create_array("/a", "f8", inner_shape=(4,), chunk_rows=8192)
        a.append(np.arange(rows * 4, dtype="f8").reshape(rows, 4))
        store.commit()
        export_hdf5(store, tmp_path / "x.h5", progress=False)
    with h5py.File(tmp_path / "x.h5") as f:
        assert f["t"].compression == "gzip" and f["t"].chunks[0] < rows
        assert (f["t"]["x"] == x).all() and (f["t"]["y"] == np.sqrt(x).astype("f4")).all()
        assert f["a"].chunks[0] < rows and (f["a"][:] == np.arange(rows * 4).reshape(-1, 4)).all()
    with tables.open_file(tmp_path / "x.h5") as f:
        assert (f.root.t.read(field="x") == x).all()
        assert (f.root.a.read()[-1] == np.arange(rows * 4 - 4, rows * 4)).all()


def test_empty_tables_and_arrays_round_trip(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", SCHEMA)
        store.create_array("/a", "i8", inner_shape=(2,))
        store.commit()
        with _round_trip(tmp_path, store) as back:
            _assert_same_table(back["/t"], t)
            assert back["/a"].shape == (0, 2)
        with tables.open_file(tmp_path / "export.h5") as f:
            assert f.root.t.nrows == 0 and f.root.a.shape == (0, 2)


def test_categories_across_chunks_with_their_own_dictionaries(tmp_path: Path) -> None:
    """Each chunk stores its own dictionary; the enum has all values, sorted, and each chunk's
    codes are renumbered into it."""
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", {"c": "category", "n": {"dtype": "category",
                                                             "nullable": True}},
                               chunk_rows=1024)  # fmt: skip
        for k in range(4):  # chunk k holds values of its own
            values = np.array([f"v{k}-{j}" for j in range(5)])[np.arange(1024) % 5]
            missing = np.arange(1024) % (k + 2) == 0 if k != 3 else np.ones(1024, bool)
            t.append({"c": values, "n": np.ma.MaskedArray(values[::-1], missing)})
        store.commit()
        h5 = tmp_path / "x.h5"
        export_hdf5(t, h5, progress=False)
        with tables.open_file(h5) as f:
            enum = f.root.t.get_enum("c")
            assert sorted(enum._names) == sorted(f"v{k}-{j}" for k in range(4) for j in range(5))
            names = {v: k for k, v in enum._names.items()}
            codes = f.root.t.read()["c"]
            assert [names[c] for c in codes] == t.col("c").tolist()
        with _store(tmp_path / "b.colvault") as back:
            import_hdf5(h5, back, progress=False)
            _assert_same_table(back["/t"], t)


def test_category_values_an_enum_cannot_hold_are_written_as_text(tmp_path: Path) -> None:
    """HDF5 has no empty enum member; PyTables refuses names starting with ``_``."""
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", {"c": "category", "d": "category"})
        t.append({"c": ["", "_hidden", "ok", "é"], "d": ["a", "b", "a", "b"]})
        store.commit()
        with _round_trip(tmp_path, store) as back:
            _assert_same_table(back["/t"], t)
        with tables.open_file(tmp_path / "export.h5") as f:
            got = f.root.t.read()
            assert [v.decode() for v in got["c"]] == ["", "_hidden", "ok", "é"]
            assert f.root.t.get_enum("d")._names == {"a": 0, "b": 1}


def test_outer_and_inner_names_nest_when_contiguous(tmp_path: Path) -> None:
    """``a/x`` and ``a/y`` nest as PyTables' nested columns, missing values' flags too; names
    that nesting would reorder stay flat: the round trip is exact either way."""
    schema = {"a/x": {"dtype": "i4", "nullable": True}, "a/y": "f8", "b": "U2",
              "c/x": "i1", "d": "i1", "c/y": "category"}  # fmt: skip
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", schema)
        t.append({"a/x": np.ma.MaskedArray([1, 2, 3], [False, True, False]),
                  "a/y": [0.5, 1.5, 2.5], "b": ["p", "q", "r"], "c/x": [1, 2, 3],
                  "d": [4, 5, 6], "c/y": ["u", "v", "u"]})  # fmt: skip
        nested = store.create_table("/nested", {"a/x": {"dtype": "i4", "nullable": True},
                                                "a/y": "f8", "b": "i2"})  # fmt: skip
        nested.append({"a/x": np.ma.MaskedArray([1, 2], [True, False]), "a/y": [0.5, 1.5],
                       "b": [7, 8]})  # fmt: skip
        store.commit()
        with _round_trip(tmp_path, store) as back:
            _assert_same_table(back["/t"], t)
            _assert_same_table(back["/nested"], nested)
    with h5py.File(tmp_path / "export.h5") as f:
        assert f["t"].dtype.names == tuple(schema)  # not nested: "c/..." would be reordered
    with tables.open_file(tmp_path / "export.h5") as f:
        assert f.root.nested.colnames == ["a", "b"]
        assert f.root.nested.cols.a.y[:].tolist() == [0.5, 1.5]
        assert f.root.nested_mask.cols.a.x[:].tolist() == [True, False]


# -- what PyTables reads --------------------------------------------------------------------------


def _pytables_values(table: Any, name: str, want: np.ndarray) -> np.ndarray:
    """PyTables' read of a column, as colvault's values: text decoded, int64 times as times,
    enum codes as their names."""
    got = table.read(field=name)
    if want.dtype.kind == "U" and got.dtype.kind == "S":
        return np.strings.decode(got, "utf-8").astype(want.dtype)
    if want.dtype.kind in "Mm":
        return got.view(want.dtype)
    if name in table.coldescrs and isinstance(table.coldescrs[name], tables.EnumCol):
        enum = table.get_enum(name)
        names = {v: k for k, v in enum._names.items()}
        return np.array([names[c] for c in got]).astype(want.dtype)
    return got


@pytest.mark.parametrize("compression", ["gzip", None])  # PyTables has no LZF decoder
def test_pytables_reads_tables_arrays_and_groups(tmp_path: Path, compression: str | None) -> None:
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/runs/readings", SCHEMA, chunk_rows=1024)
        t.append(_data(N, 1))
        a = store.create_array("/runs/spectra", "f8", inner_shape=(4,))
        a.append(np.linspace(0, 1, 40).reshape(10, 4))
        b = store.create_array("/runs/ok", "?")
        b.append(np.array([True, False, True]))
        store.commit()
        h5 = tmp_path / "x.h5"
        assert export_hdf5(store, h5, compression=compression, progress=False) == [
            "/", "/runs", "/runs/ok", "/runs/readings", "/runs/spectra",
        ]  # fmt: skip
        want = t.read()
        spectra_want = a[:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTables warns of what it cannot read
        with tables.open_file(h5) as f:
            pt = f.get_node("/runs/readings")
            assert isinstance(pt, tables.Table)
            assert isinstance(f.get_node("/runs"), tables.Group)
            assert pt.nrows == N and pt.colnames == t.colnames
            filters = pt.filters
            assert filters.complib == {"gzip": "zlib", None: None}[compression]
            for name in t.colnames:
                w = want[name]
                g = _pytables_values(pt, name, w)
                mask = np.ma.getmaskarray(w)
                _assert_same_values(g[~mask], np.ma.getdata(w)[~mask], name)
            record = pt.read(0, 5)  # a whole-row read too, as PyTables gives it
            assert (record["i4"] == want["i4"][:5]).all()
            assert (record["cell"] == want["cell"][:5]).all()
            mask = f.get_node("/runs/readings_mask")
            assert isinstance(mask, tables.Table)
            for name in ("n_int", "n_uint", "n_bool", "n_text", "n_bytes", "n_site"):
                assert (mask.read(field=name) == np.ma.getmaskarray(want[name])).all(), name
                filled = pt.read(field=name)[np.ma.getmaskarray(want[name])]
                assert not filled.astype(bool).any(), name  # missing: the fill value
            spectra = f.get_node("/runs/spectra")
            assert isinstance(spectra, tables.EArray) and spectra.extdim == 0
            assert (spectra.read() == spectra_want).all()
            ok = f.get_node("/runs/ok")
            assert ok.read().dtype == bool and ok.read().tolist() == [True, False, True]


def test_pytables_reads_the_export_of_a_pytables_file_as_the_original(tmp_path: Path) -> None:
    """PyTables -> colvault -> PyTables: ``read()`` equals the original, nested columns too
    (the import names them ``pos/x``; the export nests them again)."""
    rng = np.random.default_rng(4)
    dtype = np.dtype([("a", "i4"), ("b", "f8"), ("c", "S5"), ("d", "?"), ("e", "c16"),
                      ("pos", [("x", "f4"), ("deep", [("y", "i2"), ("z", "u1")])]),
                      ("f", "u2", (2, 2))])  # fmt: skip
    data = np.zeros(2000, dtype)
    data["pos"]["x"] = rng.normal(size=2000)
    data["pos"]["deep"]["y"] = rng.integers(-300, 300, 2000)
    data["pos"]["deep"]["z"] = rng.integers(0, 255, 2000)
    data["a"] = rng.integers(-(10**6), 10**6, 2000)
    data["b"] = rng.normal(size=2000)
    data["c"] = [b"r%d" % i for i in range(2000)]
    data["d"] = data["a"] > 0
    data["e"] = data["b"] * 1j
    data["f"] = rng.integers(0, 60000, (2000, 2, 2))
    src = tmp_path / "src.h5"
    with tables.open_file(src, "w") as f:
        t = f.create_table("/", "log", data, "A log", expectedrows=2000)
        t.attrs.gain = 2
        f.create_earray("/", "frames", tables.Int16Atom(), (0, 3)).append(
            np.arange(30, dtype="i2").reshape(10, 3)
        )
    with _store(tmp_path / "s.colvault") as store:
        import_hdf5(src, store, progress=False)
        export_hdf5(store, tmp_path / "out.h5", progress=False)
    with tables.open_file(src) as f, tables.open_file(tmp_path / "out.h5") as g:
        a, b = f.root.log.read(), g.root.log.read()
        assert a.dtype == b.dtype
        assert a.tobytes() == b.tobytes()
        assert g.root.log.title == "A log" and g.root.log.attrs.gain == 2
        assert g.root.log.cols.pos.deep.y[:].tolist() == data["pos"]["deep"]["y"].tolist()
        assert (g.root.frames.read() == f.root.frames.read()).all()


# -- attributes -----------------------------------------------------------------------------------

ATTRS: dict[str, Any] = {
    "int": -3, "big": 2**63 + 5, "float": 1.25, "nan": float("nan"), "text": "Lyon é",
    "nul": "a\x00b", "yes": True, "no": False, "none": None, "ints": [1, 2, 3],
    "floats": [0.5, -1.5], "mixed": [1, 2.5], "bools": [True, False], "empty": [],
    "texts": ["a", "b"], "nested": {"a": [1, {"b": None}], "c": "d"}, "grid": [[1, 2], [3, 4]],
}  # fmt: skip


def _same_attrs(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for key, w in want.items():
        g = got[key]
        if isinstance(w, float) and np.isnan(w):
            assert isinstance(g, float) and np.isnan(g), key
        else:
            assert g == w and type(g) is type(w), key


def test_attrs_round_trip_and_pytables_reads_them(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        store.attrs.update({"owner": "lab", "version": 2})
        g = store.create_group("/g")
        g.attrs.update(ATTRS)
        t = store.create_table("/g/t", {"x": "i4"})
        t.append({"x": [1, 2]})
        t.attrs.update({"TITLE": "Readings", "unit": "K", "scale": [1.0, 2.0]})
        a = store.create_array("/a", "f8")
        a.attrs["calibrated"] = 3
        store.commit()
        with _round_trip(tmp_path, store) as back:
            _same_attrs(dict(back.attrs), {"owner": "lab", "version": 2})
            _same_attrs(dict(back["/g"].attrs), ATTRS)
            _same_attrs(dict(back["/g/t"].attrs), {"TITLE": "Readings", "unit": "K",
                                                   "scale": [1.0, 2.0]})  # fmt: skip
            _same_attrs(dict(back["/a"].attrs), {"calibrated": 3})
            assert not list(back["/g"].objects)
    with tables.open_file(tmp_path / "export.h5") as f:
        assert f.root._v_attrs.owner == "lab"
        assert f.root.g._v_attrs.int == -3 and f.root.g._v_attrs.text == "Lyon é"
        assert list(f.root.g._v_attrs.ints) == [1, 2, 3]
        assert f.root.g.t.title == "Readings" and f.root.g.t.attrs.unit == "K"


@pytest.mark.parametrize(
    "key", ["CLASS", "VERSION", "NROWS", "FIELD_0_NAME", "COLVAULT_X", "a\x00b", ""]
)
def test_a_reserved_attribute_name_is_refused_before_anything_is_written(
    tmp_path: Path, key: str
) -> None:
    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", {"x": "i4"})
        t.attrs[key] = "mine"
        store.commit()
        with pytest.raises(ColvaultError, match=f"{re.escape(repr(key))}.*/t"):
            export_hdf5(store, tmp_path / "x.h5", progress=False)
    assert os.listdir(tmp_path) == ["s.colvault"]


# -- nodes, files and failures --------------------------------------------------------------------


def test_a_node_is_exported_with_its_subtree_under_its_own_name(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/runs/a/t", {"x": "i4"}).append({"x": [1, 2, 3]})
        store.create_array("/runs/a/arr", "u1").append(np.arange(4, dtype="u1"))
        store.create_table("/other", {"y": "f8"}).append({"y": [0.5]})
        store["/runs/a"].attrs["kept"] = 1
        store.commit()
        assert export_hdf5(store["/runs/a"], tmp_path / "a.h5", progress=False) == [
            "/a", "/a/arr", "/a/t",
        ]  # fmt: skip
        assert export_hdf5(store["/runs/a/t"], tmp_path / "t.h5", progress=False) == ["/t"]
    with h5py.File(tmp_path / "a.h5") as f:
        assert sorted(f) == ["a"] and sorted(f["a"]) == ["arr", "t"]
        assert f["a"].attrs["kept"] == 1
        assert f.attrs["CLASS"] == b"GROUP"
    with tables.open_file(tmp_path / "t.h5") as f:
        assert f.root.t.read()["x"].tolist() == [1, 2, 3]


def test_a_store_path_is_opened_read_only_and_closed(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": "i4"}).append({"x": [7]})
    export_hdf5(tmp_path / "s.colvault", tmp_path / "x.h5", progress=False)
    with tables.open_file(tmp_path / "x.h5") as f:
        assert f.root.t.read()["x"].tolist() == [7]
    assert colvault.export_hdf5 is export_hdf5


def test_an_existing_file_is_refused_unless_overwrite(tmp_path: Path) -> None:
    h5 = tmp_path / "x.h5"
    h5.write_bytes(b"precious")
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": "i4"}).append({"x": [1]})
        store.commit()
        with pytest.raises(ColvaultError, match="overwrite=True"):
            export_hdf5(store, h5, progress=False)
        assert h5.read_bytes() == b"precious"
        export_hdf5(store, h5, overwrite=True, progress=False)
    with tables.open_file(h5) as f:
        assert f.root.t.read()["x"].tolist() == [1]


def test_pending_changes_are_refused(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": "i4"}).append({"x": [1]})
        with pytest.raises(ColvaultError, match="pending"):
            export_hdf5(store, tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_a_mask_taking_a_nodes_name_is_refused(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": {"dtype": "i4", "nullable": True}})
        store.create_group("/t_mask")
        store.commit()
        with pytest.raises(ColvaultError, match="/t_mask"):
            export_hdf5(store, tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_error_in_the_middle_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    """A failure half-way (here the third chunk written) removes the partial file; an existing
    file that ``overwrite`` would have replaced is left as it was."""
    h5 = tmp_path / "x.h5"
    if overwrite:
        h5.write_bytes(b"old")
    put = hdf5export._Writer._put
    calls = []

    def failing(self: Any, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        put(self, *args)

    with _store(tmp_path / "s.colvault") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=1024)
        t.append({"x": np.arange(10_000)})
        store.commit()
        monkeypatch.setattr(hdf5export._Writer, "_put", failing)
        with pytest.raises(ColvaultError, match=r"/t.*No space left"):
            export_hdf5(store, h5, overwrite=overwrite, progress=False)
    assert len(calls) == 3
    assert sorted(os.listdir(tmp_path)) == (["s.colvault", "x.h5"] if overwrite else ["s.colvault"])
    if overwrite:
        assert h5.read_bytes() == b"old"


def test_an_interrupt_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Any, *args: Any) -> None:
        raise KeyboardInterrupt

    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": "i8"}).append({"x": np.arange(10)})
        store.commit()
        monkeypatch.setattr(hdf5export._Writer, "_put", interrupted)
        with pytest.raises(KeyboardInterrupt):
            export_hdf5(store, tmp_path / "x.h5", progress=False)
    assert os.listdir(tmp_path) == ["s.colvault"]


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with (
        _store(tmp_path / "s.colvault") as store,
        pytest.raises(ColvaultError, match=r"cannot create a file in .*nowhere"),
    ):
        export_hdf5(store, tmp_path / "nowhere" / "x.h5", progress=False)


def test_a_progress_bar_counts_the_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLVAULT_PROGRESS", raising=False)
    with _store(tmp_path / "s.colvault") as store:
        store.create_table("/t", {"x": "i8", "é": "U3"}).append({"x": [1, 2], "é": ["a", "b"]})
        store.commit()
        export_hdf5(store, tmp_path / "x.h5", progress=True)
    err = capsys.readouterr().err
    assert "export x.h5" in err and "40.0/40.0" in err  # two rows of 8 + 12 bytes
    with tables.open_file(tmp_path / "x.h5") as f:  # a column name beyond ASCII, too
        assert f.root.t.colnames == ["x", "é"]


def test_bad_compression_is_refused(tmp_path: Path) -> None:
    with _store(tmp_path / "s.colvault") as store, pytest.raises(ValueError, match="blosc"):
        export_hdf5(store, tmp_path / "x.h5", compression="blosc")


def test_the_export_reads_one_committed_snapshot(tmp_path: Path) -> None:
    """Rows another handle commits while the export runs are not in it: all of its reads are
    of the snapshot it started with."""
    path = tmp_path / "s.colvault"
    with _store(path) as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=1024)
        t.append({"x": np.arange(5000)})
        store.commit()
    calls = []
    put = hdf5export._Writer._put

    def committing(self: Any, *args: Any) -> None:
        if not calls:
            with colvault.open(path, "a") as other:
                other["/t"].append({"x": np.arange(3000)})
        calls.append(1)
        put(self, *args)

    with colvault.open(path, "r") as store:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(hdf5export._Writer, "_put", committing)
            export_hdf5(store, tmp_path / "x.h5", progress=False)
        assert store["/t"].nrows == 8000
    with tables.open_file(tmp_path / "x.h5") as f:
        assert f.root.t.read()["x"].tolist() == list(range(5000))


# -- a property -----------------------------------------------------------------------------------

_COLUMN_TYPES = ["i1", "u2", "i8", "u8", "f4", "f8", "c8", "?", "S3", "U3", "M8[s]", "m8[ns]",
                 "category", "n:i4", "n:?", "n:U2", "n:category"]  # fmt: skip


@st.composite
def _tables(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], int]:
    kinds = draw(st.lists(st.sampled_from(_COLUMN_TYPES), min_size=1, max_size=5))
    n = draw(st.integers(0, 40))
    schema: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        name = f"c{i}"
        nullable = kind.startswith("n:")
        kind = kind.removeprefix("n:")
        schema[name] = {"dtype": kind, "nullable": True} if nullable else kind
        if kind == "category" or kind[0] == "U":
            text = st.text(st.characters(codec="utf-8"), max_size=3 if kind[0] == "U" else 6)
            values: Any = np.array(draw(st.lists(text, min_size=n, max_size=n)), dtype="U6")
            if kind[0] == "U":
                values = values.astype(kind)
                values = np.array([v.rstrip("\x00") for v in values.tolist()], kind)
        elif kind[0] == "S":
            values = np.array(draw(st.lists(st.binary(max_size=3), min_size=n, max_size=n)),
                              dtype="S3")  # fmt: skip
        elif kind[0] in "Mm":
            ints = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
            values = np.array(ints, "i8").view(kind)
        else:
            dt = np.dtype(kind)
            raw = draw(st.binary(min_size=n * dt.itemsize, max_size=n * dt.itemsize))
            values = np.frombuffer(raw, dt).copy() if n else np.empty(0, dt)
            if dt.kind == "b":
                values = np.frombuffer(raw, "u1").astype(bool) if n else values
        if nullable:
            mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
            values = np.ma.MaskedArray(values, mask)
        data[name] = values
    return schema, data, n


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=_tables())
def test_property_any_table_round_trips(tmp_path: Path, table: Any) -> None:
    schema, data, n = table
    folder = Path(os.path.join(tmp_path, f"p{np.random.default_rng().integers(1 << 60)}"))
    folder.mkdir()
    with _store(folder / "s.colvault") as store:
        t = store.create_table("/t", schema)
        if n:
            t.append(data)
        store.commit()
        with _round_trip(folder, store) as back:
            _assert_same_table(back["/t"], t)


# -- memory ---------------------------------------------------------------------------------------

_CHILD = r"""
import json, sys, time
import numpy as np
import colvault
from colvault.diagnostics import PeakRss

rows, store_path, h5 = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SCHEMA = {"t": "M8[ns]", "value": "f8", "temp": "f4", "sensor": "i4", "site": "category",
          "flag": {"dtype": "i2", "nullable": True}, "more": "f8"}


def fill(path, n):
    with colvault.open(path, "w") as store:
        t = store.create_table("/big", SCHEMA, expected_rows=n)
        for start in range(0, n, 500_000):
            i = np.arange(start, min(start + 500_000, n))
            temp = ((i % 1000) / 10).astype("f4")
            t.append({"t": i.astype("M8[ns]"), "value": i * 0.5, "temp": temp,
                      "sensor": i % 97, "site": np.array(["n", "s", "e", "w"])[i % 4],
                      "flag": np.ma.MaskedArray(i % 300, i % 11 == 0), "more": np.sqrt(i)})
            store.commit()


fill(store_path + ".small", 10_000)  # warm up: modules, kernels and pools, not measured
with colvault.open(store_path + ".small") as store:
    colvault.export_hdf5(store, h5 + ".small", progress=False)
fill(store_path, rows)
with colvault.open(store_path) as store:
    sampler = PeakRss()
    sampler.start()
    colvault.export_hdf5(store, h5, progress=False)
    peak = sampler.stop()
import h5py
with h5py.File(h5) as f:
    last = f["big"][rows - 1]
exact = int(last["sensor"]) == (rows - 1) % 97 and float(last["more"]) == float(np.sqrt(rows - 1))
print(json.dumps({"first": sampler.first, "peak": peak, "samples": sampler.samples,
                  "exact": exact}), flush=True)
"""

#: Peak ``RssAnon`` of a 4 M-row export over a 1 M-row one (keeping the rows would add 130 MB).
MAX_GROWTH = 20_000_000


def test_peak_memory_stays_well_below_the_table(tmp_path: Path) -> None:
    """As the import's memory test: two sizes, each exported by a fresh child after a small
    warm-up export; the peaks differ by less than ``MAX_GROWTH``, and the larger export grows
    ``RssAnon`` by well under its table's size."""
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[2] / ".numba-cache"))
    env["COLVAULT_FSYNC"] = "0"  # durability is not what this test is about
    got = {}
    for rows in (1_000_000, 4_000_000):
        args = [str(rows), str(tmp_path / f"s{rows}.colvault"), str(tmp_path / f"x{rows}.h5")]
        out = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True,
                             text=True, env=env, timeout=600)  # fmt: skip
        assert out.returncode == 0, out.stderr
        got[rows] = m = json.loads(out.stdout.strip().splitlines()[-1])
        assert m["exact"] and m["samples"] > 5, m
    small, large = got[1_000_000], got[4_000_000]
    assert large["peak"] - small["peak"] < MAX_GROWTH, (small, large)
    table_bytes = 4_000_000 * (8 + 8 + 4 + 4 + 1 + 2 + 8)
    assert large["peak"] - large["first"] < table_bytes // 2, large


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_KEYS = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=8
).filter(
    lambda k: (
        not k.startswith(("FIELD_", "COLVAULT_")) and k not in hdf5export.PYTABLES_SYSTEM_ATTRS
    )
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attrs=st.dictionaries(_KEYS, _JSON, max_size=5))
def test_property_any_attrs_round_trip(tmp_path: Path, attrs: dict[str, Any]) -> None:
    folder = tmp_path / f"p{np.random.default_rng().integers(1 << 60)}"
    folder.mkdir()
    with _store(folder / "s.colvault") as store:
        t = store.create_table("/t", {"x": "i4"})
        t.attrs.update(attrs)
        store.commit()
        want = dict(t.attrs)
        with _round_trip(folder, store) as back:
            got = dict(back["/t"].attrs)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    _same_attrs(got, want)
