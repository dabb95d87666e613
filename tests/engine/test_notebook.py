"""Notebook conveniences: keys/items, natural naming, pandas-like table views, array-like
columns and HTML reprs."""

from __future__ import annotations

import pytest

import colvault


def test_keys_items_follow_walk_order(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/sensors/run2", {"x": "i4"})
        store.create_table("/sensors/run1", {"x": "i4"})
        store.create_array("/a", "f8")
        walked = [n.path for n in store.walk()][1:]
        assert store.keys() == walked == ["/a", "/sensors", "/sensors/run1", "/sensors/run2"]
        pairs = list(store.items())
        assert [p for p, _ in pairs] == walked
        assert all(store[p] == node and node.path == p for p, node in pairs)
        assert all(p in store for p in walked)


def test_natural_naming(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/sensors/run1", {"x": "i4"})
        store.create_group("/sensors/name")  # shadowed by Group.name: reached by item only
        store.create_group("/sensors/my-run")  # not an identifier
        assert store.root.sensors.run1 == t
        assert store.root.sensors == store["/sensors"]
        assert store.root.sensors.name == "sensors"
        assert store.root.sensors["name"].path == "/sensors/name"
        assert "run1" in dir(store.root.sensors)
        assert "my-run" not in dir(store.root.sensors)
        with pytest.raises(AttributeError, match=r"/sensors.*'run9'"):
            store.root.sensors.run9  # noqa: B018
        with pytest.raises(AttributeError):
            store.root.sensors._hidden  # noqa: B018
        assert not hasattr(store.root, "__array__")
