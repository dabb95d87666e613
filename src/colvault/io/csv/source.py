"""Where CSV bytes come from: paths (plain, ``.gz``, ``.bz2``, ``.xz``, ``.zip``), binary file
objects, lists of paths and glob patterns, read in blocks and handed on as UTF-8.

A zip archive (known by its first bytes, whatever its name) is a list of files: each member
but folders and the Finder's resource forks, in the archive's order. Other formats that are
not text are refused by name.

Each input becomes an :class:`Input` that can be opened (again, when the importer has to start
over after widening a column type) and reports how many bytes of the file it has consumed, for
the progress bar. Blocks of UTF-8 files are read straight into buffers that keep room in front
for the unfinished record of the block before (:class:`Piece`), and pass through untouched (a
BOM is dropped); other encodings are decoded incrementally and re-encoded as UTF-8, so the
tokenizer sees one encoding.
"""

from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import lzma
import os
import queue
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar, cast

import numpy as np

from ...errors import CSVError

T = TypeVar("T")

_gzip_module: Any
try:  # ISA-L's gzip reader is several times faster than zlib's, with the same API
    from isal import igzip as _gzip_module
except ImportError:  # pragma: no cover
    _gzip_module = gzip

#: Default block size: large enough that per-block overhead vanishes, small enough for caches.
DEFAULT_BLOCK_BYTES = 1 << 20
#: A file's first block is at most this large: it is read, sniffed, tokenized and its columns'
#: types inferred before the blocks after it parse in parallel, one core busy meanwhile.
FIRST_BLOCK_BYTES = 1 << 18
_UTF8 = frozenset({"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig", "ascii", "us-ascii"})
_BOM = codecs.BOM_UTF8
_GLOB_CHARS = frozenset("*?[")


class _Counting(io.RawIOBase):
    """A raw file that counts the bytes read through it (progress of compressed files)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


#: What a decompressor raises on a truncated or damaged file (zlib's, ISA-L's, bz2's, lzma's).
_broken: list[type[BaseException]] = [
    EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile,
]  # fmt: skip
if _gzip_module is not gzip:  # pragma: no branch
    from isal import isal_zlib

    _broken.append(cast(type[BaseException], isal_zlib.error))  # its stub types an instance
_BROKEN = tuple(_broken)


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose failures (a truncated or damaged file) are ``CSVError``s
    naming the file, as other broken files are."""

    def __init__(self, stream: Any, name: str, kind: str) -> None:
        self.stream, self.name_, self.kind = stream, name, kind

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self.stream.read(len(b))
        except _BROKEN as exc:
            raise CSVError(
                f"a broken {self.kind} file ({type(exc).__name__}: {exc})", file=self.name_
            ) from None
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


@dataclass
class Input:
    """One file to import: a name for messages, its size on disk (None when unknown), and a
    way to open it (once more when ``restartable``)."""

    name: str
    size: int | None
    restartable: bool
    _open: Callable[[], tuple[Any, Callable[[], int]]]

    def open(self) -> tuple[Any, Callable[[], int]]:
        """(binary stream of the decompressed bytes, bytes of the file consumed so far)."""
        return self._open()


