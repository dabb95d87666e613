"""Query speed per commit: the select, count, time-range and stats queries of ``compare query``.

2 M rows of the benchmark data (10 % of the full set); each tool's store is built once, by the
same code as the append benchmark, in asv's directory for ``setup_cache`` (removed when the
benchmarks are done). numpy holds the columns in RAM. The cold start of a query process is
measured by ``compare query`` only: asv times calls within a process.
"""

from __future__ import annotations

import os
from typing import ClassVar

from .fixtures import data
from .queries import QUERY_TOOLS, t_bounds

ROWS = 2_000_000
TOOLS = ["colvault", "pytables-128k", "numpy", "duckdb"]


class Query:
    """One query per timed call on a store opened in ``setup`` (files in the page cache)."""

    params: ClassVar[list[str]] = TOOLS
    param_names: ClassVar[list[str]] = ["tool"]
    timeout = 300

    def setup_cache(self) -> dict[str, str]:
        """Paths of the stores, built in the working directory asv keeps for this cache."""
        paths = {}
        for tool in TOOLS:
            q = QUERY_TOOLS[tool]
            if q.writer is not None and q.available:
                workdir = os.path.abspath(tool)
                os.makedirs(workdir)
                paths[tool] = q.build(data(ROWS), workdir)
        return paths

    def setup(self, paths: dict[str, str], tool: str) -> None:
        q = QUERY_TOOLS[tool]
        if not q.available:
            raise NotImplementedError(f"{q.module} is not installed")
        self.queries = q.queries(data(ROWS) if q.writer is None else paths[tool])
        self.lo, self.hi = t_bounds(data(ROWS)["t"])
        # Untimed: each query's kernels compiled or loaded, files opened.
        self.time_select(paths, tool)
        self.time_count(paths, tool)
        self.time_t_range(paths, tool)
        self.time_stats(paths, tool)

    def teardown(self, paths: dict[str, str], tool: str) -> None:
        self.queries.close()

    def time_select(self, paths: dict[str, str], tool: str) -> None:
        self.queries.select()

    def time_count(self, paths: dict[str, str], tool: str) -> None:
        self.queries.count()

    def time_t_range(self, paths: dict[str, str], tool: str) -> None:
        self.queries.t_range(self.lo, self.hi)

    def time_stats(self, paths: dict[str, str], tool: str) -> None:
        self.queries.stats()
