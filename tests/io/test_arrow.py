"""Arrow out of tables: ``to_arrow``, ``iter_batches`` and the PyCapsule stream that pyarrow,
Polars and DuckDB read, checked value by value against ``Table.read``."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault

pa = pytest.importorskip("pyarrow")

N = 3000
_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _fill(t, n=N, offset=0):
    i = np.arange(offset, offset + n)
    t.append(
        {
            "i": i,
            "u": (i % 200).astype("u1"),
            "f": i / 3,
            "b": i % 2 == 0,
            "s": np.array(["ab", "c", "def"])[i % 3],
            "c": np.array(["x", "y", "z"])[i % 3],
            "ni": np.ma.MaskedArray(i, i % 5 == 0),
            "nb": np.ma.MaskedArray(i % 3 == 0, i % 4 == 0),
            "nc": np.ma.MaskedArray(np.array(["p", "q", "r"])[i % 3], i % 7 == 0),
            "ns": np.ma.MaskedArray(np.array(["", "a", "bb"])[i % 3], i % 3 == 0),
            "ts": (i * 1_000_003).astype("M8[us]").astype("M8[ns]"),
            "naive": np.where(i % 11 == 0, np.datetime64("NaT"), i.astype("M8[ms]")),
            "day": i.astype("M8[D]"),
            "dt": i.astype("m8[s]"),
            "cell": np.arange(n * 6, dtype="f4").reshape(n, 2, 3) + offset,
            "by": np.array([b"a", b"bc", b""])[i % 3],
        }
    )


SCHEMA = {
    "i": "i4",
    "u": "u1",
    "f": "f8",
    "b": "?",
    "s": "U5",
    "c": "category",
    "ni": {"dtype": "i8", "nullable": True},
    "nb": {"dtype": "?", "nullable": True},
    "nc": {"dtype": "category", "nullable": True},
    "ns": {"dtype": "U4", "nullable": True},
    "ts": "datetime64[ns, Europe/Paris]",
    "naive": "M8[ms]",
    "day": "M8[D]",
    "dt": "m8[s]",
    "cell": ("f4", (2, 3)),
    "by": "S3",
}


@pytest.fixture
def store(tmp_path):
    with colvault.open(str(tmp_path / "s.colvault"), "w") as s:
        yield s


@pytest.fixture
def table(store):
    t = store.create_table("/t", SCHEMA, chunk_rows=1024)
    _fill(t)
    store.commit()
    return t


def _plain(col):
    """An Arrow column (from any reader) as Python values: text as str, timestamps and
    durations as int nanoseconds, missing as None."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    typ = col.type
    if pa.types.is_dictionary(typ):
        col, typ = col.cast(typ.value_type), typ.value_type
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        col = col.cast(pa.string())
    if pa.types.is_large_binary(typ) or pa.types.is_binary_view(typ):
        col = col.cast(pa.binary())
    if pa.types.is_timestamp(typ) or pa.types.is_duration(typ):
        factor = _NS[typ.unit]
        return [None if v is None else v * factor for v in col.cast(pa.int64()).to_pylist()]
    if pa.types.is_interval(typ):  # DuckDB's INTERVAL for durations
        return [
            None if v is None else (v.days * 86400 * 10**9 + v.nanoseconds) for v in col.to_pylist()
        ]
    if pa.types.is_date32(typ):
        return [None if v is None else v * 86400 * 10**9 for v in col.cast(pa.int32()).to_pylist()]
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return [None if v is None else _nested(v) for v in col.to_pylist()]
    return col.to_pylist()


def _nested(v):
    return [_nested(x) if isinstance(x, list) else x for x in v]


def _expected(values):
    """A column of ``Table.read`` as :func:`_plain` gives Arrow's."""
    mask = np.ma.getmaskarray(values) if isinstance(values, np.ma.MaskedArray) else None
    data = np.ma.getdata(values)
    if data.dtype.kind in "Mm":
        ints = data.astype(f"{data.dtype.kind}8[ns]").view("i8")
        out = [None if v == np.iinfo(np.int64).min else v for v in ints.tolist()]
    else:
        out = data.tolist()
    if mask is not None:
        mask = mask.reshape(len(mask), -1).any(axis=1)
        out = [None if m else v for v, m in zip(out, mask.tolist(), strict=True)]
    return out


def _assert_equal(arrow_table, records, names=None):
    names = list(records.dtype.names) if names is None else names
    assert arrow_table.column_names == names
    for name in names:
        assert _plain(arrow_table.column(name)) == _expected(records[name]), name


