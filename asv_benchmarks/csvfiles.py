"""The CSV files of the ``csv`` benchmarks, generated from the benchmark data set.

- *numeric*: ``sensor`` (int), ``value`` (3 decimals), ``temp`` (4 decimals);
- *mixed*: ``t`` (ISO 8601 timestamp), the same three, and ``status`` (``ok`` or ``fault``).

Values are written as pandas writes them (shortest round-trip text), so every reader parses the
same characters.
"""

from __future__ import annotations

import os

import numpy as np

NUMERIC = "numeric"
MIXED = "mixed"


def frame(kind: str, rows: int) -> object:
    """The rows of a CSV file of ``kind`` as a pandas DataFrame."""
    import pandas as pd

    from colvault.benchdata import benchmark_data

    d = benchmark_data(rows)
    cols: dict[str, object] = {}
    if kind == MIXED:
        cols["t"] = d["t"]
    cols["sensor"] = d["sensor"]
    cols["value"] = d["value"]
    cols["temp"] = np.round(d["temp"].astype(np.float64), 4)
    if kind == MIXED:
        cols["status"] = np.where(d["value"] > 45.0, "fault", "ok")
    return pd.DataFrame(cols)


def write(kind: str, rows: int, path: str) -> str:
    """Write the file once (kept when it exists with the same name); its path."""
    if not os.path.exists(path):
        tmp = path + ".tmp"
        frame(kind, rows).to_csv(tmp, index=False)  # type: ignore[attr-defined]
        os.replace(tmp, path)
    return path


def write_big(path: str, target_bytes: int, kind: str = NUMERIC) -> str:
    """A file of at least ``target_bytes``: one generated block of a million rows, repeated."""
    if os.path.exists(path) and os.path.getsize(path) >= target_bytes:
        return path
    import io

    buf = io.StringIO()
    frame(kind, 1_000_000).to_csv(buf, index=False)  # type: ignore[attr-defined]
    text = buf.getvalue()
    header, body = text.split("\n", 1)
    data = body.encode()
    with open(path + ".tmp", "wb") as f:
        f.write(header.encode() + b"\n")
        written = 0
        while written < target_bytes:
            f.write(data)
            written += len(data)
    os.replace(path + ".tmp", path)
    return path
