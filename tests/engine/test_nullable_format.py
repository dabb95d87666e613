"""Missing values on disk: the format marker, catalogs made before them, nullable schemas."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import colvault
from colvault import SchemaError
from colvault.engine.schema import ColumnSpec, parse_columns


def _format(store_path) -> str:
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    try:
        return conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()[0]
    finally:
        conn.close()


def _make_old(store_path) -> None:
    """Turn a store's catalog into one made before missing values (no validity columns)."""
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    try:
        conn.execute("ALTER TABLE chunks DROP COLUMN null_count")
        conn.execute("ALTER TABLE chunks DROP COLUMN validity_length")
        conn.commit()
    finally:
        conn.close()


def _chunk_columns(store_path) -> set[str]:
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    try:
        return {r[1] for r in conn.execute("PRAGMA table_info(chunks)")}
    finally:
        conn.close()


def test_a_store_without_nullable_columns_keeps_format_1(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i4", "s": "U3", "c": "category"})
        t.append({"x": [1, 2], "s": ["a", "b"], "c": ["u", "v"]})
    assert _format(store_path) == "1"
    with colvault.open(store_path, "a") as store:
        store.create_table("/n", {"x": {"dtype": "i4", "nullable": True}})
        store.abort()
    assert _format(store_path) == "1"  # created, not committed
    with colvault.open(store_path, "a") as store:
        store.create_table("/n", {"x": {"dtype": "i4", "nullable": True}})
    assert _format(store_path) == "2"
    with colvault.open(store_path) as store:
        assert store["/t"].col("x").tolist() == [1, 2]


def test_unknown_format_is_refused(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_group("/g")
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'format'")
    conn.commit()
    conn.close()
    with pytest.raises(colvault.ColvaultError, match="unknown store format '3'"):
        colvault.open(store_path)


def test_old_catalog_reads_read_only_and_gains_columns_when_writable(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i4"}, chunk_rows=4)
        t.append({"x": np.arange(10)})
    _make_old(store_path)
    assert "null_count" not in _chunk_columns(store_path)
    with colvault.open(store_path) as store:  # read-only: not changed, still read
        assert store["/t"].col("x").tolist() == list(range(10))
    assert "null_count" not in _chunk_columns(store_path)
    with colvault.open(store_path, "r+") as store:
        assert store["/t"].col("x").tolist() == list(range(10))
        store["/t"].append({"x": [10, 11]})
    assert {"null_count", "validity_length"} <= _chunk_columns(store_path)
    assert _format(store_path) == "1"
    with colvault.open(store_path) as store:
        assert store["/t"].col("x").tolist() == list(range(12))


def test_a_reader_of_an_old_catalog_sees_columns_added_meanwhile(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i4"}).append({"x": [1]})
    _make_old(store_path)
    with colvault.open(store_path) as reader:
        assert reader["/t"].col("x").tolist() == [1]
        with colvault.open(store_path, "r+") as writer:
            t = writer.create_table("/n", {"x": "Int8"}, chunk_rows=4)
            t.append({"x": np.arange(6)})
        assert reader["/n"].col("x").tolist() == list(range(6))


@pytest.mark.parametrize(
    ("spelling", "dtype"),
    [
        ({"dtype": "i4", "nullable": True}, "<i4"),
        ({"dtype": "?", "nullable": True}, "|b1"),
        ({"dtype": "S4", "nullable": True}, "|S4"),
        ({"dtype": "U4", "nullable": True}, "<U4"),
        ("Int8", "|i1"),
        ("Int16", "<i2"),
        ("Int32", "<i4"),
        ("Int64", "<i8"),
        ("UInt8", "|u1"),
        ("UInt16", "<u2"),
        ("UInt32", "<u4"),
        ("UInt64", "<u8"),
        ("boolean", "|b1"),
        ({"dtype": "Int16"}, "<i2"),
    ],
)
def test_nullable_spellings(spelling, dtype):
    (spec,) = parse_columns({"x": spelling})
    assert spec.nullable
    assert spec.dtype.str == dtype
    assert spec.to_json()["nullable"] is True
    assert ColumnSpec.from_json(spec.to_json()) == spec


def test_nullable_category():
    (spec,) = parse_columns({"c": {"dtype": "category", "nullable": True}})
    assert spec.is_category and spec.nullable
    (plain,) = parse_columns({"c": "category"})
    assert not plain.nullable
    assert ColumnSpec.from_json(spec.to_json()) == spec


def test_schemas_without_nullable_columns_are_unchanged():
    cols = parse_columns({"a": "i4", "b": {"dtype": "f8"}, "c": ("f4", 3), "d": "category"})
    for c in cols:
        assert "nullable" not in c.to_json()
        assert not c.nullable
    assert cols[1] == ColumnSpec(cols[1].id, "b", np.dtype("f8"))
    (explicit,) = parse_columns({"a": {"dtype": "i4", "nullable": False}})
    assert not explicit.nullable


@pytest.mark.parametrize(
    "spelling",
    [
        {"dtype": "f8", "nullable": True},
        {"dtype": "M8[s]", "nullable": True},
        {"dtype": "m8[s]", "nullable": True},
        {"dtype": "c8", "nullable": True},
        {"dtype": "i4", "shape": 3, "nullable": True},
        {"dtype": "M8[ns]", "tz": "UTC", "nullable": True},
    ],
)
def test_only_scalar_bool_int_text_can_be_nullable(spelling):
    with pytest.raises(SchemaError, match=r"column 'x'.*nullable"):
        parse_columns({"x": spelling})


@pytest.mark.parametrize(
    ("spelling", "message"),
    [
        ({"dtype": "i4", "nullable": "yes"}, "'nullable' must be True or False"),
        ({"nullable": True}, "needs its 'dtype'"),
        ({"dtype": "i4", "null": True}, "unknown key"),
        ({"dtype": "Int8", "nullable": False}, "Int8 is nullable"),
        ("string", "fixed width"),
    ],
)
def test_bad_nullable_spellings(spelling, message):
    with pytest.raises(SchemaError, match=message):
        parse_columns({"x": spelling})


def test_dict_form_takes_shape_and_zone():
    shaped, zoned = parse_columns(
        {"a": {"dtype": "f4", "shape": (2,)}, "t": {"dtype": "M8[ns]", "tz": "Europe/Paris"}}
    )
    assert shaped.shape == (2,) and not shaped.nullable
    assert zoned.tz == "Europe/Paris"


def test_nullable_is_in_the_stored_schema(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "Int32", "y": "i4"})
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    (schema,) = conn.execute("SELECT schema FROM nodes WHERE path = '/t'").fetchone()
    conn.close()
    cols = json.loads(schema)["columns"]
    assert cols[0]["nullable"] is True
    assert "nullable" not in cols[1]
