"""Deterministic rows for the crash and concurrency tests (shared by the tests and their children).

Every value is a function of the row number, so a parent process can check any prefix of a
table that a child wrote without being told what was written. Batch sizes are a function of the
row count before the batch, so the parent knows the one commit a killed child may have landed
after its last report.
"""

from __future__ import annotations

import hashlib

import numpy as np

import colvault

#: Schemas of the two tables the crash and reader tests write; every commit appends the same
#: number of rows to both, so their lengths must always agree (commits are atomic across tables).
SCHEMA_A = {"i": "i8", "h": "u4", "f": "f8"}
SCHEMA_B = {"g": "f4", "k": "i2"}
CHUNK_A = 1000
CHUNK_B = 700


def batch_size(start: int) -> int:
    """Rows of the commit that follows a committed count of ``start``: mostly a few hundred,
    one commit in eight 1000 to 3000 (full chunks are written during ``append``)."""
    h = int.from_bytes(hashlib.blake2b(start.to_bytes(8, "little"), digest_size=8).digest())
    return 1000 + h % 2000 if h % 8 == 0 else 1 + (h >> 8) % 400


def values_a(start: int, stop: int) -> dict[str, np.ndarray]:
    i = np.arange(start, stop, dtype=np.int64)
    return {
        "i": i,
        "h": ((i * 2654435761) & 0xFFFFFFFF).astype(np.uint32),  # hard to compress: rollovers
        "f": np.sin(i.astype(np.float64)) * 1000.0,
    }


#: A wide table for the power-cut test: many columns in one commit, of every width.
SCHEMA_WIDE = {f"c{j}": ("f8", "i4", "u2", "f4", "i8", "u1")[j % 6] for j in range(120)}


def values_wide(start: int, stop: int) -> dict[str, np.ndarray]:
    i = np.arange(start, stop, dtype=np.int64)
    return {
        name: ((i * (j + 3) + j) % (97 + j)).astype(dtype)
        for j, (name, dtype) in enumerate(SCHEMA_WIDE.items())
    }


def values_b(start: int, stop: int) -> dict[str, np.ndarray]:
    i = np.arange(start, stop, dtype=np.int64)
    return {
        "g": ((i % 977) * 0.5).astype(np.float32),
        "k": ((i * 31) % 30011 - 15000).astype(np.int16),
    }


#: The writer child creates the tables ``/extra/x<j>/...`` in the commit that takes the row
#: count to ``j * EXTRA_EVERY`` or beyond: a dozen small tables and a 120-column one in one
#: commit, so that many nodes and many columns per commit happen under kill -9 too.
EXTRA_EVERY = 15000
EXTRA_PER_COMMIT = 12


def extra_tables(n: int) -> dict[str, int]:
    """The extra tables (path → rows, values ``extra_values(path, rows)``) present after
    ``n`` rows."""
    out = {}
    for j in range(1, n // EXTRA_EVERY + 1):
        out.update({f"/extra/x{j}/t{k}": 1 + (j + k) % 50 for k in range(EXTRA_PER_COMMIT)})
        out[f"/extra/x{j}/wide"] = 1 + j % 50
    return out


def extra_schema(path: str) -> dict[str, str]:
    return SCHEMA_WIDE if path.endswith("/wide") else SCHEMA_B


def extra_values(path: str, rows: int) -> dict[str, np.ndarray]:
    return values_wide(0, rows) if path.endswith("/wide") else values_b(0, rows)


def check_prefix(
    name: str, got: np.ndarray, expected: dict[str, np.ndarray], where: str = ""
) -> None:
    """Assert a structured array equals ``expected`` column by column, naming the first bad row."""
    for col, want in expected.items():
        have = got[col]
        assert len(have) == len(want), f"{where}{name}.{col}: {len(have)} rows, want {len(want)}"
        bad = np.flatnonzero(have != want)
        assert not len(bad), (
            f"{where}{name}.{col}: {len(bad)} wrong values, first at row {bad[0]}: "
            f"{have[bad[0]]!r} != {want[bad[0]]!r}"
        )


def two_writer_batch(writer: int, batch: int) -> int:
    """Rows in batch ``batch`` of writer ``writer`` in the two-writer test (some span chunks)."""
    return 20 + (writer * 389 + batch * 127) % 600


def two_writer_values(writer: int, batch: int) -> dict[str, np.ndarray]:
    n = two_writer_batch(writer, batch)
    k = np.arange(n, dtype=np.int32)
    return {
        "w": np.full(n, writer, np.int8),
        "b": np.full(n, batch, np.int32),
        "k": k,
        "v": writer * 1e6 + batch * 1e3 + k * 0.25,
    }


def check_extra_tables(store: colvault.Store, n: int, where: str = "") -> None:
    """The store holds exactly the extra tables of a committed count of ``n`` rows, intact."""
    want = extra_tables(n)
    have = sorted(
        node.path
        for node in store.walk()
        if isinstance(node, colvault.Table) and node.path.startswith("/extra/")
    )
    assert have == sorted(want), f"{where}extra tables {have} with {n} rows, want {sorted(want)}"
    for path, rows in want.items():
        check_prefix(path, store[path].read(), extra_values(path, rows), where)
