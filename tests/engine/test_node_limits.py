"""Node paths have a depth and a length limit (names.MAX_PATH_DEPTH, MAX_PATH_LENGTH): every
public edge that takes a path refuses a longer one with a NodeError that says so, and the
largest allowed paths work end to end."""

from __future__ import annotations

import numpy as np
import pytest

import colvault
from colvault import NodeError
from colvault.engine.names import MAX_PATH_DEPTH, MAX_PATH_LENGTH, normalize_path

DEEPEST_GROUP = "/" + "/".join(["g"] * (MAX_PATH_DEPTH - 1))
TOO_DEEP = DEEPEST_GROUP + "/g/t"  # one level more than allowed
DEPTH_MESSAGE = f"has {MAX_PATH_DEPTH + 1} levels; the limit is {MAX_PATH_DEPTH}"


def test_normalize_path_limits():
    assert normalize_path(DEEPEST_GROUP + "/t/").count("/") == MAX_PATH_DEPTH
    with pytest.raises(NodeError, match=DEPTH_MESSAGE):
        normalize_path(TOO_DEEP)
    with pytest.raises(NodeError, match="has 10001 levels; the limit is 256"):
        normalize_path("/".join(["g"] * 10_000) + "/t")
    longest = "/" + "n" * (MAX_PATH_LENGTH - 1)
    assert normalize_path(longest + "/") == longest
    with pytest.raises(NodeError, match=f"is {MAX_PATH_LENGTH + 1} characters long; the limit"):
        normalize_path(longest + "n")
    with pytest.raises(NodeError, match="characters long"):
        normalize_path("x" * 10_000_000)


def test_every_edge_refuses_a_path_too_deep(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_group("/g")
        for make in (
            lambda: store.create_group(TOO_DEEP),
            lambda: store.create_group(TOO_DEEP, exist_ok=True),
            lambda: store.create_table(TOO_DEEP, {"x": "f8"}),
            lambda: store.create_array(TOO_DEEP, "f8"),
            lambda: store.rename("/g", TOO_DEEP),
            lambda: store[TOO_DEEP],
            lambda: store.ls(TOO_DEEP),
            lambda: list(store.walk(TOO_DEEP)),
            lambda: store.remove(TOO_DEEP),
        ):
            with pytest.raises(NodeError, match=DEPTH_MESSAGE):
                make()
        assert TOO_DEEP not in store
        assert store.get(TOO_DEEP) is None
        long_name = "/g/" + "n" * MAX_PATH_LENGTH
        with pytest.raises(NodeError, match="characters long; the limit is 4096"):
            store.create_table(long_name, {"x": "f8"})
        store.commit()
        assert [n.path for n in store.walk()] == ["/", "/g"]


def test_the_deepest_and_longest_paths_work(store_path):
    deepest = DEEPEST_GROUP + "/t"
    longest = "/" + "a" * 2000 + "/" + "b" * (MAX_PATH_LENGTH - 2004) + "/t"
    assert len(longest) == MAX_PATH_LENGTH
    values = np.linspace(-1.0, 1.0, 1000)
    with colvault.open(store_path, "w") as store:
        store.create_table(deepest, {"x": "f8"}).append({"x": values})
        store.create_array(longest, "i4").append(np.arange(10, dtype="i4"))
        store.commit()
        assert store[deepest].count_where("x > 0") == int((values > 0).sum())
    with colvault.open(store_path, "r+") as store:
        t = store[deepest]
        np.testing.assert_array_equal(t.read_where("x < 0")["x"], values[values < 0])
        np.testing.assert_array_equal(store[longest].read(), np.arange(10))
        paths = [n.path for n in store.walk()]
        assert len(paths) == 1 + MAX_PATH_DEPTH + 3  # root, the chain of groups, a, b, t
        assert paths[-1] == deepest
        assert store.ls(DEEPEST_GROUP) == ["t"]
        store.rename(deepest, DEEPEST_GROUP + "/u")  # a move within the limit
        store.commit()
    with colvault.open(store_path) as store:
        np.testing.assert_array_equal(store[DEEPEST_GROUP + "/u"].col("x"), values)


def test_a_move_may_not_push_a_subtree_past_the_limit(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/top/sub/t", {"x": "f8"})
        with pytest.raises(NodeError, match=DEPTH_MESSAGE):
            store.rename("/top", DEEPEST_GROUP[: -len("/g")] + "/top")  # t: one level too deep
