"""Bulk-load speed and size per commit, so a regression shows up against the commit that caused it.

The data set is 2 M rows of the benchmark data (10 % of the full set, to keep ``asv run`` short);
``compare`` gives the full-size figures. PyTables and DuckDB run through the same code as
colvault (``writers``), so asv's history of their figures shows how noisy this machine is.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import ClassVar

from colvault.benchdata import SCHEMA

from .fixtures import FreshStore, prepared, warm
from .writers import WRITERS, colvault_column_sizes

ROWS = 2_000_000
WARMUP_ROWS = 50_000


class Append(FreshStore):
    """Open, create, append 1 M-row batches, durable close: one fresh store per timed call."""

    params: ClassVar[list[str]] = list(WRITERS)

    def setup(self, tool: str) -> None:
        super().setup(tool)
        self.batches = prepared(tool, ROWS)
        warm(tool, WARMUP_ROWS)

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
            path = WRITERS["colvault"].write(prepared("colvault", ROWS), workdir, ROWS)
            return {name: stored for name, _, _, _, stored in colvault_column_sizes(path)}
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def track_column_bytes(self, sizes: dict[str, int], column: str) -> int:
        return sizes[column]

    track_column_bytes.unit = "bytes"  # type: ignore[attr-defined]
