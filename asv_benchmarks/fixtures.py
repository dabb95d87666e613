"""What the asv benchmark modules share: cached data and batches, warm-up, a fresh directory.

Not a benchmark module itself: asv imports it but finds nothing to time here.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from typing import Any, ClassVar

from .writers import BATCH_ROWS, WRITERS

# Benchmarks measure durable commits; an inherited COLVAULT_FSYNC=0 would silently skip fsync.
os.environ.pop("COLVAULT_FSYNC", None)


@functools.cache
def data(rows: int) -> dict[str, Any]:
    from colvault.benchdata import benchmark_data

    return benchmark_data(rows)


@functools.cache
def prepared(tool: str, rows: int, batch: int = BATCH_ROWS) -> Any:
    """``rows`` of the benchmark data as ``tool``'s batches of ``batch`` rows (built once)."""
    return WRITERS[tool].prepare(data(rows), batch)


@functools.cache
def warm(tool: str, rows: int, batch: int = BATCH_ROWS, commit_each: bool = False) -> None:
    """Load Numba kernels, HDF5, DuckDB once per process, outside the timed calls."""
    workdir = tempfile.mkdtemp(prefix=f"asv-warm-{tool}-")
    try:
        WRITERS[tool].write(prepared(tool, rows, batch), workdir, rows, commit_each=commit_each)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class FreshStore:
    """Base of the benchmarks that write one new store per timed call, in ``self.workdir``.

    ``number = 1``: asv runs ``setup`` (a fresh directory) before every call.
    """

    param_names: ClassVar[list[str]] = ["tool"]
    number = 1
    repeat = (3, 10, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, tool: str) -> None:
        if not WRITERS[tool].available:
            raise NotImplementedError(f"{WRITERS[tool].module} is not installed")
        self.workdir = tempfile.mkdtemp(prefix=f"asv-{type(self).__name__.lower()}-{tool}-")

    def teardown(self, tool: str) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
