"""The instrument-logger pattern per commit: many small batches, each committed durably.

300 commits of 100 rows (``compare logger`` runs 2,000 and reports commits/s). colvault commits
with fsync; PyTables flushes (no fsync) with colvault's chunk length, as its default chunk shape
makes every flush cost hundreds of milliseconds (see ``compare logger``); DuckDB autocommits each
INSERT. The timed call includes opening the file and creating the table.
"""

from __future__ import annotations

from typing import ClassVar

from .fixtures import FreshStore, prepared, warm
from .writers import WRITERS

COMMITS = 300
ROWS_PER_COMMIT = 100
ROWS = COMMITS * ROWS_PER_COMMIT
WARMUP_COMMITS = 20


class Logger(FreshStore):
    """``COMMITS`` times: append ``ROWS_PER_COMMIT`` rows and commit; then close."""

    params: ClassVar[list[str]] = ["colvault", "pytables-128k", "duckdb"]

    def setup(self, tool: str) -> None:
        super().setup(tool)
        self.batches = prepared(tool, ROWS, ROWS_PER_COMMIT)
        warm(tool, WARMUP_COMMITS * ROWS_PER_COMMIT, ROWS_PER_COMMIT, commit_each=True)

    def time_logger(self, tool: str) -> None:
        WRITERS[tool].write(self.batches, self.workdir, ROWS, commit_each=True)
