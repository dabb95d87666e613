"""Point reads and short slices decode only the blosc2 blocks holding their rows: the values
are the same as a whole-chunk read for every encoding, and a damaged chunk is still caught on
its first read."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import colvault
from colvault.engine.encodings import base, plain
from colvault.errors import ChecksumError

ROWS = 200_000
CHUNK = 65_536  # several 32 KiB blocks per chunk, for every dtype below


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    value = np.round(rng.normal(0, 50, ROWS), 3)  # decimal
    value[::997] = rng.normal(0, 1, len(value[::997]))  # its exceptions
    return {
        "value": value,
        "noise": rng.normal(0, 1, ROWS),  # blosc2
        "temp": rng.normal(20, 1, ROWS).astype(np.float32),  # blosc2, 4-byte items
        "sensor": rng.integers(0, 1000, ROWS, dtype=np.int32),  # for
        "clock": (np.arange(ROWS, dtype=np.int64) * 1000).view("M8[ns]"),  # regular delta
        "count": np.cumsum(rng.integers(0, 5, ROWS)),  # delta, not regular
        "up": 3 * np.arange(ROWS, dtype=np.int64) - 300_000,  # regular, crosses zero
        "flag": rng.integers(0, 2, ROWS).astype(bool),
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, np.ndarray]]:
    path = str(tmp_path_factory.mktemp("blocks") / "s.colvault")
    data = _data()
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=CHUNK)
        t.append(data)
        store.commit()
        t.append({k: v[:10] for k, v in data.items()})  # a small commit: a raw last chunk
        store.commit()
    whole = {k: np.concatenate([v, v[:10]]) for k, v in data.items()}
    return path, whole


def test_every_encoding_is_in_the_table(stored: tuple[str, dict[str, np.ndarray]]) -> None:
    path, _ = stored
    with colvault.open(path) as store:
        kinds = {s.name: set(s.encodings) for s in store["/t"].storage()}
    assert "decimal" in kinds["value"] and "blosc2" in kinds["noise"]
    assert "for" in kinds["sensor"] and "delta" in kinds["clock"] and "raw" in kinds["value"]
    assert "delta" in kinds["up"]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_points_and_short_slices_match_numpy(
    stored: tuple[str, dict[str, np.ndarray]], data: st.DataObject
) -> None:
    path, want = stored
    n = len(want["value"])
    with colvault.open(path) as store:
        t = store["/t"]
        i = data.draw(st.integers(-n, n - 1))
        row = t[i]
        for k, v in want.items():
            assert row[k] == v[i], (k, i)
        a = data.draw(st.integers(0, n - 1))
        b = data.draw(st.integers(a, min(n, a + 300)))
        part = t[a:b]
        for k, v in want.items():
            np.testing.assert_array_equal(part[k], v[a:b], err_msg=f"{k}[{a}:{b}]")
            np.testing.assert_array_equal(t.cols[k][a:b], v[a:b])


def _whole_frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gains an item for every frame decompressed whole from now on."""
    whole: list[int] = []
    for module in (base, plain):
        decompress = module.decompress_into
        monkeypatch.setattr(
            module,
            "decompress_into",
            lambda frame, out, decompress=decompress: whole.append(1) or decompress(frame, out),
        )
    return whole


