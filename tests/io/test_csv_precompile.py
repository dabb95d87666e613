"""The table side of the helper process of a CSV import on a cold kernel cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from colvault.io.csv import precompile as csvprecompile


def test_dtypes_for_the_kinds_a_file_has():
    assert csvprecompile.dtypes_for({"number"}) == ["int64"]
    assert csvprecompile.dtypes_for({"number", "float"}) == ["int64", "float64"]
    assert csvprecompile.dtypes_for({"date", "text", "bool"}) == [
        "datetime64[ns]",
        "bool",
        "category",
    ]
    assert csvprecompile.dtypes_for(set()) == []


def test_warm_tables_appends_every_dtype_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    csvprecompile.warm_tables(["int64", "float64", "datetime64[ns]", "bool", "category"])
    assert os.listdir(tmp_path) == []  # the scratch store is gone


def test_the_helper_stops_when_its_parent_is_gone(tmp_path):
    # a parent id that is not this process's: the helper does nothing and exits
    argv = [sys.executable, "-m", "colvault.io.csv.precompile", "int64", str(tmp_path), "1"]
    done = subprocess.run([*argv, "colvault.kernels.csv.tokens._uniform"], timeout=120)
    assert done.returncode == 0
    assert os.listdir(tmp_path) == []  # no lock file taken


def test_column_kinds_tell_integers_from_floats():
    from colvault.io.csv.sniff import column_kinds, sniff

    text = "a,b,c,d,e\n1,2.5,1 000,2024-01-01,x\n-3,,2 000,2024-01-02,y\n"
    opts = {"quotechar": '"', "comment": None, "decimal": ".", "thousands": " "}
    layout = sniff(text, final=True, delimiter=",", header=True, skiprows=0, **opts)
    kinds = column_kinds(text, layout, **opts)
    assert kinds == [{"number"}, {"number", "float"}, {"number"}, {"date"}, {"text"}]


def test_a_small_file_is_told_apart_by_its_size_and_sample():
    from colvault.io.csv.importer import _rows_at_most
    from colvault.io.csv.source import Input

    sample = b"a,b\n1,2\n3,4\n"  # 3 lines in 12 bytes
    assert _rows_at_most(Input("f.csv", 12_000, True, None), sample, 3_000)
    assert not _rows_at_most(Input("f.csv", 12_000, True, None), sample, 2_999)
    assert not _rows_at_most(Input("f.csv.gz", 1_200, True, None), sample, 3_000)  # compressed
    assert not _rows_at_most(Input("-", None, False, None), sample, 3_000)  # a stream


def test_a_small_file_on_a_cold_cache_compiles_no_csv_kernel(tmp_path, monkeypatch):
    """While the CSV kernels are not in Numba's cache, a small file of plain records is read
    by the numpy and Python versions (block scan, tokenizer, integers, text, dates): no CSV
    kernel is compiled or called, and the table is the one the kernels make."""
    import numba
    import numpy as np

    import colvault
    from colvault.kernels import compiling
    from colvault.kernels.csv import blockscan
    from colvault.kernels.csv import jit as csvjit

    day = "2024-01-{:02d} 10:00:00"
    rows = [f"{i},{-i * 7},{i % 13},c{i % 5},{day.format(1 + i % 28)}" for i in range(3000)]
    path = tmp_path / "small.csv"
    path.write_text("a,b,c,d,t\n" + "\n".join(rows) + "\n")
    with colvault.open(str(tmp_path / "warm.colvault"), "w") as store:
        want = colvault.import_csv(str(path), store, "/t").read()

    def no_kernel(*args, **kwargs):
        raise AssertionError("a CSV kernel was compiled or called")

    monkeypatch.setenv("COLVAULT_COMPILE_HELPER", "0")
    monkeypatch.setattr(csvjit.Kernel, "cached", lambda self: False)  # a cold cache
    monkeypatch.setattr(csvjit.Kernel, "compiled", no_kernel)
    monkeypatch.setattr(csvjit.Kernel, "__call__", no_kernel)
    monkeypatch.setattr(csvjit, "_cold", set())
    monkeypatch.setattr(compiling, "_cold", {})
    cold_scan = numba.njit(blockscan.block_facts.py_func)  # compiled in no process
    monkeypatch.setattr(blockscan, "block_facts", cold_scan)
    monkeypatch.setattr(cold_scan, "_compile_for_args", no_kernel)
    monkeypatch.setattr(compiling, "cached_index", lambda *args: False)
    with colvault.open(str(tmp_path / "cold.colvault"), "w") as store:
        got = colvault.import_csv(str(path), store, "/t").read()
    assert got.dtype == want.dtype
    for name in want.dtype.names:
        assert np.array_equal(got[name], want[name]), name


def test_the_package_gives_import_csv_on_first_use():
    import colvault
    import colvault.io.csv as package

    assert package.import_csv is colvault.import_csv
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018
