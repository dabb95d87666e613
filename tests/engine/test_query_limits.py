"""Conditions whose kernels would take long to compile: long ``or`` chains of equalities run
as one set test, other conditions are limited to MAX_OPERATIONS operations (a QueryError says
so), and large conditions scan chunk by chunk rather than in a batch loop. Every answer is
checked against numpy."""

from __future__ import annotations

import re

import numpy as np
import pytest

import colvault
from colvault import QueryError
from colvault.engine.query import batch as batch_mod
from colvault.engine.query.execute import Plan
from colvault.engine.query.parse import parse
from colvault.engine.query.predicate import MAX_OPERATIONS, SET_TEST_MIN, Predicate, lower

N = 20_000
CHUNK = 4096


def make_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    x = rng.integers(0, 2000, N).astype("f8")  # decimal chunks: compared on their integers
    x[rng.integers(0, N, 20)] = np.nan
    x[rng.integers(0, N, 5)] = -0.0
    t = (np.arange(N, dtype=np.int64) + 1_700_000_000).view("M8[s]").copy()
    t[rng.integers(0, N, 5)] = np.datetime64("NaT")
    return {
        "x": x,
        "noise": rng.normal(0, 1, N),  # blosc2 chunks
        "i": rng.integers(-(2**31), 2**31, N, dtype=np.int64) % 300 - 150,
        "small": rng.integers(-128, 128, N).astype("i1"),
        "t": t,
    }


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("limits") / "l.colvault")
    data = make_data()
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=CHUNK)
        t.append(data)
    return path, data


def chain(op: str, terms: list[str]) -> str:
    return f" {op} ".join(terms)


def check_all_ways(t, cond: str, want: np.ndarray) -> None:
    assert t.count_where(cond) == int(want.sum())
    np.testing.assert_array_equal(t.get_where_list(cond), np.flatnonzero(want))
    np.testing.assert_array_equal(t.read_where(cond, columns=["i"])["i"], t.col("i")[want])


