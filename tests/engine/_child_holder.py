"""Child process: a writer that holds uncommitted full chunks until told to commit.

Usage: ``python _child_holder.py STORE ROUNDS ROWS``

Opens the store with small segments and, in each round, appends ``ROWS`` rows to ``/a`` (full
chunks are compressed and written to its segments at once, some of which roll over), prints
``appended N``, waits for ``commit`` on stdin, commits and prints ``committed N``. Meanwhile the
test lets another process open the store for writing, which runs recovery: it must not cut
these uncommitted bytes, which the commit is about to name.
"""

from __future__ import annotations

import sys

import _rows

import colvault


def main() -> None:
    path, rounds, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with colvault.open(path, "a", segment_bytes=16 << 10) as store:
        a = store["/a"]
        n = len(a)
        for _ in range(rounds):
            a.append(_rows.values_a(n, n + rows))
            n += rows
            print(f"appended {n}", flush=True)
            if sys.stdin.readline().strip() != "commit":
                sys.exit("expected 'commit' on stdin")
            store.commit()
            print(f"committed {n}", flush=True)
    print("closed", flush=True)


if __name__ == "__main__":
    main()
