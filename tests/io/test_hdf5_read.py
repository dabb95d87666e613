"""``import_hdf5``'s rows read slice by slice, the next slices by a thread while the writer
appends: slices of whole chunks, values equal to PyTables' reading across slice boundaries, and
errors on either side raised with the reading thread stopped and nothing committed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault.engine.table import Table
from colvault.errors import ColvaultError
from colvault.io.hdf5 import import_hdf5
from colvault.io.hdf5 import read as hdf5read
from colvault.io.hdf5.plan import Item

tables = pytest.importorskip("tables")

#: Small slices: a table of a few hundred kB is read in many, through the reading thread.
SMALL_SLICE = 16 << 10


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "colvault-hdf5-read"]


def _prior(store: colvault.Store) -> None:
    store.create_table("/prior", {"x": "i8"}).append({"x": np.arange(5)})
    store.commit()


def _assert_prior_only(path: Path) -> None:
    with colvault.open(path) as store:
        assert store.keys() == ["/prior"]
        assert store.verify().ok


def _item(row_bytes: int, h5chunk: int | None = None) -> Item:
    return Item("/x", "/x", "table", rows=10**9, row_bytes=row_bytes, h5chunk=h5chunk)


def test_a_slice_is_whole_chunks_within_slice_bytes() -> None:
    assert hdf5read.slice_rows(_item(24), 131_072) == 262_144  # 6.3 of 8 MB
    assert hdf5read.slice_rows(_item(8), 131_072) == 1_048_576  # exactly 8 MB
    assert hdf5read.slice_rows(_item(1000), 16_384) == 8_192  # half a chunk: 8.2 of 8.4 MB
    assert hdf5read.slice_rows(_item(64 << 20), 1) == 1  # a row larger than a slice


def test_a_compressed_dataset_is_read_in_whole_hdf5_chunks() -> None:
    assert hdf5read.slice_rows(_item(24, 10_922), 131_072) == 12 * 10_922
    assert hdf5read.slice_rows(_item(8, 3 << 20), 131_072) == 3 << 20  # 24 MB: one chunk
    assert hdf5read.slice_rows(_item(8, 8 << 20), 131_072) == 1 << 20  # 64 MB: node chunks


@given(st.integers(1, 1 << 22), st.integers(1, 1 << 20))
def test_property_slices_fit_and_tile_the_chunks(row_bytes: int, chunk_rows: int) -> None:
    step = hdf5read.slice_rows(_item(row_bytes), chunk_rows)
    assert step >= 1
    assert step * row_bytes <= max(hdf5read.SLICE_BYTES, row_bytes)
    if chunk_rows * row_bytes <= hdf5read.SLICE_BYTES:
        assert step % chunk_rows == 0  # the writer gets whole chunks
    else:  # a chunk in parts of one size (but the last)
        parts = -(-chunk_rows // step)
        assert step <= chunk_rows and chunk_rows - (parts - 1) * step <= step


def _log_file(path: Path, rows: int) -> np.ndarray:
    """A PyTables table with nested, time, enum, float16 and big-endian columns."""
    rng = np.random.default_rng(5)

    class Row(tables.IsDescription):
        when = tables.Time64Col(pos=0)
        day = tables.Time32Col(pos=1)
        state = tables.EnumCol(["off", "on"], "off", base="uint8", pos=2)
        half = tables.Float16Col(pos=3)
        count = tables.Int32Col(pos=4)

        class pos(tables.IsDescription):
            _v_pos = 5
            x = tables.Float64Col(pos=0)
            y = tables.Int16Col(pos=1)

    with tables.open_file(path, "w") as f:
        t = f.create_table("/", "log", Row, chunkshape=(777,))
        batch = np.zeros(rows, t.dtype)
        batch["when"] = 1_600_000_000 + rng.integers(0, 10**6, rows) + 0.5
        batch["day"] = rng.integers(0, 2**31, rows)
        batch["state"] = rng.integers(0, 2, rows)
        batch["half"] = rng.normal(size=rows)
        batch["count"] = np.arange(rows)
        batch["pos"]["x"] = rng.normal(size=rows)
        batch["pos"]["y"] = rng.integers(-999, 999, rows)
        t.append(batch)
        t.flush()
        return t.read()


def test_many_slices_read_ahead_equal_pytables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hdf5read, "SLICE_BYTES", SMALL_SLICE)
    h5 = tmp_path / "log.h5"
    want = _log_file(h5, 30_001)  # ~1,000 rows a slice, HDF5 chunks of 777: none lines up
    with colvault.open(tmp_path / "s.colvault", "w") as store:
        import_hdf5(h5, store, progress=False)
        got = store["/log"]
        assert got.nrows == len(want)
        assert got.cols.count[:].tolist() == list(range(len(want)))
        np.testing.assert_array_equal(got.cols["pos/x"][:], want["pos"]["x"])
        np.testing.assert_array_equal(got.cols["pos/y"][:], want["pos"]["y"])
        np.testing.assert_array_equal(got.cols.half[:], want["half"].astype("f4"))
        assert got.cols.day[:].astype("i8").tolist() == want["day"].tolist()
        assert (got.cols.when[:] - np.datetime64(0, "us")).astype("i8").tolist() == [
            round(w * 1e6) for w in want["when"]
        ]
        assert got.cols.state[:].tolist() == want["state"].tolist()
    assert _readers() == []


def test_many_slices_of_a_colvault_export_keep_missing_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = 20_000
    some = np.arange(rows)
    flags = np.ma.MaskedArray(some.astype("i2"), some % 7 == 0)
    text = np.ma.MaskedArray(np.array(["a", "bb", "ccc"])[some % 3], some % 4 == 0)
    with colvault.open(tmp_path / "a.colvault", "w") as store:
        t = store.create_table(
            "/t",
            {
                "flag": {"dtype": "i2", "nullable": True},
                "name": {"dtype": "U3", "nullable": True},
                "x": "f8",
            },
        )
        t.append({"flag": flags, "name": text, "x": some * 0.5})
        store.commit()
        colvault.export_hdf5(store, tmp_path / "a.h5", progress=False)
    monkeypatch.setattr(hdf5read, "SLICE_BYTES", SMALL_SLICE)
    with colvault.open(tmp_path / "b.colvault", "w") as store:
        import_hdf5(tmp_path / "a.h5", store, progress=False)
        got = store["/t"].read_columns()
        assert (got["flag"].mask == flags.mask).all()
        assert got["flag"].compressed().tolist() == flags.compressed().tolist()
        assert (got["name"].mask == text.mask).all()
        assert got["name"].compressed().tolist() == text.compressed().tolist()
        assert got["x"].tolist() == (some * 0.5).tolist()


def test_a_damaged_chunk_read_ahead_raises_and_stops_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hdf5read, "SLICE_BYTES", SMALL_SLICE)
    h5 = tmp_path / "d.h5"
    with h5py.File(h5, "w") as f:
        ds = f.create_dataset("second", data=np.arange(200_000.0), chunks=(10_000,),
                              compression="gzip")  # fmt: skip
        info = ds.id.get_chunk_info(7)
    with open(h5, "r+b") as fh:
        fh.seek(info.byte_offset + 8)
        fh.write(b"\xff" * 64)
    with colvault.open(tmp_path / "s.colvault", "w") as store:
        _prior(store)
        with pytest.raises(ColvaultError, match=r"d\.h5.*/second"):
            import_hdf5(h5, store, progress=False)
        assert not store.has_pending
    assert _readers() == []
    _assert_prior_only(tmp_path / "s.colvault")


def test_an_append_error_stops_the_reading_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hdf5read, "SLICE_BYTES", SMALL_SLICE)
    h5 = tmp_path / "log.h5"
    _log_file(h5, 30_001)
    append, calls = Table.append, []

    def failing(self: Table, data: object, **kw: bool) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        append(self, data, **kw)

    monkeypatch.setattr(Table, "append", failing)
    with colvault.open(tmp_path / "s.colvault", "w") as store:
        _prior(store)
        with pytest.raises(OSError, match="disk full"):
            import_hdf5(h5, store, progress=False)
        assert _readers() == []  # stopped before the error reached the caller
        assert not store.has_pending
    assert len(calls) == 3
    _assert_prior_only(tmp_path / "s.colvault")
