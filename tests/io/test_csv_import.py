"""``import_csv`` as an API: appends, failed imports, several files, compression, file objects,
encodings, error fields, policies and the progress bar (issue 5, Build and Acceptance).

The corpus (``test_csv_corpus.py``) checks what single files read as; here the subject is what
happens around the values: which table the rows go to and what stays when an import fails.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import colvault
import colvault.io.csv.columns as colvault_csv
from colvault import ColvaultError, CSVError, CSVWarning, import_csv

NUMBERS = b"sensor,value,label\n1,0.5,a\n2,1.5,b\n3,2.5,a\n"


def _rows(n: int, start: int = 0, label: str = "ok") -> bytes:
    """``n`` rows ``i, i + 0.25, label`` of the NUMBERS layout, without header."""
    return b"".join(b"%d,%d.25,%s\n" % (i, i, label.encode()) for i in range(start, start + n))


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with colvault.open(tmp_path / "s.colvault", "w") as s:
        yield s


def _snapshot(table: colvault.Table) -> tuple[int, list[tuple[str, str]], np.ndarray]:
    return len(table), [(c, str(table.schema[c])) for c in table.colnames], table.read()


def _same(a: tuple[int, list[tuple[str, str]], np.ndarray], b: Any) -> None:
    assert a[0] == b[0] and a[1] == b[1]
    assert a[2].tobytes() == b[2].tobytes()  # exactly: every byte of every row


# -- appends ----------------------------------------------------------------------------------


def test_a_second_file_appends_to_the_table(store: Any, tmp_path: Path) -> None:
    first = _file(tmp_path, "a.csv", NUMBERS)
    # columns in another order, a longer label that still fits the column, an int in the float
    second = _file(tmp_path, "b.csv", b"label,sensor,value\nlonger,4,3\n")
    import_csv(first, store, "/t")
    table = import_csv(second, store, "/t")
    assert len(table) == 4
    assert table.col("sensor").tolist() == [1, 2, 3, 4]
    assert table.col("value").tolist() == [0.5, 1.5, 2.5, 3.0]
    assert table.col("label").tolist() == ["a", "b", "a", "longer"]
    assert table.schema["value"] == np.float64  # the table's types, not the file's int


def test_appending_checks_the_columns(store: Any, tmp_path: Path) -> None:
    import_csv(_file(tmp_path, "a.csv", NUMBERS), store, "/t")
    before = _snapshot(store["/t"])
    other = _file(tmp_path, "b.csv", b"sensor,reading,label\n4,1.0,x\n")
    with pytest.raises(CSVError, match=r"columns \['sensor', 'reading', 'label'\] are not") as e:
        import_csv(other, store, "/t")
    assert e.value.file == str(other)
    _same(before, _snapshot(store["/t"]))


def test_appending_checks_the_types(store: Any, tmp_path: Path) -> None:
    import_csv(_file(tmp_path, "a.csv", NUMBERS), store, "/t")
    before = _snapshot(store["/t"])
    other = _file(tmp_path, "b.csv", b"sensor,value,label\n4,1.0,x\n5.5,2.0,y\n")
    with pytest.raises(CSVError, match="not a int64 value") as e:
        import_csv(other, store, "/t")
    assert (e.value.line, e.value.column, e.value.text) == (3, "sensor", "5.5")
    _same(before, _snapshot(store["/t"]))


def test_a_header_only_file_appends_nothing(store: Any, tmp_path: Path) -> None:
    import_csv(_file(tmp_path, "a.csv", NUMBERS), store, "/t")
    before = _snapshot(store["/t"])
    table = import_csv(_file(tmp_path, "h.csv", b"sensor,value,label\n"), store, "/t")
    _same(before, _snapshot(table))


BROKEN = {
    # each breaks after many 64-byte blocks of good rows have gone to the table's writer
    "unterminated-quote": (_rows(50) + b'51,1.0,"open\n52,2.0,x\n', "unterminated quote", 52),
    "ragged-row": (_rows(50) + b"51,1.0\n", "2 fields where the header has 3", 52),
    "bad-value": (_rows(50) + b"51,oops,x\n", "not a float64 value|not a number", 52),
    "label-too-long": (_rows(50) + b"51,1.0," + b"x" * 40 + b"\n", "longer than", 52),
    "not-utf-8": (_rows(50) + b"51,1.0,caf\xe9\n", "not UTF-8", 52),
    "missing-int": (_rows(50) + b",1.0,x\n", "a missing value", 52),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_file_leaves_the_table_exactly_as_it_was(
    kind: str, store: Any, tmp_path: Path
) -> None:
    import_csv(_file(tmp_path, "a.csv", NUMBERS), store, "/t")
    before = _snapshot(store["/t"])
    assert store["/t"].schema["label"] == np.dtype("U16")
    body, message, line = BROKEN[kind]
    broken = _file(tmp_path, "broken.csv", b"sensor,value,label\n" + body)
    with pytest.raises(CSVError, match=message) as e:
        import_csv(broken, store, "/t", chunk_bytes=64)
    assert e.value.file == str(broken) and e.value.line == line, str(e.value)
    assert not store.has_pending
    _same(before, _snapshot(store["/t"]))
    # the store is still usable: a good file appends after the failure
    import_csv(_file(tmp_path, "c.csv", b"sensor,value,label\n" + _rows(2)), store, "/t")
    assert len(store["/t"]) == before[0] + 2


def test_a_failed_import_creates_no_table(store: Any, tmp_path: Path) -> None:
    good = _file(tmp_path, "a.csv", b"sensor,value,label\n" + _rows(30))
    bad = _file(tmp_path, "b.csv", b"sensor,value,label\n" + _rows(30) + b"1,2\n")
    with pytest.raises(CSVError, match="2 fields") as e:
        import_csv([good, bad], store, "/runs/t", chunk_bytes=64)
    assert e.value.file == str(bad) and e.value.line == 32
    assert "/runs/t" not in store
    assert not store.has_pending


def test_the_store_must_have_no_pending_changes(store: Any, tmp_path: Path) -> None:
    store.create_table("/other", {"x": "i8"})
    with pytest.raises(ColvaultError, match="pending changes"):
        import_csv(_file(tmp_path, "a.csv", NUMBERS), store, "/t")
    store.abort()


def test_a_store_given_by_path_is_opened_for_appending(tmp_path: Path) -> None:
    path = tmp_path / "lab.colvault"
    with colvault.open(path, "w"):
        pass
    table = import_csv(_file(tmp_path, "a.csv", NUMBERS), path, "/t")
    try:
        assert len(table) == 3
    finally:
        table.store.close()
    with colvault.open(path, "r") as s:
        assert s["/t"].col("sensor").tolist() == [1, 2, 3]


def test_a_failed_import_closes_a_store_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "lab.colvault"
    with colvault.open(path, "w"):
        pass
    bad = _file(tmp_path, "bad.csv", b"a,b\n1,2\n3\n")
    fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(CSVError, match="1 field where the header has 2"):
        import_csv(bad, path, "/t")
    # the caller never saw the store: nothing of it may stay open (catalog, lock, segments)
    assert set(os.listdir("/proc/self/fd")) <= fds
    with colvault.open(path, "r") as s:
        assert "/t" not in s


# -- several files ----------------------------------------------------------------------------


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    # one header per file; the third starts integers that the first file's floats hold
    (folder / "day1.csv").write_bytes(b"sensor,value,label\n" + _rows(3, 0, "x"))
    (folder / "day2.csv").write_bytes(b"sensor,value,label\n" + _rows(2, 3, "y"))
    (folder / "day3.csv").write_bytes(b"sensor,value,label\n7,8,z\n")
    (folder / "notes.txt").write_bytes(b"not a csv\n")
    return folder


def test_a_glob_imports_the_sorted_matches_into_one_table(store: Any, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    table = import_csv(str(folder / "day*.csv"), store, "/t")
    assert table.col("sensor").tolist() == [0, 1, 2, 3, 4, 7]
    assert table.col("value").tolist() == [0.25, 1.25, 2.25, 3.25, 4.25, 8.0]
    assert table.col("label").tolist() == ["x"] * 3 + ["y"] * 2 + ["z"]


def test_a_list_imports_in_its_order(store: Any, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    files = [folder / "day3.csv", str(folder / "day1.csv")]
    table = import_csv(files, store, "/t")
    assert table.col("sensor").tolist() == [7, 0, 1, 2]
    # day3 alone would make value int64: day1's floats widen it
    assert table.col("value").tolist() == [8.0, 0.25, 1.25, 2.25]


def test_files_widen_types_across_files(store: Any, tmp_path: Path) -> None:
    a = _file(tmp_path, "a.csv", b"n,s\n" + b"".join(b"%d,ab\n" % i for i in range(30)))
    b = _file(tmp_path, "b.csv", b"n,s\n1.5,a much longer text than the first file's\n")
    table = import_csv([a, b], store, "/t", chunk_bytes=64)
    assert table.schema["n"] == np.float64
    assert table.col("n").tolist() == [float(i) for i in range(30)] + [1.5]
    assert table.col("s").tolist()[-1] == "a much longer text than the first file's"


def test_headerless_files_stay_headerless(store: Any, tmp_path: Path) -> None:
    # alone, a one-row file "5,6" reads as a header (as pandas reads it): here it follows the
    # first file, which has none
    a = _file(tmp_path, "a.csv", b"1,2\n3,4\n")
    b = _file(tmp_path, "b.csv", b"5,6\n")
    table = import_csv([a, b], store, "/t")
    assert table.colnames == ["col0", "col1"]
    assert table.col("col0").tolist() == [1, 3, 5]


def test_files_must_share_the_header(store: Any, tmp_path: Path) -> None:
    a = _file(tmp_path, "a.csv", b"x,y\n1,2\n")
    b = _file(tmp_path, "b.csv", b"x,z\n3,4\n")
    with pytest.raises(CSVError, match="header differs") as e:
        import_csv([a, b], store, "/t")
    assert (e.value.file, e.value.line) == (str(b), 1)
    assert "/t" not in store


def test_missing_sources(store: Any, tmp_path: Path) -> None:
    with pytest.raises(CSVError, match="no file matches"):
        import_csv(str(tmp_path / "*.csv"), store, "/t")
    with pytest.raises(CSVError, match="no such file"):
        import_csv(tmp_path / "absent.csv", store, "/t")
    with pytest.raises(CSVError, match="is a folder"):
        import_csv(tmp_path, store, "/t")
    with pytest.raises(CSVError, match="empty list"):
        import_csv([], store, "/t")
    with pytest.raises(CSVError, match="cannot read CSV from int"):
        import_csv(3, store, "/t")


def test_a_category_with_too_many_values_becomes_text(store: Any, tmp_path: Path) -> None:
    few = b"".join(b"ab"[i % 2 : i % 2 + 1] + b"\n" for i in range(3000))
    many = b"".join(b"v%d\n" % i for i in range(colvault_csv.CATEGORY_MAX + 10))
    path = _file(tmp_path, "c.csv", b"s\n" + few + many)
    table = import_csv(path, store, "/t", chunk_bytes=4096)
    assert table.schema["s"].kind == "U"  # plain text, no longer a category
    values = table.col("s")
    assert len(values) == 3000 + colvault_csv.CATEGORY_MAX + 10
    assert values[:4].tolist() == ["a", "b", "a", "b"]
    assert values[-1] == f"v{colvault_csv.CATEGORY_MAX + 9}"


# -- compression and file objects --------------------------------------------------------------

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_compressed_files(ext: str, store: Any, tmp_path: Path) -> None:
    # a late float widens the first column: the import reads the compressed file twice
    data = b"n,v\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(200)) + b"0.5,1\n"
    path = _file(tmp_path, "data.csv" + ext.upper(), COMPRESSORS[ext](data))
    table = import_csv(path, store, "/t", chunk_bytes=256)
    assert table.schema["n"] == np.float64 and table.schema["v"] == np.int64
    assert table.col("n").tolist() == [float(i) for i in range(200)] + [0.5]
    assert table.col("v").tolist() == [*range(200), 1]


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
@pytest.mark.parametrize("damage", ["truncated", "not-compressed"])
def test_a_broken_compressed_file(ext: str, damage: str, store: Any, tmp_path: Path) -> None:
    import_csv(_file(tmp_path, "a.csv", NUMBERS), store, "/t")
    before = _snapshot(store["/t"])
    data = b"sensor,value,label\n" + _rows(5000)
    blob = COMPRESSORS[ext](data)[:-40] if damage == "truncated" else data
    path = _file(tmp_path, "b.csv" + ext, blob)
    with pytest.raises(CSVError, match=f"a broken {ext[1:]} file") as e:
        import_csv(path, store, "/t", chunk_bytes=4096)
    assert e.value.file == str(path)
    _same(before, _snapshot(store["/t"]))


def test_a_binary_file_object(store: Any) -> None:
    data = b"n\n" + b"".join(b"%d\n" % i for i in range(40)) + b"2.5\n"
    f = io.BytesIO(b"skipped by the caller\n" + data)
    f.seek(len(b"skipped by the caller\n"))
    table = import_csv(f, store, "/t", chunk_bytes=32)  # widens: read twice from where it was
    assert table.col("n").tolist() == [float(i) for i in range(40)] + [2.5]
    assert not f.closed  # the caller's file stays open


class Pipe(io.RawIOBase):
    """A stream that cannot seek, as a pipe or a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


