"""Bulk-load speed and size per commit, so a regression shows up against the commit that caused it.

The data set is 2 M rows of the benchmark data (10 % of the full set, to keep ``asv run`` short);
``compare`` gives the full-size figures. PyTables and DuckDB run through the same code as
colvault (``writers``), so asv's history of their figures shows how noisy this machine is.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from typing import Any, ClassVar

from colvault.benchdata import SCHEMA

from .writers import WRITERS, colvault_column_sizes

ROWS = 2_000_000
WARMUP_ROWS = 50_000

# Benchmarks measure durable commits; an inherited COLVAULT_FSYNC=0 would silently skip fsync.
os.environ.pop("COLVAULT_FSYNC", None)


@functools.cache
def _data(rows: int = ROWS) -> dict[str, Any]:
    from colvault.benchdata import benchmark_data

    return benchmark_data(rows)


@functools.cache
def _prepared(tool: str, rows: int = ROWS) -> Any:
    return WRITERS[tool].prepare(_data(rows))


@functools.cache
def _warm(tool: str) -> None:
    """Load Numba kernels, HDF5, DuckDB once per process, outside the timed calls."""
    workdir = tempfile.mkdtemp(prefix=f"asv-warm-{tool}-")
    try:
        WRITERS[tool].write(_prepared(tool, WARMUP_ROWS), workdir, WARMUP_ROWS)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Append:
    """Open, create, append 1 M-row batches, durable close: one fresh store per timed call."""

    params: ClassVar[list[str]] = list(WRITERS)
    param_names: ClassVar[list[str]] = ["tool"]
    number = 1  # setup (a fresh directory) runs before every call
    repeat = (3, 10, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, tool: str) -> None:
        if not WRITERS[tool].available:
            raise NotImplementedError(f"{WRITERS[tool].module} is not installed")
        self.batches = _prepared(tool)
        _warm(tool)
        self.workdir = tempfile.mkdtemp(prefix=f"asv-append-{tool}-")

    def teardown(self, tool: str) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def time_append(self, tool: str) -> None:
        WRITERS[tool].write(self.batches, self.workdir, ROWS)

    def track_size(self, tool: str) -> int:
        """Bytes on disk after close (colvault: the whole store directory)."""
        writer = WRITERS[tool]
        return writer.size(writer.write(self.batches, self.workdir, ROWS))

    track_size.unit = "bytes"  # type: ignore[attr-defined]


class ColvaultColumns:
    """Compressed bytes per column: where an encoding change (scaling, delta, ...) shows."""

    params: ClassVar[list[str]] = list(SCHEMA)
    param_names: ClassVar[list[str]] = ["column"]
    timeout = 300

    def setup_cache(self) -> dict[str, int]:
        workdir = tempfile.mkdtemp(prefix="asv-columns-")
        try:
            path = WRITERS["colvault"].write(_prepared("colvault"), workdir, ROWS)
            return {name: stored for name, _, _, _, stored in colvault_column_sizes(path)}
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def track_column_bytes(self, sizes: dict[str, int], column: str) -> int:
        return sizes[column]

    track_column_bytes.unit = "bytes"  # type: ignore[attr-defined]
