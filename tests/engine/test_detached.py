"""Detached snapshots: a table's committed chunks read from segment files alone, as Dask tasks
read them; later commits, a missing catalog and compaction (with its leases) change nothing."""

from __future__ import annotations

import errno
import os
import pickle
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault import ChecksumError, QueryError
from colvault.engine import leases

SCHEMA = {
    "t": "M8[s]",
    "value": "f8",
    "k": {"dtype": "i4", "nullable": True},
    "site": "category",
    "cell": ("f4", (2,)),
}


def rows(n: int, start: int = 0) -> dict:
    i = np.arange(start, start + n)
    return {
        "t": i.astype("M8[s]"),
        "value": i * 0.5,
        "k": np.ma.MaskedArray(i.astype("i4"), i % 7 == 0),
        "site": np.array(["a", "b", "c"])[i % 3],
        "cell": np.stack([i, -i], axis=1).astype("f4"),
    }


@pytest.fixture
def store(tmp_path):
    with colvault.open(str(tmp_path / "s.colvault"), "w") as s:
        t = s.create_table("/t", SCHEMA, chunk_rows=1000)
        t.append(rows(10_500))
        s.commit()
        yield s


def equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Structured (maybe masked) arrays hold the same rows, missing values included."""
    if a.dtype.names != b.dtype.names or len(a) != len(b):
        return False
    for name in a.dtype.names:
        x, y = a[name], b[name]
        if not np.array_equal(np.ma.getmaskarray(x), np.ma.getmaskarray(y)):
            return False
        if not np.array_equal(
            np.ma.filled(x, 0) if x.dtype.kind != "U" else x,
            np.ma.filled(y, 0) if y.dtype.kind != "U" else y,
        ):
            return False
    return True


def test_pieces_read_what_the_table_reads(store):
    t = store["/t"]
    det = pickle.loads(pickle.dumps(t.detached()))
    assert len(det) == 10_500 and det.chunks == 11
    pieces = det.pieces(3)
    assert [p.first_row for p in pieces] == [0, 3000, 6000, 9000]
    assert [len(p) for p in pieces] == [3000, 3000, 3000, 1500]
    joined = np.ma.concatenate([pickle.loads(pickle.dumps(p)).read() for p in pieces])
    assert equal(joined, t.read())


@given(lo=st.floats(-10, 6000), hi=st.floats(-10, 6000), per=st.integers(1, 12))
def test_queries_on_pieces_equal_the_table(tmp_path_factory, lo, hi, per):
    path = str(tmp_path_factory.mktemp("q") / "s.colvault")
    with colvault.open(path, "w") as s:
        t = s.create_table("/t", SCHEMA, chunk_rows=1000)
        t.append(rows(10_500))
        s.commit()
        det = t.detached()
        cond = "(value >= lo) & (value < hi) & notna(k)"
        env = {"lo": lo, "hi": hi}
        left = det.chunks_left(cond, env)
        pieces = det.pieces(per, left)
        got = [p.first_row + p.get_where_list(cond, env) for p in pieces]
        expected = t.get_where_list(cond, env)
        assert np.array_equal(np.concatenate(got) if got else np.empty(0, np.int64), expected)
        selected = [p.select(cond, env, columns=["k", "site"]) for p in pieces]
        if selected:
            assert np.array_equal(
                np.concatenate(
                    [p.first_row + r for p, (r, _) in zip(pieces, selected, strict=True)]
                ),
                expected,
            )
            sites = np.concatenate([cols["site"] for _, cols in selected])
            assert np.array_equal(sites, t.read_where(cond, env, columns=["site"])["site"])
        assert sum(p.count_where(cond, env) for p in pieces) == len(expected)


def test_a_bad_condition_fails_on_the_client(store):
    with pytest.raises(QueryError, match="unknown name 'nope'"):
        store["/t"].detached().chunks_left("nope > 1")


def test_later_commits_do_not_change_a_detached_snapshot(store):
    t = store["/t"]
    det = t.detached()
    before = det.read()
    t.append(rows(700, 10_500))  # grows the short last chunk, then cuts new ones
    store.commit()
    assert len(t) == 11_200
    assert equal(det.read(), before)
    assert det.version != t.detached().version


def test_reads_need_no_catalog(store, tmp_path):
    det = store["/t"].detached()
    expected = det.read_where("value > 100")
    store.close()
    catalog = os.path.join(det.store_path, "catalog.sqlite")
    os.rename(catalog, catalog + ".away")
    try:
        fresh = pickle.loads(pickle.dumps(det))
        assert equal(fresh.read_where("value > 100"), expected)
    finally:
        os.rename(catalog + ".away", catalog)


def test_sorted_bounds(store):
    det = store["/t"].detached()
    bounds = det.sorted_bounds("t")
    assert bounds is not None and len(bounds) == 11
    assert bounds[0] == (np.datetime64(0, "s"), np.datetime64(999, "s"))
    assert det.sorted_bounds("k") is None  # missing values: no order to rely on
    assert det.sorted_bounds("site") is None  # no zone map


def test_compact_keeps_leased_segments_until_the_lease_expires(store):
    t = store["/t"]
    t.append(rows(10, 10_500))
    store.commit()  # the short last chunk grew: its old bytes are retired
    det = t.detached()
    expected = det.read()
    path = store.path
    store.close()
    lease = leases.take(path, det.segments, 3600)
    with colvault.open(path, "a") as s:
        report = s.compact()
        assert report.files_leased == len(det.segments)
        assert "kept for leases" in str(report)
        assert any("a lease keeps it" in line for line in s.verify().info)
    with colvault.open(path, "a") as s:  # a writable open's recovery leaves them too
        assert equal(det.read(), expected)
        assert equal(s["/t"].read(), expected)
    leases.release(lease)
    with colvault.open(path, "a") as s:
        assert s.compact().files_removed == len(det.segments)
    fresh = pickle.loads(pickle.dumps(det))
    with pytest.raises(ChecksumError, match="missing or truncated"):
        fresh.read()


def test_expired_and_damaged_leases(tmp_path):
    """Expired leases go; one that does not parse holds everything (its segments are unknown)
    until it is a week old; a crashed writer's temporary file goes after a day."""
    root = str(tmp_path)
    live = leases.take(root, ["data/a/b/0.seg"], 3600)
    expired = leases.take(root, ["data/a/c/0.seg"], -1)
    assert live is not None and expired is not None and not os.path.exists(expired)
    assert leases.held(root) == {"data/a/b/0.seg"}
    directory = os.path.join(root, leases.LEASES)
    junk, tmp = os.path.join(directory, "junk.json"), os.path.join(directory, "x.json.tmp")
    for path in (junk, tmp):
        with open(path, "w") as f:
            f.write("{not json")
    assert leases.held(root) is None
    assert leases.remove_expired(root) == 0
    old = time.time() - leases.MALFORMED_GRACE - 60
    for path in (junk, tmp):
        os.utime(path, (old, old))
    assert leases.held(root) == {"data/a/b/0.seg"}
    assert leases.remove_expired(root) == 2
    assert os.listdir(directory) == [os.path.basename(live)]


def test_no_lease_on_a_store_that_cannot_be_written(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.warns(UserWarning, match="no lease"):
        assert leases.take(str(tmp_path), ["data/a/b/0.seg"], 60) is None


def test_an_unreadable_lease_keeps_every_old_segment(store):
    t = store["/t"]
    t.append(rows(10, 10_500))
    store.commit()
    det = t.detached()
    path = store.path
    store.close()
    os.makedirs(os.path.join(path, leases.LEASES), exist_ok=True)
    with open(os.path.join(path, leases.LEASES, "junk.json"), "w") as f:
        f.write("{")
    with colvault.open(path, "a") as s:
        report = s.compact()
        assert report.files_removed == 0 and report.files_leased == len(det.segments)
    assert np.array_equal(det.read()["value"], rows(10_510)["value"])


def test_pieces_refuse_positions_out_of_range(store):
    det = store["/t"].detached()
    assert [len(p) for p in det.pieces(5, [3, 3, 4])] == [2000]
    with pytest.raises(ValueError, match="run from 0 to 10"):
        det.pieces(1, [11])
    with pytest.raises(ValueError, match="run from 0 to 10"):
        det.pieces(1, [-1])
    with pytest.raises(ValueError, match="at least 1"):
        det.pieces(True)
