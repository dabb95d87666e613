"""Out-of-core memory at full scale, measured in a child process for ``compare``.

    python -m asv_benchmarks.memory query DIR ROWS    # build a table, then query it
    python -m asv_benchmarks.memory csv DIR SMALL BIG # import a small CSV, then a big one

Each prints one JSON line. A thread samples ``RssAnon`` (anonymous resident memory: what the
process allocates; mapped segment files are excluded) every 2 ms. The *level* is taken after the
set-up the issue names (the import and one small query; the small CSV import), the *peak* during
the measured work, and the figure is peak minus level.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from colvault.diagnostics import PeakRss, rss_anon

SELECTIVE = "(value > 10) & (value < 20.5) & (temp < 20)"
BROAD = "temp < 20"


def measure_query(workdir: str, rows: int) -> dict[str, object]:
    import colvault
    from colvault.benchdata import SCHEMA, benchmark_data

    path = os.path.join(workdir, "memory.colvault")
    batch = 2_000_000
    with colvault.open(path, "w") as s:
        t = s.create_table("/bench", SCHEMA, expected_rows=rows)
        for start in range(0, rows, batch):
            part = benchmark_data(min(batch, rows - start))
            t.append(part)
            s.commit()
            del part
    raw = rows * sum(np.dtype(d).itemsize for d in SCHEMA.values())
    s = colvault.open(path, "r")
    t = s["/bench"]
    t.read_where("sensor == 3", start=0, stop=10_000)  # the one small query
    level = rss_anon()
    with PeakRss() as sampler:
        n = t.count_where(SELECTIVE)
        got = 0
        for batch_ in t.iter_where(BROAD):
            got += len(batch_["t"])
    s.close()
    return {"rows": rows, "raw_bytes": raw, "level": level, "peak": sampler.peak,
            "count": n, "iter_rows": got}  # fmt: skip


def measure_csv(workdir: str, small: str, big: str) -> dict[str, object]:
    import colvault

    path = os.path.join(workdir, "memory-csv.colvault")
    with colvault.open(path, "w") as s:
        colvault.import_csv(small, s, "/small")
        level = rss_anon()
        with PeakRss() as sampler:
            t = colvault.import_csv(big, s, "/big")
            rows = t.nrows
    return {"bytes": os.path.getsize(big), "rows": rows, "level": level, "peak": sampler.peak}


def main(argv: list[str]) -> int:
    if argv[0] == "query":
        out = measure_query(argv[1], int(argv[2]))
    elif argv[0] == "csv":
        out = measure_csv(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
