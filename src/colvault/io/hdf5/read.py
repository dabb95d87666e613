"""The rows of an HDF5 object copied into its new node, slice by slice.

Each slice is read through h5py's low-level API with the file's own HDF5 type as the memory
type (HDF5 copies the bytes without converting them), into one buffer reused for every slice;
numpy then splits the records into the columns colvault stores, each a fresh contiguous array
the writer keeps without copying. A slice is whole chunks of the new node, so the writer
compresses each as it is. While the writer appends one slice, a thread reads and splits the
next one (:data:`READ_AHEAD`): HDF5's reads and numpy's copies overlap the writer's
compression and writes.

Where the CPU goes, importing the uncompressed 20 M-row benchmark file (480 MB, 0.55-0.6 s of
CPU on 2 cores): HDF5's read 0.09 s and the split 0.09 s (this thread), the writer's Python
and ``pwrite`` 0.11 s (the caller's), its compression, zone maps and checksums 0.25-0.3 s (its
pool). The reading thread is the longest path; h5py holds the GIL while it reads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .dtypes import convert_leaf, text_slice
from .file import reading

if TYPE_CHECKING:
    from .plan import Item

#: Bytes of rows read from the file at a time (at most; at least one row).
SLICE_BYTES = 8 << 20
#: Slices read and split ahead of the one being appended (memory: that many slices more).
#: One: under load, importing the 480 MB benchmark file took 0.90 s against 1.05 without;
#: two were no faster, and kept 6 MB more (peak RssAnon +82 MB against +76 and +65 without).
READ_AHEAD = 1


def slice_rows(item: Item, chunk_rows: int) -> int:
    """Rows read at a time: whole chunks of the new node within :data:`SLICE_BYTES` (the
    writer then compresses each slice's columns as they are, without joining pieces), or
    an even part of one chunk where a chunk is larger. A compressed dataset is read in whole
    HDF5 chunks instead, within a chunk of the new node (one HDF5 chunk where those are
    larger, up to four slices' worth): the file has no chunk cache, and a chunk two slices
    shared would be decompressed twice (reading the zlib benchmark file in slices that cut
    its chunks took 2.4 s instead of 1.6)."""
    per_row = max(1, item.row_bytes)
    fit = max(1, SLICE_BYTES // per_row)
    h = item.h5chunk
    if h:
        step = min(fit, chunk_rows)
        if step >= h:
            return step - step % h
        if h * per_row <= 4 * SLICE_BYTES:
            return h
    if chunk_rows <= fit:
        return chunk_rows * (fit // chunk_rows)
    parts = -(-chunk_rows // fit)
    return -(-chunk_rows // parts)


def copy_rows(h5py: Any, f: Any, label: str, item: Item, node: Any, bar: Any) -> None:
    """Append the rows of ``item`` (read from open file ``f``) to ``node``; ``bar`` counts
    their bytes. HDF5 errors raise a ColvaultError naming ``label`` and the object."""
    step = slice_rows(item, node.chunk_rows)
    slices = _Slices(h5py, f, label, item, step)
    made = _read_ahead(slices, READ_AHEAD if item.rows > step else 0)
    try:
        for rows, columns in made:
            if item.kind == "array":
                node.append(columns[item.leaves[0].name])
            else:
                node.append(columns, copy=False)
            bar.update(rows * item.row_bytes)
    finally:
        made.close()  # on an error here too: the reading thread is stopped before it returns


class _Slices:
    """The slices of one object: its rows as colvault's columns, ``SLICE_BYTES`` at a time."""

    def __init__(self, h5py: Any, f: Any, label: str, item: Item, step: int) -> None:
        self.h5s, self.f, self.label, self.item, self.step = h5py.h5s, f, label, item, step
        with reading(label, item.h5path):
            obj = f[item.h5path]  # looked up once: h5py's lookup costs ~1 ms
            self.dsets = [obj[name] for name in item.names] if item.kind == "columns" else [obj]
            self.texts = [leaf.kind == "vlen" for leaf in item.leaves][: len(self.dsets)]
            self.ids = [d.id for d in self.dsets]
            self.mask = f[item.mask].id if item.mask is not None else None
        assert item.raw is not None
        rows = min(step, item.rows)
        if item.kind == "columns":
            self.bufs = [np.empty(rows, item.raw[n]) for n in item.names]
        else:
            self.bufs = [np.empty((rows, *item.inner), item.raw)]

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        item = self.item
        for start in range(0, item.rows, self.step):
            stop = min(start + self.step, item.rows)
            yield stop - start, self._columns(start, stop)

    def _columns(self, start: int, stop: int) -> dict[str, Any]:
        """Rows ``[start, stop)`` as the node's columns, each an array of its own."""
        item = self.item
        with reading(self.label, item.h5path):
            parts = [
                self._read_text(d, start, stop, buf) if text else self._read(i, start, stop, buf)
                for d, i, buf, text in zip(self.dsets, self.ids, self.bufs, self.texts, strict=True)
            ]
        raw: Any = dict(zip(item.names, parts, strict=True)) if item.names else parts[0]
        # the buffers are read into again: what the writer keeps must be a copy
        columns: dict[str, Any] = {
            leaf.name: _owned(convert_leaf(raw, leaf), self.bufs) for leaf in item.leaves
        }
        if self.mask is not None:
            missing = self._read_mask(start, stop)
            for leaf in item.leaves:
                if leaf.nullable:
                    flags = missing
                    for name in item.mask_fields[leaf.name]:
                        flags = flags[name]
                    columns[leaf.name] = np.ma.MaskedArray(columns[leaf.name], flags != 0)
        return columns

    def _read(self, dsid: Any, start: int, stop: int, buf: np.ndarray) -> np.ndarray:
        """Rows ``[start, stop)`` of a dataset as raw bytes, into ``buf``: the file's type is
        the memory type, so HDF5 converts nothing."""
        h5s, inner = self.h5s, self.item.inner
        if self.item.scalar:
            out = buf.reshape(())
            dsid.read(h5s.create(h5s.SCALAR), dsid.get_space(), out, mtype=dsid.get_type())
            return buf
        n = stop - start
        out = buf[:n]
        fspace = dsid.get_space()
        fspace.select_hyperslab((start,) + (0,) * len(inner), (n, *inner))
        dsid.read(h5s.create_simple((n, *inner)), fspace, out, mtype=dsid.get_type())
        return out

    def _read_text(self, ds: Any, start: int, stop: int, buf: np.ndarray) -> np.ndarray:
        """Variable-length strings: h5py's own read (HDF5 hands out pointers), into ``buf``."""
        utf8 = buf.dtype.kind == "U"
        if self.item.scalar:
            buf[0] = ds.asstr()[()] if utf8 else ds[()]
            return buf
        out = buf[: stop - start]
        out[...] = text_slice(ds, utf8, start, stop)
        return out

    def _read_mask(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of the mask colvault's export wrote beside a table."""
        item, h5s, dsid = self.item, self.h5s, self.mask
        assert item.mask is not None and item.mask_raw is not None and dsid is not None
        out = np.empty(stop - start, item.mask_raw)
        with reading(self.label, item.mask):
            fspace = dsid.get_space()
            fspace.select_hyperslab((start,), (stop - start,))
            dsid.read(h5s.create_simple((stop - start,)), fspace, out, mtype=dsid.get_type())
        return out


def _owned(a: np.ndarray, bufs: list[np.ndarray]) -> np.ndarray:
    """``a`` as a contiguous array of its own (a view of a read buffer is copied)."""
    if any(np.may_share_memory(a, b) for b in bufs):
        return np.array(a, order="C", copy=True)
    return np.ascontiguousarray(a)


_DONE = object()


def _read_ahead(items: Any, depth: int) -> Generator[Any, None, None]:
    """The items of iterable ``items``, made by a thread up to ``depth`` ahead of the caller
    (``depth`` 0: made here, one by one). An error making one is raised here, in its place;
    when the caller stops early (an error of its own), the thread stops after the item it is
    making, and is waited for: nothing reads the file once this returns."""
    if depth <= 0:
        yield from items
        return
    made: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def make() -> None:
        try:
            for x in items:
                if stop.is_set():
                    return
                made.put(x)
            made.put(_DONE)
        except BaseException as exc:  # raised again in the caller's thread
            made.put(_Failed(exc))

    thread = threading.Thread(target=make, name="colvault-hdf5-read", daemon=True)
    thread.start()
    try:
        while (x := made.get()) is not _DONE:
            if isinstance(x, _Failed):
                raise x.exc
            yield x
    finally:
        stop.set()
        _drain(made, thread.is_alive)
        thread.join()


class _Failed:
    """The error of the reading thread, handed to the caller's."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _drain(made: queue.Queue[Any], alive: Callable[[], bool]) -> None:
    """Empty ``made`` until the thread filling it has ended (a full queue would block it)."""
    while alive():
        try:
            made.get(timeout=0.01)
        except queue.Empty:
            pass