def test_to_arrow_types(table):
    schema = table.to_arrow().schema
    assert schema.field("c").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("ts").type == pa.timestamp("ns", tz="Europe/Paris")
    assert schema.field("ni").type == pa.int64()
    assert schema.field("s").type == pa.string()
    assert schema.field("cell").type == pa.list_(pa.list_(pa.float32(), 3), 2)


def test_to_arrow_equals_read(table):
    _assert_equal(table.to_arrow(), table.read())
    _assert_equal(table.to_arrow(start=100, stop=2100), table.read(100, 2100))
    got = table.to_arrow(columns=["nc", "i"])
    _assert_equal(got, table.read(columns=["nc", "i"]), ["nc", "i"])


def test_pyarrow_table_reads_the_stream(table):
    got = pa.table(table)
    _assert_equal(got, table.read())
    assert [b.num_rows for b in table.iter_batches()] == [1024, 1024, 952]


def test_iter_batches_groups_chunks(table):
    batches = list(table.iter_batches(["c", "i"], batch_rows=2000))
    assert [b.num_rows for b in batches] == [2048, 952]
    _assert_equal(pa.Table.from_batches(batches), table.read(columns=["c", "i"]), ["c", "i"])


@pytest.mark.parametrize("cond", ["i > 2500", "(ni > 10) & (i < 1500)", "c == 'y'"])
def test_to_arrow_where_equals_read_where(table, cond):
    _assert_equal(table.to_arrow(where=cond), table.read_where(cond))
    batches = list(table.iter_batches(where=cond))
    assert all(b.num_rows for b in batches)
    _assert_equal(pa.Table.from_batches(batches, table.to_arrow().schema), table.read_where(cond))


def test_to_arrow_where_condvars(table):
    got = table.to_arrow(where="i < lim", condvars={"lim": 7}, columns=["i", "ns"])
    _assert_equal(got, table.read_where("i < 7", columns=["i", "ns"]), ["i", "ns"])


def test_polars_reads_the_stream(table):
    pl = pytest.importorskip("polars")
    _assert_equal(pl.DataFrame(table).to_arrow(), table.read())


def test_duckdb_queries_the_table(table):
    duckdb = pytest.importorskip("duckdb")
    t = table  # noqa: F841 - DuckDB finds the table by its variable name
    got = duckdb.sql("select * from t").to_arrow_table()
    _assert_equal(got, table.read())
    count = duckdb.sql("select count(*), sum(ni), count(nc) from t where c = 'y'").fetchall()
    rows = table.read_where("c == 'y'")
    assert count == [(len(rows), int(rows["ni"].sum()), int(rows["nc"].count()))]


def test_empty_table(store):
    t = store.create_table("/e", SCHEMA)
    assert pa.table(t).num_rows == 0
    assert pa.table(t).schema == t.to_arrow().schema
    assert t.to_arrow(where="i > 0").num_rows == 0


def test_complex_has_no_arrow_type(store):
    t = store.create_table("/z", {"z": "c16"})
    with pytest.raises(colvault.SchemaError, match="'z'"):
        t.to_arrow()


def test_import_colvault_does_not_load_pyarrow():
    import subprocess
    import sys

    code = "import colvault, sys; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- Arrow in ---------------------------------------------------------------------------------


def test_create_table_from_arrow_round_trips(store, table):
    a = table.to_arrow()
    t2 = store.create_table("/copy", a)
    store.commit()
    assert t2.to_arrow().equals(a)
    assert t2.dtypes["c"] == "category"
    assert t2.column_specs(["ts"])[0].tz == "Europe/Paris"
    assert t2.dtypes["s"] == np.dtype("U3")  # as wide as the longest value


def test_create_table_from_a_colvault_table_streams(store, table):
    copy = store.create_table("/copy", table)  # a stream (__arrow_c_stream__), text spooled
    store.commit()
    _assert_equal(copy.to_arrow(), table.read())


def test_create_table_from_a_reader_without_text(store):
    schema = pa.schema([("x", pa.int64()), ("y", pa.float32())])
    batches = [pa.record_batch([pa.array(range(i, i + 10)), pa.array([0.5] * 10, pa.float32())],
                               schema=schema) for i in range(0, 50, 10)]  # fmt: skip
    t = store.create_table("/r", pa.RecordBatchReader.from_batches(schema, batches))
    store.commit()
    assert t.col("x").tolist() == list(range(50))
    assert t.column_specs(["x"])[0].nullable


