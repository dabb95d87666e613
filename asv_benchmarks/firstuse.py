"""``python -m asv_benchmarks.compare first-use``: a new user's first session, whole processes.

The session: import the library, write 100,000 rows of measurements, three queries (a fused
condition, a count, a time range), the statistics of a column, and the import of a small CSV
file (20,000 rows of numbers, text and timestamps). colvault runs it with an empty Numba cache
(every kernel compiled, as on a fresh machine, container or CI runner) and with the cache that
run filled; PyTables + pandas run the same session (``read_where``, numpy on a column,
``pandas.read_csv`` + ``DataFrame.to_hdf``). Each run is a fresh process, timed whole from the
parent (interpreter start to exit); runs are interleaved and medians compared.

The child side is ``python -m asv_benchmarks.firstuse TOOL WORKDIR CSV``: it runs the session
and prints one JSON line (seconds per step and the answers, which must agree between tools).
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before numpy: the session's imports are part of it

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

ROWS = 100_000
CSV_ROWS = 20_000
COND = "(value > 1) & (temp < 20)"
COUNT = "sensor == 17"
TIME_COND = "(t >= lo) & (t < hi)"
LO, HI = 600 * 10**9, 3600 * 10**9  # ns since the first row

#: The rows of the result table: tool names as printed.
EMPTY, WARM, PEER = "colvault (empty cache)", "colvault (warm cache)", "pytables + pandas"
#: The issue's target: colvault on an empty cache at most this many times PyTables + pandas.
TARGET = 5.0


def measurements(n: int) -> dict[str, Any]:
    """The session's rows: a timestamp per second, 100 sensors, a reading and a temperature."""
    import numpy as np

    rng = np.random.default_rng(1)
    return {
        "t": np.arange(n, dtype="i8") * 10**9,
        "sensor": rng.integers(0, 100, n).astype("i4"),
        "value": rng.normal(size=n),
        "temp": rng.normal(20, 3, n).astype("f4"),
    }


def write_csv(path: str, n: int) -> None:
    """A flights-like file: ints, floats with missing values, short text, timestamps."""
    import numpy as np

    rng = np.random.default_rng(0)
    carriers = np.array(["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN"])
    origins = np.array(["EWR", "JFK", "LGA"])
    hours = np.datetime64("2013-01-01T00") + rng.integers(0, 365 * 24, n).astype("m8[h]")
    dep = rng.integers(0, 2400, n).astype("f8")
    dep[rng.random(n) < 0.02] = np.nan
    with open(path, "w") as f:
        f.write(
            "year,month,day,dep_time,dep_delay,carrier,flight,tailnum,origin,distance,time_hour\n"
        )
        for i in range(n):
            d = "" if np.isnan(dep[i]) else f"{dep[i]:.0f}"
            f.write(
                f"2013,{rng.integers(1, 13)},{rng.integers(1, 29)},{d},"
                f"{rng.normal(5, 20):.0f},{rng.choice(carriers)},{rng.integers(1, 5000)},"
                f"N{rng.integers(100, 999)}{rng.choice(carriers)},{rng.choice(origins)},"
                f"{rng.integers(100, 3000)},{str(hours[i]).replace('T', ' ')}:00:00\n"
            )


