"""CSV import speed per commit: the numeric and mixed files of ``compare csv``, 500 k rows each.

colvault's figure is the full import (parse, compress, durable commit) into a new table of a
store opened in ``setup``;
pandas and pyarrow parse into memory. The files are written once in asv's cache directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, ClassVar

from . import csvfiles

ROWS = 500_000
TOOLS = ["colvault", "pandas", "pyarrow"]
KINDS = [csvfiles.NUMERIC, csvfiles.MIXED]


class ImportCSV:
    params: ClassVar[list[list[str]]] = [TOOLS, KINDS]
    param_names: ClassVar[list[str]] = ["tool", "file"]
    timeout = 300

    def setup_cache(self) -> dict[str, str]:
        return {k: csvfiles.write(k, ROWS, os.path.abspath(f"{k}.csv")) for k in KINDS}

    def setup(self, files: dict[str, str], tool: str, kind: str) -> None:
        if tool == "pandas":
            import pandas  # noqa: F401
        elif tool == "pyarrow":
            import pyarrow.csv  # noqa: F401
        self.workdir = tempfile.mkdtemp(prefix="asv-csv-")
        self.store: Any = None
        self.runs = 0
        if tool == "colvault":
            import colvault

            self.store = colvault.open(os.path.join(self.workdir, "s.colvault"), "w")
        self.run(files, tool, kind)  # warm-up: kernels compiled or loaded from the cache

    def teardown(self, files: dict[str, str], tool: str, kind: str) -> None:
        if self.store is not None:
            self.store.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def run(self, files: dict[str, str], tool: str, kind: str) -> Any:
        path = files[kind]
        if tool == "colvault":
            import colvault

            self.runs += 1
            return colvault.import_csv(path, self.store, f"/t{self.runs}", progress=False)
        if tool == "pandas":
            import pandas as pd

            return pd.read_csv(path, parse_dates=["t"] if kind == csvfiles.MIXED else None)
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)

    def time_import(self, files: dict[str, str], tool: str, kind: str) -> None:
        self.run(files, tool, kind)