LATE_FLOAT = b"n,s\n" + b"".join(b"%d,x\n" % i for i in range(40)) + b"2.5,y\n"


def test_a_stream_that_needs_widening_asks_for_a_schema(store: Any) -> None:
    with pytest.raises(CSVError, match=r"cannot be read twice.*schema=\{'n': \.\.\.\}"):
        import_csv(Pipe(LATE_FLOAT), store, "/t", chunk_bytes=64)
    assert "/t" not in store and not store.has_pending
    table = import_csv(Pipe(LATE_FLOAT), store, "/t", chunk_bytes=64, schema={"n": "float64"})
    assert table.col("n").tolist() == [float(i) for i in range(40)] + [2.5]


def test_a_stream_that_needs_no_widening(store: Any) -> None:
    table = import_csv(Pipe(NUMBERS), store, "/t", chunk_bytes=8)
    assert table.col("value").tolist() == [0.5, 1.5, 2.5]


LATE_LAST_COLUMN = b"a,b,\n" + b"1,2,\n" * 250 + b"3,4,5\n"


def test_a_stream_whose_empty_last_name_is_a_column_after_all(store: Any) -> None:
    """A row filling the column a trailing delimiter was taken to end cannot start a pipe over:
    the error names the line and why the header was read so."""
    with pytest.raises(CSVError, match=r"3 fields, and the header has 3 with an empty last") as e:
        import_csv(Pipe(LATE_LAST_COLUMN), store, "/t")
    assert e.value.line == 252 and e.value.text == "3,4,5"
    assert "/t" not in store and not store.has_pending


