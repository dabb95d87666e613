"""Masked predicate kernels: validity bits per column, missing entries compared as NaN is
(false, but ``!=`` true, ``~`` flips), ``isna``/``notna``; plain kernels unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colvault.kernels.query import exprcode, exprgen

NAT = np.iinfo(np.int64).min


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("masked-kernels")


def bits(valid: np.ndarray) -> np.ndarray:
    return np.packbits(np.asarray(valid, bool), bitorder="little")


def run(cache, node, columns, constants, valid, mode="mask"):
    """Run ``node`` with the validity bits ``valid`` (column position -> bool array)."""
    masked = tuple(sorted(valid))
    fn = exprgen.kernel(node, len(columns), len(constants), mode, cache, masked)
    n = len(columns[0])
    vargs = [bits(valid[j]) for j in masked]
    if mode == "count":
        return fn(n, *columns, *constants, *vargs)
    out = np.empty(n, bool if mode == "mask" else np.int64)
    count = fn(n, *columns, *constants, *vargs, out)
    return out if mode == "mask" else out[:count]


def col(j, dt):
    return ("col", j, dt)


def const(j, dt):
    return ("const", j, dt)


def cmp(op, a, b):
    return (op, "|b1", a, b)


X, F, B = col(0, "<i8"), col(1, "<f8"), col(2, "|b1")
K = const(0, "<i8")


def test_bits_are_read_little_endian_per_row(cache):
    x = np.arange(19, dtype=np.int64)
    valid = np.ones(19, bool)
    valid[[0, 7, 8, 18]] = False
    got = run(cache, cmp(">=", X, K), [x], [np.int64(0)], {0: valid})
    assert np.array_equal(got, valid)


def test_comparisons_of_missing_are_false_but_not_equal_is_true(cache):
    x = np.array([1, 3, 3, 5], np.int64)
    valid = np.array([True, True, False, False])
    k = [np.int64(3)]
    assert run(cache, cmp("==", X, K), [x], k, {0: valid}).tolist() == [0, 1, 0, 0]
    assert run(cache, cmp("!=", X, K), [x], k, {0: valid}).tolist() == [1, 0, 1, 1]
    assert run(cache, cmp("<", X, K), [x], k, {0: valid}).tolist() == [1, 0, 0, 0]
    inverted = ("not", "|b1", cmp("==", X, K))
    assert run(cache, inverted, [x], k, {0: valid}).tolist() == [1, 0, 1, 1]


def test_arithmetic_propagates_missing(cache):
    x = np.array([1, 2, 3, 4], np.int64)
    valid = np.array([True, False, True, False])
    node = cmp(">", ("+", "<i8", X, K), const(1, "<i8"))
    got = run(cache, node, [x], [np.int64(10), np.int64(0)], {0: valid}, "count")
    assert got == 2


def test_bool_column_missing_selects_nothing_and_its_negation_selects_it(cache):
    b = np.array([True, False, True, False])
    valid = np.array([True, True, False, False])
    b_node = col(0, "|b1")
    assert run(cache, b_node, [b], [], {0: valid}).tolist() == [1, 0, 0, 0]
    assert run(cache, ("not", "|b1", b_node), [b], [], {0: valid}).tolist() == [0, 1, 1, 1]


def test_isna_and_notna(cache):
    x = np.array([1, 2, 3], np.int64)
    f = np.array([np.nan, 1.0, 2.0])
    t = np.array([NAT, 0, 5], np.int64)
    valid = np.array([True, False, True])
    isna = ("isna", "|b1", X)
    assert run(cache, isna, [x], [], {0: valid}).tolist() == [0, 1, 0]
    assert run(cache, isna, [x], [], {}).tolist() == [0, 0, 0]
    assert run(cache, ("notna", "|b1", X), [x], [], {0: valid}).tolist() == [1, 0, 1]
    assert run(cache, ("isna", "|b1", col(0, "<f8")), [f], [], {}).tolist() == [1, 0, 0]
    assert run(cache, ("isna", "|b1", col(0, "<f8")), [f], [], {0: valid}).tolist() == [1, 1, 0]
    dt = col(0, "<M8[ns]")
    assert run(cache, ("notna", "|b1", dt), [t], [], {}).tolist() == [0, 1, 1]
    text = np.array(["a", "b", ""])
    assert run(cache, ("isna", "|b1", col(0, "U")), [text], [], {0: valid}).tolist() == [0, 1, 0]


def test_category_codes_of_missing_entries(cache):
    codes = np.array([0, 1, 0, 1], np.int8)
    valid = np.array([True, True, False, False])
    cat = col(0, "cat")
    eq = ("catcode", "==", cat, K)
    ne = ("catcode", "!=", cat, K)
    assert run(cache, eq, [codes], [np.int64(0)], {0: valid}).tolist() == [1, 0, 0, 0]
    assert run(cache, ne, [codes], [np.int64(0)], {0: valid}).tolist() == [0, 1, 1, 1]
    lut = ("catlut", cat, const(0, "lut"))
    assert run(cache, lut, [codes], [np.array([True, True])], {0: valid}).tolist() == [1, 1, 0, 0]


def test_plain_kernel_source_is_unchanged_by_the_masked_variant():
    node = ("and", "|b1", cmp(">", F, const(0, "<f8")), ("isna", "|b1", X))
    plain = exprcode.generate_source(node, 3, 1)
    assert "v0" not in plain and "masked" not in plain
    assert exprcode.generate_source(node, 3, 1, ()) == plain
    masked = exprcode.generate_source(node, 3, 1, (0,))
    assert "def select(n, c0, c1, c2, k0, v0, out):" in masked
    with pytest.raises(ValueError, match="masked"):
        exprcode.generate_source(node, 3, 1, (1, 0))
    with pytest.raises(ValueError, match="masked"):
        exprcode.generate_source(node, 3, 1, (3,))


def test_masked_and_plain_kernels_are_distinct_modules(cache):
    node = cmp("<", X, K)
    plain = exprgen.kernel(node, 1, 1, "count", cache)
    masked = exprgen.kernel(node, 1, 1, "count", cache, (0,))
    assert plain is not masked
    assert exprgen.kernel(node, 1, 1, "count", cache) is plain


def _reference(op, a, va, b, vb):
    """NaN semantics on (values, validity): numpy on float copies with NaN in missing slots."""
    fa = np.where(va, a.astype(float), np.nan)
    fb = np.where(vb, b.astype(float), np.nan)
    with np.errstate(invalid="ignore"):
        return {"<": np.less, "==": np.equal, "!=": np.not_equal, ">=": np.greater_equal}[op](
            fa, fb
        )


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 3), st.booleans(), st.integers(-3, 3), st.booleans()),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["<", "==", "!=", ">="]),
    st.sampled_from(["and", "or"]),
)
def test_random_rows_match_nan_semantics(cache, rows, op, logic):
    a = np.array([r[0] for r in rows], np.int64)
    va = np.array([r[1] for r in rows])
    b = np.array([r[2] for r in rows], np.int64)
    vb = np.array([r[3] for r in rows])
    x, y = col(0, "<i8"), col(1, "<i8")
    node = (logic, "|b1", cmp(op, x, y), ("not", "|b1", cmp(op, x, const(0, "<i8"))))
    zero = np.zeros(len(a), np.int64)
    first = _reference(op, a, va, b, vb)
    second = ~_reference(op, a, va, zero, np.ones(len(a), bool))
    want = (first & second) if logic == "and" else (first | second)
    got = run(cache, node, [a, b], [np.int64(0)], {0: va, 1: vb})
    assert np.array_equal(got, want)
    assert run(cache, node, [a, b], [np.int64(0)], {0: va, 1: vb}, "count") == want.sum()
    hits = run(cache, node, [a, b], [np.int64(0)], {0: va, 1: vb}, "select")
    assert np.array_equal(hits, np.flatnonzero(want))