#: Leading bytes of formats that are not CSV, and what to call them.
_NOT_CSV = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls) or other OLE file"),
    (b"PAR1", "a Parquet file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"%PDF-", "a PDF document"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)


def _path_inputs(path: str) -> list[Input]:
    """The file at ``path``, or each member of the zip archive there."""
    if os.path.isdir(path):
        raise CSVError(f"{path} is a folder: pass a glob pattern such as {path}/*.csv")
    if not os.path.exists(path):
        raise CSVError("no such file", file=path)
    with open(path, "rb") as f:
        magic = f.read(16)
        _refuse_other_formats(magic, path)
        is_zip = magic.startswith(b"PK") and zipfile.is_zipfile(f)
    return _zip_inputs(path, path) if is_zip else [_path_input(path)]


def _refuse_other_formats(magic: bytes, name: str) -> None:
    for lead, what in _NOT_CSV:
        if magic.startswith(lead):
            raise CSVError(f"{what}, not CSV: export it as CSV first", file=name)


def _zip_inputs(archive: str | BinaryIO, path: str) -> list[Input]:
    """Each file in the zip ``archive`` (a path, or a seekable binary file named ``path``)."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [i for i in z.infolist() if not (i.is_dir() or _macos_fork(i.filename))]
    except (zipfile.BadZipFile, OSError) as exc:
        raise CSVError(f"a broken zip archive ({exc})", file=path) from None
    names = {i.filename for i in members}
    if "[Content_Types].xml" in names:
        what = (
            "an Excel workbook (.xlsx)"
            if any(n.startswith("xl/") for n in names)
            else "an Office Open XML document"
        )
        raise CSVError(f"{what}, not CSV: export it as CSV first", file=path)
    if "mimetype" in names and any(n == "content.xml" for n in names):
        raise CSVError("an OpenDocument file (.ods), not CSV: export it as CSV first", file=path)
    if not members:
        raise CSVError("a zip archive without files", file=path)
    return [_zip_member(archive, path, info) for info in members]


def _macos_fork(name: str) -> bool:
    """Whether a zip member is a resource fork the macOS Finder adds (``__MACOSX/._x.csv``)."""
    return name.startswith("__MACOSX/") or os.path.basename(name).startswith("._")


def _zip_member(archive: str | BinaryIO, path: str, info: zipfile.ZipInfo) -> Input:
    """A member of a zip archive; a member that is itself compressed (``x.csv.gz``, ``.bz2``,
    ``.xz``) is decompressed too."""
    name = f"{path}:{info.filename}"
    inner: Any = _OPENERS.get(os.path.splitext(info.filename)[1].lower())

    def open_() -> tuple[Any, Callable[[], int]]:
        # an open member keeps the archive's file open until it is closed itself (with the
        # stream, by _Decompressed); a caller's file object is never closed by ZipFile
        with zipfile.ZipFile(archive) as z:
            try:
                member = z.open(info)
            except (RuntimeError, NotImplementedError) as exc:  # encrypted, unknown method
                raise CSVError(f"a zip member that cannot be read ({exc})", file=name) from None
        counting = _Counting(cast(BinaryIO, member))
        stream: Any = io.BufferedReader(counting, 1 << 20)
        if inner is not None:
            stream = inner(stream, "rb")
        return _Decompressed(stream, name, "zip"), lambda: counting.count

    return Input(name, info.file_size, True, open_)


class _Unclosing(io.RawIOBase):
    """The caller's file object, which the importer reads but must not close."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.f.read(len(b))
        b[: len(data)] = data
        return len(data)


#: Decompressing readers by file name extension.
_OPENERS: dict[str, Any] = {".gz": _gzip_module.open, ".bz2": bz2.open, ".xz": lzma.open}
#: The extensions of files read decompressed (their size on disk is not their text's).
COMPRESSED = tuple(_OPENERS)


def _path_input(path: str) -> Input:
    ext = os.path.splitext(path)[1].lower()
    opener: Any = _OPENERS.get(ext)

    def open_() -> tuple[Any, Callable[[], int]]:
        if opener is None:
            f = open(path, "rb")  # noqa: SIM115 - the importer closes it
            return f, f.tell
        counting = _Counting(open(path, "rb", buffering=0))  # noqa: SIM115
        stream = opener(io.BufferedReader(counting, 1 << 20), "rb")
        return _Decompressed(stream, path, ext[1:]), lambda: counting.count

    return Input(path, os.path.getsize(path), True, open_)


def _stream_inputs(f: Any) -> list[Input]:
    """A binary file object; when it can seek, a zip archive in it is read as one."""
    if isinstance(f, io.TextIOBase):
        raise CSVError("a text-mode file object: open the file in binary mode ('rb')")
    name = str(getattr(f, "name", "<stream>"))
    seekable = bool(getattr(f, "seekable", lambda: False)())
    if seekable:
        start = f.tell()
        magic = f.read(16)
        f.seek(start)
    else:  # a buffered stream shows its first bytes without consuming them
        peek = getattr(f, "peek", None)
        magic = bytes(peek(16)[:16]) if peek is not None else b""
    _refuse_other_formats(magic, name)
    if magic.startswith(b"PK\x03\x04"):
        if not seekable or start != 0:
            raise CSVError(
                "a zip archive in a stream that cannot seek to its start: pass its path or "
                "a seekable binary file",
                file=name,
            )
        is_zip = zipfile.is_zipfile(f)
        f.seek(start)
        if is_zip:
            return _zip_inputs(f, name)
    return [_stream_input(f, name, seekable)]


def _stream_input(f: Any, name: str, seekable: bool) -> Input:
    start = f.tell() if seekable else 0
    size = None
    if seekable:
        end = f.seek(0, os.SEEK_END)
        f.seek(start)
        size = end - start

    def open_() -> tuple[Any, Callable[[], int]]:
        if seekable:
            f.seek(start)
        return _Unclosing(f), (lambda: f.tell() - start) if seekable else (lambda: 0)

    return Input(name, size, seekable, open_)


def inputs(source: Any) -> list[Input]:
    """The files a ``source`` names, in order: a path, a glob pattern (sorted matches), a list
    of paths, or a binary file object."""
    if hasattr(source, "read"):
        return _stream_inputs(source)
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path) and _GLOB_CHARS & set(path):
            found = sorted(glob.glob(path))
            if not found:
                raise CSVError(f"no file matches the pattern {path!r}")
            return [i for p in found for i in _path_inputs(p)]
        return _path_inputs(path)
    if isinstance(source, Sequence) and not isinstance(source, bytes):
        if not source:
            raise CSVError("an empty list of files")
        return [i for s in source for i in inputs(s)]
    raise CSVError(f"cannot read CSV from {type(source).__name__}: give a path or a binary file")


