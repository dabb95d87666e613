"""Create a store with one table, as a user's first lines would; the parent kills it anywhere.

First a store is made in a scratch directory, so that the kernels an append needs are loaded
before the parent's clock starts; then ``ready``, a store path read on stdin, and that store
created with one table.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

import colvault


def create(path: str) -> None:
    with colvault.open(path, "a") as store:
        store.create_table("/t", {"x": "f8"}).append({"x": np.arange(100.0)})


with tempfile.TemporaryDirectory() as scratch:
    create(os.path.join(scratch, "warm.colvault"))
print("ready", flush=True)
create(sys.stdin.readline().strip())
print("done", flush=True)
