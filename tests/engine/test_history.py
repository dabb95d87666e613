"""History: commits with ids and messages, tags, reading the store as of a commit, expiry."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault
from colvault import ColvaultError, ReadOnlyError


def segment_bytes(path: str) -> int:
    data = os.path.join(path, "data")
    return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))


def snapshot(store: colvault.Store) -> dict[str, Any]:
    """Everything a reader sees: nodes, their rows and attrs, the root's attrs and objects."""
    out: dict[str, Any] = {"/": (dict(store.attrs), dict(store.objects.items()))}
    for path, node in store.items():
        rows = node.read().tolist() if isinstance(node, colvault.Table) else None
        out[path] = (type(node).__name__, rows, dict(node.attrs))
    return out


def test_commit_returns_increasing_ids_and_keeps_its_message(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"})
        first = store.commit("made /t")
        assert store.commit() == first  # nothing pending: no commit, the last one's id
        t.append({"x": [1, 2]})
        second = store.commit("two rows")
        assert second > first and store.flush() == second
        log = store.history()
        assert [c.id for c in log[:2]] == [second, first]
        assert [c.message for c in log[:2]] == ["two rows", "made /t"]
        assert log[-1].message == "created" and log[-1].changes == ()
        assert all(c.time.tzinfo is dt.UTC for c in log)
        assert abs(log[0].time.timestamp() - time.time()) < 60


def test_history_says_what_each_commit_changed(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/a/t", {"x": "i8"})
        t.append({"x": [1, 2, 3]})
        made = store.commit()
        t.append({"x": [4]})
        grew = store.commit()
        store.rename("/a/t", "/b/u")
        moved = store.commit()
        store.remove("/b/u")
        gone = store.commit()
        log = {c.id: {ch.path: ch for ch in c.changes} for c in store.history()}
        assert log[made]["/a"].action == "created" and log[made]["/a"].kind == "group"
        assert (log[made]["/a/t"].action, log[made]["/a/t"].rows_added) == ("created", 3)
        assert (log[grew]["/a/t"].action, log[grew]["/a/t"].rows_added) == ("changed", 1)
        assert log[moved]["/b/u"].action == "renamed" and log[moved]["/b/u"].old_path == "/a/t"
        assert (log[gone]["/b/u"].action, log[gone]["/b/u"].rows_removed) == ("removed", 4)
        assert [c.id for c in store.history("/a/t")] == [moved, grew, made]
        assert [c.id for c in store.history("/b")] == [gone, moved]
        assert [c.id for c in store.history(limit=2)] == [gone, moved]


def test_tags_name_commits(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"})
        t.append({"x": [1]})
        one = store.commit()
        t.append({"x": [2]})
        two = store.commit()
        assert store.tag("latest") == two and store.tag("first", one) == one
        assert store.tags == {"first": one, "latest": two}
        with pytest.raises(ColvaultError, match="already has a tag 'first'"):
            store.tag("first")
        with pytest.raises(ColvaultError, match="no commit 99"):
            store.tag("later", 99)
        store.remove_tag("latest")
        with pytest.raises(KeyError, match="no tag 'latest'"):
            store.remove_tag("latest")
        assert store.tags == {"first": one}
    with colvault.open(store_path, as_of="first") as past:
        assert past["/t"].col("x").tolist() == [1] and past.as_of == one
    with pytest.raises(ColvaultError, match="no tag 'nope'"):
        colvault.open(store_path, as_of="nope")


def test_as_of_reads_nodes_rows_attrs_and_objects_as_they_were(store_path):
    states = {}
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "s": "U4", "c": "category"})
        t.append({"x": [1, 2], "s": ["a", "b"], "c": ["u", "v"]})
        t.attrs["unit"] = "m"
        store.objects["cfg"] = {"k": 1}
        states[store.commit()] = None
        t.append({"x": [3], "s": ["c"], "c": ["w"]})
        t.attrs["unit"] = "km"
        store.objects["cfg"] = {"k": 2}
        store.create_array("/g/arr", "f4").append(np.arange(3, dtype="f4"))
        states[store.commit()] = None
        store.rename("/t", "/u")
        del store.objects["cfg"]
        states[store.commit()] = None
        store.remove("/g", recursive=True)
        states[store.commit()] = None
    with colvault.open(store_path) as store:
        latest = snapshot(store)
    for commit in states:
        with colvault.open(store_path, as_of=commit) as past:
            states[commit] = snapshot(past)
    a, b, c, d = states
    assert states[a]["/t"][1] == [(1, "a", "u"), (2, "b", "v")] and states[a]["/t"][2] == {
        "unit": "m"
    }
    assert states[a]["/"][1] == {"cfg": {"k": 1}} and "/g" not in states[a]
    assert states[b]["/t"][1][-1] == (3, "c", "w") and states[b]["/t"][2] == {"unit": "km"}
    assert states[b]["/"][1] == {"cfg": {"k": 2}}
    with colvault.open(store_path, as_of=b) as past:
        assert past["/g/arr"][:].tolist() == [0.0, 1.0, 2.0]
    assert "/t" not in states[c] and states[c]["/u"] == states[b]["/t"] and states[c]["/"][1] == {}
    assert "/g" not in states[d] and states[d] == latest


def test_as_of_a_time_is_the_last_commit_at_or_before_it(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"})
        t.append({"x": [1]})
        one = store.commit()
        time.sleep(0.05)
        middle = dt.datetime.now(dt.UTC)
        time.sleep(0.05)
        t.append({"x": [2]})
        two = store.commit()
    with colvault.open(store_path, as_of=middle) as past:
        assert past.as_of == one and past["/t"].col("x").tolist() == [1]
    naive = middle.astimezone(dt.UTC).replace(tzinfo=None)  # naive: UTC
    with colvault.open(store_path, as_of=naive) as past:
        assert past.as_of == one
    with colvault.open(store_path, as_of=dt.datetime.now(dt.UTC)) as past:
        assert past.as_of >= two
    with pytest.raises(ColvaultError, match="no commit at or before 2000-01-01"):
        colvault.open(store_path, as_of=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


def test_a_store_as_of_a_commit_is_read_only(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i8"}).append({"x": [1]})
        one = store.commit()
    with pytest.raises(ValueError, match="mode must be 'r'"):
        colvault.open(store_path, "a", as_of=one)
    with colvault.open(store_path, as_of=one) as past:
        assert "as of commit" in repr(past)
        with pytest.raises(ReadOnlyError, match="as of commit"):
            past["/t"].append({"x": [2]})
        with pytest.raises(ReadOnlyError):
            past.attrs["a"] = 1
        with pytest.raises(ReadOnlyError):
            past.tag("x")
    for bad in (True, 1.5, None.__class__):
        with pytest.raises(TypeError, match="as_of takes"):
            colvault.open(store_path, as_of=bad)
    with pytest.raises(ColvaultError, match="has no commit 999"):
        colvault.open(store_path, as_of=999)


def test_as_of_is_unmoved_by_later_commits_of_another_writer(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=100)
        t.append({"x": np.arange(150)})
        one = store.commit()
        with colvault.open(store_path, as_of=one) as past:
            before = past["/t"].col("x").tolist()
            t.append({"x": np.arange(10)})
            store.commit()
            assert past["/t"].col("x").tolist() == before
            assert past["/t"].count_where("x >= 0") == 150 and len(past["/t"]) == 150


def test_a_logger_s_small_commits_each_stay_readable(store_path):
    """The short last chunk grows in place; each commit's rows are a prefix of it, kept by a
    retired manifest row, so every commit reads back exactly (the zone maps too: a query
    prunes by them)."""
    commits = []
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/log", {"t": "i8", "v": "f8"}, chunk_rows=64)
        for i in range(20):
            t.append({"t": np.arange(i * 10, i * 10 + 10), "v": np.full(10, float(i))})
            commits.append((store.commit(), (i + 1) * 10))
    for commit, n in commits:
        with colvault.open(store_path, as_of=commit) as past:
            log = past["/log"]
            assert len(log) == n and log.col("t").tolist() == list(range(n))
            assert log.read_where("t >= 55").tolist() == [(k, float(k // 10)) for k in range(55, n)]
            assert past.verify().ok


def test_compact_keeps_history_until_it_is_expired(store_path):
    states = {}
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=100)
        for i in range(6):
            t.append({"x": np.arange(i * 30, i * 30 + 30)})
            states[store.commit()] = list(range(i * 30 + 30))
        store.create_table("/gone", {"y": "f8"}).append({"y": np.arange(10_000.0)})
        states[store.commit()] = list(range(180))
        keep = store.tag("kept", list(states)[1])
        store.remove("/gone")
        states[store.commit()] = list(range(180))
        full = segment_bytes(store_path)
        report = store.compact()  # short chunks re-cut; every commit still reads back
        assert report.rewritten == ("/t",)
        for commit, rows in states.items():
            with colvault.open(store_path, as_of=commit) as past:
                assert past["/t"].col("x").tolist() == rows
        last = list(states)[-1]
        assert store.expire(last) == len(states) - 1  # all but the last and the tagged one
        assert store.expire(last) == 0
        store.compact()
        assert segment_bytes(store_path) < full / 5  # /gone's rows came back
        assert store["/t"].col("x").tolist() == list(range(180))
    with colvault.open(store_path, as_of="kept") as past:
        assert past.as_of == keep and past["/t"].col("x").tolist() == list(range(60))
    first = next(iter(states))
    with pytest.raises(ColvaultError, match=f"commit {first} of .* was expired"):
        colvault.open(store_path, as_of=first)
    with colvault.open(store_path, "a") as store:
        assert store.expire(last + 100, keep_tags=False) >= 1 and store.tags == {}
        assert [c.id for c in store.history()] == [store.commit()]  # the last one only
        store.compact()  # one kept commit: full chunks again
        assert store["/t"].storage()[0].chunks == 2
        assert store["/t"].col("x").tolist() == list(range(180))
        assert store.verify().ok


# -- the property test -----------------------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from(["/a", "/b"]), st.integers(0, 90)),
        st.tuples(st.just("rename"), st.sampled_from(["/a", "/b"]), st.sampled_from(["/a", "/b"])),
        st.tuples(st.just("remove"), st.sampled_from(["/a", "/b"]), st.none()),
        st.tuples(st.just("create"), st.sampled_from(["/a", "/b"]), st.none()),
        st.tuples(st.just("attr"), st.sampled_from(["/", "/a", "/b"]), st.integers(-1, 3)),
        st.tuples(st.just("delete"), st.sampled_from(["/a", "/b"]), st.integers(0, 6)),
        st.tuples(st.just("update"), st.sampled_from(["/a", "/b"]), st.integers(0, 4)),
        st.tuples(st.just("add column"), st.sampled_from(["/a", "/b"]), st.integers(0, 2)),
        st.tuples(st.just("rename column"), st.sampled_from(["/a", "/b"]), st.integers(0, 2)),
        st.tuples(st.just("remove column"), st.sampled_from(["/a", "/b"]), st.integers(0, 2)),
        st.tuples(st.just("commit"), st.none(), st.none()),
        st.tuples(st.just("abort"), st.none(), st.none()),
    ),
    max_size=30,
)


def _apply(store: colvault.Store, op: tuple[Any, Any, Any], counter: list[int]) -> None:
    kind, path, arg = op
    if kind == "append" and path in store:
        start = counter[0]
        counter[0] += arg
        t = store[path]
        rows: dict[str, Any] = {c: np.arange(start, start + arg) % 1000 for c in t.columns}
        rows["s"] = [f"r{i % 7}" for i in range(arg)]
        try:
            t.append(rows)
        except ColvaultError as exc:  # none after a column change
            assert "uncommitted column change" in str(exc)
    elif kind.endswith("column") and path in store:
        t = store[path]
        name = next((c for c in (f"c{arg}", f"d{arg}") if c in t.columns), None)
        try:
            if kind == "add column" and name is None:
                t.add_column(f"c{arg}", "i4", expr=f"x * {arg + 1}")
            elif kind == "rename column" and name is not None:
                t.rename_column(name, ("d" if name[0] == "c" else "c") + name[1:])
            elif kind == "remove column" and name is not None:
                t.remove_column(name)
        except ColvaultError as exc:  # one change per table per commit, none after appends
            assert "uncommitted" in str(exc) or "not committed" in str(exc)
    elif kind == "rename" and path in store and arg not in store:
        store.rename(path, arg)
    elif kind == "remove" and path in store:
        store.remove(path)
    elif kind == "create" and path not in store:
        store.create_table(path, {"x": "i8", "s": "U3"}, chunk_rows=50)
    elif kind in ("delete", "update") and path in store:
        t = store[path]
        try:
            if kind == "delete":
                t.delete_where(f"x % 7 == {arg}")
            else:
                t.update_where(f"x % 5 == {arg}", {"s": f"u{arg}"})
        except ColvaultError as exc:  # one edit per table per commit
            assert "uncommitted delete, update" in str(exc)
    elif kind == "attr" and path in store:
        if arg < 0:
            store[path].attrs.pop("k", None)
        else:
            store[path].attrs["k"] = arg


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, cut=st.floats(0, 1))
def test_every_commit_reads_back_as_it_was_before_and_after_expire_and_compact(
    tmp_path_factory, ops, cut
):
    path = str(tmp_path_factory.mktemp("h") / "s.colvault")
    recorded: dict[int, dict[str, Any]] = {}
    counter = [0]
    with colvault.open(path, "w") as store:
        store.create_table("/a", {"x": "i8", "s": "U3"}, chunk_rows=50)
        commit = store.commit()  # not recorded[store.commit()] = ...: that snapshots first
        recorded[commit] = snapshot(store)
        for op in ops:
            if op[0] == "commit":
                commit = store.commit()
                recorded[commit] = snapshot(store)
            elif op[0] == "abort":
                store.abort()
            else:
                _apply(store, op, counter)
        commit = store.commit()
        recorded[commit] = snapshot(store)
    for commit, state in recorded.items():
        with colvault.open(path, as_of=commit) as past:
            assert snapshot(past) == state, f"as of {commit}"
    ids = sorted(recorded)
    with colvault.open(path, "a") as store:  # a tag and a time find the same commits
        times = {c.id: c.time for c in store.history()}
        named = ids[len(ids) // 2]
        store.tag("named", named)
    with colvault.open(path, as_of="named") as past:
        assert past.as_of == named and snapshot(past) == recorded[named]
    for commit in (c for c in ids if c in times):  # history() lists the commits that changed
        with colvault.open(path, as_of=times[commit]) as past:  # something (or have a message)
            assert past.as_of >= commit and snapshot(past) == recorded[past.as_of], commit
    before = ids[int(cut * (len(ids) - 1))]
    with colvault.open(path, "a") as store:
        store.compact()  # history kept: nothing any commit saw may go
        for commit, state in recorded.items():
            with colvault.open(path, as_of=commit) as past:
                assert snapshot(past) == state, f"as of {commit}, after compact()"
        store.expire(before)
        full = segment_bytes(path)
        store.compact()
        assert segment_bytes(path) <= full
        assert store.verify().ok
    for commit, state in recorded.items():
        if commit >= before or commit == ids[-1] or commit == named:  # expire keeps tags
            with colvault.open(path, as_of=commit) as past:
                assert snapshot(past) == state, f"as of {commit}, after expire + compact"
        else:
            with pytest.raises(ColvaultError, match="was expired"):
                colvault.open(path, as_of=commit)


def test_verify_checks_the_chunks_kept_for_history(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "f8"}).append({"x": np.arange(1000.0)})
        store.commit()
        store.remove("/t")
        store.commit()
        assert store.verify().ok and store.verify().chunks_checked == 1
    seg = os.path.join(store_path, "data", os.listdir(os.path.join(store_path, "data"))[0])
    with open(seg, "r+b") as f:
        f.seek(-100, os.SEEK_END)
        byte = f.read(1)
        f.seek(-100, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))
    with colvault.open(store_path) as store:
        report = store.verify()
    assert not report.ok and len(report.damage) == 1
    assert "chunk 0 of column 'x' of /t, kept for history, does not match" in report.damage[0]
