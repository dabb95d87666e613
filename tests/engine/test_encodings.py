"""Every encoding round-trips bit for bit, and is chosen where it pays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault

INT_TYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "M8[ns]", "m8[s]"]


def encodings_of(table, column: str) -> list[str]:
    spec = table._schema.column(column)
    return [r.encoding.name for r in table._state().columns[spec.id]]


def store_and_read(path: str, dtype: str, parts: list[np.ndarray], chunk_rows: int) -> np.ndarray:
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"x": dtype}, chunk_rows=chunk_rows)
        for p in parts:
            t.append({"x": p})
            store.commit()
    with colvault.open(path) as store:
        t = store["/t"]
        assert store.verify().ok
        return t.col("x")


def special_floats(dtype: np.dtype) -> np.ndarray:
    f = np.finfo(dtype)
    uint = np.dtype(f"u{dtype.itemsize}")
    nan_payloads = np.array([0x7FF0000000000001, 0xFFF8000000000ABC], np.uint64)
    if dtype.itemsize == 4:
        nan_payloads = np.array([0x7F800001, 0xFFC00ABC], np.uint32)
    specials = [np.inf, -np.inf, -0.0, 0.0, f.max, f.min, f.tiny, f.smallest_subnormal]
    one_ulp = np.nextafter(dtype.type(1.001), dtype.type(2))
    return np.concatenate(
        [np.array(specials, dtype), nan_payloads.astype(uint).view(dtype), [one_ulp]]
    )


@given(
    st.sampled_from(["f4", "f8"]),
    st.integers(0, 6),
    st.integers(1, 300),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_floats_round_trip_bit_for_bit(tmp_path_factory, dt, digits, n, seed, with_specials):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dt)
    scale = 10.0 ** rng.integers(-3, 6)
    values = np.round(rng.normal(0, scale, n), digits).astype(dtype)
    if with_specials:
        sp = special_floats(dtype)
        where = rng.integers(0, n, min(n, 5))
        values[where] = sp[rng.integers(0, len(sp), len(where))]
    path = str(tmp_path_factory.mktemp("f") / "s.colvault")
    back = store_and_read(path, dt, np.array_split(values, 3), chunk_rows=64)
    assert back.view(f"u{dtype.itemsize}").tobytes() == values.view(f"u{dtype.itemsize}").tobytes()


@given(st.sampled_from(INT_TYPES), st.integers(2, 300), st.integers(0, 2**32 - 1), st.data())
def test_integers_round_trip_at_their_limits(tmp_path_factory, dt, n, seed, data):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dt)
    udt = np.dtype(f"u{dtype.itemsize}")
    shape = data.draw(st.sampled_from(["random", "sorted", "narrow", "limits", "sorted-then-not"]))
    bits = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).view(udt)
    if shape == "narrow":
        bits = rng.integers(0, 200, n).astype(udt) + bits[0]  # wraps in the unsigned type
    values = bits.view(dtype).copy()
    if shape in ("sorted", "sorted-then-not"):
        values = np.sort(values)
    if shape == "limits":
        info = np.iinfo(np.int64 if dtype.kind in "Mm" else dtype)
        limits = np.array([info.min, info.max, 0], dtype=info.dtype)
        values[rng.integers(0, n, 3)] = limits.view(udt).view(dtype)
    if shape == "sorted-then-not":
        values = np.concatenate([values, values[::-1]])
    path = str(tmp_path_factory.mktemp("i") / "s.colvault")
    back = store_and_read(path, dt, np.array_split(values, 2), chunk_rows=50)
    assert back.tobytes() == values.tobytes()


def test_encodings_are_chosen_where_they_pay(store_path):
    n = 5000
    rng = np.random.default_rng(0)
    data = {
        "t": (np.arange(n, dtype=np.int64) * 1000 + 1_700_000_000_000_000_000).view("M8[ns]"),
        "sensor": rng.integers(0, 1000, n, dtype=np.int32),
        "value": np.round(rng.normal(0, 50, n), 3),
        "noise": rng.normal(0, 1, n),
        "small": rng.integers(0, 100, n).astype(np.int8),
    }
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {k: v.dtype for k, v in data.items()}, chunk_rows=1024)
        t.append(data)
        store.commit()
        # a bulk commit packs its short last chunk too: its rows are not written again
        assert encodings_of(t, "t") == ["delta"] * 5
        assert encodings_of(t, "sensor") == ["for"] * 5
        assert encodings_of(t, "value") == ["decimal"] * 5
        assert encodings_of(t, "noise") == ["blosc2"] * 5
        assert encodings_of(t, "small") == ["blosc2"] * 5
        for k, v in data.items():
            assert np.array_equal(t.col(k), v)
        # a small commit rewrites it raw, so that the next small ones can grow it
        t.append({k: v[:10] for k, v in data.items()})
        store.commit()
        assert encodings_of(t, "sensor") == ["for"] * 4 + ["raw"]
        assert encodings_of(t, "noise") == ["blosc2"] * 4 + ["raw"]
        for k, v in data.items():
            assert np.array_equal(t.col(k), np.concatenate([v, v[:10]]))


def test_codec_none_stores_raw_bytes(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, codec="none", chunk_rows=100)
        t.append({"x": np.arange(250)})
        store.commit()
        assert set(encodings_of(t, "x")) == {"raw"}
        assert t.stored_bytes == 250 * 8


@pytest.mark.parametrize("shuffle", ["byte", "bit", None])
def test_explicit_shuffle_is_obeyed(store_path, shuffle):
    values = np.round(np.linspace(0, 100, 3000), 2)
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "f8"}, shuffle=shuffle, chunk_rows=1000)
        t.append({"x": values})
    with colvault.open(store_path) as store:
        assert np.array_equal(store["/t"].col("x"), values)


@pytest.mark.parametrize("dt", ["i2", "u2", "i4", "i8", "u8", "M8[ns]", "m8[us]"])
def test_regular_clocks_decode_from_their_parameters(store_path, dt):
    """A fixed-step chunk is rebuilt from (first, step) alone, by full reads and by queries."""
    dtype = np.dtype(dt)
    udt = np.dtype(f"u{dtype.itemsize}")
    info = np.iinfo(np.int64 if dtype.kind in "Mm" else dtype)
    top = np.array([info.max], info.dtype).view(udt)[0]
    steps = udt.type(3)
    n = 40
    start = top - steps * udt.type(n - 1)  # ends exactly at the type's maximum
    values = (start + steps * np.arange(n).astype(udt)).view(dtype)
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": dt, "k": "i4"}, chunk_rows=16)
        t.append({"x": values, "k": np.arange(n, dtype="i4")})
        store.commit()
        assert encodings_of(t, "x")[:2] == ["delta", "delta"]
        assert t.col("x").tobytes() == values.tobytes()
        got = t.read_where("k % 3 == 1")
        assert got["x"].tobytes() == values[np.arange(n) % 3 == 1].tobytes()


@pytest.mark.parametrize("dt", ["i2", "u2", "M8[s]"])
def test_regular_clocks_of_narrow_types_past_65536_rows(store_path, dt):
    """A regular chunk's row numbers pass 65,535 in a 16-bit column (524,288-row chunks):
    slices and points there are computed in uint64, then cut to the column's width."""
    n = 1_100_000
    if dt == "M8[s]":
        values = (np.datetime64("1969-12-31T23:00:00") + np.arange(n)).astype(dt)
    else:
        values = np.full(n, -3 if dt == "i2" else 9, dt)  # sorted, step 0: a regular clock
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": dt}).append({"x": values})
    with colvault.open(store_path) as store:
        t = store["/t"]
        assert "delta" in encodings_of(t, "x"), encodings_of(t, "x")
        for a, b in [(100_000, 100_010), (65_530, 65_545), (524_280, 524_300), (n - 7, n)]:
            assert t.cols.x[a:b].tobytes() == values[a:b].tobytes(), (a, b)
        assert t.col("x").tobytes() == values.tobytes()
        assert t[700_001]["x"] == values[700_001]


@pytest.mark.parametrize("dtype", ["f4", "f8"])
@given(
    digits=st.integers(0, 6),
    ks=st.lists(st.integers(-(10**7), 10**7), min_size=2, max_size=300),
    ordered=st.booleans(),
)
def test_zone_map_found_while_decimal_encoding_is_the_computed_one(
    dtype: str, digits: int, ks: list[int], ordered: bool
) -> None:
    """A decimal chunk without exceptions takes its zone map from the encoding's integers."""
    from colvault.engine.codec import Codec
    from colvault.engine.encodings import ColumnEncoder, Decimal
    from colvault.engine.schema import ColumnSpec
    from colvault.engine.zonemaps import NO_ZONE_MAP, compute

    values = (np.array(sorted(ks) if ordered else ks, np.float64) / 10.0**digits).astype(dtype)
    values = values + values.dtype.type(0.0)  # no -0.0: an exception
    spec = ColumnSpec("x", "x", np.dtype(dtype))
    encoded = ColumnEncoder(Codec("lz4", 5, "auto"), spec).encode(values, NO_ZONE_MAP)
    if isinstance(encoded.encoding, Decimal) and encoded.encoding.nexc == 0:
        assert encoded.zone == compute(values, spec)
    else:
        assert encoded.zone is None
