"""Child process: edit a table in a loop, to be killed with ``kill -9`` at any moment.

Usage: ``python _child_editor.py STORE``

Each round does one change to ``/e`` (columns ``x``: int64 row labels, ``y``: float64) and
commits: append rows, delete rows (``delete_where``), update rows (``update_where``), add a
column then remove it again, expire every commit but the last and compact, or stage two
batches of rows and commit them (``commit_staged``). Before each
commit it prints ``pending HASH``, after it ``committed HASH``: the hash of the table's rows as
a numpy model of the same changes says they are then. A store the kill left must hold the last
committed state or the pending one after it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import numpy as np

import colvault


def digest(columns: dict[str, np.ndarray]) -> str:
    """The rows as the parent reads them back: a hash of each column's values in order."""
    h = hashlib.sha256()
    for name in sorted(columns):
        h.update(name.encode())
        h.update(np.ascontiguousarray(columns[name]).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    parent = os.getppid()
    deadline = time.monotonic() + 120
    store = colvault.open(sys.argv[1], "a")
    t = store["/e"]
    model = {k: np.asarray(v) for k, v in t.read_columns().items()}
    step = int(store.attrs.get("step", 0))
    while os.getppid() == parent and time.monotonic() < deadline:
        kind = step % 6
        x = model["x"]
        staged = []
        if kind == 0:
            new = np.arange(step * 1000, step * 1000 + 2500, dtype=np.int64)
            extra = {"x": new, "y": new * 0.5}
            if "z" in model:
                extra["z"] = new * 2.0
            t.append(extra)
            model = {k: np.concatenate([model[k], extra[k]]) for k in model}
        elif kind == 1:
            k = step % 7
            t.delete_where(f"x % 7 == {k}")
            keep = x % 7 != k
            model = {name: v[keep] for name, v in model.items()}
        elif kind == 2:
            k = step % 5
            t.update_where(f"x % 5 == {k}", {"y": float(-step)})
            model["y"] = np.where(x % 5 == k, float(-step), model["y"])
        elif kind == 3:
            if "z" in t.columns:
                t.remove_column("z")
                del model["z"]
            else:
                t.add_column("z", "f8", expr="x * 2.0")
                model["z"] = x * 2.0
        elif kind == 4:
            store.expire(store.commit())
        else:
            for k in range(2):
                new = np.arange(step * 1000 + 500 * k, step * 1000 + 500 * k + 400, dtype=np.int64)
                extra = {"x": new, "y": new * 0.5}
                if "z" in model:
                    extra["z"] = new * 2.0
                staged.append(t.stage(extra))
                model = {k: np.concatenate([model[k], extra[k]]) for k in model}
        store.attrs["step"] = step + 1
        print(f"pending {digest(model)}", flush=True)
        if staged:
            store.commit_staged(staged)
        else:
            store.commit()
        print(f"committed {digest(model)}", flush=True)
        if kind == 4:
            store.compact()
        step += 1
    store.close()


if __name__ == "__main__":
    main()
