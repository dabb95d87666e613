"""Arrow out of tables: ``to_arrow``, ``iter_batches`` and the PyCapsule stream that pyarrow,
Polars and DuckDB read, checked value by value against ``Table.read``."""

from __future__ import annotations

import numpy as np
import pytest

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