def _colvault_session(workdir: str, csv: str, mark: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np

    import colvault
    from colvault.benchdata import SCHEMA

    mark("import")
    data = measurements(ROWS)
    with colvault.open(os.path.join(workdir, "first.colvault"), "w") as store:
        t = store.create_table("/run1", SCHEMA)
        t.append({**data, "t": data["t"].view("M8[ns]")})
        store.commit()
        mark("write")
        selected = t.read_where(COND)
        mark("query")
        count = t.count_where(COUNT)
        mark("count")
        lo, hi = np.datetime64(LO, "ns"), np.datetime64(HI, "ns")
        in_range = t.read_where(TIME_COND, condvars={"lo": lo, "hi": hi})
        mark("time range")
        stats = t.stats("value")
        mark("stats")
        imported = colvault.import_csv(csv, store, "/flights")
        mark("csv")
        return {
            "query": len(selected),
            "count": count,
            "time range": len(in_range),
            "mean": float(stats["mean"]),
            "csv": imported.nrows,
        }


def _pytables_session(workdir: str, csv: str, mark: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import tables

    mark("import")
    data = measurements(ROWS)
    rows = np.empty(ROWS, [("t", "i8"), ("sensor", "i4"), ("value", "f8"), ("temp", "f4")])
    for name, column in data.items():
        rows[name] = column
    path = os.path.join(workdir, "first.h5")
    with tables.open_file(path, "w") as h5:
        t = h5.create_table("/", "run1", rows.dtype)
        t.append(rows)
        t.flush()
        mark("write")
        selected = t.read_where(COND)
        mark("query")
        count = len(t.get_where_list(COUNT))
        mark("count")
        in_range = t.read_where(TIME_COND, condvars={"lo": LO, "hi": HI, "t": t.cols.t})
        mark("time range")
        value = t.col("value")
        mean = float(np.mean(value))
        _ = (np.std(value), np.min(value), np.max(value))
        mark("stats")
    frame = pd.read_csv(csv, parse_dates=["time_hour"])
    frame.to_hdf(path, key="flights", format="table", mode="a")
    mark("csv")
    return {
        "query": len(selected),
        "count": count,
        "time range": len(in_range),
        "mean": mean,
        "csv": len(frame),
    }


SESSIONS = {"colvault": _colvault_session, "pytables": _pytables_session}


def child(tool: str, workdir: str, csv: str) -> None:
    steps: dict[str, float] = {}
    last = [START]

    def mark(step: str) -> None:
        now = time.perf_counter()
        steps[step] = now - last[0]
        last[0] = now

    answers = SESSIONS[tool](workdir, csv, mark)
    print(json.dumps({"steps": steps, "answers": answers}))


# -- the parent: the compare job ------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool (default 3)")
    p.add_argument("--tmpdir", default=None, help="where files and stores go (default: TMPDIR)")


def _run_child(tool: str, workdir: str, csv: str, env: dict[str, str]) -> tuple[float, dict]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "asv_benchmarks.firstuse", tool, workdir, csv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise SystemExit(f"{tool} session failed (exit {out.returncode}):\n{out.stderr}")
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    got["stderr"] = out.stderr
    # CPU of the session and the processes it waited for (colvault's compile helper)
    got["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, got


def run(args: argparse.Namespace) -> int:
    from .compare.harness import numba_env
    from .compare.report import print_header, table

    tmpdir = tempfile.mkdtemp(prefix="cmp-firstuse-", dir=args.tmpdir)
    try:
        csv = os.path.join(tmpdir, "flights.csv")
        write_csv(csv, CSV_ROWS)
        warm_cache = os.path.join(tmpdir, "numba-warm")
        sources = os.path.join(tmpdir, "kernel-sources")

        def env_for(cache: str, kernels: str) -> dict[str, str]:
            return {**os.environ, "NUMBA_CACHE_DIR": cache, "COLVAULT_KERNEL_DIR": kernels}

        def session(tool: str, env: Callable[[int], dict[str, str]]) -> Callable[[int], Any]:
            def call(i: int) -> Any:
                workdir = tempfile.mkdtemp(prefix=f"{tool}-", dir=tmpdir)
                return _run_child(tool, workdir, csv, env(i))

            return call

        def empty(i: int) -> dict[str, str]:
            return env_for(os.path.join(tmpdir, f"numba-empty-{i}"), f"{sources}-{i}")

        calls = {
            EMPTY: session("colvault", empty),
            WARM: session("colvault", lambda i: numba_env(warm_cache)),
            PEER: session("pytables", lambda i: dict(os.environ)),
        }
        load0 = os.getloadavg()
        # untimed: fills the warm cache; the OS caches Python's and the libraries' files
        _run_child("colvault", tempfile.mkdtemp(dir=tmpdir), csv, numba_env(warm_cache))
        _run_child("pytables", tempfile.mkdtemp(dir=tmpdir), csv, dict(os.environ))
        walls: dict[str, list[float]] = {t: [] for t in calls}
        cpus: dict[str, list[float]] = {t: [] for t in calls}
        steps: dict[str, list[dict[str, float]]] = {t: [] for t in calls}
        answers: dict[str, dict[str, Any]] = {}
        notices: set[str] = set()
        for i in range(args.repeat):
            for tool, call in calls.items():
                wall, got = call(i)
                walls[tool].append(wall)
                cpus[tool].append(got["cpu"])
                steps[tool].append(got["steps"])
                answers[tool] = got["answers"]
                notices.update(line for line in got["stderr"].splitlines() if "compil" in line)
        load1 = os.getloadavg()
        _check(answers)
        print_header(
            "first use: a new user's first session, each run a fresh process",
            args.tmpdir,
            f"write {ROWS:,} rows, 3 queries, stats, import a {CSV_ROWS:,}-row CSV",
            (load0, load1),
            f"median of {args.repeat} interleaved runs per tool; whole-process wall time; cpu s: "
            "user + sys of the session's process and its children",
            [],
        )
        names = list(next(iter(steps.values()))[0])
        header = ["tool", "total s", "cpu s", *(f"{n} s" for n in names), f"/ {PEER}"]
        body = []
        peer = statistics.median(walls[PEER])
        for tool in calls:
            med = statistics.median(walls[tool])
            cpu = statistics.median(cpus[tool])
            parts = [statistics.median(s[n] for s in steps[tool]) for n in names]
            times = [f"{med:.2f}", f"{cpu:.2f}", *(f"{p:.3f}" for p in parts)]
            body.append([tool, *times, f"{med / peer:.1f}"])
        print(table(header, body))
        ratio = statistics.median(walls[EMPTY]) / peer
        print()
        print(
            f"target: {EMPTY} <= {TARGET:g}x {PEER}: "
            f"{ratio:.1f}x, {'met' if ratio <= TARGET else 'MISSED'}"
        )
        for line in sorted(notices):
            print(f"stderr of the empty-cache runs: {line}")
        return 0
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _check(answers: dict[str, dict[str, Any]]) -> None:
    """Every tool's answers agree (the mean to rounding: summation orders differ)."""
    first = next(iter(answers.values()))
    for tool, got in answers.items():
        for key, want in first.items():
            same = abs(got[key] - want) <= 1e-9 * abs(want) if key == "mean" else got[key] == want
            if not same:
                raise SystemExit(f"WRONG ANSWER: {tool} {key} = {got[key]!r}, others {want!r}")


if __name__ == "__main__":
    child(*sys.argv[1:4])
