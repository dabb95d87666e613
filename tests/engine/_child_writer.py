"""Child process: append deterministic batches to ``/a`` and ``/b`` and commit, in a loop.

Usage: ``python _child_writer.py STORE [--segment-bytes N] [--commits N]``

Each commit appends ``_rows.batch_size(n)`` rows to both tables (values a function of the row
number), creates the extra tables ``_rows.extra_tables`` names for the new count, and sets the
root attribute ``rows``; after each commit the new row count is printed and flushed. The loop
ends after ``--commits`` commits (0: until killed), when the parent goes away, or after two
minutes (a safety net so no test leaves a writer behind).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import _rows

import colvault


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--segment-bytes", type=int, default=0)
    parser.add_argument("--commits", type=int, default=0)
    args = parser.parse_args()
    parent = os.getppid()
    deadline = time.monotonic() + 120
    store = colvault.open(args.store, "a", segment_bytes=args.segment_bytes or None)
    a, b = store["/a"], store["/b"]
    n = len(a)
    if len(b) != n:
        sys.exit(f"tables disagree before the first commit: {n} != {len(b)}")
    done = 0
    while args.commits == 0 or done < args.commits:
        m = _rows.batch_size(n)
        a.append(_rows.values_a(n, n + m))
        b.append(_rows.values_b(n, n + m))
        for path, rows in _rows.extra_tables(n + m).items():
            if path not in store:
                store.create_table(path, _rows.extra_schema(path), chunk_rows=16).append(
                    _rows.extra_values(path, rows)
                )
        store.attrs["rows"] = n + m
        store.commit()
        n += m
        done += 1
        sys.stdout.write(f"{n}\n")
        sys.stdout.flush()
        if os.getppid() != parent or time.monotonic() > deadline:
            break
    store.close()


if __name__ == "__main__":
    main()
