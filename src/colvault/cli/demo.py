"""``colvault demo``: bulk-load the benchmark data set, read it back, query it, and show how
it is stored."""

from __future__ import annotations

import time

import numpy as np

from .. import open as open_store
from ..benchdata import SCHEMA, benchmark_data
from ..engine.nodes import DataNode


def _tree(store) -> None:
    for node in store.walk():
        depth = node.path.count("/") - (node.path == "/")
        print("  " * depth + (repr(node) if isinstance(node, DataNode) else node.path))


def print_storage(table) -> None:
    """Per-column encodings and compression ratios."""
    head = ("column", "dtype", "chunks", "raw MB", "stored MB", "ratio", "encodings (chunks)")
    print("{:<10} {:<16} {:>6} {:>8} {:>9} {:>6}  {}".format(*head))
    for c in table.storage():
        dtype = "category" if c.spec.is_category else str(c.spec.dtype)
        raw = "-" if c.raw_bytes is None else f"{c.raw_bytes / 1e6:.1f}"
        ratio = f"{c.ratio:.1f}x" if c.ratio else "-"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(c.encodings.items()))
        row = (c.name, dtype, c.chunks, raw, f"{c.stored_bytes / 1e6:.1f}", ratio, kinds)
        print("{:<10} {:<16} {:>6} {:>8} {:>9} {:>6}  {}".format(*row))


def demo(path: str, rows: int, batch: int, progress: bool | None = None) -> int:
    """Bulk-append the benchmark data, commit, reopen read-only and show what is there."""
    from ..progress import bar

    print(f"generating {rows:,} rows of benchmark data ...", flush=True)
    data = benchmark_data(rows)
    # A status column of instrument states, as text: stored as a category (codes + dictionary).
    states = np.array(["ok", "warming", "saturated", "fault"])
    data["status"] = states[np.digitize(data["value"], [-45.0, 45.0, 52.0])]
    start = time.perf_counter()
    with open_store(path, "w") as store:
        t = store.create_table(
            "/sensors/run1", {**SCHEMA, "status": "category"}, expected_rows=rows
        )
        t.attrs["source"] = "colvault demo (benchmark data set)"
        with bar(rows, "rows", "append", progress) as b:
            for i in range(0, rows, batch):
                t.append({k: v[i : i + batch] for k, v in data.items()})
                b.update(min(batch, rows - i))
        store.commit()
    elapsed = time.perf_counter() - start
    print(f"appended and committed {rows:,} rows in {elapsed:.2f} s: {rows / elapsed:,.0f} rows/s")
    with open_store(path) as store:
        print(f"\n{store.path}")
        _tree(store)
        t = store["/sensors/run1"]
        print(f"\nfirst rows:\n{t[:3]}")
        print(f"last row: {t[-1]}")
        mid = len(t) // 2
        print(f"value[{mid}:{mid + 5}] = {t.cols.value[mid : mid + 5]}")
        ok = np.array_equal(t.cols.value[mid : mid + 1000], data["value"][mid : mid + 1000])
        print(f"slice matches the generated data: {ok}")
        print(f"status[{mid}:{mid + 3}] = {t.cols.status[mid : mid + 3]}")
        ok = ok and np.array_equal(t.cols.status[:1000], data["status"][:1000])
        raw = sum(c.raw_bytes or 0 for c in t.storage()) / 1e6
        stored = t.stored_bytes / 1e6
        print(f"\nnumeric columns {raw:,.0f} MB raw; all columns {stored:,.1f} MB stored")
        print_storage(t)
        ok = run_queries(t, data) and ok
        report = store.verify()
        print(f"verify: {report}")
    return 0 if ok and report.ok else 1


def run_queries(t, data: dict[str, np.ndarray]) -> bool:
    """Time a few queries and check each answer against numpy on the generated columns."""
    mid = data["t"][len(data["t"]) // 2]
    lo, hi = mid, mid + np.timedelta64(10, "ms")
    cond = "(value > 10) & (value < 20.5) & (temp < 20)"
    mask = (data["value"] > 10) & (data["value"] < 20.5) & (data["temp"] < 20)
    in_range = (data["t"] >= lo) & (data["t"] < hi)
    checks = [
        (f"read_where({cond!r})", lambda: len(t.read_where(cond)), int(mask.sum())),
        (f"count_where({cond!r})", lambda: t.count_where(cond), int(mask.sum())),
        (
            "count_where('(t >= lo) & (t < hi)')  # 10 ms of the sorted clock",
            lambda: t.count_where("(t >= lo) & (t < hi)", {"lo": lo, "hi": hi}),
            int(in_range.sum()),
        ),
        ("count_where('status == \"fault\"')", lambda: t.count_where('status == "fault"'),
         int((data["status"] == "fault").sum())),
        (f"stats('value', where={cond!r})['mean']",
         lambda: round(float(t.stats("value", where=cond)["mean"]), 9),
         round(float(np.mean(data["value"][mask])), 9)),
    ]  # fmt: skip
    print("\nqueries (each answer checked against numpy):")
    ok = True
    for text, run, want in checks:
        run()  # the first call compiles or loads the kernel
        start = time.perf_counter()
        got = run()
        ms = (time.perf_counter() - start) * 1e3
        ok = ok and got == want
        print(f"  {ms:8.1f} ms  {text} -> {got}{'' if got == want else f' != numpy {want}'}")
    return ok
