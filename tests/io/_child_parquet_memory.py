"""Child process for the Parquet memory test: build a benchmark table, or stream it to a
Parquet file and back into a new store while a thread samples ``RssAnon``.

Usage::

    python _child_parquet_memory.py build STORE ROWS            # prints "built ROWS"
    python _child_parquet_memory.py measure STORE PARQUET COPY  # prints one JSON line
"""

from __future__ import annotations

import json
import sys

import colvault
from colvault.benchdata import SCHEMA, benchmark_data
from colvault.diagnostics import PeakRss

TABLE = "/bench"


def build(path: str, rows: int) -> None:
    with colvault.open(path, "w") as store:
        table = store.create_table(TABLE, SCHEMA, expected_rows=rows)
        step = 1_000_000
        for i in range(0, rows, step):
            data = benchmark_data(min(step, rows - i))
            table.append(data)
    print(f"built {rows}", flush=True)


def measure(path: str, parquet: str, copy: str) -> None:
    import pyarrow
    import pyarrow.parquet  # noqa: F401

    with colvault.open(path, "r") as store:
        table = store[TABLE]
        table.to_arrow(stop=10)  # kernels, pools and pyarrow's own set-up before the baseline
        with PeakRss() as out:
            table.to_parquet(parquet)
        rows = len(table)
    with colvault.open(copy, "w") as dest, PeakRss() as back:
        copied = len(colvault.import_parquet(parquet, dest, TABLE))
    report = {
        "rows": rows,
        "copied": copied,
        "export_growth": out.peak - out.first,
        "import_growth": back.peak - back.first,
        "samples": out.samples + back.samples,
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], int(sys.argv[3]))
    else:
        measure(sys.argv[2], sys.argv[3], sys.argv[4])
