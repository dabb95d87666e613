"""The helper process that compiles CSV kernels beside an import on a cold Numba cache."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from colvault.kernels import compiling
from colvault.kernels.csv import background as csvbackground
from colvault.kernels.csv import jit as csvjit
from colvault.kernels.csv import tokens as csvtokens

pytestmark = pytest.mark.skipif(csvjit.fcntl is None, reason="lock files need fcntl")

UNIFORM = "colvault.kernels.csv.tokens._uniform"


def _fresh_uniform() -> csvjit.Kernel:
    """A Kernel of the same function and signature as csvtokens' own, not yet compiled here."""
    return csvjit.Kernel(csvtokens._uniform, csvjit.OFFSETS)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "numba"
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(cache))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    return cache


def test_kernels_for_lists_what_the_file_needs_in_order_of_use():
    kinds = [{"text"}, {"number"}, {"text", "number", "float"}]
    names = csvbackground.kernels_for(kinds, missing=True)
    short = [n.rsplit(".", 1)[1] for n in names]
    assert short == [
        "special_masks", "_fast", "_uniform", "match_kernel", "_dict_run",
        "parse_int64_kernel", "parse_float64_fast_kernel", "ucs4_kernel",
    ]  # fmt: skip
    ints = csvbackground.kernels_for([{"number"}, {"date"}], missing=False)
    assert "parse_float64_fast_kernel" not in str(ints)  # integers and dates call no float one
    # a small file's text, dates and missing values are read in Python: no kernels for them
    few = csvbackground.kernels_for([*kinds, {"date"}], missing=True, few=True)
    assert [n.rsplit(".", 1)[1] for n in few] == [
        "special_masks", "_fast", "_uniform", "parse_int64_kernel", "parse_float64_fast_kernel",
    ]  # fmt: skip
    assert "match_kernel" not in str(csvbackground.kernels_for([{"number"}], missing=False))
    long = csvbackground.kernels_for([{"number", "long"}], missing=False)
    assert long[-1] == "colvault.kernels.csv.numbers.parse_float64_kernel"
    csvbackground.load_kernels()
    every = csvbackground.kernels_for([{"date"}, {"bool"}, {"number", "long"}], True)
    assert "colvault.kernels.csv.dates.parse_iso_fast_kernel" in every
    assert all(n in csvjit.KERNELS for n in every)


def test_helper_fills_the_cache_the_import_then_loads(empty_cache, monkeypatch):
    kernel = _fresh_uniform()
    assert not kernel.cached()
    monkeypatch.setitem(csvjit.KERNELS, UNIFORM, kernel)  # as in a process that has not run it
    monkeypatch.setattr(csvbackground, "MIN_KERNELS", 1)
    helper = csvbackground.start([UNIFORM])
    assert helper is not None
    try:
        assert csvbackground.start([UNIFORM]) is None  # one helper at a time
        assert helper.proc.wait(120) == 0
    finally:
        helper.stop()
    assert not os.path.exists(helper.folder)
    assert kernel.cached()  # read from the cache's index, not compiled here
    assert csvbackground.start([UNIFORM]) is None  # nothing left to compile


def _until_cached(kernel: csvjit.Kernel) -> bool:
    import time

    deadline = time.monotonic() + 120
    while not kernel.cached() and time.monotonic() < deadline:
        time.sleep(0.05)
    return kernel.cached()


def test_a_helper_started_early_takes_the_import_list_then_ends_with_it(empty_cache, monkeypatch):
    masks_name = "colvault.kernels.csv.tokens.special_masks"
    uniform = _fresh_uniform()
    masks = csvjit.Kernel(csvtokens.special_masks, *csvjit.KERNELS[masks_name].sig)
    monkeypatch.setitem(csvjit.KERNELS, UNIFORM, uniform)
    monkeypatch.setitem(csvjit.KERNELS, masks_name, masks)
    monkeypatch.setattr(csvbackground, "EARLY", [UNIFORM])
    monkeypatch.setattr(csvbackground, "_early_tried", False)
    helper = csvbackground.start_early()
    assert helper is not None and helper.waiting and csvbackground.waiting()
    try:
        assert csvbackground.start_early() is None  # once per process
        assert _until_cached(uniform)  # compiled early, with no import yet
        assert csvbackground.start([masks_name]) is helper  # the import's list, handed over
        assert _until_cached(masks)
        assert csvbackground.start([UNIFORM]) is None  # nothing left to compile
    finally:
        helper.stop()
    assert not os.path.exists(helper.folder) and not csvbackground.waiting()


