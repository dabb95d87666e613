"""The timing harness of the ``compare`` jobs: interleaved rounds, fresh directories, children.

asv times one tool at a time on small data, each in a fresh process; the claims that matter
(colvault vs. PyTables vs. DuckDB on the 20 M-row benchmark set) need all tools in one process on
the same arrays, interleaved so that drift in disk or page-cache state hits them alike.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# PyTables' blosc2 filter resolves its blosc2 functions in the process: once colvault's native
# kernels have loaded the blosc2 wheel's libblosc2 (kernels/query/native.py), PyTables runs on that
# newer build, ~4x faster on the logger job (0.72 s against 3.3 s; files of 2.45 against 2.40
# MB). ``import colvault`` loaded it until issue 13 made kernels load on first use; the
# harness loads it up front so that the peers run as they did in every earlier figure, at
# their best, whichever colvault job ran first.
import colvault.kernels.query.native  # noqa: F401  (for its side effect)

from ..writers import (
    WRITERS,
    Writer,
    colvault_catalog_bytes,
    colvault_column_sizes,
    dir_bytes,
)

#: The repository root: children run ``python -m asv_benchmarks...`` from anywhere.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: (per-column sizes as ``writers.colvault_column_sizes`` gives them, store bytes, catalog bytes)
ColvaultReport = tuple[list[tuple[str, str, int, int, int]], int, int]


def check_durable() -> None:
    """Refuse to benchmark with fsync turned off: the figure would not be a durable write."""
    if os.environ.get("COLVAULT_FSYNC") == "0":
        raise SystemExit(
            "COLVAULT_FSYNC=0 turns colvault's fsync off; benchmarks measure durable commits. "
            "Unset it and run again."
        )


def colvault_report(path: str) -> ColvaultReport:
    """Per-column sizes, directory bytes and catalog bytes of the colvault store at ``path``."""
    return colvault_column_sizes(path), dir_bytes(path), colvault_catalog_bytes(path)


def common_arguments(
    p: argparse.ArgumentParser, tools: list[str], registry: Mapping[str, Any] = WRITERS
) -> None:
    """``--repeat``, ``--tools`` (a subset of ``registry``; ``tools`` by default), ``--tmpdir``."""
    p.add_argument("--repeat", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument(
        "--tools",
        default=",".join(tools),
        help=f"comma-separated subset of {','.join(registry)} (default {','.join(tools)}; "
        "missing ones are skipped)",
    )
    p.add_argument("--tmpdir", default=None, help="where the stores are written (default: $TMPDIR)")


def select_tools(spec: str, registry: Mapping[str, Any] = WRITERS) -> tuple[list[str], list[str]]:
    """(tools to run, tools skipped because they are not importable); ``registry`` maps a name to
    something with an ``available`` flag (``writers.WRITERS``, ``queries.QUERY_TOOLS``)."""
    tools = [t for t in spec.split(",") if t]
    unknown = [t for t in tools if t not in registry]
    if unknown:
        raise SystemExit(f"unknown tools {unknown}; choose from {list(registry)}")
    skipped = [t for t in tools if not registry[t].available]
    return [t for t in tools if t not in skipped], skipped


def timed_write(
    writer: Writer,
    batches: object,
    n: int,
    tmpdir: str | None,
    *,
    commit_each: bool = False,
    inspect: Callable[[str], Any] | None = None,
) -> tuple[float, int, Any]:
    """One run in a fresh directory: (seconds, bytes on disk, ``inspect(path)`` or None).

    The directory is removed after. ``commit_each`` (the logger job): the tool commits after every
    batch, and the clock starts at the first batch, once the file and the table exist.
    """
    workdir = tempfile.mkdtemp(prefix=f"cmp-{writer.name}-", dir=tmpdir)
    try:
        # Flush other tools' dirty pages first, or our fsync would pay for their writeback.
        os.sync()
        gc.collect()
        start = time.perf_counter()

        def ready() -> None:
            nonlocal start
            start = time.perf_counter()

        options = {"commit_each": True, "ready": ready} if commit_each else {}
        path = writer.write(batches, workdir, n, **options)
        seconds = time.perf_counter() - start
        size = writer.size(path)
        rows = writer.rows(path)
        if rows != n:
            raise RuntimeError(f"{writer.name} stored {rows} rows, expected {n}")
        return seconds, size, None if inspect is None else inspect(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def warm_up(
    tools: list[str], data: dict, rows: int, batch: int, tmpdir: str | None, commit_each: bool
) -> None:
    """Untimed: Numba kernels, HDF5 and DuckDB initialisation are paid once per process."""
    warm = {k: v[:rows] for k, v in data.items()}
    for t in tools:
        writer = WRITERS[t]
        timed_write(writer, writer.prepare(warm, batch), rows, tmpdir, commit_each=commit_each)


@dataclass
class Timings:
    """Seconds of the timed runs of every tool (or variant), in run order."""

    tools: list[str]
    times: dict[str, list[float]]

    def median(self, tool: str) -> float:
        """Median seconds of ``tool``'s runs."""
        return statistics.median(self.times[tool])


