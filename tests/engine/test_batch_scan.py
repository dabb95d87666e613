"""Batched scans (one jitted call over many chunks) agree with numpy and with the Python path,
and name the chunk when one is damaged."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import colvault
from colvault import ChecksumError, QueryError
from colvault.engine.query import execute
from colvault.engine.query.batch import BatchScan
from colvault.engine.query.execute import Plan
from colvault.kernels.query import native


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    """Batch scans are the kernels' path: never numpy, even with a cold cache."""
    monkeypatch.setattr(execute, "NUMPY_ROWS", 0)


N = 6000
CHUNK = 500


def make_data(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    value = np.round(rng.normal(10, 8, N), 3)  # decimal chunks
    value[rng.integers(0, N, 12)] = np.nan  # exceptions in some chunks, not all
    value[rng.integers(0, N, 3)] = -0.0
    value[rng.integers(0, N, 3)] = np.inf
    stamps = rng.integers(-(2**62), 2**62, N)
    stamps[rng.integers(0, N, 4)] = np.iinfo(np.int64).min  # NaT
    return {
        "value": value,
        "temp": (20 + rng.normal(0, 2, N)).astype(np.float32),  # noise: blosc2 frames
        "wide": rng.integers(-(2**62), 2**62, N),  # too wide to pack: blosc2 frames
        "exp": rng.integers(-2, 9, N),
        "when": stamps.view("M8[ns]"),
        "flag": rng.integers(0, 2, N).astype(bool),
        "seq": np.cumsum(rng.integers(0, 5, N)),  # sorted: delta chunks
        "code": rng.integers(0, 60_000, N).astype(np.uint64),  # frame of reference, 2 bytes
        "clock": (np.arange(N) * 1000 + 1_700_000_000_000).view("M8[ms]"),  # regular clock
    }


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("b") / "b.colvault")
    data = make_data()
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=CHUNK)
        t.append(data)
    return path, data


def reference(cond: str, data: dict[str, np.ndarray]) -> np.ndarray:
    names = {**data, "np": np, "abs": np.abs}
    with np.errstate(all="ignore"):
        return np.asarray(eval(cond, {"__builtins__": {}}, names), dtype=bool)


CONDITIONS = [
    "(value > 10) & (value < 20.5) & (temp < 20)",
    "(value >= 0) & (value <= 0)",
    "value != 5.5",
    "value * 2 > 30",  # decimal chunks decoded to floats in the kernel, exceptions patched
    "(wide > 0) | flag",
    "(when > np.datetime64('1970-01-01', 'ns')) & (temp > 21)",
    "abs(wide % 1000) < 3",
    "(seq % 7 == 0) | (exp > 6)",  # delta and frame-of-reference chunks decoded in the kernel
    "(code > 30000) & (code != 31234)",
]


def test_native_functions_load():
    assert native.AVAILABLE, native.UNAVAILABLE_REASON


@pytest.mark.parametrize("cond", CONDITIONS)
def test_batched_scans_match_numpy(table_path, cond, monkeypatch):
    path, data = table_path
    expect = reference(cond, data)
    calls = []
    real = BatchScan._call

    def spy(self, mode, chunks, *extra):
        calls.append(len(chunks))
        return real(self, mode, chunks, *extra)

    monkeypatch.setattr(BatchScan, "_call", spy)
    query = cond.replace("np.datetime64('1970-01-01', 'ns')", '"1970-01-01"')
    with colvault.open(path) as store:
        t = store["/t"]
        plan = Plan(t._view(), query, None)
        fast, _ = BatchScan(plan).split(plan.chunks())
        assert len(fast) >= len(plan.chunks()) - 1  # all but a short raw last chunk
        assert t.count_where(query) == expect.sum()
        np.testing.assert_array_equal(t.get_where_list(query), np.flatnonzero(expect))
        got = t.read_where(query)
        for name, column in data.items():
            np.testing.assert_array_equal(got[name], column[expect])
            if column.dtype.kind == "f":  # -0.0 is an exception of its decimal chunk
                np.testing.assert_array_equal(np.signbit(got[name]), np.signbit(column[expect]))
        assert sum(calls) >= 3 * len(fast)  # count, positions and read_where all batched


