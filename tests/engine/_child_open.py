"""Child process: open a store (default mode ``"a"``: recovery runs), close it, print ``ok``.

Usage: ``python _child_open.py STORE [MODE]``
"""

from __future__ import annotations

import sys

import colvault


def main() -> None:
    mode = sys.argv[2] if len(sys.argv) > 2 else "a"
    store = colvault.open(sys.argv[1], mode)
    store.close()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