def rounds(
    calls: Mapping[str, Callable[[], object]],
    repeat: int,
    before: Callable[[], object] | None = None,
) -> Timings:
    """``repeat`` rounds of one call of each, interleaved so that drift hits them alike;
    ``before`` (untimed) runs before every call (the cold job drops the page cache there)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            if before is not None:
                before()
            gc.collect()
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return Timings(list(calls), times)


@dataclass
class Runs(Timings):
    """The timed runs of every tool, and what the last colvault store held."""

    sizes: dict[str, list[int]]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    colvault: ColvaultReport | None

    def median_size(self, tool: str) -> float:
        """Median bytes on disk of ``tool``'s runs."""
        return statistics.median(self.sizes[tool])


def interleaved(
    tools: list[str],
    prepared: dict[str, Any],
    n: int,
    repeat: int,
    tmpdir: str | None,
    commit_each: bool = False,
) -> Runs:
    """``repeat`` rounds of one run per tool; the last colvault store is inspected, then removed."""
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {t: [] for t in tools}
    sizes: dict[str, list[int]] = {t: [] for t in tools}
    report = None
    for i in range(repeat):
        for t in tools:
            inspect = colvault_report if t == "colvault" and i == repeat - 1 else None
            s, b, got = timed_write(
                WRITERS[t], prepared[t], n, tmpdir, commit_each=commit_each, inspect=inspect
            )
            times[t].append(s)
            sizes[t].append(b)
            report = got if got is not None else report
    return Runs(tools, times, sizes, load_before, os.getloadavg(), report)


def fresh_process(
    code: str, path: str, cond: str, expect: int | None, env: dict[str, str] | None = None
) -> Callable[[], None]:
    """A call that runs ``code`` in a fresh process on ``path`` and ``cond``; it must print
    ``expect`` (None: anything)."""

    def run() -> None:
        argv = [sys.executable, "-c", code, path, cond]
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        if out.returncode or (expect is not None and out.stdout.split()[-1:] != [str(expect)]):
            raise SystemExit(
                f"cold start {argv[3:]} failed (exit {out.returncode}), printed "
                f"{out.stdout!r}, expected {expect}:\n{out.stderr}"
            )

    return run


def numba_env(cache: str) -> dict[str, str]:
    """A fresh Numba cache directory; the generated kernel sources stay in one place beside
    it (Numba files machine code under the source's path: in a copied cache directory, the
    copied sources would find none)."""
    sources = os.path.join(os.path.dirname(cache), "kernel-sources")
    return {**os.environ, "NUMBA_CACHE_DIR": cache, "COLVAULT_KERNEL_DIR": sources}


def child_json(module: str, args: list[str], cwd: str | None = None) -> dict[str, Any]:
    """Run ``python -m MODULE ARGS...`` in a fresh process (this repository on its path); the
    JSON object its last line prints."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True, capture_output=True, text=True, env=env, cwd=cwd,
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


def memory_child(args: list[str], tmpdir: str | None) -> dict[str, Any]:
    """Run ``python -m asv_benchmarks.memory ARGS...`` in a fresh process; its JSON answer."""
    return child_json("asv_benchmarks.memory", args, tmpdir or None)
