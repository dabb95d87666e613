"""Set tests (``isin``) in generated kernels and batch loops, and kernels whose helpers are
called rather than inlined: numpy's answers, and descriptions that are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colvault.kernels.query import exprcode, exprgen

NAT = np.iinfo(np.int64).min


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernels")


def isin(dt: str) -> tuple:
    return ("isin", "|b1", ("col", 0, dt), ("const", 0, "set" + dt))


def run_all_modes(cache: Path, node: tuple, column: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mask of every mode, checked against each other."""
    n = len(column)
    mask = np.empty(n, bool)
    exprgen.kernel(node, 1, 1, "mask", cache_dir=cache)(n, column, values, mask)
    out = np.empty(n, np.int64)
    count = exprgen.kernel(node, 1, 1, "select", cache_dir=cache)(n, column, values, out)
    assert np.array_equal(out[:count], np.flatnonzero(mask))
    assert exprgen.kernel(node, 1, 1, "count", cache_dir=cache)(n, column, values) == count
    return mask


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 64, 900])
def test_float_set_matches_numpy(cache, size):
    rng = np.random.default_rng(size)
    values = np.unique(rng.integers(-50, 50, size).astype("f8") / 2)
    column = np.r_[rng.integers(-60, 60, 3000) / 2, np.nan, np.inf, -np.inf, -0.0, 0.0]
    got = run_all_modes(cache, isin("<f8"), column, values)
    assert np.array_equal(got, np.isin(column, values))


@pytest.mark.parametrize("dt", ["|i1", "|u1", "<i4", "<u8", "<i8", "<f4"])
def test_integer_and_float32_sets_at_the_edges(cache, dt):
    info = np.iinfo(dt) if dt[1] in "iu" else np.finfo(dt)
    edges = np.array([info.min, info.max, 0, 1, 2, 100], dtype=dt)
    values = np.unique(edges[[0, 1, 3, 5]])
    column = np.r_[edges, np.arange(-3, 120).astype(dt)].astype(dt)
    got = run_all_modes(cache, isin(dt), column, values)
    assert np.array_equal(got, np.isin(column, values))


def test_datetime_set_as_int64_never_holds_nat(cache):
    stamps = np.array(["2025-01-01", "2025-01-02", "NaT", "2025-03-01"], "M8[s]")
    values = np.unique(stamps[[0, 3]]).view(np.int64)
    got = run_all_modes(cache, isin("<M8[s]"), stamps.view(np.int64), values)
    assert got.tolist() == [True, False, False, True]


def test_set_of_a_cast_operand(cache):
    node = ("isin", "|b1", ("cast", "<f8", ("col", 0, "<i4")), ("const", 0, "set<f8"))
    column = np.arange(-5, 5, dtype="i4")
    got = run_all_modes(cache, node, column, np.array([-2.0, 0.0, 3.0]))
    assert np.flatnonzero(got).tolist() == [3, 5, 8]


@pytest.mark.parametrize(
    "bad",
    [
        ("isin", "|b1", ("col", 0, "<f8"), ("const", 0, "set<f4")),  # not the operand's dtype
        ("isin", "|b1", ("col", 0, "|b1"), ("const", 0, "set|b1")),
        ("isin", "|b1", ("col", 0, "<f2"), ("const", 0, "set<f2")),
        ("isin", "|b1", ("col", 0, "<f8"), ("const", 0, "<f8")),
        ("isin", "|b1", ("col", 0, "<f8"), ("col", 0, "<f8")),
        ("isin", "<f8", ("col", 0, "<f8"), ("const", 0, "set<f8")),
        ("isin", "|b1", ("col", 0, "<f8")),
        (">", "|b1", ("col", 0, "<f8"), ("const", 0, "set<f8; x")),
    ],
)
def test_bad_set_tests_are_refused(bad):
    with pytest.raises(ValueError):
        exprgen.generate_source(bad, 1, 1)


def test_batch_loops_take_a_set_whole_and_scalars_per_chunk():
    src = exprgen.scan_source([("<f8", "|u1")], ["set<f8", "<i8"], "count")
    assert "m = kernel(n, c0, k0, a1)" in src  # the set whole, the scalar read per chunk
    assert "a1 = k1[i]" in src
    compile(src, "<scan>", "exec")
    for bad in (["set|b1"], ["set"], ["set<f8; x"]):
        with pytest.raises(ValueError, match="constant dtype"):
            exprgen.scan_source([("<f8", "|u1")], bad, "count")


def test_many_helper_calls_are_not_inlined_and_agree_with_numpy(cache):
    """Past INLINE_CALLS helper calls a kernel calls them (inlined copies compiled for
    minutes); the answers stay numpy's."""
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 50, 2000), 0.0, -0.0, np.inf, np.nan]
    divisors = [1.5, -2.5, 3.0, 0.0, 7.25, -0.5]
    assert len(divisors) > exprcode.INLINE_CALLS
    terms = [
        (">", "|b1", ("//", "<f8", ("col", 0, "<f8"), ("const", k, "<f8")), ("const", 6, "<f8"))
        for k in range(len(divisors))
    ]
    node = terms[0]
    for t in terms[1:]:
        node = ("or", "|b1", node, t)
    src = exprgen.generate_source(node, 1, 7)
    assert 'inline="always"' not in src
    consts = [np.float64(d) for d in divisors] + [np.float64(3.0)]
    mask = np.empty(len(x), bool)
    exprgen.kernel(node, 1, 7, "mask", cache_dir=cache)(len(x), x, *consts, mask)
    with np.errstate(all="ignore"):
        want = np.zeros(len(x), bool)
        for d in divisors:
            want |= np.floor_divide(x, d) > 3.0
    assert np.array_equal(mask, want)
    one = exprgen.generate_source(terms[0], 1, 7)
    assert 'inline="always"' in one  # a few calls stay inlined
