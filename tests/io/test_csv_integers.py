"""Integers that a CSV column's type widening would round (issue 12, defect 7).

An int64 column that meets a value beyond int64 becomes uint64 when every value fits it. A
float64 column (integers with missing values, negative values beside values beyond int64, values
beyond uint64, or integers beside non-integer numbers) holds every integer up to 2**53 exactly;
an integer text whose double is another number is a ``CSVError`` naming the column, the line and
the first such text, unless the caller's schema asks for float64: then the rounded integers are
counted in a ``CSVWarning``. The values of a later block reach the column after the importer
has started over with the wider type, so each case runs with small blocks (the big value blocks
after the first, which the types are inferred from) and with one block.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import CSVError, CSVWarning, import_csv

#: 40 small integers, one a line: with 64-byte blocks what follows them is blocks later
INTS = [b"%d" % i for i in range(40)]
BLOCKS = [64, None]  # later blocks; one block (the default size holds every file here)
ROUNDS = "an integer that float64 cannot hold"


def _file(tmp_path: Path, lines: list[bytes], header: bytes = b"n") -> Path:
    path = tmp_path / "a.csv"
    path.write_bytes(header + b"\n" + b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with colvault.open(tmp_path / "s.colvault", "w") as s:
        yield s


def _snapshot(table: colvault.Table) -> tuple[int, list[tuple[str, str]], bytes]:
    return len(table), [(c, str(table.schema[c])) for c in table.colnames], table.read().tobytes()


def _fails(path: Path, store: Any, line: int, text: str, **kw: Any) -> CSVError:
    """The import of ``path`` raises the error naming column n, ``line`` and ``text``, and
    leaves nothing behind."""
    with pytest.raises(CSVError, match=ROUNDS) as e:
        import_csv(path, store, "/t", **kw)
    err = e.value
    assert (err.file, err.line, err.column, err.text) == (str(path), line, "n", text), str(err)
    assert "/t" not in store and not store.has_pending
    return err


# -- int64 -> float64 ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", BLOCKS)
@pytest.mark.parametrize("big_first", [True, False])
def test_an_integer_a_float_makes_float64_would_round_is_an_error(
    chunk: int | None, big_first: bool, store: Any, tmp_path: Path
) -> None:
    # the example: before, 9007199254740993 became 9007199254740992.0 without a word
    lines = [*INTS, b"9007199254740993", b"0.5"] if big_first else [*INTS, b"0.5"]
    if not big_first:
        lines += [b"7", b"9007199254740993"]
    line = lines.index(b"9007199254740993") + 2
    err = _fails(_file(tmp_path, lines), store, line, "9007199254740993", chunk_bytes=chunk)
    assert "would read 9007199254740992.0" in err.message
    assert "schema={'n': 'float64'}" in err.message  # what to do about it


@pytest.mark.parametrize("chunk", BLOCKS)
def test_an_integer_in_the_first_block_and_a_float_later(
    chunk: int | None, store: Any, tmp_path: Path
) -> None:
    # read as int64 from the first block; the float in a later block makes the column float64
    path = _file(tmp_path, [b"9007199254740993", *INTS, b"2.5"])
    _fails(path, store, 2, "9007199254740993", chunk_bytes=chunk)


@pytest.mark.parametrize("chunk", BLOCKS)
def test_integers_of_a_column_with_missing_values_stay_exact(
    chunk: int | None, store: Any, tmp_path: Path
) -> None:
    # missing values make the int column nullable, not float64: nothing rounds
    rows = [b"%d,%d" % (i, i) for i in range(40)]
    path = _file(tmp_path, [*rows, b"40,", b"41,-9007199254740993"], header=b"i,n")
    table = import_csv(path, store, "/t", chunk_bytes=chunk)
    n = table.col("n")
    assert table.schema["n"] == np.int64 and table.column_specs(["n"])[0].nullable
    assert n.mask.tolist() == [False] * 40 + [True, False]
    assert n[41] == -9007199254740993 and n[:40].tolist() == list(range(40))


@pytest.mark.parametrize("chunk", BLOCKS)
def test_integers_float64_holds_stay_float64(chunk: int | None, store: Any, tmp_path: Path) -> None:
    exact = [b"9007199254740992", b"9007199254740994", b"-1152921504606846976", b"0.5"]
    table = import_csv(_file(tmp_path, [*INTS, *exact]), store, "/t", chunk_bytes=chunk)
    assert table.schema["n"] == np.float64
    assert table.col("n").tolist() == [float(v) for v in [*INTS, *exact]]
    assert [int(v) for v in table.col("n")[40:43]] == [2**53, 2**53 + 2, -(2**60)]


# -- int64 -> uint64, and what uint64 cannot hold ------------------------------------------------


@pytest.mark.parametrize("chunk", BLOCKS)
def test_values_beyond_int64_that_fit_uint64_make_a_uint64_column(
    chunk: int | None, store: Any, tmp_path: Path
) -> None:
    big = [b"9223372036854775809", b"18446744073709551615", b"9007199254740993"]
    table = import_csv(_file(tmp_path, [*INTS, *big]), store, "/t", chunk_bytes=chunk)
    assert table.schema["n"] == np.uint64
    assert table.col("n").tolist() == [*range(40), 2**63 + 1, 2**64 - 1, 2**53 + 1]


@pytest.mark.parametrize("chunk", BLOCKS)
@pytest.mark.parametrize("order", ["negative-first", "big-first"])
def test_negative_values_and_one_beyond_int64_are_an_error(
    chunk: int | None, order: str, store: Any, tmp_path: Path
) -> None:
    # no integer type holds both; float64 would read 9223372036854775809 as 2**63. The error
    # names the first value float64 would change, wherever the negative one is.
    big, negative = b"9223372036854775809", b"-5"
    lines = [negative, *INTS, big] if order == "negative-first" else [big, *INTS, negative]
    line = lines.index(big) + 2
    _fails(_file(tmp_path, lines), store, line, big.decode(), chunk_bytes=chunk)


@pytest.mark.parametrize("chunk", BLOCKS)
def test_negative_values_and_2_63_are_float64_exactly(
    chunk: int | None, store: Any, tmp_path: Path
) -> None:
    # 2**63 is a double: float64 holds every value, so the column widens to it as before
    table = import_csv(_file(tmp_path, [b"-5", *INTS, b"9223372036854775808"]), store, "/t",
                       chunk_bytes=chunk)  # fmt: skip
    assert table.schema["n"] == np.float64
    assert table.col("n").tolist() == [-5.0, *map(float, range(40)), 2.0**63]


@pytest.mark.parametrize("chunk", BLOCKS)
@pytest.mark.parametrize("where", ["first-block", "later-block"])
def test_an_integer_beyond_uint64_is_an_error(
    chunk: int | None, where: str, store: Any, tmp_path: Path
) -> None:
    huge = b"123456789012345678901234567890"
    lines = [huge, *INTS] if where == "first-block" else [*INTS, huge, b"1"]
    _fails(_file(tmp_path, lines), store, lines.index(huge) + 2, huge.decode(), chunk_bytes=chunk)


@pytest.mark.parametrize("chunk", BLOCKS)
def test_a_uint64_column_that_meets_a_negative_value_is_an_error(
    chunk: int | None, store: Any, tmp_path: Path
) -> None:
    # inferred uint64 from the first block; a negative value made it float64, rounding 2**64-1
    _fails(_file(tmp_path, [b"18446744073709551615", *INTS, b"-1"]), store, 2,
           "18446744073709551615", chunk_bytes=chunk)  # fmt: skip


def test_the_error_comes_after_the_restart_and_leaves_the_store_as_it_was(
    store: Any, tmp_path: Path
) -> None:
    # A first file of good rows and a second whose late float widens the column: the import
    # appends blocks, starts over with float64, then meets the integer. Nothing stays.
    store.create_table("/other", {"x": "i8"}).append({"x": np.arange(3)})
    store.commit()
    before = _snapshot(store["/other"])
    good = tmp_path / "good.csv"
    good.write_bytes(b"n\n" + b"\n".join(INTS) + b"\n")
    late = tmp_path / "late.csv"
    late.write_bytes(b"n\n" + b"\n".join([*INTS, b"9007199254740993", *INTS, b"0.5"]) + b"\n")
    with pytest.raises(CSVError, match=ROUNDS) as e:
        import_csv([good, late], store, "/t", chunk_bytes=64)
    assert (e.value.file, e.value.line, e.value.text) == (str(late), 42, "9007199254740993")
    assert "/t" not in store and not store.has_pending
    assert _snapshot(store["/other"]) == before
    # the store is still usable, and the file imports when the schema accepts the rounding
    with pytest.warns(CSVWarning, match="1 integer rounded"):
        table = import_csv([good, late], store, "/t", chunk_bytes=64, schema={"n": "float64"})
    assert len(table) == 40 + 82


# -- the schema asks for float64: rounding with a warning -------------------------------------

#: integer texts float64 rounds (6), and big values it does not: integers that are doubles,
#: numbers that are not integer texts, and small ones
ROUNDED = [
    b"9007199254740993",
    b"-9223372036854775809",
    b"18446744073709551615",
    b"123456789012345678901234567890",
    b" +9007199254740995 ",
    b"00000009007199254740997",
]
NOT_ROUNDED = [
    b"9007199254740992",
    b"9223372036854775808",
    b"-1152921504606846976",
    b"12345678901234567890.5",
    b"1.2345678901234567e+20",
    b"1e300",
    b"inf",
    b"2.5",
    b"-7",
]


@pytest.mark.parametrize("chunk", [None, 32, 64, 4096])
def test_schema_float64_rounds_integers_with_a_warning_that_counts_them(
    chunk: int | None, store: Any, tmp_path: Path
) -> None:
    lines = [*INTS, *NOT_ROUNDED[:4], *ROUNDED[:3], *INTS, *NOT_ROUNDED[4:], *ROUNDED[3:]]
    path = _file(tmp_path, lines)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = import_csv(path, store, "/t", chunk_bytes=chunk, schema={"n": "float64"})
    ours = [str(w.message) for w in caught if issubclass(w.category, CSVWarning)]
    assert ours == [
        "column 'n': 6 integers rounded to float64, as its type asks "
        "(first: line 46, '9007199254740993')"
    ]
    assert table.col("n").tolist() == [float(v) for v in lines]  # as Python's float() reads


def test_schema_float64_without_integers_to_round_is_silent(store: Any, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = import_csv(_file(tmp_path, [*INTS, *NOT_ROUNDED]), store, "/t", chunk_bytes=64,
                           schema={"n": "float64"})  # fmt: skip
    assert table.col("n").tolist() == [float(v) for v in [*INTS, *NOT_ROUNDED]]


def test_a_float64_table_appended_to_rounds_with_a_warning(store: Any, tmp_path: Path) -> None:
    # the table's float64 is a type the caller chose, as a schema's
    store.create_table("/t", {"n": "f8"})
    store.commit()
    with pytest.warns(CSVWarning, match=r"column 'n': 1 integer rounded .*line 42"):
        table = import_csv(_file(tmp_path, [*INTS, b"9007199254740993"]), store, "/t",
                           chunk_bytes=64)  # fmt: skip
    assert table.col("n")[-1] == 2.0**53


def test_the_thousands_separator_is_part_of_an_integer_text(store: Any, tmp_path: Path) -> None:
    path = _file(tmp_path, [b"1.5", b"9,007,199,254,740,993"])
    with pytest.raises(CSVError, match=ROUNDS) as e:
        import_csv(path, store, "/t", delimiter=";", thousands=",")
    assert (e.value.line, e.value.text) == (3, "9,007,199,254,740,993")


# -- a property: exact, or an error naming the first integer float64 would change --------------

EXTREMES = [
    2**53 + 1,
    2**53 + 2,
    2**63 - 1,
    2**63,
    2**63 + 1,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    -(2**53) - 1,
    10**30,
    2**70,
]


@given(
    values=st.lists(st.integers(-1000, 1000), min_size=1, max_size=80),
    extremes=st.lists(
        st.tuples(st.sampled_from(EXTREMES), st.integers(0, 80)), min_size=1, max_size=3
    ),
    extra=st.sampled_from([None, "0.5", ""]),  # a float, or a missing value, somewhere
    extra_at=st.integers(0, 80),
    chunk=st.one_of(st.none(), st.integers(8, 300)),
)
def test_integers_are_read_exactly_or_refused(
    values: list[int],
    extremes: list[tuple[int, int]],
    extra: str | None,
    extra_at: int,
    chunk: int | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fields: list[str] = [str(v) for v in values]
    for v, at in extremes:
        fields.insert(min(at, len(fields)), str(v))
    if extra is not None:
        fields.insert(min(extra_at, len(fields)), extra)
    ints = [int(x) for x in fields if x not in ("", "0.5")]
    whole = extra != "0.5"  # a missing value ("") keeps an int column int, nullable
    if whole and all(-(2**63) <= v < 2**63 for v in ints):
        want: str | None = "int64"
    elif whole and all(0 <= v < 2**64 for v in ints):
        want = "uint64"
    else:
        want = "float64"
    rounded = [i for i, x in enumerate(fields) if x not in ("", "0.5") and int(float(x)) != int(x)]
    tmp = tmp_path_factory.mktemp("ints")
    path = tmp / "a.csv"
    path.write_bytes(("i,n\n" + "".join(f"{i},{x}\n" for i, x in enumerate(fields))).encode())
    with colvault.open(tmp / "s.colvault", "w") as store:
        if want == "float64" and rounded:
            with pytest.raises(CSVError, match=ROUNDS) as e:
                import_csv(path, store, "/t", chunk_bytes=chunk)
            first = rounded[0]
            assert (e.value.line, e.value.column, e.value.text) == (first + 2, "n", fields[first])
            assert "/t" not in store and not store.has_pending
            return
        table = import_csv(path, store, "/t", chunk_bytes=chunk)
        got = table.col("n")
    assert str(got.dtype) == want
    if want == "float64":
        expected = [np.nan if x == "" else float(x) for x in fields]
        assert np.array_equal(got, np.array(expected), equal_nan=True)
        # every integer read exactly: never a rounded value
        pairs = zip(got.tolist(), fields, strict=True)
        assert all(int(g) == int(x) for g, x in pairs if x not in ("", "0.5"))
    else:
        assert isinstance(got, np.ma.MaskedArray) == (extra == "")
        assert got.tolist() == [None if x == "" else int(x) for x in fields]


@pytest.mark.parametrize("chunk", [64, 4096])
def test_an_integer_deep_in_the_plain_blocks_of_a_float_column_is_an_error(
    chunk: int, store: Any, tmp_path: Path
) -> None:
    # The float column is float64 from its first block; the later blocks, without quotes or
    # missing values, are read by the row kernel, which must not take the integer as a float.
    # 2**54 + 1 rounds without a tie (2**53 + 1 is halfway between two doubles, which sends it
    # the slow way anyway).
    lines = [b"0.5", *INTS * 200, b"18014398509481985", *INTS]
    line = lines.index(b"18014398509481985") + 2
    _fails(_file(tmp_path, lines), store, line, "18014398509481985", chunk_bytes=chunk)
