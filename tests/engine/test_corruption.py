"""Damaged segments give ChecksumError naming node, column and chunk; verify() lists them."""

from __future__ import annotations

import os

import numpy as np
import pytest

import colvault
from colvault import ChecksumError


def make(store_path: str) -> None:
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/runs/t", {"a": "i8", "b": "f8"}, chunk_rows=1000)
        t.append({"a": A, "b": np.arange(5000) * 0.5})


#: Sorted but not a regular clock: its values are read from the segment, not computed.
A = np.arange(5000) ** 2


def locate(store_path: str, column: str, chunk: int) -> tuple[str, int, int]:
    with colvault.open(store_path) as store:
        t = store["/runs/t"]
        spec = t._schema.column(column)
        ref = t._state().columns[spec.id][chunk]
        return os.path.join(store_path, ref.segment), ref.offset, ref.length


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


@pytest.mark.parametrize("sealed", [True, False])
def test_flipped_byte(store_path, sealed):
    make(store_path)
    if not sealed:  # an append that stays uncommitted keeps a fresh, unsealed segment around
        with colvault.open(store_path, "a") as store:
            store["/runs/t"].append({"a": [1], "b": [1.0]})
            store.commit()
    seg, offset, length = locate(store_path, "b", 2)
    flip(seg, offset + length // 2)
    with colvault.open(store_path) as store:
        t = store["/runs/t"]
        assert np.array_equal(t.cols.b[:2000], np.arange(2000) * 0.5)  # other chunks still read
        with pytest.raises(ChecksumError) as info:
            t.cols.b[2500]
        err = info.value
        assert (err.node, err.column, err.chunk) == ("/runs/t", "b", 2)
        assert err.stored != err.computed and store_path in err.store
        assert "chunk 2 of column 'b' of /runs/t" in str(err)
        report = store.verify()
        assert not report.ok
        assert len(report.damage) == 1 and "chunk 2 of column 'b'" in report.damage[0]


def test_truncated_segment(store_path):
    make(store_path)
    seg, offset, _ = locate(store_path, "a", 3)
    with open(seg, "r+b") as f:
        f.truncate(offset + 10)
    with colvault.open(store_path) as store:
        t = store["/runs/t"]
        assert t.cols.a[2999] == A[2999]
        with pytest.raises(ChecksumError, match="missing or truncated") as info:
            t.cols.a[:]
        assert (info.value.column, info.value.chunk) == ("a", 3)
        report = store.verify()
        damaged = sorted(d.split(" of /runs")[0] for d in report.damage)
        # every chunk behind the cut: a's last two, then b's run, written after a's
        assert damaged == sorted(f"chunk {k} of column '{c}'" for c, k in
                                 [("a", 3), ("a", 4), *[("b", k) for k in range(5)]])  # fmt: skip


def test_missing_segment(store_path):
    make(store_path)
    seg, _, _ = locate(store_path, "a", 0)
    os.unlink(seg)
    with colvault.open(store_path) as store:
        for column in ("a", "b"):  # one segment holds every column of the store's session
            with pytest.raises(ChecksumError, match="missing or truncated"):
                store["/runs/t"].col(column)
        assert len(store.verify().damage) == 10


def test_regular_clock_is_computed_without_its_segment(store_path):
    """A regular clock's values are its params' arithmetic: a read gives them even with the
    segment gone (the bytes it would check are a frame of zeros), and verify() still names
    every chunk whose bytes are missing."""
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"clock": "M8[s]", "x": "f8"}, chunk_rows=1000)
        clock = np.datetime64("2026-01-01", "s") + np.arange(3000) * np.timedelta64(10, "s")
        t.append({"clock": clock, "x": np.arange(3000) * 0.5})
    with colvault.open(store_path) as store:
        t = store["/t"]
        seg = os.path.join(store_path, t._state().columns[t._schema.column("clock").id][0].segment)
    os.unlink(seg)
    with colvault.open(store_path) as store:
        t = store["/t"]
        assert np.array_equal(t.col("clock"), clock)
        assert np.array_equal(t.cols.clock[990:1010], clock[990:1010])
        assert t.cols.clock[2999] == clock[2999]
        with pytest.raises(ChecksumError, match="missing or truncated"):
            t.col("x")
        assert len(store.verify().damage) == 6


def test_unreferenced_tail_is_information(store_path):
    make(store_path)
    seg, _, _ = locate(store_path, "a", 0)
    with open(seg, "ab") as f:
        f.write(b"garbage from a crashed writer")
    with colvault.open(store_path) as store:
        report = store.verify()
        assert report.ok and any("unreferenced tail" in i for i in report.info)
