"""Rows written to an HDF5 dataset in order; with gzip, whole chunks shuffled and deflated in
the store's worker threads and written as they are (HDF5 runs its filters on the calling
thread only)."""

from __future__ import annotations

import os
import zlib
from collections import deque
from concurrent.futures import Future
from typing import Any

import numpy as np

#: HDF5's deflate level for ``compression="gzip"`` (what PyTables' ``zlib`` reads).
GZIP_LEVEL = 4


class ChunkSink:
    """Where a dataset's rows go, in order. HDF5 compresses on the calling thread only: with
    gzip, whole HDF5 chunks are shuffled and deflated by the store's worker threads instead,
    and written as they are (``H5Dwrite_chunk``), a few in flight; other rows go through
    HDF5's own write and filters."""

    def __init__(self, h5py: Any, ds: Any, tid: Any, chunk: int, pool: Any) -> None:
        self.h5py, self.ds, self.tid, self.chunk, self.pool = h5py, ds, tid, chunk, pool
        self.element = tid.get_size()  # the shuffle filter's element: the dataset's type
        self.stage: np.ndarray | None = None
        self.staged = 0
        self.offset = 0  # the first row of the stage
        self.pending: deque[tuple[int, Future[bytes]]] = deque()
        self.limit = 2 * (os.cpu_count() or 1)  # chunks in flight, at most

    def put(self, start: int, buf: np.ndarray) -> None:
        if not len(buf):
            return
        if self.pool is None:
            h5s = self.h5py.h5s
            fspace = self.ds.id.get_space()
            fspace.select_hyperslab((start,) + (0,) * (buf.ndim - 1), buf.shape)
            mspace = h5s.create_simple(buf.shape)  # laid out as tid: HDF5 converts nothing
            self.ds.id.write(mspace, fspace, np.ascontiguousarray(buf), mtype=self.tid)
            return
        pos = 0
        while pos < len(buf):
            if not self.staged and len(buf) - pos >= self.chunk:  # whole chunks: no copy
                self._submit(buf[pos : pos + self.chunk])
                pos += self.chunk
                continue
            if self.stage is None:
                self.stage = np.zeros((self.chunk, *buf.shape[1:]), buf.dtype)
            take = min(self.chunk - self.staged, len(buf) - pos)
            self.stage[self.staged : self.staged + take] = buf[pos : pos + take]
            self.staged += take
            pos += take
            if self.staged == self.chunk:
                self._submit(self.stage)
                self.stage, self.staged = None, 0

    def _submit(self, block: np.ndarray) -> None:
        """Deflate a chunk's rows elsewhere (``block`` is never written to again)."""
        job = self.pool.submit(_deflate, block, self.element)
        self.pending.append((self.offset, job))
        self.offset += self.chunk
        while len(self.pending) > self.limit:
            self._write_one()

    def _write_one(self) -> None:
        offset, job = self.pending.popleft()
        inner = (0,) * (self.ds.id.get_space().get_simple_extent_ndims() - 1)
        self.ds.id.write_direct_chunk((offset, *inner), job.result())

    def close(self) -> None:
        if self.pool is None:
            return
        if self.staged:  # padded with zeros: HDF5 keeps edge chunks whole
            assert self.stage is not None
            self._submit(self.stage)
            self.stage, self.staged = None, 0
        while self.pending:
            self._write_one()


def _deflate(block: np.ndarray, element: int) -> bytes:
    """A chunk as HDF5's shuffle then deflate filters leave it (byte ``j`` of every element
    together, then zlib at :data:`GZIP_LEVEL`); zlib and numpy's copy release the GIL."""
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1, element)
    if element > 1:
        raw = np.ascontiguousarray(raw.T)
    return zlib.compress(raw.data, GZIP_LEVEL)