@pytest.mark.parametrize("cond", CONDITIONS)
def test_python_path_gives_the_same(table_path, cond, monkeypatch):
    path, _ = table_path
    query = cond.replace("np.datetime64('1970-01-01', 'ns')", '"1970-01-01"')
    with colvault.open(path) as store:
        t = store["/t"]
        batched = (t.count_where(query), t.get_where_list(query), t.read_where(query))
        monkeypatch.setattr(native, "AVAILABLE", False)
        assert not BatchScan(Plan(t._view(), query, None)).usable
        assert t.count_where(query) == batched[0]
        np.testing.assert_array_equal(t.get_where_list(query), batched[1])
        got = t.read_where(query)
        for name in got.dtype.names:  # field by field: NaT == NaT only there
            np.testing.assert_array_equal(got[name], batched[2][name])


def test_negative_integer_power_in_a_batch(table_path):
    path, data = table_path
    assert (data["exp"] < 0).any()
    with colvault.open(path) as store:
        t = store["/t"]
        plan = Plan(t._view(), "wide ** exp > 0", None)
        assert BatchScan(plan).split(plan.chunks())[0]
        with pytest.raises(QueryError, match="negative integer powers"):
            t.count_where("wide ** exp > 0")
        with pytest.raises(QueryError, match="negative integer powers"):
            t.get_where_list("wide ** exp > 0")


