"""Decimal encoding decodes bit for bit, and its exceptions are exactly the unrepresentable values.

Arrays are built from bit patterns (``uint`` views), so NaN payloads, -0.0 and subnormals reach
the kernels untouched. Exceptions are checked against a numpy reference that compares real bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from colvault.benchdata import benchmark_data
from colvault.kernels.encoding.decimal import (
    MAX_EXPONENT,
    SAMPLE,
    P,
    choose_exponent,
    decimal_decode,
    decimal_encode,
    encode_chunk,
    pow10,
)

FLOATS = [np.float32, np.float64]
UINT = {np.float32: np.uint32, np.float64: np.uint64}
CHUNK = 131072


def bits(x: object, dtype: type) -> int:
    """The bit pattern of ``x`` (a number or decimal text) converted to ``dtype``."""
    return int(np.array(x, dtype=dtype).view(UINT[dtype]))


def from_bits(patterns: list[int], dtype: type) -> np.ndarray:
    return np.array(patterns, dtype=UINT[dtype]).view(dtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and bool(
        np.array_equal(a.view(UINT[a.dtype.type]), b.view(UINT[b.dtype.type]))
    )


def narrow_dtype(span: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if span <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def reference_exceptions(values: np.ndarray, e: int) -> np.ndarray:
    """Positions whose ``rint(v * 10**e)`` does not decode to the same bits (numpy, no kernels)."""
    p = float(10**e)
    with np.errstate(all="ignore"):
        f = np.rint(values.astype(np.float64) * p)
        ok = np.abs(f) <= 2.0**53
        k = np.where(ok, f, 0.0).astype(np.int64)
        decoded = (k.astype(np.float64) / p).astype(values.dtype)
    same = decoded.view(UINT[values.dtype.type]) == values.view(UINT[values.dtype.type])
    return np.flatnonzero(~(ok & same))


def round_trip(values: np.ndarray, e: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode, narrow as the engine does, decode, patch; assert bit equality. (exc_pos, ints)."""
    n = values.shape[0]
    ints = np.full(n, -7, np.int64)
    exc_pos = np.full(n, -7, np.int64)
    bad, kmin, kmax = decimal_encode(values, e, ints, exc_pos)
    pos = exc_pos[:bad]
    if n:
        assert kmin <= ints.min() and ints.max() <= kmax
    if bad == n:
        assert kmin == kmax == 0
    narrow = (ints - kmin).astype(narrow_dtype(kmax - kmin))
    out = np.empty_like(values)
    decimal_decode(narrow, kmin, e, out)
    out[pos] = values[pos]
    assert same_bits(out, values)
    return pos, ints


