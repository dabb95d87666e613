"""The HDF5 file an import reads: h5py (with ``hdf5plugin``'s filters where installed), the
file opened without a chunk cache, and HDF5's errors as :class:`~colvault.ColvaultError`.

Why apart: planning, reading rows and reading attributes all open objects of the one file and
must all name the file and object when HDF5 fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import ColvaultError

#: The HDF5 chunk cache of the file opened for the import: none. HDF5 then reads the bytes of
#: uncompressed chunks straight into the slice's buffer (through a cache it copies them twice:
#: 0.37 against 0.12 s for 480 MB). Compressed datasets are read in whole HDF5 chunks
#: (:func:`.read.slice_rows`): each is decompressed once without a cache.
CHUNK_CACHE_BYTES = 0


def load_h5py() -> Any:
    """The ``h5py`` module, with ``hdf5plugin``'s filters registered when it is installed."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ColvaultError("import_hdf5 needs h5py (pip install h5py)") from exc
    try:  # registers blosc, blosc2, lz4, zstd... with h5py's HDF5, where it is installed
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


def open_file(h5py: Any, h5file: str | os.PathLike[str] | Any, label: str) -> Any:
    """``h5file`` (a path or a file object) opened for reading, or a ColvaultError."""
    try:
        return h5py.File(h5file, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    except (OSError, ValueError, TypeError) as exc:
        raise ColvaultError(
            f"{label}: cannot open as an HDF5 file ({exc}); nothing was imported"
        ) from exc


@contextmanager
def reading(label: str, h5path: str) -> Iterator[None]:
    """HDF5 errors while reading ``h5path`` as a ColvaultError naming the file and object."""
    try:
        yield
    except ColvaultError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise ColvaultError(
            f"{label}: cannot read HDF5 object {h5path} ({exc}); nothing was imported"
        ) from exc


def missing_filters(dcpl: Any, h5z: Any) -> list[str]:
    """The compression filters of a dataset that h5py's HDF5 library cannot decode."""
    missing = []
    for i in range(dcpl.get_nfilters()):
        code, _flags, _values, name = dcpl.get_filter(i)
        if not h5z.filter_avail(code):
            missing.append(f"{name.decode('ascii', 'replace') or 'unnamed'} (filter {code})")
    return missing
