"""Staged writes: rows written durably by any process and committed later, all at once."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import colvault
from colvault import ColvaultError, NodeError


def segment_bytes(path: str) -> int:
    data = os.path.join(path, "data")
    return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))


def rows(start: int, n: int) -> dict[str, np.ndarray]:
    return {"x": np.arange(start, start + n), "y": np.arange(start, start + n) * 0.5}


def test_staged_rows_are_invisible_until_committed_together(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i8", "y": "f8"}, chunk_rows=100).append(rows(0, 10))
    staged = []
    for k in range(3):  # three writers, one after another (processes, on a cluster)
        with colvault.open(store_path, "a") as store:
            staged.append(store["/t"].stage(rows(1000 * (k + 1), 250), token="job"))
    assert json.loads(json.dumps(staged)) == staged  # a descriptor travels as JSON
    with colvault.open(store_path, "a") as store:  # recovery ran: the staged bytes stay
        assert len(store["/t"]) == 10
        store.expire(store.commit())
        store.compact()
        assert store.verify().ok
    with colvault.open(store_path, "a") as store:
        commit = store.commit_staged([staged[2], staged[0], staged[1]], "three partitions")
        t = store["/t"]
        want = [*range(10), *range(3000, 3250), *range(1000, 1250), *range(2000, 2250)]
        assert t.col("x").tolist() == want and store.verify().ok
        assert store.history(limit=1)[0].id == commit
        assert store.history(limit=1)[0].changes[0].rows_added == 750
        with pytest.raises(ColvaultError, match="are not staged"):
            store.commit_staged([staged[0]])
        assert len(store["/t"]) == 760


def test_discarded_stagings_are_reclaimed(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "y": "f8"})
        t.append(rows(0, 10))
        store.commit()
        before = segment_bytes(store_path)
        kept = t.stage(rows(100, 5000), token="a")
        t.stage(rows(200, 5000), token="b")
        t.stage(rows(300, 5000), token="b")
        assert store.discard_staged(token="b") == 2
        assert store.discard_staged(descriptors=[kept]) == 1 and store.discard_staged() == 0
        store.expire(store.commit())
        store.compact()
        assert segment_bytes(store_path) <= before + 64 and len(t) == 10
        with pytest.raises(ColvaultError, match="are not staged"):
            store.commit_staged([kept])
        assert len(t) == 10 and store.verify().ok


def test_staged_rows_of_a_changed_or_removed_table_are_refused(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "y": "f8"})
        u = store.create_table("/u", {"x": "i8", "y": "f8"})
        t.append(rows(0, 3))
        u.append(rows(0, 3))
        store.commit()
        st, su = t.stage(rows(10, 3)), u.stage(rows(10, 3))
        t.add_column("z", "f8", fill=0.0)
        store.remove("/u")
        store.commit()
        with pytest.raises(NodeError, match="columns changed since they were staged"):
            store.commit_staged([st])
        with pytest.raises(NodeError, match="table was removed"):
            store.commit_staged([su])
        assert len(store["/t"]) == 3


def test_a_staging_after_its_token_was_discarded_is_refused(store_path):
    """A partition still running when its job gave up must not leave staged rows behind."""
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "i8", "y": "f8"})
        store.commit()
        t.stage(rows(0, 5), token="job")
        assert store.discard_staged(token="job") == 1
        with pytest.raises(ColvaultError, match="stagings of token 'job' were discarded"):
            t.stage(rows(5, 5), token="job")
        assert store.discard_staged(token="job") == 0 and store.discard_staged() == 0
        store.expire(store.commit())
        store.compact()
        assert len(t) == 0 and store.verify().ok and store.verify().info == []