def test_a_short_read_decodes_only_a_span(
    stored: tuple[str, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path is taken: a point read or a short slice never decompresses a whole frame, not
    even of a delta column whose steps are not all equal (it sums from an anchor)."""
    path, want = stored
    whole = _whole_frames(monkeypatch)
    with colvault.open(path) as store:
        t = store["/t"]
        for i in (5, 20_000, 100_000, 131_071, CHUNK * 3 - 1):
            row = t[i]
            part = t[i - 3 : i + 4]
            for k, v in want.items():
                assert row[k] == v[i], (k, i)
                np.testing.assert_array_equal(part[k], v[i - 3 : i + 4], err_msg=k)
    assert not whole


def test_a_damaged_chunk_is_caught_by_its_first_point_read(tmp_path) -> None:
    path = str(tmp_path / "d.colvault")
    data = _data()
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"noise": "f8"}, chunk_rows=CHUNK)
        t.append({"noise": data["noise"]})
        store.commit()
        ref = t._state().columns[t.column_specs()[0].id][1]
    with open(f"{path}/{ref.segment}", "r+b") as f:
        f.seek(ref.offset + ref.length // 2)
        byte = f.read(1)
        f.seek(ref.offset + ref.length // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with colvault.open(path) as store, pytest.raises(ChecksumError):
        store["/t"][CHUNK + 5]


def test_a_short_read_owns_its_values(stored: tuple[str, dict[str, np.ndarray]]) -> None:
    """A span is decompressed into a per-thread staging buffer, and a column whose span
    cannot be decoded alone (delta, not regular) whole into a scratch buffer: what a short
    read returns must be a view of neither."""
    path, want = stored
    with colvault.open(path) as store:
        t = store["/t"]
        first = {k: t.cols[k][100:110] for k in want}
        row = t[100]
        for k in want:  # another chunk through the same scratch and staging buffers
            t.cols[k][150_000:150_010]
        t[150_000]
        for k, v in want.items():
            np.testing.assert_array_equal(first[k], v[100:110], err_msg=k)
            assert row[k] == v[100], k


#: (dtype, largest step): one-, two- and four-byte steps (anchors every 8,192, 8,192 and
#: 4,096 rows), signed columns crossing zero, unsigned ones near the top of their range.
SORTED_KINDS = [
    ("i2", 3),
    ("i4", 200),
    ("i8", 60_000),
    ("i8", 2**20),
    ("u4", 50_000),
    ("u8", 70_000),
    ("M8[us]", 5_000),
]


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(SORTED_KINDS), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_sorted_spans_sum_from_their_anchor(
    tmp_path_factory: pytest.TempPathFactory,
    kind: tuple[str, int],
    seed: int,
    data: st.DataObject,
) -> None:
    """A sorted column's point reads and short slices, summed from the anchor before them,
    equal numpy's: at and across anchors, in chunks with anchors and in a short last chunk
    without them."""
    dt, top = kind
    n, chunk = 20_000, 16_384
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, top, n).astype(np.uint64)
    steps[rng.integers(0, n, 5)] = top - 1  # the widest step, somewhere
    dtype = np.dtype(dt)
    info = np.iinfo(np.int64 if dtype.kind == "M" else dtype)
    span = int(steps.sum())
    signed = info.min < 0
    start = -(span // 2) if signed else info.max - span  # crossing zero; near the top
    values = (np.uint64(start % 2**64) + np.cumsum(steps)).view(np.int64 if signed else np.uint64)
    values = values.astype(np.int64 if dtype.kind == "M" else dtype).view(dtype)
    path = str(tmp_path_factory.mktemp("sorted") / "s.colvault")
    with colvault.open(path, "w") as store:
        store.create_table("/t", {"x": dtype}, chunk_rows=chunk).append({"x": values})
    with colvault.open(path) as store:
        t = store["/t"]
        (storage,) = t.storage()
        assert "delta" in storage.encodings, storage.encodings
        for _ in range(8):
            i = data.draw(st.integers(0, n - 1))
            assert t[i]["x"] == values[i], i
            a = data.draw(st.sampled_from([4096, 8192, 12_288, chunk, i])) - data.draw(
                st.integers(0, 3)
            )
            b = min(n, a + data.draw(st.integers(1, 40)))
            np.testing.assert_array_equal(t.cols.x[a:b], values[a:b], err_msg=f"[{a}:{b}]")
        np.testing.assert_array_equal(t.cols.x[:], values)


def test_nullable_and_category_columns_are_read_by_the_block(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DataFrame's table (nullable ints, categories that may be missing) reads a point or a
    short slice from the blocks holding it, its validity bits included, never a whole frame."""
    n = 200_000
    rng = np.random.default_rng(11)
    k = rng.integers(0, 1000, n)
    k_valid = rng.random(n) > 0.05
    c = rng.choice(np.array(["north", "south", "east"]), n)
    c_valid = rng.random(n) > 0.02
    path = str(tmp_path / "s.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table(
            "/t",
            {"k": "Int64", "c": {"dtype": "category", "nullable": True}, "s": "category"},
            chunk_rows=CHUNK,
        )
        t.append({"k": np.ma.MaskedArray(k, ~k_valid), "c": np.ma.MaskedArray(c, ~c_valid), "s": c})
    whole = _whole_frames(monkeypatch)
    with colvault.open(path) as store:
        t = store["/t"]
        for i in (0, 7, 65_535, 65_536, 100_003, n - 1):
            row = t[i]
            assert (row["k"] is np.ma.masked) == (not k_valid[i]), i
            assert row["k"] is np.ma.masked or row["k"] == k[i]
            assert (row["c"] is np.ma.masked) == (not c_valid[i]), i
            assert row["c"] is np.ma.masked or row["c"] == c[i]
            assert row["s"] == c[i]
            a, b = max(0, i - 9), min(n, i + 9)
            part = t[a:b]
            np.testing.assert_array_equal(np.ma.getmaskarray(part["k"]), ~k_valid[a:b])
            np.testing.assert_array_equal(part["k"].data[k_valid[a:b]], k[a:b][k_valid[a:b]])
            np.testing.assert_array_equal(np.ma.getmaskarray(part["c"]), ~c_valid[a:b])
            np.testing.assert_array_equal(part["c"].data[c_valid[a:b]], c[a:b][c_valid[a:b]])
            np.testing.assert_array_equal(t.cols.s[a:b], c[a:b])
    assert not whole


def test_renaming_a_dtype_a_read_gave_changes_no_later_read(tmp_path) -> None:
    """numpy lets whoever holds a dtype rename its fields in place: the dtypes reads hand out
    (``t.dtype``, a row's, a slice's) must be their own."""
    path = str(tmp_path / "s.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"a": "i4", "b": "f8", "k": "Int64"})
        k = np.ma.MaskedArray(np.arange(10), np.arange(10) % 3 == 0)
        t.append({"a": np.arange(10), "b": np.arange(10) * 1.5, "k": k})
    with colvault.open(path) as store:
        t = store["/t"]
        t.dtype.names = ("x", "y", "z")
        t[4].dtype.names = ("p", "q", "r")
        t[2:5].dtype.names = ("u", "v", "w")
        t.read(0, 2).dtype.names = ("m", "n", "o")
        assert t.dtype.names == ("a", "b", "k")
        assert t[5]["b"] == 7.5 and t[6]["k"] is np.ma.masked
        assert t[1:3].dtype.names == ("a", "b", "k") and t.read(0, 2)["a"].tolist() == [0, 1]
