"""Child process for the out-of-core memory test: build a benchmark table, or query one while a
thread samples the process's anonymous memory.

Usage::

    python _child_memory.py build STORE ROWS     # prints "built ROWS"
    python _child_memory.py measure STORE        # prints one JSON line (bytes, counts)

``measure`` opens the store read-only, starts a thread that reads ``RssAnon`` from
``/proc/self/status`` every 2 ms, then runs ``count_where`` and ``iter_where`` over the whole
table, consuming the iterator without keeping its batches. Mapped segment files count in
``VmRSS`` but not in ``RssAnon``: the anonymous part is what the engine allocates.
"""

from __future__ import annotations

import json
import sys
import time

import colvault
from colvault.benchdata import SCHEMA, benchmark_data
from colvault.diagnostics import PeakRss

TABLE = "/bench"
#: The benchmark's selective condition (about 3.5 % of the rows) and a broad one (about half):
#: ``iter_where`` on the broad one carries chunk-sized batches of every column.
SELECTIVE = "(value > 10) & (value < 20.5) & (temp < 20)"
BROAD = "temp < 20"


def build(path: str, rows: int) -> None:
    data = benchmark_data(rows)
    with colvault.open(path, "w") as store:
        table = store.create_table(TABLE, SCHEMA, expected_rows=rows)
        step = 1_000_000
        for i in range(0, rows, step):
            table.append({k: v[i : i + step] for k, v in data.items()})
    print(f"built {rows}", flush=True)


def measure(path: str) -> None:
    with colvault.open(path, "r") as store:
        table = store[TABLE]
        sampler = PeakRss()
        sampler.start()
        start = time.perf_counter()
        count = table.count_where(SELECTIVE)
        selected = broad = batches = 0
        for cond in (SELECTIVE, BROAD):
            for batch in table.iter_where(cond):
                n = len(batch["t"])
                if cond == SELECTIVE:
                    selected += n
                else:
                    broad += n
                batches += 1
                del batch
        seconds = time.perf_counter() - start
        peak = sampler.stop()
        result = {
            "rows": len(table),
            "count": count,
            "selected": selected,
            "broad": broad,
            "batches": batches,
            "first": sampler.first,
            "peak": peak,
            "samples": sampler.samples,
            "seconds": seconds,
        }
    print(json.dumps(result), flush=True)


def main() -> None:
    if sys.argv[1] == "build":
        build(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "measure":
        measure(sys.argv[2])
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")


if __name__ == "__main__":
    main()
