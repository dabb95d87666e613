"""Child process for the CSV import memory test: write a numeric CSV, or import one while a
thread samples the process's anonymous memory.

Usage::

    python _child_csv_memory.py write CSV MEGABYTES   # prints "wrote ROWS BYTES"
    python _child_csv_memory.py import CSV STORE      # prints one JSON line (bytes, counts)

``write`` builds rows ``sensor,value,temp`` (``123,4567.891,12.3456``: the benchmark data's
columns, a fixed 21 bytes a row) with vectorized digit arithmetic, a million rows at a time
(``np.savetxt`` would take a minute). The values are a function of the row number, so the
parent knows them without reading the file.

``import`` starts a thread that reads ``RssAnon`` from ``/proc/self/status`` every 2 ms (the
pattern of ``tests/engine/_child_memory.py``), then imports the file into a new table. The
store's segment files are written, not mapped, and page cache is not anonymous memory: what
grows ``RssAnon`` is what the importer and the engine allocate.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from colvault.diagnostics import PeakRss

ROW_BYTES = 21  # "SSS,VVVV.VVV,TT.TTTT\n"
STEP = 1_000_000
TABLE = "/readings"


def values(i: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``i`` (int64 row numbers) as integers: sensor (0-999), value and temp in
    thousandths and ten-thousandths (both below 10,000,000)."""
    sensor = i % 1000
    value = (i * 7_919 + 12_345) % 10_000_000
    temp = (i * 104_729 + 777) % 1_000_000
    return sensor, value, temp


def _digits(out: np.ndarray, col: int, number: np.ndarray, width: int) -> None:
    for k in range(width - 1, -1, -1):
        out[:, col + k] = 48 + number % 10
        number = number // 10


def lines(start: int, stop: int) -> bytes:
    sensor, value, temp = values(np.arange(start, stop, dtype=np.int64))
    out = np.empty((stop - start, ROW_BYTES), np.uint8)
    _digits(out, 0, sensor, 3)
    out[:, 3] = ord(",")
    _digits(out, 4, value // 1000, 4)
    out[:, 8] = ord(".")
    _digits(out, 9, value % 1000, 3)
    out[:, 12] = ord(",")
    _digits(out, 13, temp // 10_000, 2)
    out[:, 15] = ord(".")
    _digits(out, 16, temp % 10_000, 4)
    out[:, 20] = ord("\n")
    return out.tobytes()


def write(path: str, megabytes: int) -> None:
    rows = megabytes * 1_000_000 // ROW_BYTES
    with open(path, "wb") as f:
        f.write(b"sensor,value,temp\n")
        for start in range(0, rows, STEP):
            f.write(lines(start, min(start + STEP, rows)))
        size = f.tell()
    print(f"wrote {rows} {size}", flush=True)


def import_(csv_path: str, store_path: str) -> None:
    import colvault

    with colvault.open(store_path, "w") as store:
        sampler = PeakRss()
        sampler.start()
        start = time.perf_counter()
        table = colvault.import_csv(csv_path, store, TABLE, progress=False)
        seconds = time.perf_counter() - start
        peak = sampler.stop()
        # a few values checked here, where the table is open: the parent checks the counts
        n = len(table)
        probe = np.array([0, 1, n // 2, n - 1], np.int64)
        sensor, value, temp = values(probe)
        rows = table[probe]
        exact = (
            bool((rows["sensor"] == sensor).all())
            and bool((rows["value"] == value / 1000).all())
            and bool((rows["temp"] == temp / 10_000).all())
        )
        result = {
            "rows": n,
            "dtypes": [str(table.schema[c]) for c in table.colnames],
            "exact": exact,
            "first": sampler.first,
            "peak": peak,
            "samples": sampler.samples,
            "seconds": seconds,
        }
    print(json.dumps(result), flush=True)


def main() -> None:
    if sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "import":
        import_(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")


if __name__ == "__main__":
    main()