def damage(tmp_path, column: str, chunk: int) -> tuple[str, dict[str, np.ndarray]]:
    """A store of :func:`make_data` with one byte of one chunk flipped."""
    path = str(tmp_path / "d.colvault")
    data = make_data(2)
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=CHUNK)
        t.append(data)
    with colvault.open(path) as store:
        t = store["/t"]
        ref = t._state().columns[t._schema.column(column).id][chunk]
        seg = os.path.join(path, ref.segment)
        assert ref.sealed and ref.encoding.name in ("decimal", "blosc2", "for")
    with open(seg, "r+b") as f:
        f.seek(ref.offset + ref.length // 3)
        byte = f.read(1)
        f.seek(ref.offset + ref.length // 3)
        f.write(bytes([byte[0] ^ 0x10]))
    return path, data


@pytest.mark.parametrize("column", ["value", "temp"])
def test_damaged_chunk_in_a_batch_is_named(tmp_path, column):
    path, data = damage(tmp_path, column, 5)
    cond = "(value > 10) & (temp < 20)"
    with colvault.open(path) as store:
        t = store["/t"]
        plan = Plan(t._view(), cond, None)
        assert 5 in [c.pos for c in BatchScan(plan).split(plan.chunks())[0]]
        for query in (t.count_where, t.get_where_list, t.read_where):
            with pytest.raises(ChecksumError) as info:
                query(cond)
            assert (info.value.column, info.value.chunk) == (column, 5)
        # the rows before the damaged chunk still read
        expect = reference(cond, data)[: 5 * CHUNK]
        assert len(t.get_where_list(cond, stop=5 * CHUNK)) == expect.sum()


@pytest.mark.parametrize("column", ["exp", "wide", "value"])
def test_damaged_projected_chunk_is_named(tmp_path, column):
    path, data = damage(tmp_path, column, 7)
    cond = "temp < 20"
    with colvault.open(path) as store:
        t = store["/t"]
        expect = reference(cond, data)
        assert t.count_where(cond) == expect.sum()  # the condition does not read the column
        with pytest.raises(ChecksumError) as info:
            t.read_where(cond)
        assert (info.value.column, info.value.chunk) == (column, 7)
        got = t.read_where(cond, columns=["temp", "flag"])
        np.testing.assert_array_equal(got["flag"], data["flag"][expect])


EXCEPTIONAL = [np.nan, np.inf, -np.inf, -0.0, 1 / 3, 2.5e-7]


# Each example is a new condition (its kernels compiled, about a second when not yet cached):
# two thirds of the profile's examples, so 16 under "dev", 40 under "ci" as before and 333
# under "thorough".
@settings(max_examples=max(10, settings().max_examples * 2 // 3), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    ops=st.lists(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), min_size=1, max_size=3),
    joiner=st.sampled_from([" & ", " | "]),
    f32=st.booleans(),
)
def test_exception_rows_of_scaled_chunks_are_exact(tmp_path_factory, seed, ops, joiner, f32):
    """Decimal chunks compared as integers, with exceptions of every kind near the constants:
    the batch loops' per-row correction gives numpy's answer."""
    rng = np.random.default_rng(seed)
    n = 2000
    dtype = np.float32 if f32 else np.float64
    value = (rng.integers(-500, 500, n) / 100).astype(dtype)
    where = rng.integers(0, n, 40)
    value[where] = rng.choice(np.array(EXCEPTIONAL), len(where)).astype(dtype)
    consts = [float(value[rng.integers(0, n)]) for _ in ops]
    consts = [0.0 if not np.isfinite(c) else c for c in consts]
    cond = joiner.join(f"(value {op} {c!r})" for op, c in zip(ops, consts, strict=True))
    with np.errstate(invalid="ignore"):
        parts = [_CMP[op](value, dtype(c)) for op, c in zip(ops, consts, strict=True)]
    expect = np.logical_and.reduce(parts) if joiner == " & " else np.logical_or.reduce(parts)
    path = str(tmp_path_factory.mktemp("x") / "x.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"value": dtype}, chunk_rows=250)
        t.append({"value": value})
        store.commit()
        plan = Plan(t._view(), cond, None)
        fast = BatchScan(plan).split(plan.chunks())[0]
        scaled = [c for c in fast if np.dtype(c.key[0]).kind == "u"]
        assert len(scaled) == len(fast)  # every batched chunk compares integers
        assert t.count_where(cond) == expect.sum()
        np.testing.assert_array_equal(t.get_where_list(cond), np.flatnonzero(expect))
        got = t.read_where(cond)["value"]
        np.testing.assert_array_equal(
            got.view(f"u{got.itemsize}"), value[expect].view(f"u{got.itemsize}")
        )


_CMP = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
        "==": np.equal, "!=": np.not_equal}  # fmt: skip


def test_joined_positions_are_a_view_when_back_to_back():
    from colvault.engine.query.execute import _joined

    block = np.arange(10)
    joined = _joined([block[0:3], block[3:7]])
    np.testing.assert_array_equal(joined, np.arange(7))
    assert np.shares_memory(joined, block)
    apart = _joined([block[0:3], block[4:6]])
    np.testing.assert_array_equal(apart, [0, 1, 2, 4, 5])
    assert not np.shares_memory(apart, block)
    np.testing.assert_array_equal(_joined([np.arange(3), np.arange(2)]), [0, 1, 2, 0, 1])
    assert _joined([]).size == 0


def test_repeated_queries_reuse_prepared_chunks_and_still_check_the_files(tmp_path):
    """A repeated condition takes its prepared chunks from the snapshot; new constants get their
    own; a segment cut short after the first query is still found (no read past its end)."""
    path, data = damage(tmp_path, "value", 5)  # chunk 5 of value damaged: keep clear of it
    with colvault.open(path) as store:
        t = store["/t"]
        for lo in (10, 10, 12, 10):
            cond = f"(temp < 20) & (value > {lo})"
            got = t.get_where_list(cond, stop=5 * CHUNK)
            assert len(got) == reference(cond, data)[: 5 * CHUNK].sum()
        kept = [k for k in t._state().derived if k[0] == "prepared"]
        assert len(kept) == 2
        ref = t._state().columns[t._schema.column("temp").id][3]
        with open(os.path.join(path, ref.segment), "r+b") as f:
            f.truncate(ref.offset + ref.length // 2)  # chunk 3 of temp now ends past the file
        with pytest.raises(ChecksumError) as info:
            t.get_where_list("(temp < 20) & (value > 10)", stop=5 * CHUNK)
        assert (info.value.column, info.value.chunk) == ("temp", 3)