#: Free bytes in front of each block read: the end of the last block that is not a whole
#: record is copied there, so that it and the new block lie back to back without copying the
#: block (a record longer than this is joined the slow way).
HEADROOM = 1 << 16


@dataclass(slots=True)
class Piece:
    """Bytes ``buf[start:end]`` of a file, with ``buf[:start]`` free for bytes before them."""

    buf: np.ndarray
    start: int
    end: int

    @property
    def data(self) -> np.ndarray:
        return self.buf[self.start : self.end]

    def __len__(self) -> int:
        return self.end - self.start

    def behind(self, before: np.ndarray) -> np.ndarray:
        """``before`` and this piece's bytes as one array (written into the headroom, when
        they fit there: the piece's own bytes are not copied). Once per piece: a second call
        would overwrite what the first one returned."""
        k = len(before)
        if k == 0:
            return self.data
        if k > self.start:
            return np.concatenate([before, self.data])
        self.buf[self.start - k : self.start] = before
        return self.buf[self.start - k : self.end]


def _read_piece(stream: BinaryIO, size: int) -> Piece | None:
    """The next ``size`` bytes at most, read straight into a buffer with headroom (None at the
    end of the stream). Small blocks get as little room as they hold: a longer carry is joined."""
    room = min(HEADROOM, size)
    buf = np.empty(room + size, np.uint8)
    n = stream.readinto(buf.data[room:])  # type: ignore[attr-defined]
    return Piece(buf, room, room + n) if n else None


def _piece_of(data: bytes) -> Piece:
    room = min(HEADROOM, len(data))
    buf = np.empty(room + len(data), np.uint8)
    buf[room:] = np.frombuffer(data, np.uint8)
    return Piece(buf, room, len(buf))


def _first_piece(stream: BinaryIO, size: int) -> Piece | None:
    """The first block, without a leading BOM (read on while the reads give only part of one)."""
    piece = _read_piece(stream, size)
    while piece is not None and len(piece) < len(_BOM) and _BOM.startswith(piece.data.tobytes()):
        more = _read_piece(stream, size)
        if more is None:
            break
        piece = _piece_of(piece.data.tobytes() + more.data.tobytes())
    if piece is not None and piece.data[: len(_BOM)].tobytes() == _BOM:
        piece.start += len(_BOM)
        if not len(piece):  # the BOM was all those reads gave: the file goes on, maybe
            return _read_piece(stream, size)
    return piece


def utf8_blocks(
    stream: BinaryIO,
    encoding: str,
    block_bytes: int,
    name: str,
    first_bytes: int = FIRST_BLOCK_BYTES,
) -> Iterator[Piece]:
    """The file's content as UTF-8, a block at a time (a leading BOM removed); the first block
    is at most ``first_bytes`` long."""
    enc = codecs.lookup(encoding).name
    first_bytes = max(min(block_bytes, first_bytes), len(_BOM))
    if enc in _UTF8:
        piece = _first_piece(stream, first_bytes)
        while piece is not None:
            yield piece
            piece = _read_piece(stream, block_bytes)
        return
    decoder = codecs.getincrementaldecoder(enc)("strict")
    lines, block, start = 0, stream.read(first_bytes), True
    while True:
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            where = lines + block[: exc.start].count(b"\n") + 1
            raise CSVError(f"bytes that are not {enc}", file=name, line=where) from None
        lines += block.count(b"\n")
        if start and text:
            start = False
            text = text.removeprefix("\ufeff")
        if text:
            yield _piece_of(text.encode("utf-8"))
        if not block:
            return
        block = stream.read(block_bytes)


_DONE = object()


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced in a background thread up to ``depth`` ahead of the consumer.

    The importer reads, decompresses and tokenizes the next block (I/O and a ``nogil`` kernel)
    while the current one is parsed and appended. An exception of the producer is raised in the
    consumer at the item where it happened; a consumer that stops early stops the producer.
    """
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        out.put((item, None), timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            result: Any = (_DONE, None)
        except BaseException as exc:  # handed to the consumer, raised there
            result = (_DONE, exc)
        while not stop.is_set():
            try:
                out.put(result, timeout=0.05)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=produce, name="colvault-csv-read", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = out.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()
