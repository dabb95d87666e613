"""Small commits grow the table's short last chunk instead of adding one chunk per commit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

import colvault
from colvault.engine.zonemaps import decode_bound


def chunk_rows_of(table) -> list[int]:
    first = table._schema.columns[0]
    return [r.nrows for r in table._state().columns[first.id]]


def test_logger_commits_leave_one_short_chunk(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/log", {"i": "i8", "v": "f8"}, chunk_rows=1000)
        store.commit()
        places: dict[int, set[tuple[str, int]]] = {}  # per chunk: where it was
        for k in range(57):
            t.append({"i": np.arange(k * 37, (k + 1) * 37), "v": np.full(37, k * 0.5)})
            store.commit()
            sizes = chunk_rows_of(t)
            assert all(s == 1000 for s in sizes[:-1]) and sizes[-1] <= 1000
            last = t._state().columns[t._schema.columns[0].id][-1]
            places.setdefault(last.first_row, set()).add((last.segment, last.offset))
        assert len(t) == 57 * 37 and sum(chunk_rows_of(t)) == 57 * 37
        # The tail grows in place in room for a whole chunk reserved behind it: the first one
        # moves once (a table's first short chunk gets no room), the later ones never.
        assert sorted(places) == [0, 1000, 2000]
        assert [len(places[k]) for k in (0, 1000, 2000)] == [2, 1, 1], places
    with colvault.open(store_path) as store:
        t = store["/log"]
        assert np.array_equal(t.col("i"), np.arange(57 * 37))
        assert np.array_equal(t.col("v"), np.repeat(np.arange(57) * 0.5, 37))
        assert store.verify().ok


def test_zone_maps_of_a_grown_chunk(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "f8"}, chunk_rows=100)
        for batch in ([1.0, 2.0], [3.0, np.nan], [-5.0]):
            t.append({"x": batch})
            store.commit()
        spec = t._schema.columns[0]
        with store.session.catalog.read() as conn:
            row = conn.execute(
                "SELECT min, max, nan_count, sorted FROM chunks "
                "WHERE node_id = ? AND retired_commit IS NULL",
                (t._id,),
            ).fetchone()
        assert decode_bound(row[0], spec) == -5.0 and decode_bound(row[1], spec) == 3.0
        assert row[2] == 1 and row[3] == 0
        t2 = store.create_table("/sorted", {"x": "i4"}, chunk_rows=100)
        for batch in ([1, 2], [2, 3], [7]):
            t2.append({"x": batch})
            store.commit()
        with store.session.catalog.read() as conn:
            assert conn.execute(
                "SELECT sorted FROM chunks WHERE node_id = ? AND retired_commit IS NULL",
                (t2._id,),
            ).fetchone() == (1,)


def test_reopened_store_rewrites_the_tail_once(store_path):
    for session in range(4):
        with colvault.open(store_path, "a") as store:
            if session == 0:
                store.create_table("/t", {"x": "i4"}, chunk_rows=64)
            t = store["/t"]
            for k in range(5):
                t.append({"x": np.arange(10) + 50 * session + 10 * k})
                store.commit()
    with colvault.open(store_path) as store:
        t = store["/t"]
        assert chunk_rows_of(t) == [64, 64, 64, 8]
        assert np.array_equal(t.col("x"), np.arange(200))
        assert store.verify().ok


LOGGER = textwrap.dedent(
    """
    import sys, numpy as np, colvault
    path, who = sys.argv[1], int(sys.argv[2])
    with colvault.open(path, "a") as store:
        t = store["/t"]
        for i in range(40):
            t.append({"who": np.full(7, who, "i1"), "i": np.arange(7) + 7 * i})
            store.commit()
    """
)


def test_two_loggers_keep_at_most_one_short_chunk(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"who": "i1", "i": "i8"}, chunk_rows=100)
    procs = [subprocess.Popen([sys.executable, "-c", LOGGER, store_path, str(w)]) for w in (1, 2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with colvault.open(store_path) as store:
        t = store["/t"]
        sizes = chunk_rows_of(t)
        assert sum(sizes) == 560 and all(s == 100 for s in sizes[:-1])
        who, i = t.col("who"), t.col("i")
        for w in (1, 2):
            assert np.array_equal(i[who == w], np.arange(280))
        assert store.verify().ok
