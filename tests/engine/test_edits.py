"""Deletes and updates of committed rows: delete_where, remove_rows, update_where,
modify_column, modify_rows."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import colvault
from colvault import ColvaultError, NodeError, SchemaError
from colvault.engine import seam as seam_mod

from .test_powercut import PowerCut, RecordingSeam

SCHEMA = {"x": "i8", "y": "f8", "c": "category", "n": {"dtype": "i4", "nullable": True}}


def make(store: colvault.Store, n: int = 35, chunk_rows: int = 10) -> colvault.Table:
    t = store.create_table("/t", SCHEMA, chunk_rows=chunk_rows)
    t.append(
        {
            "x": np.arange(n),
            "y": np.arange(n) * 1.5,
            "c": [f"k{i % 3}" for i in range(n)],
            "n": [None if i % 5 == 0 else i for i in range(n)],
        }
    )
    return t


def segment_bytes(path: str) -> int:
    data = os.path.join(path, "data")
    return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))


def test_delete_where_is_pending_until_the_commit_and_rows_are_dense_again(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store)
        before = store.commit()
        assert t.delete_where("(x > 3) & (x < 8) | (x == 20)") == 5
        assert len(t) == 35 and store.has_pending  # not yet
        with colvault.open(store_path) as other:
            assert len(other["/t"]) == 35
        after = store.commit("five gone")
        want = [i for i in range(35) if not (3 < i < 8 or i == 20)]
        assert t.col("x").tolist() == want and len(t) == 30
        assert t[4]["x"] == 8  # row numbers are dense again
        assert t.count_where("x > 20") == 14 and t.read_where("x == 21")["y"].tolist() == [31.5]
        assert t.col("n").mask.tolist() == [i % 5 == 0 for i in want]
        assert t.col("c").tolist() == [f"k{i % 3}" for i in want]
        assert store.verify().ok
        (change,) = store.history(limit=1)[0].changes
        assert (change.action, change.rows_removed, change.rows_added) == ("changed", 5, 0)
        assert t.delete_where("x > 1000") == 0 and not store.has_pending
    with colvault.open(store_path, as_of=before) as past:
        assert past["/t"].col("x").tolist() == list(range(35))
    with colvault.open(store_path, as_of=after) as past:
        assert past["/t"].col("x").tolist() == want


def test_abort_drops_an_edit(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store)
        store.commit()
        t.delete_where("x < 30")
        store.abort()
        assert store.commit() and len(t) == 35 and store.verify().ok


def test_remove_rows_as_pytables(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store, 20)
        store.commit()
        assert t.remove_rows(0) == 1
        store.commit()
        assert t.remove_rows(-1) == 1
        store.commit()
        assert t.col("x").tolist() == list(range(1, 19))
        assert t.remove_rows(0, 10, 3) == 4  # rows 0, 3, 6, 9: x 1, 4, 7, 10
        store.commit()
        assert t.col("x").tolist() == [2, 3, 5, 6, 8, 9, *list(range(11, 19))]
        with pytest.raises(IndexError, match="row 14 is out of range"):
            t.remove_rows(14)


def test_update_where_sets_constants_and_aligned_values(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store)
        store.commit()
        assert t.update_where("x >= 30", {"y": -1.0, "c": "new", "n": None}) == 5
        store.commit()
        tail = t.read()[-5:]
        assert tail["y"].tolist() == [-1.0] * 5 and tail["c"].tolist() == ["new"] * 5
        assert t.col("n").mask[-5:].all() and len(t) == 35
        assert t.update_where("x < 3", {"y": [10.0, 11.0, 12.0], "n": [7, None, 9]}) == 3
        store.commit()
        head = t.read()[:3]
        assert head["y"].tolist() == [10.0, 11.0, 12.0]
        assert t.col("n")[:3].tolist() == [7, None, 9]
        assert t.col("x").tolist() == list(range(35))
        (change,) = store.history(limit=1)[0].changes
        assert change.rows_updated == 3 and change.rows_removed == 0
        assert t.count_where("y < 0") == 5  # zone maps of the rewritten chunks are right


def test_bad_updates_raise_and_change_nothing(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store)
        store.commit()
        with pytest.raises(SchemaError, match="no column 'nope'"):
            t.update_where("x < 3", {"nope": 1})
        with pytest.raises(SchemaError, match="2 values for 3 rows"):
            t.update_where("x < 3", {"y": [1.0, 2.0]})
        with pytest.raises(SchemaError):
            t.update_where("x < 3", {"x": "text"})
        with pytest.raises(SchemaError, match="column 'x'"):
            t.update_where("x < 3", {"x": None})  # not nullable
        with pytest.raises(IndexError, match="out of range"):
            t.modify_column("y", [1.0, 2.0], start=34)
        assert not store.has_pending and t.col("y").tolist() == [i * 1.5 for i in range(35)]


def test_modify_column_and_modify_rows(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store)
        store.commit()
        assert t.modify_column("x", [100, 101], start=9) == 2  # across a chunk boundary
        store.commit()
        assert t.col("x")[8:12].tolist() == [8, 100, 101, 11]
        rows = np.array([(7, 7.5, "q", 1)], dtype=[("x", "i8"), ("y", "f8"), ("c", "U1"),
                                                    ("n", "i4")])  # fmt: skip
        assert t.modify_rows(1, rows) == 1
        store.commit()
        assert t.read()[1].tolist() == (7, 7.5, "q", 1)


def test_one_edit_per_table_per_commit_and_appends_land_after(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store)
        store.commit()
        t.delete_where("x < 5")
        with pytest.raises(ColvaultError, match="uncommitted delete, update"):
            t.update_where("x > 5", {"y": 0.0})
        t.append({"x": [100], "y": [1.0], "c": ["z"], "n": [None]})
        store.commit()
        assert t.col("x").tolist() == [*list(range(5, 35)), 100]


def test_an_edit_of_a_table_changed_by_another_writer_applies_nothing(store_path):
    with colvault.open(store_path, "w") as store:
        make(store)
    with colvault.open(store_path, "a") as one, colvault.open(store_path, "a") as two:
        one["/t"].delete_where("x < 10")
        one.create_group("/also")
        two["/t"].append({"x": [99], "y": [0.0], "c": ["k"], "n": [1]})
        two.commit()
        with pytest.raises(NodeError, match="changed by another process"):
            one.commit()
        assert "/also" not in one and len(one["/t"]) == 36
        assert one["/t"].delete_where("x < 10") == 10  # against the new commit: it lands
        one.commit()
    with colvault.open(store_path) as store:
        assert store["/t"].col("x").tolist() == [*list(range(10, 35)), 99]


def test_an_edit_rewrites_only_the_chunks_it_touches(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "y": "f8"}, chunk_rows=1000)
        t.append({"x": np.arange(50_000), "y": np.random.default_rng(1).random(50_000)})
        store.commit()
        chunk = t.storage()[1].stored_bytes / t.storage()[1].chunks  # ~8 kB of y per chunk
        before = segment_bytes(store_path)
        assert t.delete_where("x == 25_500") == 1
        store.commit()
        grown = segment_bytes(store_path) - before
        assert 0 < grown < 3 * chunk  # one chunk of each column, not 50
        assert t.col("x").tolist() == [i for i in range(50_000) if i != 25_500]


def test_compact_after_edits_keeps_every_kept_commit(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store, 300, chunk_rows=50)
        first = store.commit()
        t.delete_where("x % 2 == 0")
        second = store.commit()
        t.update_where("x > 250", {"y": 0.0})
        third = store.commit()
        want = {c: None for c in (first, second, third)}
        for c in want:
            with colvault.open(store_path, as_of=c) as past:
                want[c] = past["/t"].read().tolist()
        full = segment_bytes(store_path)
        store.compact()
        for c, rows in want.items():
            with colvault.open(store_path, as_of=c) as past:
                assert past["/t"].read().tolist() == rows
        store.expire(third)
        store.compact()
        assert segment_bytes(store_path) < full
        assert t.read().tolist() == want[third] and store.verify().ok
        assert t.storage()[0].chunks == 3  # 150 rows re-cut into full chunks of 50


def _edit_rows(store: colvault.Store) -> None:
    store["/t"].delete_where("x % 3 == 0")
    store["/t"].append({"x": [1000, 1001], "y": [0.5, 0.5], "c": ["e", "e"], "n": [1, None]})
    store["/u"].update_where("x > 150", {"y": -1.0})


def _change_columns(store: colvault.Store) -> None:
    store["/t"].add_column("z", "f8", expr="x * 2.0")
    store["/u"].remove_column("y")


def _commit_staged(store: colvault.Store) -> None:
    staged = [store["/u"].stage({"x": np.arange(k, k + 90), "y": np.ones(90)}) for k in (1, 2)]
    store.session.staged.extend(staged)  # what commit_staged() does before its commit()


def _expire_then(store: colvault.Store) -> None:
    store["/t"].delete_where("x < 100")
    store.commit()
    store.expire(store.commit())


#: What each scenario does before the step under test (untimed by the seam), and that step:
#: a commit, or a compaction.
POWER_CUT = {
    "delete, update, append": (_edit_rows, "commit"),
    "add and remove columns": (_change_columns, "commit"),
    "commit staged rows": (_commit_staged, "commit"),
    "expire, then compact": (_expire_then, "compact"),
}


@pytest.mark.parametrize("scenario", sorted(POWER_CUT))
def test_a_power_cut_at_any_step_leaves_the_store_before_or_after(tmp_path, scenario):
    """The power cut before each durable step of a commit (or a compaction) in turn (the seam
    of test_powercut): the store reopens with the rows before the step or after it, never
    between, and verify() finds nothing."""
    prepare, step = POWER_CUT[scenario]
    template = tmp_path / "a.colvault"
    with colvault.open(template, "w", segment_bytes=16 << 10) as store:
        make(store, 300, chunk_rows=50)
        store.create_table("/u", {"x": "i8", "y": "f8"}, chunk_rows=40).append(
            {"x": np.arange(200), "y": np.zeros(200)}
        )

    def state(store: colvault.Store) -> tuple[list, list]:
        return store["/t"].read().tolist(), store["/u"].read().tolist()

    def run(k: int | None) -> tuple[str, RecordingSeam, tuple[list, list]]:
        path = tmp_path / f"cut{k}"
        shutil.copytree(template, path)
        rec = RecordingSeam(cut_at=k)
        store = colvault.open(path, "a", segment_bytes=16 << 10)
        try:
            with seam_mod.installed(rec):
                prepare(store)
                before = state(store)
                with rec.counted():
                    finish = store.commit if step == "commit" else store.compact
                    if k is None:
                        finish()
                    else:
                        with pytest.raises(PowerCut):
                            finish()
        finally:
            if not store.closed:
                store.session.release()
        rec.lose_power()
        return str(path), rec, before

    path, dry, _ = run(None)
    with colvault.open(path) as store:
        after = state(store)
    steps = len(dry.ops)
    print(f"{scenario}: {steps} durable steps: {dry.ops}")
    assert steps >= 1 and dry.committed, dry.ops  # staged rows: only the sqlite COMMIT is left
    for k in range(steps + 1):
        path, rec, before = run(k)
        want = after if rec.committed else before
        for mode in ("a", "r"):
            with colvault.open(path, mode) as store:
                assert state(store) == want, f"{scenario}: cut at step {k}, mode {mode}"
                assert store.verify().ok, f"{scenario}: cut at step {k}"


# -- column changes --------------------------------------------------------------------------------


def test_add_column_by_fill_values_or_expression(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store, 25)
        before = store.commit()
        t.add_column("z", "f8", expr="x * 2 + y")
        assert t.columns == ["x", "y", "c", "n"]  # pending until the commit
        store.commit()
        t.add_column("f", "i4", fill=7)
        store.commit()
        t.add_column("v", {"dtype": "i2", "nullable": True}, values=[None, *range(1, 25)])
        store.commit()
        t.add_column("e", {"dtype": "U2", "nullable": True})
        store.commit()
        assert t.columns == ["x", "y", "c", "n", "z", "f", "v", "e"]
        assert t.col("z").tolist() == [i * 2 + i * 1.5 for i in range(25)]
        assert t.col("f").tolist() == [7] * 25 and t.col("v").tolist() == [None, *range(1, 25)]
        assert t.col("e").mask.all() and t.count_where("z > 50") == 10
        assert t.storage()[4].chunks == 3  # aligned with the table's chunks of 10 rows
        t.append({"x": [99], "y": [0.0], "c": ["k"], "n": [1], "z": [1.0], "f": [1], "v": [2],
                  "e": ["ab"]})  # fmt: skip
        store.commit()
        assert len(t) == 26 and t.read()[-1].tolist() == (99, 0.0, "k", 1, 1.0, 1, 2, "ab")
        assert store.history(limit=1)[0].changes[0].rows_added == 1
        assert store.verify().ok
    with colvault.open(store_path, as_of=before) as past:
        assert past["/t"].columns == ["x", "y", "c", "n"]


def test_rename_and_remove_columns(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store, 25)
        before = store.commit()
        t.rename_column("y", "why")
        store.commit()
        t.remove_column("c")
        change = store.commit()
        assert t.columns == ["x", "why", "n"] and t.read_where("why > 33")["x"].tolist() == [
            23,
            24,
        ]
        log = store.history(limit=2)
        assert log[0].id == change and all(c.changes[0].columns_changed for c in log)
        t.append({"x": [1], "why": [2.0], "n": [None]})
        store.commit()
        assert len(t) == 26
    with colvault.open(store_path, as_of=before) as past:
        assert past["/t"].columns == ["x", "y", "c", "n"]
        assert past["/t"].col("c").tolist() == [f"k{i % 3}" for i in range(25)]


def test_column_changes_refuse_what_they_cannot_do(store_path):
    with colvault.open(store_path, "w") as store:
        t = make(store, 5)
        with pytest.raises(ColvaultError, match="not committed yet"):
            t.add_column("z", "f8", fill=1.0)
        store.commit()
        with pytest.raises(SchemaError, match="already has a column 'x'"):
            t.add_column("x", "f8", fill=1.0)
        with pytest.raises(SchemaError, match="give fill=, values= or expr="):
            t.add_column("z", "f8")
        with pytest.raises(SchemaError, match="one of fill=, values= and expr="):
            t.add_column("z", "f8", fill=1.0, expr="x")
        with pytest.raises(SchemaError, match="4 values for column 'z', not 5"):
            t.add_column("z", "f8", values=[1.0] * 4)
        with pytest.raises(colvault.QueryError):
            t.add_column("z", "f8", expr="nope + 1")
        with pytest.raises(SchemaError, match="no column 'nope'"):
            t.rename_column("nope", "z")
        with pytest.raises(SchemaError, match="already has a column 'y'"):
            t.rename_column("x", "y")
        assert not store.has_pending
        t.append({"x": [5], "y": [0.0], "c": ["k"], "n": [1]})
        with pytest.raises(ColvaultError, match="rows appended and not committed"):
            t.remove_column("y")
        store.commit()
        t.remove_column("y")
        with pytest.raises(ColvaultError, match="uncommitted column change: commit"):
            t.append({"x": [6], "y": [0.0], "c": ["k"], "n": [1]})
        store.abort()
        assert t.columns == ["x", "y", "c", "n"] and len(t) == 6
        single = store.create_table("/one", {"a": "i4"})
        store.commit()
        with pytest.raises(SchemaError, match="only column"):
            single.remove_column("a")


def test_kill_9_while_editing_leaves_the_last_or_the_next_committed_state(tmp_path):
    """A child appends, deletes, updates, adds and removes a column, expires and compacts, and
    commits staged rows in
    a loop (``_child_editor.py``) and is killed with ``kill -9`` after a random delay, many
    times over the same store: each time the store reopens (read-only, then for writing, which
    runs recovery) with the rows of the last commit the child reported or of the one it was
    making, and verify() finds nothing."""
    import random
    import time

    from ._child_editor import digest
    from ._spawn import Child

    path = str(tmp_path / "e.colvault")
    with colvault.open(path, "w") as store:
        store.create_table("/e", {"x": "i8", "y": "f8"}, chunk_rows=1000)
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)

    def state() -> str:
        with colvault.open(path) as store:
            return digest({k: np.asarray(v) for k, v in store["/e"].read_columns().items()})

    for kill in range(int(os.environ.get("COLVAULT_CRASH_KILLS", "12"))):
        before = state()
        delay = rng.uniform(0.0, 1.5)
        with Child("_child_editor.py", path) as child:
            lines = [child.line()]
            time.sleep(delay)
            child.kill()
            lines += child.rest()
        committed = [before] + [h.split()[1] for h in lines if h.startswith("committed")]
        pending = lines[-1].split()[1] if lines[-1].startswith("pending") else None
        allowed = {committed[-1], *([pending] if pending else [])}
        where = f"kill {kill} (seed {seed}, delay {delay:.2f} s, last lines {lines[-2:]})"
        for mode in ("r", "a", "r"):
            with colvault.open(path, mode) as store:
                got = digest({k: np.asarray(v) for k, v in store["/e"].read_columns().items()})
                assert got in allowed, where
                assert store.verify().ok, where