def test_a_header_guess_warns_and_header_false_reads_that_row_as_data(
    store: Any, tmp_path: Path
) -> None:
    path = _file(tmp_path, "r.csv", b",1940,1945\n1,1.5,2\n2,3.5,4\n")
    with pytest.warns(CSVWarning, match=r"r\.csv: the first row read as a header .*header=False"):
        table = import_csv(path, store, "/t")
    assert table.colnames == ["col0", "1940", "1945"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = import_csv(path, store, "/u", header=False)
    assert table.colnames == ["col0", "col1", "col2"] and len(table) == 3


def test_a_text_mode_file_is_refused(store: Any) -> None:
    with pytest.raises(CSVError, match="binary mode"):
        import_csv(io.StringIO("a\n1\n"), store, "/t")


# -- encodings --------------------------------------------------------------------------------

TEXT = "name,°C\ncafé,1\nÆsir,2\n"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16", "utf-8-sig", "utf-8"])
def test_encodings(encoding: str, store: Any, tmp_path: Path) -> None:
    path = _file(tmp_path, "e.csv", TEXT.encode(encoding))
    table = import_csv(path, store, "/t", encoding=encoding, chunk_bytes=8)
    assert table.colnames == ["name", "°C"]
    assert table.col("name").tolist() == ["café", "Æsir"]
    assert table.col("°C").tolist() == [1, 2]


def test_bytes_not_in_the_encoding(store: Any, tmp_path: Path) -> None:
    path = _file(tmp_path, "e.csv", b"a,b\n1,x\n2,\x81\n")  # 0x81 is no cp1252 character
    with pytest.raises(CSVError, match="not cp1252") as e:
        import_csv(path, store, "/t", encoding="cp1252")
    assert (e.value.file, e.value.line) == (str(path), 3)


# -- errors and policies ----------------------------------------------------------------------


def test_csv_error_names_file_line_column_and_text(store: Any, tmp_path: Path) -> None:
    path = _file(tmp_path, "e.csv", b"sensor,value\n1,2.5\n2,high\n")
    with pytest.raises(CSVError) as e:
        import_csv(path, store, "/t", schema={"value": "float64"})
    err = e.value
    assert (err.file, err.line, err.column, err.text) == (str(path), 3, "value", "high")
    assert str(path) in str(err) and "line 3" in str(err) and "'value'" in str(err)
    assert "'high'" in str(err)
    assert isinstance(err, ValueError)


def test_skipped_rows_are_counted_with_their_first_lines(store: Any, tmp_path: Path) -> None:
    rows = [b"%d,%d" % (i, i) if i % 3 else b"%d" % i for i in range(60)]
    path = _file(tmp_path, "r.csv", b"a,b\n" + b"\n".join(rows) + b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = import_csv(path, store, "/t", on_bad_lines="skip", chunk_bytes=32)
    assert [str(w.message) for w in caught if w.category is CSVWarning] == [
        "skipped 20 ragged rows (first lines: 2, 5, 8, 11, 14, 17, 20, 23, 26, 29)"
    ]
    assert caught[0].filename == __file__  # the warning points at the caller
    assert table.col("a").tolist() == [i for i in range(60) if i % 3]


def test_bad_options(store: Any, tmp_path: Path) -> None:
    path = _file(tmp_path, "a.csv", NUMBERS)
    with pytest.raises(CSVError, match="on_bad_lines"):
        import_csv(path, store, "/t", on_bad_lines="warn")
    pandas_header: Any = 0  # pandas' row number of the header: not a bool here
    with pytest.raises(CSVError, match="header"):
        import_csv(path, store, "/t", header=pandas_header)
    with pytest.raises(CSVError, match="delimiter"):
        import_csv(path, store, "/t", delimiter=";;")
    with pytest.raises(CSVError, match="also the decimal"):
        import_csv(path, store, "/t", delimiter=",", decimal=",")
    with pytest.raises(CSVError, match="also the decimal"):
        import_csv(path, store, "/t", thousands=".")
    with pytest.raises(CSVError, match="must differ"):
        import_csv(path, store, "/t", delimiter=";", comment=";")
    with pytest.raises(CSVError, match="must differ"):
        import_csv(path, store, "/t", quotechar="#", comment="#")
    with pytest.raises(CSVError, match="chunk_bytes"):
        import_csv(path, store, "/t", chunk_bytes=-1)
    with pytest.raises(CSVError, match="unknown encoding 'klingon'"):
        import_csv(path, store, "/t", encoding="klingon")
    with pytest.raises(CSVError, match=r"schema names columns the file lacks: \['x'\]"):
        import_csv(path, store, "/t", schema={"x": "f8"})
    with pytest.raises(CSVError, match="usecols names 'x'"):
        import_csv(path, store, "/t", usecols=["x"])
    with pytest.raises(CSVError, match="usecols position 3"):
        import_csv(path, store, "/t", usecols=[3])
    with pytest.raises(ValueError, match="%Q"):
        import_csv(path, store, "/t", datetime_formats=["%Q"])
    assert "/t" not in store and not store.has_pending


def test_given_layout_options(store: Any, tmp_path: Path) -> None:
    path = _file(tmp_path, "a.csv", b"junk line\n1;2\n3;4\n")
    t = import_csv(path, store, "/t", delimiter=";", header=False, skiprows=1)
    assert t.colnames == ["col0", "col1"] and t.col("col1").tolist() == [2, 4]
    path = _file(tmp_path, "b.csv", b"x,y\n'a,b',1\n")
    t = import_csv(path, store, "/u", quotechar="'")
    assert t.col("x").tolist() == ["a,b"]
    path = _file(tmp_path, "c.csv", b'x,y\n"a,1\n')
    t = import_csv(path, store, "/v", quotechar=None)
    assert t.col("x").tolist() == ['"a']
    # an all-text file has a header unless told otherwise
    path = _file(tmp_path, "d.csv", b"p,q\nr,s\n")
    assert import_csv(path, store, "/w").col("p").tolist() == ["r"]
    assert import_csv(path, store, "/x", header=False).col("col0").tolist() == ["p", "r"]


# -- progress ---------------------------------------------------------------------------------


def test_progress_bar(store: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, "a.csv", b"sensor,value,label\n" + _rows(200))
    import_csv(path, store, "/t", progress=True, chunk_bytes=512)
    err = capsys.readouterr().err
    assert "import /t" in err
    assert "100%" in err  # the bar ends at the file's size in bytes
    import_csv(path, store, "/u", progress=False)
    assert capsys.readouterr().err == ""


# -- plain blocks (io/csv/plain.py) and the general path -------------------------------------------


def _mixed_rows(n: int) -> bytes:
    """Rows the row kernel reads, with now and then one it leaves to the general path (a
    missing value, a quoted field, a blank line, a slow float) and a category column."""
    out = [b"t,n,x,status\n"]
    for i in range(n):
        x = b"%d.%03d" % (i, i % 1000)
        if i % 97 == 5:
            x = b""  # missing: NaN
        elif i % 89 == 7:
            x = b'"%d.5"' % i
        elif i % 83 == 11:
            x = b"1e-320"  # subnormal: the slow path
        out.append(
            b"2024-03-01T00:%02d:%02d,%d,%s,%s\n"
            % (i // 60 % 60, i % 60, i, x, b"ok" if i % 3 else b"warn")
        )
        if i % 101 == 13:
            out.append(b"\n")
    return b"".join(out)


@pytest.mark.parametrize("chunk", [64, 200, 1000, 8192])
def test_plain_blocks_read_as_one_block_does(store: Any, tmp_path: Path, chunk: int) -> None:
    path = _file(tmp_path, "m.csv", _mixed_rows(3000))
    fixed = {"status": "category"}  # a small first block would infer text (few rows)
    whole = import_csv(path, store, "/whole", chunk_bytes=1 << 30, schema=fixed)
    parts = import_csv(path, store, "/parts", chunk_bytes=chunk, schema=fixed)
    assert [(c, str(whole.schema[c])) for c in whole.colnames] == [
        ("t", "datetime64[ns]"),
        ("n", "int64"),
        ("x", "float64"),
        ("status", "object"),
    ]
    _same(_snapshot(whole), _snapshot(parts))


@pytest.mark.parametrize(("chunk", "plain"), [(1 << 20, False), (1 << 16, True)])
def test_the_row_kernel_reads_only_inputs_of_many_blocks(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, plain: bool
) -> None:
    """A first small import must not compile the row kernel (seconds on an empty cache) for a
    file the general path reads in as little time."""
    from colvault.io.csv import importer as csvimport

    calls = []

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    real = csvimport.parse_plain
    monkeypatch.setattr(csvimport, "parse_plain", counted)
    rows = b"".join(b"%d,%d.5,s%d\n" % (i, i, i % 7) for i in range(60000))
    path = _file(tmp_path, "p.csv", b"a,b,c\n" + rows)  # 1.1 MB: 17 blocks of 64 KiB
    t = import_csv(path, store, "/t", chunk_bytes=chunk)
    assert bool(calls) == plain
    assert t.nrows == 60000 and t.cols.b[59999] == 59999.5


@pytest.mark.parametrize("every", [1, 7])
@pytest.mark.parametrize("chunk", [64, 1000])
def test_plain_blocks_with_cr_and_comment_bytes_read_as_one_block_does(
    store: Any, tmp_path: Path, chunk: int, every: int
) -> None:
    # CRLF on every line or on some (so a block's CR may lie in what the last one carried over),
    # a bare CR inside a text field (a line end to the general path), comment lines
    lines = _mixed_rows(2000).split(b"\n")
    for i in range(3, len(lines) - 1, every):
        lines[i] += b"\r"
    lines[1500] = lines[1500].replace(b",ok", b",o\rk")
    data = b"\n".join(lines).replace(b"\n2024-03-01T00:00:1", b"\n#note\n2024-03-01T00:00:1")
    path = _file(tmp_path, "cr.csv", data)
    fixed = {"status": "category"}
    opts: dict[str, Any] = {"schema": fixed, "comment": "#", "on_bad_lines": "skip"}
    with pytest.warns(CSVWarning):
        whole = import_csv(path, store, "/whole", chunk_bytes=1 << 30, **opts)
    with pytest.warns(CSVWarning):
        parts = import_csv(path, store, "/parts", chunk_bytes=chunk, **opts)
    _same(_snapshot(whole), _snapshot(parts))
    # the bare CR ends a record with "o" (the row is kept) and starts one with a field "k" (ragged)
    assert "o" in set(whole.col("status").tolist())


@pytest.mark.parametrize("chunk", [64, 1000])
def test_errors_after_plain_blocks_name_their_line(store: Any, tmp_path: Path, chunk: int) -> None:
    good = _mixed_rows(3000)
    lines = good.split(b"\n")
    at = 2500  # a physical line far into the file, after blank lines
    for broken, message, column in [
        (lines[at].replace(b",ok", b",\xff\xfe"), "not UTF-8", "status"),
        (lines[at].replace(b",ok", b",ok,extra"), "fields where the header has", None),
        (lines[at].split(b",", 2)[0] + b",x," + lines[at].split(b",", 2)[2], "n", "n"),
    ]:
        assert broken != lines[at]
        data = b"\n".join([*lines[:at], broken, *lines[at + 1 :]])
        path = _file(tmp_path, "bad.csv", data)
        with pytest.raises(CSVError, match=message) as info:
            import_csv(path, store, "/bad", chunk_bytes=chunk)
        assert info.value.line == at + 1, str(info.value)
        assert info.value.column == column, str(info.value)
        assert "/bad" not in store


def test_the_import_s_tasks_in_the_store_pool_end_with_it() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from colvault.io.csv.importer import _Tasks

    with ThreadPoolExecutor(1) as pool:
        tasks = _Tasks(pool)
        started, go = threading.Event(), threading.Event()

        def running() -> int:
            started.set()
            go.wait(5)
            return 1

        first = tasks.submit(running)
        queued = tasks.submit(int, "2")
        started.wait(5)
        threading.Timer(0.05, go.set).start()
        tasks.settle()  # cancels what has not started, waits for the rest
        assert first.done() and first.result() == 1
        assert queued.cancelled()


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 64])
def test_a_bom_is_dropped_whatever_the_block_size(store: Any, tmp_path: Path, chunk: int) -> None:
    # blocks of at most 3 bytes once lost the file after its BOM ("an empty file")
    path = _file(tmp_path, "bom.csv", b"\xef\xbb\xbfa,b\n1,2\n3,4\n")
    table = import_csv(path, store, "/t", chunk_bytes=chunk)
    assert table.colnames == ["a", "b"] and table.col("b").tolist() == [2, 4]


def test_records_longer_than_the_headroom_before_a_block_read_alike(
    store: Any, tmp_path: Path
) -> None:
    # what a block leaves of a record is copied in front of the next one when it fits in the
    # space kept there (source.HEADROOM), else the two are joined: both read the same
    from colvault.io.csv.source import HEADROOM

    long = b"x" * (3 * HEADROOM)
    rows = [b"n,s"] + [b"%d,%s" % (i, long if i % 40 == 7 else b"s%d" % i) for i in range(200)]
    path = _file(tmp_path, "long.csv", b"\n".join(rows) + b"\n")
    whole = import_csv(path, store, "/whole", chunk_bytes=1 << 30)
    parts = import_csv(path, store, "/parts", chunk_bytes=4096)
    _same(_snapshot(whole), _snapshot(parts))
    assert len(whole.col("s")[7]) == 3 * HEADROOM


def test_a_stream_that_cannot_start_over_infers_types_from_a_full_size_first_block(
    store: Any,
) -> None:
    # a file gets a small first block (it can start over for a wider type); a stream that
    # cannot be read twice keeps blocks of the full size, so a late float needs no restart
    from colvault.io.csv.source import DEFAULT_BLOCK_BYTES, FIRST_BLOCK_BYTES

    rows = [b"id,v"] + [b"%d,%d" % (i, i) for i in range(40_000)] + [b"40000,0.5"]
    data = b"\n".join(rows) + b"\n"
    assert FIRST_BLOCK_BYTES < len(data) < DEFAULT_BLOCK_BYTES
    table = import_csv(Pipe(data), store, "/t")
    assert table.col("v").dtype == np.float64 and table.col("v")[-1] == 0.5


@pytest.mark.parametrize(
    ("where", "extra"),
    [("first block", -1), ("first block", 0), ("first block", 1), ("sniff sample", -1),
     ("sniff sample", 0)],
)  # fmt: skip
def test_a_sample_that_is_all_of_the_file_is_sniffed_as_whole(
    store: Any, tmp_path: Path, extra: int, where: str
) -> None:
    # a headerless file of two records, the second one long: were its last record taken for
    # a cut one, the first row would be taken for a header (as it is, rightly, for a file one
    # byte longer than the sniff sample)
    from colvault.io.csv.importer import SNIFF_BYTES
    from colvault.io.csv.source import FIRST_BLOCK_BYTES

    total = (FIRST_BLOCK_BYTES if where == "first block" else SNIFF_BYTES) + extra
    width = 12  # fields of at most 100 kB (the sniffer's csv module stops at 128 KiB)
    head = b"1" + b",a" * (width - 1) + b"\n2"
    room = total - len(head) - 1 - (width - 1)  # bytes of the long record's text fields
    sizes = [room // (width - 1)] * (width - 2) + [room - room // (width - 1) * (width - 2)]
    data = head + b"".join(b"," + b"x" * n for n in sizes) + b"\n"
    assert len(data) == total and max(sizes) < 100_000
    table = import_csv(_file(tmp_path, "f.csv", data), store, "/t")
    assert table.colnames == [f"col{i}" for i in range(width)] and len(table) == 2


def test_small_blocks_get_small_headroom() -> None:
    from colvault.io.csv.source import HEADROOM, utf8_blocks

    pieces = list(utf8_blocks(io.BytesIO(b"a,b\n1,2\n" * 100), "utf-8", 4, "x"))
    assert b"".join(p.data.tobytes() for p in pieces) == b"a,b\n1,2\n" * 100
    assert all(p.start <= 4 and len(p.buf) <= 8 for p in pieces)
    big = next(utf8_blocks(io.BytesIO(b"1\n" * 100_000), "utf-8", 1 << 20, "x"))
    assert big.start == HEADROOM


def test_a_bom_read_a_byte_at_a_time_is_dropped(store: Any) -> None:
    class OneByte(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            chunk = self._data.read(min(1, len(b)))
            b[: len(chunk)] = chunk
            return len(chunk)

    table = import_csv(OneByte(b"\xef\xbb\xbfa,b\n1,2\n"), store, "/t")
    assert table.colnames == ["a", "b"] and table.col("b").tolist() == [2]
