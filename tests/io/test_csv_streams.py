"""CSV from binary file objects: zip archives in them, other formats refused by name."""

import bz2
import io

import pytest

import colvault

from .test_csv_corpus import _zip


class _NoSeek(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self.data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture
def store(tmp_path):
    with colvault.open(tmp_path / "s.colvault", "w") as s:
        yield s


def test_a_zip_archive_in_a_file_object_is_read_member_by_member(store):
    data = _zip({"2020.csv": b"a,b\n1,2\n", "x/2021.csv.bz2": bz2.compress(b"a,b\n3,4\n")})
    f = io.BytesIO(data)
    t = colvault.import_csv(f, store, "/t")
    assert t.read().tolist() == [(1, 2), (3, 4)]
    assert not f.closed  # the caller's file stays the caller's


def test_a_zip_archive_on_disk_opened_by_the_caller(store, tmp_path):
    path = tmp_path / "data.zip"
    path.write_bytes(_zip({"data.csv": b"a\n1\n2\n"}))
    with open(path, "rb") as f:
        assert colvault.import_csv(f, store, "/t").read().tolist() == [(1,), (2,)]


def test_another_format_in_a_file_object_is_named(store):
    with pytest.raises(colvault.CSVError, match="a Parquet file, not CSV"):
        colvault.import_csv(io.BytesIO(b"PAR1" + b"\x00" * 64), store, "/t")
    assert "/t" not in store


def test_a_stream_that_cannot_seek_is_read_as_csv(store):
    t = colvault.import_csv(io.BufferedReader(_NoSeek(b"a,b\n1,2\n")), store, "/t")
    assert t.read().tolist() == [(1, 2)]


def test_a_zip_in_a_stream_that_cannot_seek_is_named(store):
    data = _zip({"data.csv": b"a\n1\n"})
    with pytest.raises(colvault.CSVError, match="a zip archive in a stream that cannot seek"):
        colvault.import_csv(io.BufferedReader(_NoSeek(data)), store, "/t")
    with pytest.raises(colvault.CSVError, match="an HDF5 file, not CSV"):
        colvault.import_csv(
            io.BufferedReader(_NoSeek(b"\x89HDF\r\n\x1a\n" + bytes(64))), store, "/t"
        )
    assert "/t" not in store
