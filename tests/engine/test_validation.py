"""Bad input gets a named error and leaves the store exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

import colvault
from colvault import NodeError, SchemaError

SCHEMA = {
    "i": "i4",
    "u": "u1",
    "f": "f4",
    "d": "f8",
    "b": "?",
    "s": "U3",
    "raw": "S2",
    "t": "M8[s]",
    "cell": ("f8", (2,)),
}


def good(n: int = 3) -> dict[str, object]:
    return {
        "i": np.arange(n, dtype="i4"),
        "u": np.arange(n, dtype="u1"),
        "f": np.full(n, 0.5, "f4"),
        "d": np.linspace(0, 1, n),
        "b": np.ones(n, bool),
        "s": ["ab"] * n,
        "raw": [b"xy"] * n,
        "t": np.arange(n).astype("M8[s]"),
        "cell": np.zeros((n, 2)),
    }


@pytest.fixture
def table(store_path):
    store = colvault.open(store_path, "w")
    t = store.create_table("/t", SCHEMA)
    t.append(good())
    store.commit()
    yield t
    store.close()


def replace(**changes: object) -> dict[str, object]:
    batch = good()
    batch.update(changes)
    return batch


BAD_BATCHES = {
    "missing column": ({k: v for k, v in good().items() if k != "d"}, "missing column.*'d'"),
    "extra column": (replace(zzz=[1, 2, 3]), "unknown column.*zzz"),
    "unequal lengths": (replace(i=np.arange(4, dtype="i4")), "unequal lengths"),
    "float into int": (replace(i=[1.0, 2.0, 3.0]), "column 'i'.*integer"),
    "int out of range": (replace(u=[1, 2, 256]), "column 'u'.*out of range"),
    "negative into unsigned": (replace(u=[-1, 2, 3]), "column 'u'.*out of range"),
    "lossy float64 into float32": (replace(f=[0.1, 0.5, 0.25]), "column 'f'.*change"),
    "string too long": (replace(s=["ab", "abcd", "a"]), "column 's'.*longer than 3"),
    "bytes too long": (replace(raw=[b"abc", b"a", b"b"]), "column 'raw'.*longer than 2"),
    "str into bytes": (replace(raw=["ab", "cd", "ef"]), "column 'raw'.*bytes"),
    "int into bool": (replace(b=[0, 1, 0]), "column 'b'.*bool"),
    "text into float": (replace(d=["1", "2", "3"]), "column 'd'"),
    "bad date text": (replace(t=["2025-01-01", "nope", "2025-01-02"]), "column 't'"),
    "lossy datetime unit": (
        replace(t=np.array(["2025-01-01T00:00:00.5"] * 3, "M8[ms]")),
        "column 't'.*change",
    ),
    "wrong cell shape": (replace(cell=np.zeros((3, 3))), "column 'cell'.*shape"),
    "scalar column": (replace(d=1.0), "column 'd'.*scalar"),
    "complex into float": (replace(d=np.ones(3, complex)), "column 'd'"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_batch_is_rejected_whole(table, case):
    batch, message = BAD_BATCHES[case]
    before = table.read()
    with pytest.raises(SchemaError, match=message) as info:
        table.append(batch)
    assert "/t" in str(info.value)
    assert table.pending_rows == 0
    table.flush()
    assert np.array_equal(table.read(), before)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([(1, 2)], "row 0 has 2 values"),
        (["abc"], "row 0 is str"),
        (42, "not int"),
    ],
)
def test_bad_row_lists(table, rows, message):
    with pytest.raises(SchemaError, match=message):
        table.append(rows)
    assert table.pending_rows == 0


def test_lossless_casts_are_accepted(table):
    table.append(replace(i=[1, 2, 3], u=np.array([1, 2, 255], "i8"), f=[0.5, 0.25, 1e3]))
    table.flush()
    assert table.cols.u[-1] == 255
    assert table.cols.f.dtype == np.float32


@pytest.mark.parametrize(
    "schema, message",
    [
        ({}, "at least one column"),
        ({"x": "O"}, "not supported"),
        ({"x": "f2"}, "not supported"),
        ({"x": "M8"}, "needs a unit"),
        ({"x": "not-a-dtype"}, "not a dtype"),
        ({"": "f8"}, "non-empty"),
        ({"a\x00b": "f8"}, "NUL"),
        ({"x": ("f8", (0,))}, "positive"),
        ([("x", "f8")], "must be a dict"),
    ],
)
def test_bad_schemas(store_path, schema, message):
    with colvault.open(store_path, "w") as store:
        with pytest.raises(SchemaError, match=message):
            store.create_table("/t", schema)
        assert store.ls() == []


@pytest.mark.parametrize(
    "path", ["a b", "/a/../b", "/a/./b", "..", "a//b", "tab\tle", "ünï", "x/y*", 42]
)
def test_bad_node_names(store_path, path):
    with colvault.open(store_path, "w") as store:
        store.create_group("/ok")
        store.commit()
        with pytest.raises(NodeError):
            store.create_table(path, {"x": "f8"})
        with pytest.raises(NodeError):
            store.create_group(path)
        with pytest.raises(NodeError):
            store.rename("/ok", path)
        assert store.ls() == ["ok"]
    with colvault.open(store_path) as store:
        assert [n.path for n in store.walk()] == ["/", "/ok"]


def test_node_conflicts(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "f8"})
        with pytest.raises(NodeError, match="already exists"):
            store.create_table("/t", {"x": "f8"})
        with pytest.raises(NodeError, match="cannot hold"):
            store.create_group("/t/sub")
        with pytest.raises(NodeError, match="root"):
            store.remove("/")
        with pytest.raises(NodeError, match="no node"):
            store["/missing"]
        with pytest.raises(NodeError, match="into itself"):
            store.create_group("/g")
            store.rename("/g", "/g/h")
        assert sorted(store.ls()) == ["g", "t"]
