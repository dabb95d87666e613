"""Range conditions on sorted columns take the binary-search (or arithmetic) path and still give
numpy's answers: random sorted columns, regular clocks, random bounds at, between and beyond
the values, against numpy on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault.engine.query.expr import Col, Const, Op
from colvault.engine.query.ranges import SortedRange, sorted_range

OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal}
CHUNK = 64


def test_only_conjunctions_of_one_column_qualify() -> None:
    t = Col("t", np.dtype("M8[s]"))
    lo = Const(np.datetime64("2025-01-01T00:00:00", "s"), np.dtype("M8[s]"))
    r = sorted_range(Op("and", (Op(">=", (t, lo), np.dtype(bool)),), np.dtype(bool)))
    assert isinstance(r, SortedRange) and r.column == "t"
    fine = Const(np.datetime64("2025-01-01T00:00:00.5"), np.dtype("M8[ms]"))
    assert sorted_range(Op("<", (t, fine), np.dtype(bool))) is None  # not exact in seconds
    v = Col("v", np.dtype("i4"))
    assert sorted_range(Op("<", (v, Const(2.5, None)), np.dtype(bool))) is None
    assert sorted_range(Op("<", (v, Const(2**40, None)), np.dtype(bool))) is None
    w = Col("w", np.dtype("i4"))
    both = Op("and", (Op("<", (v, Const(3, None)), bool), Op("<", (w, Const(3, None)), bool)), bool)
    assert sorted_range(both) is None  # type: ignore[arg-type]
    assert sorted_range(Op("!=", (v, Const(3, None)), np.dtype(bool))) is None


@pytest.mark.parametrize(
    ("first", "step", "n", "op", "v"),
    [(10, 3, 7, ">=", 13), (10, 3, 7, ">", 13), (10, 3, 7, "<", 14), (10, 3, 7, "<=", 16),
     (10, 3, 7, "==", 19), (10, 3, 7, "==", 20), (-5, 2, 9, ">", -100), (-5, 2, 9, "<", 100)],
)  # fmt: skip
def test_regular_run_matches_searchsorted(first: int, step: int, n: int, op: str, v: int) -> None:
    from colvault.engine.query.ranges import Bound

    r = SortedRange("x", np.dtype(np.int64), (Bound(op, v),))
    values = first + step * np.arange(n)
    assert r.regular_run(first, step, n) == r.run(values)
    a, b = r.run(values)
    assert np.array_equal(np.arange(a, b), np.flatnonzero(OPS[op](values, v)))


def _store(path: str, data: dict[str, np.ndarray]) -> None:
    with colvault.open(path, "w") as s:
        schema = {k: v.dtype for k, v in data.items()}
        s.create_table("/t", schema, chunk_rows=CHUNK).append(data)


@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, CHUNK * 5 + 7),
    kind=st.sampled_from(["clock", "ints", "floats", "dates"]),
    ops=st.lists(st.sampled_from(sorted(OPS)), min_size=1, max_size=2),
)
def test_range_queries_agree_with_numpy(
    tmp_path_factory: pytest.TempPathFactory, seed: int, rows: int, kind: str, ops: list[str]
) -> None:
    rng = np.random.default_rng(seed)
    if kind == "clock":
        col = np.datetime64("2025-03-01T00:00:00", "ns") + np.arange(rows) * np.timedelta64(
            int(rng.integers(1, 10**9)), "ns"
        )
    elif kind == "ints":
        col = np.sort(rng.integers(-50, 50, rows)).astype(np.int32)
    elif kind == "floats":
        col = np.sort(np.round(rng.normal(0, 10, rows), 1))
    else:
        col = np.sort(rng.integers(0, 10**6, rows)).astype("M8[s]")
    other = rng.random(rows)
    path = str(tmp_path_factory.mktemp("r") / "s.colvault")
    _store(path, {"x": col, "y": other})
    picks = [col[int(rng.integers(0, rows))] for _ in ops]
    if kind == "ints":
        picks = [int(p) + int(rng.integers(-1, 2)) for p in picks]
    cond = " & ".join(f"(x {op} c{i})" for i, op in enumerate(ops))
    condvars = {f"c{i}": p for i, p in enumerate(picks)}
    want = np.ones(rows, bool)
    for i, op in enumerate(ops):
        want &= OPS[op](col, picks[i])
    with colvault.open(path) as s:
        t = s["/t"]
        np.testing.assert_array_equal(t.get_where_list(cond, condvars), np.flatnonzero(want))
        assert t.count_where(cond, condvars) == int(want.sum())
        got = t.read_where(cond, condvars)
        assert got["x"].tobytes() == col[want].tobytes()
        assert got["y"].tobytes() == other[want].tobytes()


def test_the_sorted_path_runs(store_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = np.datetime64("2025-03-01", "ns") + np.arange(1000) * np.timedelta64(10, "ms")
    ints = np.arange(1000, dtype=np.int64) * 7 + rng_offsets()
    _store(store_path, {"t": clock, "k": ints})
    calls: list[str] = []
    regular, run = SortedRange.regular_run, SortedRange.run
    monkeypatch.setattr(
        SortedRange, "regular_run", lambda s, *a: calls.append("regular") or regular(s, *a)
    )
    monkeypatch.setattr(SortedRange, "run", lambda s, *a: calls.append("search") or run(s, *a))
    with colvault.open(store_path) as s:
        t = s["/t"]
        lo, hi = clock[100], clock[300]
        assert t.count_where("(t >= lo) & (t < hi)", {"lo": lo, "hi": hi}) == 200
        assert "regular" in calls
        assert t.count_where("(k > 70) & (k <= 700)") == int(((ints > 70) & (ints <= 700)).sum())
        assert "search" in calls


def rng_offsets() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 3, 1000)
