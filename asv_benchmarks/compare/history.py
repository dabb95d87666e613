"""``python -m asv_benchmarks.compare history``: versions against ArcticDB (issue 16).

ArcticDB (LMDB on local disk) keeps a version per write, as colvault keeps its commits. Both get
the benchmark data set (:func:`colvault.benchdata.benchmark_data`), cut into batches of one
second (1,000,000 rows at one row per microsecond), in the same process. Timed, interleaved:

- ``load``: a new store or library; each batch appended and committed (ArcticDB: ``write`` of
  the first, ``append`` of the others, each a new version);
- ``as_of``: a read of every column as of an earlier version (the one that had ``--as-of-rows``
  rows: 6 M of 20 M by default); colvault opens the store ``as_of`` that commit;
- ``update``: one second of data in the middle replaced by new values (colvault:
  ``update_where`` on the time range + commit; ArcticDB: ``update`` with that ``date_range``),
  each run on a fresh copy of the loaded store;
- ``filter``: the benchmark condition, every column of the rows it keeps (colvault:
  ``read_where``; ArcticDB: a ``QueryBuilder`` filter).

ArcticDB needs pandas < 3; colvault's own environment has pandas 3, so run this job from an
environment with ``arcticdb`` installed (see the README's "Benchmarks").
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from ..queries import COND
from .harness import Timings, rounds
from .report import medians_table, print_header, runs_table, target_table

SECOND = 1_000_000  # rows per batch: one second at one row per microsecond
TOOLS = ["colvault", "arcticdb"]
#: colvault / ArcticDB, at most (issue 16).
TARGETS = {"as_of": 1.0, "update": 1.0, "load": 0.5, "filter": 0.2}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options."""
    p.add_argument("--rows", type=int, default=20 * SECOND, help="rows (default 20,000,000)")
    p.add_argument(
        "--as-of-rows", type=int, default=6 * SECOND, help="rows of the version read as of"
    )
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool (default 3)")
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def _frame(batch: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {k: v for k, v in batch.items() if k != "t"}, index=pd.DatetimeIndex(batch["t"], name="t")
    )


class Colvault:
    """colvault's side of every timed call."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.versions: list[int] = []  # commit ids, one per batch

    def load(self, batches: list[dict[str, np.ndarray]]) -> None:
        import colvault

        self.versions = []
        with colvault.open(self.path, "w") as store:
            t = store.create_table("/bench", {k: v.dtype for k, v in batches[0].items()})
            for b in batches:
                t.append(b)
                self.versions.append(store.commit())

    def as_of(self, index: int) -> int:
        import colvault

        with colvault.open(self.path, as_of=self.versions[index]) as store:
            cols = store["/bench"].read_columns()
        return len(cols["t"])

    def update(self, path: str, lo: Any, hi: Any, new: dict[str, np.ndarray]) -> int:
        import colvault

        with colvault.open(path, "a") as store:
            n = store["/bench"].update_where(
                "(t >= lo) & (t < hi)", {k: v for k, v in new.items() if k != "t"},
                {"lo": lo, "hi": hi},
            )  # fmt: skip
            store.commit()
        return n

    def filter(self) -> int:
        import colvault

        with colvault.open(self.path) as store:
            return len(store["/bench"].read_where(COND))


class Arctic:
    """ArcticDB's side: an LMDB library on local disk, one symbol."""

    SYMBOL = "bench"

    def __init__(self, path: str) -> None:
        self.path = path

    def _lib(self, path: str | None = None) -> Any:
        from arcticdb import Arctic as ArcticClient

        ac = ArcticClient(f"lmdb://{path or self.path}")
        return ac.get_library("lib", create_if_missing=True)

    def load(self, batches: list[dict[str, np.ndarray]]) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        lib = self._lib()
        lib.write(self.SYMBOL, _frame(batches[0]))
        for b in batches[1:]:
            lib.append(self.SYMBOL, _frame(b))

    def as_of(self, index: int) -> int:
        return len(self._lib().read(self.SYMBOL, as_of=index).data)

    def update(self, path: str, lo: Any, hi: Any, new: dict[str, np.ndarray]) -> int:
        import pandas as pd

        lib = self._lib(path)
        lib.update(self.SYMBOL, _frame(new), date_range=(pd.Timestamp(lo), pd.Timestamp(hi)))
        return len(new["t"])

    def filter(self) -> int:
        from arcticdb import QueryBuilder

        q = QueryBuilder()
        q = q[(q["value"] > 10) & (q["value"] < 20.5) & (q["temp"] < 20)]
        return len(self._lib().read(self.SYMBOL, query_builder=q).data)