def test_append_arrow_objects(store, table):
    a = table.to_arrow()
    table.append(a)
    table.append(a.to_batches()[0])
    table.append(pa.RecordBatchReader.from_batches(a.schema, a.to_batches()))
    store.commit()
    first = len(a.to_batches()[0])
    expected = pa.concat_tables([a, a, a.slice(0, first), a])
    _assert_equal(expected, table.read())


def test_polars_and_duckdb_in(store, table):
    pl = pytest.importorskip("polars")
    t = store.create_table("/pl", pl.DataFrame(table))
    store.commit()
    _assert_equal(t.to_arrow(), table.read())
    duckdb = pytest.importorskip("duckdb")
    src = table  # noqa: F841 - DuckDB finds it by name
    rel = duckdb.sql("select i, c, ns, ts from src where i < 100")
    t2 = store.create_table("/duck", rel)
    store.commit()
    _assert_equal(t2.to_arrow(), table.read(stop=100, columns=["i", "c", "ns", "ts"]))


@pytest.mark.parametrize(
    "typ, values",
    [
        (pa.list_(pa.string()), [["a"], ["b", "c"]]),
        (pa.struct([("a", pa.int8())]), [{"a": 1}, {"a": 2}]),
        (pa.float16(), np.array([1, 2], np.float16)),
        (pa.dictionary(pa.int8(), pa.int64()), [5, 6]),
        (pa.decimal128(5, 2), [Decimal("1.5"), Decimal("2")]),
    ],
)
def test_arrow_types_without_a_column_create_nothing(store, typ, values):
    if pa.types.is_dictionary(typ):
        arr = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int8()), pa.array(values))
    else:
        arr = pa.array(values, typ)
    data = pa.table({"ok": [1, 2], "bad": arr})
    with pytest.raises(colvault.SchemaError, match="'bad'"):
        store.create_table("/g/bad", data)
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    with pytest.raises(colvault.SchemaError, match="'bad'"):
        store.create_table("/g/bad", reader)
    store.commit()
    assert "/g/bad" not in store


def test_missing_cells_remove_the_new_table(store):
    cells = pa.array([[1.0, 2.0], None], pa.list_(pa.float64(), 2))
    with pytest.raises(colvault.SchemaError, match="'cell'"):
        store.create_table("/cells", pa.table({"cell": cells}))
    store.commit()
    assert "/cells" not in store


def test_append_checks_names_before_any_batch(store, table):
    a = table.to_arrow().drop_columns(["c"])
    with pytest.raises(colvault.SchemaError, match="missing column"):
        table.append(pa.RecordBatchReader.from_batches(a.schema, a.to_batches()))
    assert table.pending_rows == 0


def test_append_nulls_into_a_plain_column_is_refused(store):
    t = store.create_table("/p", {"x": "i4"})
    with pytest.raises(colvault.SchemaError, match=r"'x'.*missing"):
        t.append(pa.table({"x": pa.array([1, None], pa.int32())}))
    assert t.pending_rows == 0


def test_zone_mismatch_is_refused(store):
    t = store.create_table("/z", {"ts": "datetime64[ns, UTC]"})
    with pytest.raises(colvault.SchemaError, match="'ts'"):
        t.append(pa.table({"ts": pa.array([1, 2], pa.timestamp("ns"))}))


# -- property: Arrow -> colvault -> Arrow ----------------------------------------------------


_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)
_INTS = {
    "int8": (pa.int8(), -(2**7), 2**7 - 1),
    "int64": (pa.int64(), -(2**63) + 1, 2**63 - 1),
    "uint16": (pa.uint16(), 0, 2**16 - 1),
    "uint64": (pa.uint64(), 0, 2**64 - 1),
}


