"""Conditions on decimal-encoded chunks compare scaled integers and still give numpy's answers.

``threshold`` is checked against brute force over every integer of a narrow width; whole queries
run over tables whose float columns take the decimal encoding (some chunks with ±0.0 or NaN
exceptions, which take the patched or the decoding path) against numpy on the same values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault.engine.query.scaled import Scaled, scaled_comparisons, threshold
from colvault.kernels.encoding.decimal import P
from colvault.kernels.query import native

OPS = ["<", "<=", ">", ">=", "==", "!="]
NUMPY_OPS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def decoded(u: np.ndarray, base: int, e: int, f32: bool) -> np.ndarray:
    v = (u.astype(np.int64) + base).astype(np.float64) / P[e]
    return v.astype(np.float32) if f32 else v


@given(
    op=st.sampled_from(OPS),
    base=st.integers(-(2**20), 2**20),
    e=st.integers(0, 6),
    f32=st.booleans(),
    pick=st.integers(0, 255),
    nudge=st.sampled_from([-1, 0, 1, None]),
)
def test_threshold_matches_every_u8(
    op: str, base: int, e: int, f32: bool, pick: int, nudge: int | None
) -> None:
    u = np.arange(256, dtype=np.uint8)
    values = decoded(u, base, e, f32)
    ftype = np.float32 if f32 else np.float64
    # constants at a decodable value, one ulp either side of it, or far outside the range
    c = values[pick]
    if nudge == -1:
        c = np.nextafter(c, ftype(-np.inf))
    elif nudge == 1:
        c = np.nextafter(c, ftype(np.inf))
    elif nudge is None:
        c = ftype(np.inf if pick % 2 else -np.inf) if pick % 3 else ftype(-0.0)
    t = threshold(op, float(c), base, e, 1, f32)
    want = NUMPY_OPS[op](values, c)
    if t is None:
        assert op in ("==", "!=") and np.count_nonzero(values == c) > 1
        return
    got = NUMPY_OPS[op](u.astype(np.int64), t)
    np.testing.assert_array_equal(got, want)


def test_threshold_doc_cases() -> None:
    assert threshold(">", 10.0, 0, 3, 4, False) == 10_000
    assert threshold("==", 10.0005, 0, 3, 4, False) == -1  # no integer decodes to it
    assert threshold("<", float("inf"), 0, 3, 1, False) == 256  # every u < 256
    assert threshold(">", float("-inf"), 5, 3, 1, False) == -1  # every u > -1


def test_only_plain_comparisons_qualify() -> None:
    cmp = ("<", "|b1", ("col", 0, "<f8"), ("const", 0, "<f8"))
    assert scaled_comparisons(cmp) == {0: ((0, "<"),)}
    both = ("and", "|b1", cmp, (">", "|b1", ("col", 0, "<f8"), ("const", 1, "<f8")))
    assert scaled_comparisons(both) == {0: ((0, "<"), (1, ">"))}
    arith = ("+", "<f8", ("col", 0, "<f8"), ("const", 1, "<f8"))
    mixed = ("and", "|b1", cmp, (">", "|b1", arith, ("const", 2, "<f8")))
    assert scaled_comparisons(mixed) == {}  # column 0 is also used in arithmetic
    ints = ("<", "|b1", ("col", 0, "<i8"), ("const", 0, "<i8"))
    assert scaled_comparisons(ints) == {}


def test_scaled_values_patch_exceptions_at_rows() -> None:
    narrow = np.array([0, 5, 7, 9, 11], np.uint32)
    where = np.array([1, 3], np.int64)
    exc = np.array([np.nan, -0.0])
    s = Scaled(narrow, 100, 1, np.dtype(np.float64), where, exc)
    full = s.values()
    assert full[0] == 10.0 and np.isnan(full[1]) and np.signbit(full[3])
    part = s.values(np.array([0, 3, 4]))
    assert part[0] == 10.0 and np.signbit(part[1]) and part[2] == 11.1
    assert not s.comparable()  # a NaN has no integer


def _table(path: str, seed: int, rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    value = np.round(rng.uniform(-30, 30, rows), 3)
    temp = np.round(rng.uniform(10, 30, rows), 2).astype(np.float32)
    value[rng.integers(0, rows, 3)] = -0.0  # exceptions the integer path patches
    if seed % 2:
        value[rng.integers(0, rows, 2)] = np.nan  # exceptions that force decoding
        temp[rng.integers(0, rows, 2)] = np.inf
    sensor = rng.integers(-1000, 1000, rows).astype(np.int32)
    data = {"i": np.arange(rows, dtype=np.int64), "sensor": sensor, "value": value, "temp": temp}
    with colvault.open(path, "w") as s:
        s.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=256).append(data)
    return data


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_queries_on_decimal_chunks_agree_with_numpy(
    store_path: str, seed: int, batched: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths: the batch loops (which correct exception rows themselves) and the Python
    path (which patches ±0.0 and decodes chunks with other exceptions)."""
    if not batched:
        monkeypatch.setattr(native, "AVAILABLE", False)
    data = _table(store_path, seed, 256 * 9 + 17)
    verdicts: list[bool] = []
    comparable = Scaled.comparable
    monkeypatch.setattr(
        Scaled, "comparable", lambda s: verdicts.append(comparable(s)) or verdicts[-1]
    )
    rng = np.random.default_rng(seed + 10)
    with colvault.open(store_path, "r") as s:
        t = s["/t"]
        encodings = {c.name: c.encodings for c in t.storage()}
        assert "decimal" in encodings["value"] and "decimal" in encodings["temp"]
        constants = [*data["value"][rng.integers(0, len(data["value"]), 6)], 0.0, -0.0, 10.0005]
        for k, c in enumerate(constants):
            op1, op2 = OPS[k % 6], OPS[(k + 2) % 6]
            lo = float(c)
            cond = f"(value {op1} lo) & (temp {op2} 20.5)"
            want = NUMPY_OPS[op1](data["value"], lo) & NUMPY_OPS[op2](
                data["temp"], np.float32(20.5)
            )
            assert t.count_where(cond, {"lo": lo}) == np.count_nonzero(want), cond
            np.testing.assert_array_equal(t.get_where_list(cond, {"lo": lo}), np.flatnonzero(want))
            got = t.read_where(cond, {"lo": lo})
            for name in data:
                np.testing.assert_array_equal(
                    got[name].view(f"u{got[name].dtype.itemsize}"),
                    data[name][want].view(f"u{data[name].dtype.itemsize}"),
                )
            st_ = t.stats("value", where=cond, condvars={"lo": lo})
            assert st_["count"] == np.count_nonzero(want & ~np.isnan(data["value"]))
        # projections decode only the hit rows of ``for`` and ``decimal`` chunks
        got = t.read_where("temp > 20.5")
        want = data["temp"] > np.float32(20.5)
        for name in data:
            assert got[name].tobytes() == data[name][want].tobytes()
        assert "for" in encodings["sensor"]
    if not batched:
        assert True in verdicts  # integer comparisons ran
        assert (False in verdicts) == bool(seed % 2)  # chunks with NaN were decoded instead


def test_a_raw_tail_compares_scaled_too(store_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The short raw last chunk joins its decimal neighbours' integer form (one kernel
    specialization per query), with -0.0 patched; answers stay numpy's."""
    from colvault.engine.query import kernel

    rows = 256 * 2 + 40
    value = np.round(np.random.default_rng(3).uniform(-5, 5, rows), 2)
    value[-3] = -0.0
    with colvault.open(store_path, "w") as s:
        t = s.create_table("/t", {"value": value.dtype}, chunk_rows=256)
        t.append({"value": value[:512]})
        s.commit()
        t.append({"value": value[512:]})  # a small commit's short chunk: raw
    results: list[bool] = []
    scale_raw = kernel.scale_raw
    monkeypatch.setattr(
        kernel, "scale_raw", lambda *a: results.append((got := scale_raw(*a)) is not None) or got
    )
    with colvault.open(store_path) as s:
        t = s["/t"]
        for c in (-1.5, 0.0, -0.0, 2.25):
            cond = "(value >= c) & (value < 4)"
            want = (value >= c) & (value < 4)
            np.testing.assert_array_equal(t.get_where_list(cond, {"c": c}), np.flatnonzero(want))
    assert results and all(results)
