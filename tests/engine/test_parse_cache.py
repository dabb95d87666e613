"""The cache of parsed conditions: same text, another schema or other condvars, another answer."""

from __future__ import annotations

import numpy as np
import pytest

import colvault
from colvault import QueryError
from colvault.engine.query import parse as parse_module


def test_a_condition_follows_the_columns_through_commits_aborts_and_as_of(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "y": "f8"})
        t.append({"x": np.arange(10), "y": np.arange(10) * 0.5})
        before = store.commit()
        assert t.count_where("x > 4") == 5  # parsed and kept
        t.rename_column("x", "z")
        store.abort()
        assert t.count_where("x > 4") == 5  # aborted: x is still there
        t.rename_column("x", "z")
        store.commit()
        with pytest.raises(QueryError, match="x"):
            t.count_where("x > 4")
        assert t.count_where("z > 4") == 5
        t.remove_column("y")
        t2 = store["/t"]
        store.commit()
        with pytest.raises(QueryError, match="y"):
            t2.count_where("y > 1")
    with colvault.open(store_path, as_of=before) as past:  # the old columns, the old answer
        assert past["/t"].count_where("x > 4") == 5 and past["/t"].count_where("y > 1") == 7


def test_another_process_s_column_change_reaches_a_kept_condition(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i4"}).append({"x": np.arange(10, dtype="i4")})
    with colvault.open(store_path) as reader:
        t = reader["/t"]
        assert t.count_where("x >= 3") == 7
        with colvault.open(store_path, "a") as writer:
            writer["/t"].add_column("w", "f8", expr="x * 2.0")
            writer.commit()
        assert reader["/t"].count_where("(x >= 3) & (w < 10)") == 2


def test_scalar_condvars_are_part_of_the_key_and_the_cache_is_bounded(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "f": "f8"})
        t.append({"x": np.arange(1000), "f": np.arange(1000) - 500.0})
        store.commit()
        assert t.count_where("x > lo", {"lo": 5}) == 994
        assert t.count_where("x > lo", {"lo": 900}) == 99
        assert t.count_where("x > lo", {"lo": 5}) == 994  # kept, and still its own answer
        # equal values of other types or signs parse apart: -0.0 divides to -inf
        assert t.count_where("f / c > 0", {"c": 0.0}) == 499
        assert t.count_where("f / c > 0", {"c": -0.0}) == 500
        assert t.count_where("x == c", {"c": 3}) == t.count_where("x == c", {"c": 3.0}) == 1
        assert t.count_where("x < c", {"c": np.int64(7)}) == 7
        assert t.count_where("x < c", {"c": 2.5}) == 3
        # a non-scalar condvar (a list) is parsed every time and kept nowhere
        n = len(parse_module._PARSED)
        with pytest.raises(QueryError):
            t.count_where("x < c", {"c": [1, 2]})
        assert len(parse_module._PARSED) == n
        for k in range(parse_module._PARSED_MAX + 50):
            assert t.count_where(f"x < {k}") == min(k, 1000)
        assert len(parse_module._PARSED) <= parse_module._PARSED_MAX


def test_a_negative_zero_is_not_taken_for_a_zero(store_path):
    """The defect: ``f / 0.0`` then ``f / -0.0`` gave the first answer twice (the typed trees
    compared equal, and the kernel description was cached by tree)."""
    f = np.arange(1000) - 500.0
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"f": "f8"})
        t.append({"f": f})
        store.commit()
        with np.errstate(divide="ignore", invalid="ignore"):
            for text in ("f / 0.0 > 0", "f / -0.0 > 0", "f * 0.0 == -0.0", "f / c > 0"):
                for c in (0.0, -0.0, np.float32(-0.0)):
                    want = np.count_nonzero(eval(text, {"f": f, "c": c}))
                    assert t.count_where(text, {"c": c}) == want, (text, c)


def test_a_kept_compiled_condition_is_one_table_s_columns(store_path):
    """Two tables of the same names and dtypes have equal trees but not their column ids:
    each query reads its own table's chunks, a column dropped and added again included; and
    one query's choice of numpy does not leak into another's."""
    from colvault.engine.query.execute import Plan

    with colvault.open(store_path, "w") as store:
        a = store.create_table("/a", {"x": "i8", "y": "f8"})
        b = store.create_table("/b", {"x": "i8", "y": "f8"})
        a.append({"x": np.arange(10), "y": np.zeros(10)})
        b.append({"x": np.arange(100, 120), "y": np.ones(20)})
        store.commit()
        assert a.count_where("x > 4") == 5 and b.count_where("x > 4") == 20
        plans = [Plan(t._view(), "x > 4", None) for t in (a, b)]
        assert plans[0].expr == plans[1].expr  # equal trees, one key of the compiled cache
        assert [p.condition.specs[0].id for p in plans] == [
            t._schema.column("x").id for t in (a, b)
        ]
        b.remove_column("x")
        store.commit()
        b.add_column("x", "i8", fill=7)
        store.commit()
        assert b.count_where("x > 4") == 20 and b.count_where("x > 7") == 0
        assert a.count_where("x > 4") == 5