@st.composite
def _arrow_column(draw, n):
    kinds = [*_INTS, "float64", "float32", "bool", "text", "dict", "ts", "date", "bytes"]
    kind = draw(st.sampled_from([*kinds, "cells", "large"]))
    nulls = st.none() if kind not in ("float64", "float32") else st.nothing()

    def values(elements):
        return draw(st.lists(elements | nulls, min_size=n, max_size=n))

    if kind in _INTS:
        typ, lo, hi = _INTS[kind]
        return pa.array(values(st.integers(lo, hi)), typ)
    if kind.startswith("float"):
        width = 64 if kind == "float64" else 32
        return pa.array(values(st.floats(allow_nan=False, width=width)), pa.from_numpy_dtype(
            np.dtype(f"f{width // 8}")))  # fmt: skip
    if kind == "bool":
        return pa.array(values(st.booleans()), pa.bool_())
    if kind == "text":
        return pa.array(values(_TEXT), pa.string())
    if kind == "dict":
        return pa.array(
            values(st.sampled_from(["a", "bb", "é", ""])), pa.string()
        ).dictionary_encode()
    if kind == "ts":
        unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
        tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
        return pa.array(values(st.integers(-(10**15), 10**15)), pa.int64()).cast(
            pa.timestamp(unit, tz)
        )
    if kind == "cells":  # no missing cells: colvault's cells cannot be missing
        flat = draw(st.lists(st.integers(-100, 100), min_size=n * 6, max_size=n * 6))
        inner = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.int16()), 3)
        return pa.FixedSizeListArray.from_arrays(inner, 2)
    if kind == "large":
        return pa.array(values(_TEXT), pa.large_string())
    if kind == "date":
        return pa.array(values(st.integers(-(10**5), 10**5)), pa.int32()).cast(pa.date32())
    return pa.array(values(st.binary(max_size=5).map(lambda b: b.rstrip(b"\x00"))), pa.binary())


@st.composite
def _arrow_tables(draw):
    n = draw(st.integers(0, 40))
    ncols = draw(st.integers(1, 4))
    return pa.table({f"c{i}": draw(_arrow_column(n)) for i in range(ncols)})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_arrow_tables(), chunk=st.sampled_from([None, 7]), stream=st.booleans())
def test_arrow_round_trip(tmp_path_factory, data, chunk, stream):
    path = str(tmp_path_factory.mktemp("rt") / "s.colvault")
    with colvault.open(path, "w") as store:
        src = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=chunk))
        store.create_table("/t", src if stream else data)
    with colvault.open(path) as store:
        back = pa.table(store["/t"])
    assert back.num_rows == data.num_rows
    for name in data.column_names:
        assert _plain(back.column(name)) == _plain(data.column(name)), name


def test_batches_keep_their_snapshot_while_the_short_last_chunk_grows(store):
    t = store.create_table("/g", {"c": "category", "nc": {"dtype": "category", "nullable": True},
                                  "x": "i8"}, chunk_rows=1024)  # fmt: skip
    words = np.array(["a", "b", "c"])

    def rows(a, b):
        i = np.arange(a, b)
        return {"c": words[i % 3], "nc": np.ma.MaskedArray(words[i % 2], i % 5 == 0), "x": i}

    t.append(rows(0, 1500))
    store.commit()
    before = t.read()
    batches = t.iter_batches()
    first = next(batches)
    t.append(rows(1500, 1900))  # grows the short last chunk in place
    store.commit()
    got = pa.Table.from_batches([first, *batches])
    _assert_equal(got, before)
    _assert_equal(pa.table(t), t.read())


def test_a_stream_that_fails_half_way_appends_nothing(store, table):
    good = pa.table({"x": pa.array([1, 2], pa.int64())})
    bad = pa.table({"x": pa.array([3, None], pa.int64())})
    t = store.create_table("/p", {"x": "i8"}, chunk_rows=1024)
    big = pa.table({"x": pa.array(np.arange(5000))})
    batches = [*big.to_batches(max_chunksize=1500), *good.to_batches(), *bad.to_batches()]
    with pytest.raises(colvault.SchemaError, match="'x'"):
        t.append(pa.RecordBatchReader.from_batches(good.schema, batches))
    assert t.pending_rows == 0
    store.commit()
    assert len(t) == 0
    t.append(good)
    store.commit()
    assert t.col("x").tolist() == [1, 2]


def test_a_source_that_fails_half_way_appends_nothing(store):
    t = store.create_table("/p", {"x": "i8"})
    schema = pa.schema([pa.field("x", pa.int64(), nullable=False)])

    def batches():
        yield pa.record_batch([pa.array([1, 2, 3])], schema=schema)
        raise OSError("the network went away")

    with pytest.raises(OSError, match="network"):
        t.append(pa.RecordBatchReader.from_batches(schema, batches()))
    assert t.pending_rows == 0
    store.commit()
    assert len(t) == 0


def test_an_arrow_copy_keeps_which_columns_are_nullable(store, table):
    copy = store.create_table("/copy2", table.to_arrow())
    assert [(s.name, s.nullable) for s in copy.column_specs()] == [
        (s.name, s.nullable) for s in table.column_specs()
    ]