def test_900_equalities_are_one_set_test(table_path):
    """The defect: ``x == 0 or ... or x == 899`` compiled 900 comparisons (18 s to minutes,
    or a RecursionError in Numba); now one set test, batched like any small condition."""
    path, data = table_path
    cond = chain("or", [f"x=={k}" for k in range(900)])
    with colvault.open(path) as store:
        t = store["/t"]
        plan = Plan(t._view(), cond, None)
        assert plan.condition.predicate.lowered.node[0] == "isin"
        scan = batch_mod.BatchScan(plan)
        fast, _ = scan.split(plan.chunks())
        assert scan.usable and len(fast) == -(-N // CHUNK)  # the short last one packed too
        check_all_ways(t, cond, np.isin(data["x"], np.arange(900)))


@pytest.mark.parametrize(
    "terms, want",
    [
        # NaN never equals; -0.0 equals 0.0; repeated values count once
        (
            [f"x == {k / 2}" for k in range(SET_TEST_MIN)] + ["x == nan", "x == -0.0", "0 == x"],
            lambda d: np.isin(d["x"], np.arange(SET_TEST_MIN) / 2),
        ),
        # integers outside int8 equal nothing; a float equals an int8 that it is exactly
        (
            [f"small == {k}" for k in range(-140, -140 + SET_TEST_MIN)] + ["small == 3.0"],
            lambda d: np.isin(d["small"], [*range(-128, -140 + SET_TEST_MIN), 3]),
        ),
        (
            [f"i == {k}" for k in range(-150, 150, 3)],
            lambda d: np.isin(d["i"], np.arange(-150, 150, 3)),
        ),
        # datetimes: NaT equals nothing
        (
            [f"t == '{np.datetime64(1_700_000_000 + k * 7, 's')}'" for k in range(SET_TEST_MIN)]
            + ["t == 'NaT'"],
            lambda d: np.isin(d["t"].view(np.int64), 1_700_000_000 + 7 * np.arange(SET_TEST_MIN)),
        ),
    ],
)
def test_set_tests_match_numpy(table_path, terms, want):
    path, data = table_path
    with colvault.open(path) as store:
        t = store["/t"]
        cond = chain("or", terms)
        typed = parse(cond, {k: v.dtype for k, v in data.items()}, {"nan": np.nan})
        assert "isin" in repr(lower(typed).node)
        expected = want(data)
        assert t.count_where(cond, {"nan": np.nan}) == int(expected.sum())
        got = t.read_where(cond, {"nan": np.nan}, columns=["i"])["i"]
        np.testing.assert_array_equal(got, data["i"][expected])
        # its negation, written as inequalities joined by `and`, selects the rest
        negated = chain("and", [term.replace("==", "!=") for term in terms])
        assert t.count_where(negated, {"nan": np.nan}) == N - int(expected.sum())


def test_set_test_within_a_larger_condition(table_path):
    path, data = table_path
    ids = list(range(0, 2000, 7))
    cond = f"(noise > 0.5) & ({chain('or', [f'x == {k}' for k in ids])}) | (i < -140)"
    want = ((data["noise"] > 0.5) & np.isin(data["x"], ids)) | (data["i"] < -140)
    with colvault.open(path) as store:
        check_all_ways(store["/t"], cond, want)


def test_fewer_equalities_stay_comparisons():
    cond = chain("or", [f"x == {k}" for k in range(SET_TEST_MIN - 1)])
    e = parse(cond, {"x": np.dtype("f8")})
    assert "isin" not in repr(lower(e).node)
    x = np.arange(-3.0, 100.0)
    assert Predicate(e).count({"x": x}) == SET_TEST_MIN - 1


def operations(n_terms: int, negate_first: bool) -> str:
    """``x > 0 or x > 1 or ...``: 2 * n_terms - 1 operations, one more with a ``~``."""
    terms = [f"x > {k}" for k in range(n_terms)]
    if negate_first:
        terms[0] = f"~({terms[0]})"
    return chain("or", terms)


def test_operation_limit(table_path):
    path, data = table_path
    n_terms = MAX_OPERATIONS // 2
    largest = operations(n_terms, negate_first=True)  # exactly MAX_OPERATIONS
    too_many = operations(n_terms + 1, negate_first=False)  # MAX_OPERATIONS + 1
    with colvault.open(path) as store:
        t = store["/t"]
        x = data["x"]
        want = ~(x > 0)
        for k in range(1, n_terms):
            want |= x > k
        check_all_ways(t, largest, want)
        message = f"has {MAX_OPERATIONS + 1} operations .* the limit is {MAX_OPERATIONS}"
        for run in (t.count_where, t.read_where, t.get_where_list, lambda c: list(t.where(c))):
            with pytest.raises(QueryError, match=message):
                run(too_many)
        with pytest.raises(QueryError, match="x == 1 or x == 2"):
            t.count_where(too_many)


def test_long_pipe_chains_are_refused_with_a_hint():
    cond = " | ".join(f"(x == {k})" for k in range(200))
    hint = re.escape("each & or | of a chain nests one level deeper, `and`/`or` do not")
    with pytest.raises(QueryError, match=hint):
        parse(cond, {"x": np.dtype("f8")})
    flat = cond.replace(" | ", " or ")
    e = parse(flat, {"x": np.dtype("f8")})
    assert Predicate(e).count({"x": np.arange(300.0)}) == 200


def test_wide_conditions_scan_chunk_by_chunk(table_path):
    """More columns or constants than a batch loop takes (its compile time grows fast with
    them): the Python path, with the same answers."""
    path, data = table_path
    many_columns = "(x > 100) | (noise > 1) | (i < 0) | (small > 5) | (t > '2023-11-14T22:20')"
    many_constants = chain("or", [f"i == {k}" for k in range(batch_mod.BATCH_CONSTANTS + 1)])
    t_cut = np.datetime64("2023-11-14T22:20", "s")
    with colvault.open(path) as store:
        t = store["/t"]
        for cond, want, columns, constants in [
            (
                many_columns,
                (data["x"] > 100)
                | (data["noise"] > 1)
                | (data["i"] < 0)
                | (data["small"] > 5)
                | (data["t"] > t_cut),
                batch_mod.BATCH_COLUMNS + 1,
                5,
            ),
            (
                many_constants,
                np.isin(data["i"], np.arange(batch_mod.BATCH_CONSTANTS + 1)),
                1,
                batch_mod.BATCH_CONSTANTS + 1,
            ),
        ]:
            plan = Plan(t._view(), cond, None)
            assert len(plan.condition.specs) == columns
            assert len(plan.condition.predicate.lowered.slots) == constants
            assert not batch_mod.BatchScan(plan).usable
            check_all_ways(t, cond, want)


@pytest.mark.parametrize(
    "cond, message",
    [
        ("~" * 9_990 + "x > 1", "nests too deeply"),
        ("~" * 101 + "(x > 1)", "more than 100 levels"),
        ("(" * 4_990 + "x > 1" + ")" * 4_990, "more than 100 levels"),
        ("x > " + "-" * 9_000 + "1", "more than 100 levels"),
        ("(" * 10_000 + "x > 1" + ")" * 10_000, "20005 characters long; the limit is 10000"),
    ],
)
def test_deeply_nested_conditions_are_refused_not_crashed(cond, message):
    with pytest.raises(QueryError, match=message):
        parse(cond, {"x": np.dtype("f8")})


def test_the_deepest_negation_allowed_works(table_path):
    path, data = table_path
    with colvault.open(path) as store:
        t = store["/t"]
        assert t.count_where("~" * 99 + "(x > 100)") == int((~(data["x"] > 100)).sum())
        assert t.count_where("~" * 98 + "(x > 100)") == int((data["x"] > 100).sum())
