"""Child process: compact a store, to be killed with ``kill -9`` while it does.

Usage: ``python _child_compact.py STORE [SEGMENT_BYTES]``

Opens the store with mode ``"a"`` (recovery runs) and reads a row of every table (so that
loading Numba's cached kernels is not part of the time the parent may kill in). Prints
``compacting`` just before it calls ``compact()``, then ``done SECONDS REWRITTEN FILES_REMOVED``
(rewritten node paths joined by commas, ``-`` for none) once it returns, and closes the store.
"""

from __future__ import annotations

import sys
import time

import colvault


def main() -> None:
    segment_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else None
    store = colvault.open(sys.argv[1], "a", segment_bytes=segment_bytes)
    for node in store.walk():  # load the cached decoding kernels before the clock starts
        if isinstance(node, colvault.Table) and len(node):
            node[:1]
    store.expire(store.commit())  # compaction reclaims only what no kept commit names
    print("compacting", flush=True)
    start = time.perf_counter()
    report = store.compact()
    took = time.perf_counter() - start
    print(f"done {took:.3f} {','.join(report.rewritten) or '-'} {report.files_removed}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
