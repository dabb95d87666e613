"""Table.describe() against pandas.DataFrame.describe(): exact count, min, quartiles and max,
mean and std to rounding; the quartiles' histogram refinement keeps to its cap (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import QueryError
from colvault.engine.query import describe as qd

pd = pytest.importorskip("pandas")

EXACT = ["count", "min", "25%", "50%", "75%", "max"]


def check(got: Any, want: Any) -> None:
    """``got`` is ``want`` (pandas' describe): exact where pandas' numbers are order
    statistics, mean and std to rounding (pandas sums float32 in float32, we in float64)."""
    assert list(got.index) == list(want.index)
    assert list(got.columns) == list(want.columns)
    assert (got.dtypes == np.float64).all()
    for row in EXACT:
        np.testing.assert_array_equal(got.loc[row].to_numpy(), want.loc[row].to_numpy(), row)
    for name in want.columns:
        scale = np.nanmax(np.abs(want[name].to_numpy()[[3, 7]]), initial=0.0)
        for row in ("mean", "std"):
            a, b = got.loc[row, name], want.loc[row, name]
            if np.isnan(b) or np.isinf(b):
                assert a == b or (np.isnan(a) and np.isnan(b)), (row, name, a, b)
            else:
                assert a == pytest.approx(b, rel=1e-5, abs=1e-9 * scale + 1e-300), (row, name)


def make(path: Path, data: dict[str, np.ndarray], chunk_rows: int = 32) -> Any:
    store = colvault.open(str(path), "w")
    t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=chunk_rows)
    t.append(data)
    store.commit()
    return store, t


# -- the property test against pandas ----------------------------------------------------------

DTYPES = ["i1", "i4", "i8", "u1", "u8", "f4", "f8"]


@st.composite
def columns(draw: Any) -> dict[str, np.ndarray]:
    n = draw(st.integers(0, 300))
    out = {}
    for i, dtype in enumerate(draw(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=3))):
        dt = np.dtype(dtype)
        shape = draw(st.sampled_from(["random", "few", "equal"]))
        if dt.kind == "f":
            big = 2.0**50 if dt.itemsize == 4 else 1e150  # no overflow in squares
            tiny = 1e-15 if dt.itemsize == 4 else 1e-100  # no underflow in squares either
            finite = st.floats(-big, big, width=dt.itemsize * 8).filter(
                lambda v, tiny=tiny: v == 0 or abs(v) > tiny
            )
            elems = st.one_of(finite, st.sampled_from([0.0, -0.0, 1.5, np.nan, np.nan]))
        else:
            info = np.iinfo(dt)
            elems = st.integers(int(info.min), int(info.max))
        if shape == "few":  # many duplicates
            pool = draw(st.lists(elems, min_size=1, max_size=4))
            values = [draw(st.sampled_from(pool)) for _ in range(n)]
        elif shape == "equal":
            values = [draw(elems)] * n
        else:
            values = draw(st.lists(elems, min_size=n, max_size=n))
        out[f"c{i}"] = np.array(values, dtype=dt)
    return out


@given(
    data=columns(),
    cap=st.sampled_from([0, 3, 40, qd.CAP]),
    bits=st.sampled_from([1, 3, qd.BITS]),
    chunk_rows=st.sampled_from([7, 64]),
    where=st.booleans(),
)
def test_describe_matches_pandas(
    tmp_path_factory: Any, data: dict[str, np.ndarray], cap: int, bits: int, chunk_rows: int,
    where: bool,
) -> None:  # fmt: skip
    n = len(data["c0"])
    data["k"] = np.arange(n, dtype=np.int64) % 5  # a where= column, described too
    store, t = make(tmp_path_factory.mktemp("d") / "s.colvault", data, chunk_rows)
    with store:
        frame = pd.DataFrame(data)
        if where:
            got = qd.describe(t._view(), where="k != 2", cap=cap, bits=bits)
            want = frame[data["k"] != 2].describe()
        else:
            got = qd.describe(t._view(), cap=cap, bits=bits)
            want = frame.describe()
        check(got, want)


def test_table_describe_defaults_and_where(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 5000
    data = {
        "value": np.round(rng.normal(10, 8, n), 3),
        "temp": (20 + rng.normal(0, 2, n)).astype(np.float32),
        "sensor": rng.integers(-50, 50, n).astype(np.int16),
        "count": rng.integers(0, 2**63, n, dtype=np.uint64),
        "flag": rng.integers(0, 2, n).astype(bool),
        "t": np.arange(n).astype("M8[s]"),
        "site": rng.choice(["a", "b"], n),
    }
    data["value"][rng.integers(0, n, 300)] = np.nan
    store = colvault.open(str(tmp_path / "s.colvault"), "w")
    t = store.create_table(
        "/t", {**{k: v.dtype for k, v in data.items()}, "site": "category"}, chunk_rows=512
    )
    t.append(data)
    store.commit()
    frame = pd.DataFrame(data)
    numeric = ["value", "temp", "sensor", "count"]  # bool, datetime and category left out
    got = t.describe()
    assert list(got.columns) == numeric
    check(got, frame[numeric].describe())
    got = t.describe(["sensor", "value"], where="(value > lo) & (sensor < 20)", condvars={"lo": 3})
    mask = (data["value"] > 3) & (data["sensor"] < 20)
    check(got, frame.loc[mask, ["sensor", "value"]].describe())
    check(t.describe("temp", where="value > 1e9"), frame.loc[[], ["temp"]].describe())
    store.close()


def test_empty_table_and_all_nan(tmp_path: Path) -> None:
    data = {"x": np.array([], "f8"), "i": np.array([], "i4")}
    store, t = make(tmp_path / "s.colvault", data)
    check(t.describe(), pd.DataFrame(data).describe())
    store.close()
    data = {"x": np.full(100, np.nan), "y": np.array([np.nan] * 99 + [7.0])}
    store, t = make(tmp_path / "n.colvault", data)
    check(t.describe(), pd.DataFrame(data).describe())
    store.close()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf, in pandas too
def test_infinities_and_extremes(tmp_path: Path) -> None:
    data = {
        "f": np.array([np.inf, 1.0, -np.inf, np.nan] * 5),
        "g": np.array([1.0, np.inf, 2.0, 3.0] * 3),
        "i": np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1] * 5),
        "u": np.array([0, 2**64 - 1, 2**63, 1] * 5, np.uint64),
        "z": np.array([-0.0, 0.0, -0.0, 1.0, -1.0]),
    }
    wide = {k: data[k] for k in ("f", "i", "u")}
    store, t = make(tmp_path / "s.colvault", wide)
    check(t.describe(), pd.DataFrame(wide).describe())
    store.close()
    for name in ("g", "z"):
        store, t = make(tmp_path / f"{name}.colvault", {name: data[name]})
        check(t.describe(), pd.DataFrame({name: data[name]}).describe())
        store.close()


def test_columns_refused(tmp_path: Path) -> None:
    store = colvault.open(str(tmp_path / "s.colvault"), "w")
    t = store.create_table(
        "/t", {"b": "?", "t": "M8[s]", "s": "category", "c": "c16", "v": ("f4", (2,))}
    )
    with pytest.raises(QueryError, match="no int, uint or float column"):
        t.describe()
    for name in ("b", "t", "s", "c", "v"):
        with pytest.raises(QueryError, match=f"'{name}' is"):
            t.describe([name])
    store.close()


# -- bounded memory: the refinement keeps to its cap ------------------------------------------


def test_refinement_collects_at_most_its_cap(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    n = 20000
    data = {
        "x": rng.standard_normal(n),
        "d": rng.integers(0, 30, n).astype(np.int64),  # heavy duplicates
        "w": rng.integers(-(2**62), 2**62, n),
    }
    store, t = make(tmp_path / "s.colvault", data, chunk_rows=1000)
    want = pd.DataFrame(data).describe()
    for cap in (0, 1, 64, 500):
        trace = qd.Trace()
        got = qd.describe(t._view(), cap=cap, bits=4, trace=trace)
        check(got, want)
        assert trace.passes, "the quartiles needed passes"
        assert trace.most_collected <= cap
    trace = qd.Trace()
    qd.describe(t._view(), ["x"], trace=trace)  # the default cap holds every value: one pass
    assert trace.passes == [(0, n)]
    trace = qd.Trace()
    qd.describe(
        t._view(), ["x"], cap=5000, trace=trace
    )  # histogram passes, then the bins collected
    assert trace.passes[0] == (1, 0) and trace.passes[-1][0] == 0
    assert 0 < trace.most_collected <= 5000
    # every value equal: no pass at all after the statistics
    store.close()
    store, t = make(tmp_path / "e.colvault", {"e": np.full(3000, 2.5)}, chunk_rows=100)
    trace = qd.Trace()
    check(
        qd.describe(t._view(), cap=0, trace=trace),
        pd.DataFrame({"e": np.full(3000, 2.5)}).describe(),
    )
    assert trace.passes == []
    store.close()


@given(
    keys=st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([0, 5, 2**63]), min_size=1),
    cap=st.integers(0, 10),
    bits=st.integers(1, 16),
    pieces=st.integers(1, 5),
    data=st.data(),
)
def test_order_statistics_are_sorted_keys(
    keys: list[int], cap: int, bits: int, pieces: int, data: Any
) -> None:
    arr = np.array(keys, np.uint64)
    ranks = data.draw(st.lists(st.integers(0, len(keys) - 1), min_size=1, max_size=6))
    parts = np.array_split(arr, pieces)

    def run(fn: Any) -> Any:
        return (fn(p) for p in parts)

    trace = qd.Trace()
    got = qd.order_statistics(
        run, len(keys), min(keys), max(keys), ranks, cap=cap, bits=bits, trace=trace
    )
    ordered = np.sort(arr)
    assert got == {r: int(ordered[r]) for r in ranks}
    assert trace.most_collected <= cap
    assert len(trace.passes) <= -(-64 // bits) + 1


@pytest.mark.parametrize("dtype", ["i1", "i8", "u8", "f4", "f8"])
def test_keys_keep_order_and_decode(dtype: str) -> None:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        values = np.array([-np.inf, -1e30, -1.5, -0.0, 0.0, 1e-40, 2.0, np.inf], dt)
    else:
        info = np.iinfo(dt)
        values = np.unique(np.array([info.min, info.min + 1, 0, 1, info.max - 1, info.max], dt))
    keys = qd.keys_of(values)
    assert (np.diff(keys.astype(object)) > 0).all()
    back = np.array([qd.value_of(int(k), dt) for k in keys], dt)
    assert back.tobytes() == values.tobytes()
    assert len(qd.keys_of(np.array([np.nan, 1.0]))) == 1


# -- progress ---------------------------------------------------------------------------------


def test_describe_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLVAULT_PROGRESS", raising=False)
    store, t = make(tmp_path / "s.colvault", {"x": np.arange(1000.0)}, chunk_rows=100)
    capsys.readouterr()
    t.describe(progress=True)
    err = capsys.readouterr().err
    assert "describe /t" in err and "100%" in err
    t.describe(progress=False)
    t.describe()  # stderr is no terminal here: nothing
    assert capsys.readouterr().err == ""
    store.close()
