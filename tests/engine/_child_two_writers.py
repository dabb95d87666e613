"""Child process: one of two writers appending 100 batches, one commit each, to ``/t``.

Usage: ``python _child_two_writers.py STORE WRITER [--segment-bytes N]``

Opens the store (mode ``"a"``, so it runs recovery while the other writer may be live), prints
``ready``, waits for ``go`` on stdin so both writers start together, then commits batch after
batch (values identify writer, batch and row within the batch) and prints ``done``.
"""

from __future__ import annotations

import argparse
import sys

import _rows

import colvault

BATCHES = 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("writer", type=int)
    parser.add_argument("--segment-bytes", type=int, default=0)
    args = parser.parse_args()
    with colvault.open(args.store, "a", segment_bytes=args.segment_bytes or None) as store:
        t = store["/t"]
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            sys.exit("expected 'go' on stdin")
        for batch in range(BATCHES):
            t.append(_rows.two_writer_values(args.writer, batch))
            store.commit()
    print("done", flush=True)


if __name__ == "__main__":
    main()
