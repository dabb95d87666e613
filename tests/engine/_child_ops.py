"""Child process: run store operations read from stdin, one per line, printing ``ok`` after each.

Usage: ``python _child_ops.py STORE``

Commands: ``append PATH N`` (N rows of ``x`` counting on from the table's length, committed),
``create PATH``, ``rename OLD NEW``, ``remove PATH``, ``attr PATH KEY VALUE`` (each committed),
``die-in-commit PATH N``: append N rows and exit (status 0, no cleanup) right after the
catalog COMMIT, before the change counter is moved back to even, as a writer killed there
would. The parent checks after each ``ok`` that its own store object sees the change at once.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import colvault
from colvault.engine import changes


def main() -> None:
    store = colvault.open(sys.argv[1], "a")
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "append":
            t = store[args[0]]
            n0 = len(t)
            t.append({"x": np.arange(n0, n0 + int(args[1]), dtype=np.int64)})
        elif cmd == "create":
            store.create_table(args[0], {"x": "i8"})
        elif cmd == "rename":
            store.rename(args[0], args[1])
        elif cmd == "remove":
            store.remove(args[0])
        elif cmd == "attr":
            store[args[0]].attrs[args[1]] = args[2]
        elif cmd == "die-in-commit":
            t = store[args[0]]
            n0 = len(t)
            t.append({"x": np.arange(n0, n0 + int(args[1]), dtype=np.int64)})
            changes.ChangeCounter.end = lambda self: os._exit(0)  # type: ignore[method-assign]
        else:
            raise SystemExit(f"unknown command {cmd!r}")
        store.commit()
        print("ok", flush=True)
    store.close()


if __name__ == "__main__":
    main()