def run(args: argparse.Namespace) -> int:
    """Load both, then time the four calls, interleaved, and print the ratios."""
    from colvault.benchdata import benchmark_data

    try:
        import arcticdb
    except ImportError:
        raise SystemExit(
            "compare history needs arcticdb (pip install arcticdb; it needs pandas < 3, so in "
            "an environment of its own)"
        ) from None
    data = benchmark_data(args.rows)
    batches = [{k: v[i : i + SECOND] for k, v in data.items()} for i in range(0, args.rows, SECOND)]
    version = args.as_of_rows // SECOND - 1
    mid = len(batches) // 2
    lo, hi = batches[mid]["t"][0], batches[mid]["t"][-1] + np.timedelta64(1, "ns")
    rng = np.random.default_rng(1)
    new = dict(batches[mid])
    new["sensor"] = rng.integers(0, 1000, SECOND, dtype=np.int32)
    new["value"] = np.round(rng.normal(0, 10, SECOND), 3)
    new["temp"] = rng.normal(20, 1, SECOND).astype(np.float32)
    keep = (data["value"] > 10) & (data["value"] < 20.5) & (data["temp"] < 20)
    expect = int(np.count_nonzero(keep))
    del data

    work = tempfile.mkdtemp(prefix="cmp-history-", dir=args.tmpdir)
    try:
        tools = {"colvault": Colvault(os.path.join(work, "s.colvault")),
                 "arcticdb": Arctic(os.path.join(work, "arctic"))}  # fmt: skip
        load_before = os.getloadavg()
        loads = rounds({t: (lambda o=o: o.load(batches)) for t, o in tools.items()}, args.repeat)
        for t, o in tools.items():  # answers checked once, untimed
            if (got := o.as_of(version)) != args.as_of_rows:
                raise SystemExit(f"WRONG ANSWER: {t} as_of read {got:,} rows")
            if (got := o.filter()) != expect:
                raise SystemExit(f"WRONG ANSWER: {t} filter {got:,} rows, numpy {expect:,}")
        as_of = rounds({t: (lambda o=o: o.as_of(version)) for t, o in tools.items()}, args.repeat)
        filt = rounds({t: o.filter for t, o in tools.items()}, args.repeat)
        copies: dict[str, list[str]] = {t: [] for t in tools}
        for t, o in tools.items():  # a fresh copy for every timed update (untimed copy)
            for k in range(args.repeat):
                dst = f"{o.path}.u{k}"
                shutil.copytree(o.path, dst)
                copies[t].append(dst)
        updates: dict[str, list[float]] = {t: [] for t in tools}
        for k in range(args.repeat):
            for t, o in tools.items():
                start = time.perf_counter()
                o.update(copies[t][k], lo, hi, new)
                updates[t].append(time.perf_counter() - start)
        update = Timings(list(tools), updates)
        import colvault

        with colvault.open(copies["colvault"][0]) as store:  # the update did what it says
            got = store["/bench"].read_where("(t >= lo) & (t < hi)", {"lo": lo, "hi": hi})
            if not np.array_equal(got["value"], new["value"]):
                raise SystemExit("WRONG ANSWER: colvault's update did not set the new values")
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import arcticdb

    print_header(
        f"history: {args.rows:,} rows in {len(batches)} batches of one second "
        f"({SECOND:,} rows), {args.repeat} timed runs per tool, interleaved; arcticdb "
        f"{arcticdb.__version__} (LMDB)",
        args.tmpdir,
        f"answers checked: as_of {args.as_of_rows:,} rows, filter {expect:,} rows",
        (load_before, load_after),
        "timed: load = every batch appended and committed (ArcticDB: write + appends, a "
        "version each);\n  as_of = every column as of the version after "
        f"{version + 1} batches; update = one second in the middle replaced\n  (colvault "
        "update_where on the time range + commit; ArcticDB update with date_range), on a "
        "fresh copy;\n  filter = " + COND + ", every column (ArcticDB: QueryBuilder).",
        [],
    )
    timings = {"load": loads, "as_of": as_of, "update": update, "filter": filt}
    for name, runs in timings.items():
        print(f"{name}, s per run:")
        print(runs_table(runs))
        print()
    print("medians (s):")
    print(medians_table(timings, unit="s"))
    print()
    print("targets:")
    targets = [
        (name, "colvault/arcticdb", timings[name].median("colvault")
         / timings[name].median("arcticdb"), most)
        for name, most in TARGETS.items()
    ]  # fmt: skip
    print(target_table(targets, first="what", ratio="ratio"))
    return 0