def decimal_bits(dtype: type, digits: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    """A decimal with ``digits`` digits after the point, at a random magnitude."""
    k = st.one_of(
        st.integers(-999, 999), st.integers(-(10**7), 10**7), st.integers(-(2**53), 2**53)
    )
    return st.builds(lambda k, d: bits(f"{k}e-{d}", dtype), k, digits)


def other_bits(dtype: type) -> st.SearchStrategy[int]:
    """Everything that is not a short decimal, and some that are."""
    info = np.finfo(dtype)
    nbits = info.bits
    mant = info.nmant
    exp_ones = ((1 << (nbits - 1 - mant)) - 1) << mant
    sign = st.integers(0, 1).map(lambda s: s << (nbits - 1))
    mantissa = st.integers(1, 2**mant - 1)
    specials = [np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0]
    specials += [info.max, -info.max, info.tiny, -info.tiny]
    specials += [info.smallest_subnormal, -info.smallest_subnormal]

    def one_ulp_off(b: int, up: bool) -> int:
        x = np.array(b, UINT[dtype]).view(dtype)
        return bits(np.nextafter(x, dtype(np.inf if up else -np.inf)), dtype)

    return st.one_of(
        st.builds(lambda s, m: s | exp_ones | m, sign, mantissa),  # NaN, any payload
        st.builds(lambda s, m: s | m, sign, mantissa),  # subnormal
        st.sampled_from([bits(x, dtype) for x in specials]),
        st.builds(one_ulp_off, decimal_bits(dtype, st.integers(0, 6)), st.booleans()),
        st.integers(0, 2**nbits - 1),  # any bit pattern
        st.integers(-(2**60), 2**60).map(lambda i: bits(float(i), dtype)),
        decimal_bits(dtype, st.integers(0, 8)),
    )


@st.composite
def chunks(draw: st.DrawFn, dtype: type) -> np.ndarray:
    """Mostly decimals with one number of digits, some positions overwritten by anything."""
    n = draw(st.integers(0, 200))
    family = draw(
        st.lists(decimal_bits(dtype, st.just(draw(st.integers(0, 6)))), min_size=n, max_size=n)
    )
    if n:
        for i, b in draw(st.lists(st.tuples(st.integers(0, n - 1), other_bits(dtype)), max_size=n)):
            family[i] = b
    values = from_bits(family, dtype)
    return np.tile(values, draw(st.sampled_from([1, 1, 2, 9])))  # 9 * 200 > SAMPLE


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_round_trip_bit_exact_with_chosen_exponent(dtype, data):
    values = data.draw(chunks(dtype))
    top = MAX_EXPONENT[values.itemsize]
    e, count = choose_exponent(values, top)
    assert 0 <= e <= top
    expected = reference_exceptions(values, e)
    assert count == len(expected)
    pos, _ = round_trip(values, e)
    np.testing.assert_array_equal(pos, expected)
    if len(values) <= SAMPLE:  # the sample is the whole chunk: the choice is the true optimum
        counts = [len(reference_exceptions(values, x)) for x in range(top + 1)]
        assert (e, count) == (int(np.argmin(counts)), min(counts))


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_encode_chunk_chooses_and_encodes_as_the_two_steps_do(dtype, data):
    values = data.draw(chunks(dtype))
    top = data.draw(st.sampled_from([MAX_EXPONENT[values.itemsize], 3, 0]))
    n = len(values)
    want_ints, want_pos = np.empty(n, np.int64), np.empty(n, np.int64)
    e, count = choose_exponent(values, top)
    want = decimal_encode(values, e, want_ints, want_pos)
    ints, pos = np.empty(n, np.int64), np.empty(n, np.int64)
    got = encode_chunk(values, top, ints, pos)
    assert got[:4] == (e, *want) and want[0] == count
    assert got[4] == (count == 0 and bool(np.all(np.diff(values) >= 0)))
    np.testing.assert_array_equal(ints, want_ints)
    np.testing.assert_array_equal(pos[:count], want_pos[:count])


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_round_trip_bit_exact_with_any_exponent(dtype, data):
    values = data.draw(chunks(dtype))
    e = data.draw(st.integers(0, MAX_EXPONENT[values.itemsize]))
    pos, _ = round_trip(values, e)
    np.testing.assert_array_equal(pos, reference_exceptions(values, e))


@given(st.integers(0, 18), st.integers(0, 18), st.lists(st.integers(-(2**53), 2**53), max_size=50))
def test_exact_decimals_are_never_exceptions_float64(d, extra, ks):
    """``k / 10**d`` encodes as ``k * 10**(e-d)`` at every e >= d, while that is at most 2**50.

    (``v * 10**e`` is then within 0.25 of the integer. Closer to 2**53 a neighbouring k may be the
    one found, or none: the general tests cover those.)
    """
    e = min(d + extra, 18)
    limit = 2**50 // 10 ** (e - d)
    ks = [max(-limit, min(limit, k)) for k in ks]
    values = np.array(ks, np.float64) / P[d]
    pos, ints = round_trip(values, e)
    assert len(pos) == 0
    np.testing.assert_array_equal(ints, np.array(ks, np.int64) * 10 ** (e - d))
    chosen, count = choose_exponent(values, 18)
    assert chosen <= d and count == 0


@given(st.integers(0, 10), st.lists(st.integers(-(2**23) + 1, 2**23 - 1), max_size=50))
def test_exact_decimals_are_never_exceptions_float32(d, ks):
    values = (np.array(ks, np.float64) / P[d]).astype(np.float32)
    pos, ints = round_trip(values, d)
    assert len(pos) == 0
    np.testing.assert_array_equal(ints, ks)
    assert choose_exponent(values, 10)[1] == 0


def test_exceptions_are_exactly_the_unrepresentable_values():
    rng = np.random.default_rng(1)
    n = CHUNK
    values = np.round(rng.normal(0, 100, n), 3) + 0.0  # + 0.0 turns -0.0 into 0.0
    nan_payload = np.array([0x7FF0_0000_0000_0ABC | (1 << 63)], np.uint64).view(np.float64)[0]
    odd = [np.nan, nan_payload, np.inf, -np.inf, -0.0, 5e-324, np.nextafter(0.1, 1.0), 1e300]
    where = np.sort(rng.choice(n, len(odd), replace=False))
    where[0] = 0  # a leading exception: its filler is the first valid k
    values[where] = odd
    assert choose_exponent(values, 18) == (3, len(odd))
    pos, ints = round_trip(values, 3)
    np.testing.assert_array_equal(pos, where)
    assert ints[0] == ints[1]
    assert all(ints[i] == ints[i - 1] for i in where[1:])


def test_rare_extra_digit_missed_by_the_sample_is_found():
    """Values with a 4th decimal off the sampled positions: the next exponent is counted too."""
    rng = np.random.default_rng(2)
    values = np.round(rng.normal(0, 100, CHUNK), 3) + 0.0
    rare = np.arange(1, CHUNK, 997)
    rare = rare[rare % (CHUNK // SAMPLE) != 0]  # the sample sees only 3 digits
    values[rare] = np.round(values[rare] + 0.0005, 4) + 0.0
    assert choose_exponent(values, 18) == (4, 0)
    assert choose_exponent(values, 3) == (3, len(rare))
    ints, pos = np.empty(CHUNK, np.int64), np.empty(CHUNK, np.int64)
    assert encode_chunk(values, 18, ints, pos)[:2] == (4, 0)  # the one-call form too


def test_benchmark_value_column_takes_three_decimals():
    """``np.round(x, 3)`` of small negative x gives -0.0: those (and only those) are exceptions."""
    value = benchmark_data(2 * CHUNK)["value"]
    for start in range(0, len(value), CHUNK):
        chunk = value[start : start + CHUNK]
        negative_zero = np.flatnonzero((chunk == 0) & np.signbit(chunk))
        assert choose_exponent(chunk, 18) == (3, len(negative_zero))
        pos, ints = round_trip(chunk, 3)
        np.testing.assert_array_equal(pos, negative_zero)
        assert np.abs(ints).max() < 2**31
        assert choose_exponent(chunk + 0.0, 18) == (3, 0)


def test_benchmark_temp_column_round_trips():
    """float32 in [16, 32) is spaced 2**-19 > 1e-6 apart, so 6 decimals name every value exactly
    (the integers are as noisy as the floats: the measurement says this does not pay)."""
    temp = benchmark_data(CHUNK)["temp"]
    assert choose_exponent(temp, 10) == (6, 0)
    round_trip(temp, 6)


@pytest.mark.parametrize("width", [np.uint8, np.uint16, np.uint32, np.uint64, np.int64])
@pytest.mark.parametrize("dtype", FLOATS)
def test_decode_takes_any_integer_width(width, dtype):
    offsets = np.arange(0, 200, dtype=width)
    base = -123_456
    out = np.empty(len(offsets), dtype)
    decimal_decode(offsets, base, 3, out)
    expected = ((offsets.astype(np.int64) + base) / 1000.0).astype(dtype)
    assert same_bits(out, expected)


def test_uint64_offsets_wrap_in_int64():
    offsets = np.array([0, 2**63, 2**64 - 1], np.uint64)
    out = np.empty(3)
    decimal_decode(offsets, 2**53, 0, out)
    np.testing.assert_array_equal(out, [2.0**53, float(2**53 - 2**63), 2.0**53 - 1])


@pytest.mark.parametrize("dtype", FLOATS)
def test_empty_and_all_exception_chunks(dtype):
    empty = np.empty(0, dtype)
    assert choose_exponent(empty, 18) == (0, 0)
    assert decimal_encode(empty, 3, np.empty(0, np.int64), np.empty(0, np.int64)) == (0, 0, 0)
    nan = np.full(5, np.nan, dtype)
    assert choose_exponent(nan, 18) == (0, 5)
    pos, ints = round_trip(nan, 2)
    np.testing.assert_array_equal(pos, np.arange(5))
    np.testing.assert_array_equal(ints, 0)


def test_bad_arguments_raise():
    values = np.array([0.5, np.nan, np.nan])
    with pytest.raises(ValueError):
        decimal_encode(values, 1, np.empty(3, np.int64), np.empty(1, np.int64))
    with pytest.raises(ValueError):
        decimal_encode(values, 1, np.empty(2, np.int64), np.empty(3, np.int64))
    with pytest.raises(ValueError):
        decimal_encode(values.astype(np.float32), 11, np.empty(3, np.int64), np.empty(3, np.int64))
    with pytest.raises(ValueError):
        decimal_decode(np.zeros(3, np.uint8), 0, 19, np.empty(3))
    with pytest.raises(ValueError):
        choose_exponent(values, -1)
    with pytest.raises(ValueError):
        decimal_decode(np.zeros(3, np.uint8), 0, 1, np.empty(2))


def test_powers_of_ten_are_exact():
    assert [int(p) for p in P] == [10**e for e in range(19)]
    assert pow10(3) == 1000.0
    assert MAX_EXPONENT == {8: 18, 4: 10}
