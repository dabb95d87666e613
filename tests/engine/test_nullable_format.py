"""Missing values on disk: the format marker, catalogs made before them, nullable schemas."""

from __future__ import annotations

import json
import os
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


def _set_format(store_path, value: str) -> None:
    conn = sqlite3.connect(f"{store_path}/catalog.sqlite")
    try:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (value,))
        conn.commit()
    finally:
        conn.close()


def test_every_store_has_format_4_with_or_without_nullable_columns(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i4", "s": "U3", "c": "category"})
        t.append({"x": [1, 2], "s": ["a", "b"], "c": ["u", "v"]})
    assert _format(store_path) == "4"
    with colvault.open(store_path, "a") as store:
        store.create_table("/n", {"x": {"dtype": "i4", "nullable": True}}).append({"x": [None]})
    assert _format(store_path) == "4"
    with colvault.open(store_path) as store:
        assert store["/t"].col("x").tolist() == [1, 2]


@pytest.mark.parametrize("old", ["1", "2", "3"])
@pytest.mark.parametrize("mode", ["r", "a"])
def test_a_store_of_an_earlier_format_is_refused_with_what_to_do(store_path, old, mode):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i4"}).append({"x": [1]})
    _set_format(store_path, old)
    files = sorted(os.listdir(store_path))
    with pytest.raises(colvault.ColvaultError, match=f"format {old}, written by an earlier") as e:
        colvault.open(store_path, mode)
    assert "reads format 4 only" in str(e.value) and "export-hdf5" in str(e.value)
    assert sorted(os.listdir(store_path)) == files and _format(store_path) == old  # untouched


def test_unknown_format_is_refused(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_group("/g")
    _set_format(store_path, "9")
    with pytest.raises(colvault.ColvaultError, match="unknown store format '9'"):
        colvault.open(store_path)


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