def test_helper_skips_a_kernel_the_import_is_compiling(empty_cache, tmp_path):
    import fcntl

    folder = tmp_path / "locks"
    folder.mkdir()
    with open(csvjit.lock_path(str(folder), UNIFORM), "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        argv = [sys.executable, "-m", "colvault.kernels.csv.background", str(folder)]
        subprocess.run([*argv, str(os.getpid()), UNIFORM], check=True, timeout=120)
    assert not _fresh_uniform().cached()


def test_the_import_waits_for_the_kernel_the_helper_holds(empty_cache, tmp_path, monkeypatch):
    import fcntl
    import threading

    monkeypatch.setattr(csvjit, "_claims", None)
    csvjit.set_claims(str(tmp_path))
    kernel = _fresh_uniform()
    got: list[int] = []
    try:
        with open(csvjit.lock_path(str(tmp_path), UNIFORM), "a+b") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
            caller = threading.Thread(target=lambda: got.append(kernel(np.array([0, 3, 6]))))
            caller.start()
            caller.join(0.5)
            assert caller.is_alive() and not got  # waiting for the lock
        caller.join(120)
    finally:
        csvjit.set_claims(None)
    assert got == [3]
    assert kernel.cached()


def test_turned_off_by_the_environment(empty_cache, monkeypatch):
    monkeypatch.setenv(csvbackground.ENV, "0")
    monkeypatch.setitem(csvjit.KERNELS, UNIFORM, _fresh_uniform())
    monkeypatch.setattr(csvbackground, "MIN_KERNELS", 1)
    assert csvbackground.start([UNIFORM]) is None


def test_helper_order_takes_the_next_after_the_tokenizer_first_then_the_last():
    names = csvbackground.kernels_for([{"number", "float"}, {"text"}, {"date"}], missing=True)
    order = [n.rsplit(".", 1)[1] if n != csvbackground.BETWEEN else n for n in
             csvbackground.helper_order(names)]  # fmt: skip
    assert order == [
        "match_kernel", "parse_int64_kernel", csvbackground.BETWEEN, "ucs4_kernel",
        "parse_iso_fast_kernel", "_dict_run", "parse_float64_fast_kernel", "_uniform", "_fast",
        "special_masks",
    ]  # fmt: skip


def test_no_helper_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    import numba.core.caching

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))
    assert csvbackground.cache_writable(UNIFORM)

    def no_cache(py_func):  # as Numba says when no cache folder is writable
        raise RuntimeError(f"cannot cache function {py_func.__name__!r}: no locator available")

    monkeypatch.setattr(numba.core.caching, "FunctionCache", no_cache)
    assert not csvbackground.cache_writable(UNIFORM)
    monkeypatch.setitem(csvjit.KERNELS, UNIFORM, _fresh_uniform())
    monkeypatch.setattr(csvbackground, "MIN_KERNELS", 1)
    assert csvbackground.start([UNIFORM]) is None


def test_python_versions_stand_in_only_during_the_import_of_a_small_file(monkeypatch):
    kernel = _fresh_uniform()
    monkeypatch.setattr(kernel, "cached", lambda: False)  # as on a machine without it
    monkeypatch.setattr(csvjit, "_cold", set())
    assert not csvjit.in_python(kernel, 10)  # no small file under way: a large file's blocks
    csvjit.small_file(True)
    try:
        assert csvjit.in_python(kernel, 10)
        assert not csvjit.in_python(kernel, compiling.SMALL + 1)
    finally:
        csvjit.small_file(False)
    assert not csvjit.in_python(kernel, 10)
