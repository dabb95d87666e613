"""Nullable columns: appends with missing values, the validity frame of chunks, masked reads."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import ChecksumError, SchemaError
from colvault.engine.masked import Masked, forward_fill, unpack
from colvault.engine.zonemaps import decode_bound

#: Every nullable column type, with a way to make n values of it from integers.
KINDS = {
    "Int8": lambda k: (k % 100 - 50).astype("i1"),
    "Int64": lambda k: k.astype("i8") * 1_000_003 - 7,
    "UInt16": lambda k: (k % 60000).astype("u2"),
    "UInt64": lambda k: k.astype("u8") + np.uint64(2**63),
    "boolean": lambda k: k % 3 == 0,
    "text": lambda k: np.array([f"v{x % 97}" for x in k.tolist()], "U4"),
    "bytes": lambda k: np.array([f"b{x % 13}".encode() for x in k.tolist()], "S3"),
    "category": lambda k: np.array([f"c{x % 5}" for x in k.tolist()], "U2"),
}
SCHEMA = {
    "text": {"dtype": "U4", "nullable": True},
    "bytes": {"dtype": "S3", "nullable": True},
    "category": {"dtype": "category", "nullable": True},
}


def _schema(kind: str) -> dict:
    return {"x": SCHEMA.get(kind, kind), "n": "i8"}


def _check(col, values: np.ndarray, valid: np.ndarray) -> None:
    assert isinstance(col, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(col), ~valid)
    assert np.array_equal(np.ma.getdata(col)[valid], values[valid])


@st.composite
def batches(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    sizes = draw(st.lists(st.integers(0, 40), min_size=1, max_size=5))
    out = []
    start = 0
    for n in sizes:
        k = np.arange(start, start + n)
        start += n
        valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
        if n and draw(st.booleans()):
            valid[:] = draw(st.booleans())  # all missing or none missing
        form = draw(st.sampled_from(["masked", "objects", "list", "Masked"]))
        commit = draw(st.booleans())
        out.append((KINDS[kind](k), valid, form, commit))
    chunk_rows = draw(st.sampled_from([4, 8, 16]))
    codec = draw(st.sampled_from(["lz4", "none", "zstd"]))
    return kind, out, chunk_rows, codec


def _as_input(values: np.ndarray, valid: np.ndarray, form: str):
    if form == "masked":
        return np.ma.MaskedArray(values, ~valid)
    if form == "Masked":
        return Masked(values, valid)
    objects = [v if ok else None for v, ok in zip(values.tolist(), valid.tolist(), strict=True)]
    return objects if form == "list" else np.array(objects, object)


@given(batches())
def test_round_trip(tmp_path_factory, case):
    kind, parts, chunk_rows, codec = case
    path = str(tmp_path_factory.mktemp("nullable") / "s.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", _schema(kind), chunk_rows=chunk_rows, codec=codec)
        for values, valid, form, commit in parts:
            t.append({"x": _as_input(values, valid, form), "n": np.arange(len(values))})
            if commit:
                store.commit()
    values = np.concatenate([p[0] for p in parts])
    valid = np.concatenate([p[1] for p in parts])
    with colvault.open(path) as store:
        t = store["/t"]
        _check(t.cols.x[:], values, valid)
        _check(t.read()["x"], values, valid)
        assert store.verify().ok
        state = t._state()
        spec = t._schema.column("x")
        refs = state.columns[spec.id]
        assert sum(r.nulls for r in refs) == int((~valid).sum())
        src = t._source()
        for ref in refs:
            bits = src.read_validity(spec, ref)
            part = valid[ref.first_row : ref.first_row + ref.nrows]
            if ref.nulls == 0:
                assert bits is None and ref.vlen == 0
            else:
                assert bits.dtype == np.uint8 and len(bits) == (ref.nrows + 7) // 8
                assert np.array_equal(unpack(bits, ref.nrows), part)
            chunk = src.read_chunk(spec, ref)
            want = values[ref.first_row : ref.first_row + ref.nrows]
            assert np.array_equal(chunk[part], want[part])
            if spec.has_zone_map and part.any():
                assert decode_bound(ref.zone.min, spec) == want[part].min()
                assert decode_bound(ref.zone.max, spec) == want[part].max()
        if len(values):
            rows = np.unique(np.random.default_rng(0).integers(0, len(values), 10))
            _check(t.cols.x[rows], values[rows], valid[rows])
            row = t[int(rows[0])]
            assert (row["x"] is np.ma.masked) == (not valid[rows[0]])
            for i in range(0, len(values), 3):  # points and short slices: read by the block
                _check(t.cols.x[i : i + 2], values[i : i + 2], valid[i : i + 2])
                got = t[i]["x"]
                assert (got is np.ma.masked) == (not valid[i])
                assert got is np.ma.masked or got == values[i]
            chunks = [c["x"] for c in t.iter_chunks(["x"])]
            _check(np.ma.concatenate(chunks), values, valid)
    with colvault.open(path, "a") as store:
        store.compact()
        _check(store["/t"].cols.x[:], values, valid)
        assert store.verify().ok


def _listed(got: np.ma.MaskedArray) -> list[int | None]:
    return [None if m else int(v) for v, m in zip(got.data, got.mask, strict=True)]


@pytest.mark.parametrize("codec", ["lz4", "none"])
def test_logger_commits_with_missing_values(store_path, codec):
    """Small commits of rows with missing values: the short last chunk is rewritten each time
    (its validity frame ends it), rows of other commits grow it in place as before."""
    want: list[int | None] = []
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/log", {"x": "Int32", "y": "i4"}, chunk_rows=16, codec=codec)
        for i in range(50):
            x = None if i % 7 == 3 else i
            want.append(x)
            t.append({"x": [x], "y": [i]})
            store.commit()
            if i % 11 == 0:
                assert _listed(t.cols.x[:]) == want
    with colvault.open(store_path) as store:
        assert _listed(store["/log"].cols.x[:]) == want
        assert store.verify().ok


def test_non_nullable_reads_stay_plain_arrays(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i4", "s": "U2"})
        t.append({"x": [1, 2], "s": ["a", "b"]})
        store.commit()
        assert type(t.cols.x[:]) is np.ndarray
        assert type(t.read()) is np.ndarray
        assert type(t[0]) is np.void


@pytest.mark.parametrize(
    "values",
    [
        [1, None],
        np.array([1, None], object),
        np.ma.MaskedArray([1, 2], [False, True]),
        Masked(np.array([1, 2]), np.array([True, False])),
        [1, float("nan")],
    ],
)
def test_missing_into_a_column_that_is_not_nullable(store_path, values):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i4", "y": "i4"})
        with pytest.raises(SchemaError, match=r"table /t: column 'x': 1 missing value"):
            t.append({"x": values, "y": [1, 2]})
        assert t.pending_rows == 0


def test_missing_text_into_a_column_that_is_not_nullable(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"s": "U3", "c": "category"})
        with pytest.raises(SchemaError, match="column 's': 1 missing value"):
            t.append({"s": ["a", None], "c": ["u", "v"]})
        with pytest.raises(SchemaError, match="column 'c': 1 missing value"):
            t.append({"s": ["a", "b"], "c": ["u", None]})


def test_pandas_missing_values(store_path):
    pd = pytest.importorskip("pandas")
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int64", "b": "boolean", "s": SCHEMA["text"]})
        t.append(
            {
                "x": pd.array([1, None, 3], "Int64").to_numpy(),
                "b": [True, pd.NA, False],
                "s": np.array(["a", pd.NA, np.nan], object),
            }
        )
        t.append({"x": np.array([4.0, np.nan, 6.0]), "b": [None] * 3, "s": ["d", "e", "f"]})
        store.commit()
        x = t.cols.x[:]
        assert x.mask.tolist() == [False, True, False, False, True, False]
        assert x.compressed().tolist() == [1, 3, 4, 6]
        assert t.cols.b[:].mask.tolist() == [False, True, False, True, True, True]
        assert t.cols.s[:].mask.tolist() == [False, True, True, False, False, False]
        with pytest.raises(SchemaError, match="column 'x'"):
            t.append({"x": [1.5], "b": [True], "s": ["a"]})


def test_values_that_do_not_fit_are_still_refused(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int8", "s": SCHEMA["text"]})
        with pytest.raises(SchemaError, match="out of range"):
            t.append({"x": [1, None, 300], "s": ["a", "b", "c"]})
        with pytest.raises(SchemaError, match="longer than 4"):
            t.append({"x": [1, None, 3], "s": ["a", None, "toolong"]})
        # masked slots may hold anything: only valid values are checked
        t.append({"x": np.ma.MaskedArray([1, 1000], [False, True]), "s": ["a", "b"]})
        store.commit()
        assert t.cols.x[:].tolist() == [1, None]


def _validity_offset(store_path) -> tuple[str, int, int]:
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    try:
        return conn.execute(
            "SELECT segment, offset + length - validity_length, validity_length FROM chunks "
            "WHERE validity_length > 0"
        ).fetchone()
    finally:
        conn.close()


def test_a_flipped_byte_in_a_validity_frame_is_a_checksum_error(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int32"}, chunk_rows=64)
        t.append({"x": [None if i % 3 else i for i in range(64)]})
    segment, at, vlen = _validity_offset(store_path)
    assert vlen > 0
    with open(f"{store_path}/{segment}", "r+b") as f:
        f.seek(at + vlen // 2)
        byte = f.read(1)
        f.seek(at + vlen // 2)
        f.write(bytes([byte[0] ^ 0x10]))
    with colvault.open(store_path) as store:
        with pytest.raises(ChecksumError, match="chunk 0") as info:
            store["/t"].cols.x[:]
        assert "'x'" in str(info.value)
        assert not store.verify().ok


def test_verify_checks_the_count_of_missing_values(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int32"}, chunk_rows=64)
        t.append({"x": [None if i % 3 else i for i in range(64)]})
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    conn.execute("UPDATE chunks SET null_count = null_count - 1 WHERE validity_length > 0")
    conn.commit()
    conn.close()
    with colvault.open(store_path) as store:
        report = store.verify()
        assert not report.ok
        assert "missing values" in str(report)


def test_zone_maps_see_only_valid_values(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int64"}, chunk_rows=8)
        t.append({"x": [None, 100, None, 50, 60, None, 70, None] + [None] * 8})
        store.commit()
        spec = t._schema.column("x")
        first, second = t._state().columns[spec.id]
        assert decode_bound(first.zone.min, spec) == 50
        assert decode_bound(first.zone.max, spec) == 100
        assert (first.nulls, second.nulls) == (4, 8)
        assert second.zone.min is None and second.zone.max is None
        assert t.cols.x[:].count() == 4


def test_sorted_values_with_gaps_still_pack(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int64"}, chunk_rows=1024)
        x = np.arange(1024) * 1000 + 10**12
        t.append({"x": np.ma.MaskedArray(x, np.arange(1024) % 10 == 0)})
        store.commit()
        (ref,) = t._state().columns[t._schema.column("x").id]
        assert ref.encoding.name == "delta" and ref.zone.sorted
        assert ref.nulls == 103
        got = t.cols.x[:]
        assert np.array_equal(got.compressed(), x[np.arange(1024) % 10 != 0])


def test_forward_fill():
    valid = np.array([False, True, False, False, True, False])
    values = np.array([9, 1, 9, 9, 2, 9])
    assert forward_fill(values, valid).tolist() == [1, 1, 1, 1, 2, 2]
    assert forward_fill(values, np.zeros(6, bool)).tolist() == [0] * 6


def test_display_shows_missing_values(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int8", "s": SCHEMA["text"]})
        t.append({"x": [1, None], "s": [None, "a"]})
        store.commit()
        html = t._repr_html_()
        assert html.count("&lt;NA&gt;") == 2
        assert "&lt;NA&gt;" in t.cols.x._repr_html_()
        assert "nullable" in repr(t)


def test_category_codes_of_a_nullable_column(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"c": SCHEMA["category"]}, chunk_rows=4)
        t.append({"c": ["b", None, "a", "b", None, None, None, None, "c", None]})
        store.commit()
        codes, dictionary = t.col("c", codes=True)
        assert dictionary.tolist() == ["a", "b", "c"]
        assert codes.dtype.kind == "i"
        assert codes.tolist() == [1, -1, 0, 1, -1, -1, -1, -1, 2, -1]
        first, words = t.col("c", codes=True, chunk=0)
        assert [words[c] if c >= 0 else None for c in first] == ["b", None, "a", "b"]


def test_asarray_of_a_column_with_missing_values_raises(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int8", "y": "Int8"})
        t.append({"x": [1, None], "y": [1, 2]})
        store.commit()
        with pytest.raises(ValueError, match="1 missing value"):
            np.asarray(t.cols.x)
        assert np.asarray(t.cols.y).tolist() == [1, 2]
        assert type(np.asarray(t.cols.y)) is np.ndarray


@pytest.mark.parametrize("copy", [True, False])
def test_coded_text_with_missing_values(store_path, copy):
    """What the CSV importer appends: codes into a dictionary, -1 or anything where missing."""
    from colvault.engine.coded import Coded

    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"c": SCHEMA["category"]}, chunk_rows=4)
        words = np.array(["x", "y"])
        codes = np.array([0, -1, 1, 1, -1, 0], np.int32)
        valid = codes >= 0
        t.append({"c": Masked(Coded(codes, words), valid)}, copy=copy)
        t.append({"c": Masked(Coded(np.array([-1, -1], np.int32), words), np.zeros(2, bool))})
        t.append({"c": Masked(Coded(np.array([1]), words), None)})
        store.commit()
        got = t.cols.c[:]
        assert got.mask.tolist() == [False, True, False, False, True, False, True, True, False]
        assert got.compressed().tolist() == ["x", "y", "y", "x", "y"]


def test_reads_with_a_progress_bar_keep_the_mask(store_path):
    with colvault.open(store_path, "w") as store:
        schema = {"i": "Int16", "c": SCHEMA["category"], "x": "f8"}
        t = store.create_table("/t", schema, chunk_rows=4)
        n = 50
        t.append(
            {
                "i": [None if k % 3 == 0 else k for k in range(n)],
                "c": [None if k % 5 == 0 else f"w{k % 7}" for k in range(n)],
                "x": np.arange(n, dtype=float),
            }
        )
        store.commit()
        for start, stop, step in ((None, None, None), (3, 41, 3), (5, 5, None)):
            plain = t.read(start, stop, step, progress=False)
            shown = t.read(start, stop, step, progress=True)
            assert isinstance(shown, np.ma.MaskedArray)
            assert np.array_equal(np.ma.getmaskarray(plain), np.ma.getmaskarray(shown))
            for name in ("i", "c", "x"):
                assert plain[name].compressed().tolist() == shown[name].compressed().tolist()


def test_storage_counts_missing_values(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "Int8", "y": "i8"}, chunk_rows=4)
        t.append({"x": [1, None, None, 4, 5, None], "y": np.arange(6)})
        store.commit()
        x, y = t.storage()
        assert (x.nulls, y.nulls) == (3, 0)


def _tail_of(t, name):
    return t._state().columns[t._schema.column(name).id][-1]


def test_plain_columns_grow_beside_rewritten_ones(store_path):
    """A logger's plain columns grow their short chunk in place while a column with missing
    values (or category text) has its short chunk rewritten each commit."""
    with colvault.open(store_path, "w") as store:
        schema = {"n": "i8", "x": "Int32", "c": "category"}
        t = store.create_table("/log", schema, chunk_rows=64)
        places, x_want = set(), []
        for k in range(40):
            x = [None if (k + i) % 4 == 0 else k * 10 + i for i in range(5)]
            x_want += x
            t.append({"n": np.arange(5 * k, 5 * k + 5), "x": x, "c": [f"s{k % 3}"] * 5})
            store.commit()
            tail = _tail_of(t, "n")
            places.add((tail.segment, tail.offset))
            for name in ("x", "c"):
                other = _tail_of(t, name)
                assert (other.first_row, other.nrows) == (tail.first_row, tail.nrows)
        # grown in place between full chunks (64 rows: every 13); the first moves once, into room
        assert len(places) <= 5
    with colvault.open(store_path) as store:
        t = store["/log"]
        assert t.col("n").tolist() == list(range(200))
        assert _listed(t.cols.x[:]) == x_want
        assert t.col("c").tolist() == [f"s{k % 3}" for k in range(40) for _ in range(5)]
        assert store.verify().ok
    with colvault.open(store_path, "a") as store:  # another writer: the tail is merged
        store["/log"].append({"n": [200], "x": [None], "c": ["z"]})
        store.commit()
        store.compact()
        assert _listed(store["/log"].cols.x[:]) == [*x_want, None]
        assert store.verify().ok


def test_a_row_read_alone_is_the_row_of_the_whole_read(store_path):
    """``t[i]`` (a Python or numpy integer, from either end) gives what ``t.read()[i]`` gives:
    a masked void with the same values, mask, dtype and repr when a column is nullable, a
    plain void when none is."""
    rng = np.random.default_rng(5)
    n = 5000
    x = rng.integers(0, 100, n)
    missing = rng.random(n) < 0.2
    text = rng.choice(["a", "bb", "ccc"], n).astype(object)
    text[rng.random(n) < 0.2] = None
    with colvault.open(store_path, "w") as store:
        t = store.create_table(
            "/t",
            {
                "x": {"dtype": "i8", "nullable": True},
                "s": {"dtype": "category", "nullable": True},
                "y": "f8",
            },
            chunk_rows=1024,
        )
        t.append({"x": np.ma.MaskedArray(x, missing), "s": text, "y": x * 0.5})
        plain = store.create_table("/p", {"y": "f8", "z": "i4"}, chunk_rows=1024)
        plain.append({"y": x * 0.5, "z": x.astype("i4")})
    with colvault.open(store_path) as store:
        t, plain = store["/t"], store["/p"]
        whole, rows = t.read(), plain.read()
        for i in [0, 1, 1023, 1024, 2500, n - 1, -1, -n]:
            for key in (i, np.int64(i), np.int32(i)):
                got, want = t[key], whole[i]
                assert type(got) is type(want) is np.ma.mvoid
                assert got.dtype == want.dtype and repr(got) == repr(want)
                assert got.mask.tolist() == want.mask.tolist()
                assert got.tolist() == want.tolist()
                row = plain[key]
                assert type(row) is np.void and row.tolist() == rows[i].tolist()
