"""Printing what the jobs measured: plain-text tables, the header every job prints, ratios.

Every figure goes with what ran, where and how loaded the machine was (:func:`print_header`),
so that a pasted output can be judged without the command that made it.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata

from .harness import ColvaultReport, Runs, Timings

#: Ratios are given against each of these that ran: PyTables as configured by hand (its default
#: chunk shape), and PyTables with colvault's chunk size (see ``writers.SAME_CHUNK_ROWS``).
BASELINES = ("pytables", "pytables-128k")

#: One row of :func:`target_table`: (what, ratio of medians as text, value, at most).
Target = tuple[str, str, float, float]


def versions(names: list[str]) -> str:
    """``"name version, ..."`` of the installed distributions among ``names``."""
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def mb(n: float, digits: int = 1) -> str:
    """Bytes as megabytes (10^6), thousands separated."""
    return f"{n / 1e6:,.{digits}f}"


def ms(seconds: float) -> str:
    """Seconds as milliseconds, two decimals below 0.1 s, one above."""
    return f"{seconds * 1e3:,.1f}" if seconds >= 0.1 else f"{seconds * 1e3:,.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain text: first column left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def print_header(
    title: str,
    tmpdir: str | None,
    setup: str,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    timed: str,
    skipped: list[str],
) -> None:
    """What ran, where, on what, how loaded (``load``: averages before and after timing)."""
    import colvault

    fsync = os.environ.get("COLVAULT_FSYNC", "(unset)")
    print(title)
    print(f"colvault from {os.path.dirname(colvault.__file__)}")
    print(
        f"python {platform.python_version()}, "
        + versions(["numpy", "blosc2", "numba", "tables", "h5py", "duckdb", "pyarrow"])
        + f"; {os.cpu_count()} CPUs; stores in {tmpdir or tempfile.gettempdir()}"
    )
    print(f"COLVAULT_FSYNC={fsync} (fsync {'off' if fsync == '0' else 'on'}); {setup}")
    print(
        "load average (1, 5, 15 min) before timing "
        + " ".join(f"{x:.2f}" for x in load[0])
        + ", after "
        + " ".join(f"{x:.2f}" for x in load[1])
        + " (other processes on the machine skew the figures)"
    )
    print(timed)
    if skipped:
        print(f"skipped (not importable): {', '.join(skipped)}")
    print()


def runs_table(runs: Timings, scale: float = 1.0, digits: int = 3, first: str = "run") -> str:
    """One row per run, one column per tool: seconds × ``scale``."""
    repeat = len(runs.times[runs.tools[0]])
    return table(
        [first, *runs.tools],
        [
            [str(i + 1), *(f"{runs.times[t][i] * scale:,.{digits}f}" for t in runs.tools)]
            for i in range(repeat)
        ],
    )


def print_runs(
    title: str, tmpdir: str | None, setup: str, runs: Runs, timed: str, skipped: list[str]
) -> None:
    """The header and the seconds of every run."""
    print_header(title, tmpdir, setup, (runs.load_before, runs.load_after), timed, skipped)
    print(runs_table(runs))
    print()


def summary(
    runs: Runs, rates: list[tuple[str, Callable[[float], str]]], by_rate: bool, digits: int = 1
) -> str:
    """Medians per tool, ``rates`` computed from the median seconds, and ratios to each baseline:
    ``time/B`` (median seconds ÷ B's) or, ``by_rate``, ``rate/B`` (B's median seconds ÷ ours,
    the same work per run, so: our rate ÷ B's rate), and ``size/B``."""
    bases = [b for b in BASELINES if b in runs.tools]
    header = ["tool", "median s", "min s", "max s", *(h for h, _ in rates), "size MB"]
    for b in bases:
        header += [f"rate/{b}" if by_rate else f"time/{b}", f"size/{b}"]
    rows = []
    for t in runs.tools:
        med = runs.median(t)
        row = [
            t,
            f"{med:.3f}",
            f"{min(runs.times[t]):.3f}",
            f"{max(runs.times[t]):.3f}",
            *(f(med) for _, f in rates),
            mb(runs.median_size(t), digits),
        ]
        for b in bases:
            ratio = runs.median(b) / med if by_rate else med / runs.median(b)
            row += [f"{ratio:.3f}", f"{runs.median_size(t) / runs.median_size(b):.3f}"]
        rows.append(row)
    return table(header, rows)


def medians_table(timings: dict[str, Timings], unit: str = "ms") -> str:
    """Median per row of ``timings`` and tool (ms or s), and colvault's median / each other's."""
    scale = ms if unit == "ms" else (lambda s: f"{s:,.3f}")
    tools = next(iter(timings.values())).tools
    others = [t for t in tools if t != "colvault"]
    header = ["what", *(f"{t} {unit}" for t in tools), *(f"colvault/{t}" for t in others)]
    body = []
    for name, runs in timings.items():
        cv = runs.median("colvault")
        ratios = [f"{cv / runs.median(t):.3f}" for t in others if t in runs.tools]
        body.append([name, *(scale(runs.median(t)) for t in tools), *ratios])
    return table(header, body)


def target_table(
    targets: Sequence[Target], first: str = "query", ratio: str = "ratio of medians"
) -> str:
    """One line per target: the ratio, its bound and whether it was met."""
    body = [
        [what, r, f"{value:.3f}", f"<= {most:g}", "met" if value <= most else "MISSED"]
        for what, r, value, most in targets
    ]
    return table([first, ratio, "value", "target", ""], body)


def print_colvault_report(
    heading: str, report: ColvaultReport, nrows: int, digits: int = 1
) -> None:
    """Chunks and bytes per column of one colvault store, its catalog and its whole directory."""
    cols, total, catalog = report
    print()
    print(heading)
    rows = [
        [
            name,
            dtype,
            f"{chunks:,}",
            f"{nrows / chunks:,.0f}" if chunks else "-",
            mb(r, digits),
            mb(s, digits),
            f"{s / chunks:,.0f}" if chunks else "-",
            f"{r / s:.2f}" if s else "-",
        ]
        for name, dtype, chunks, r, s in cols
    ]
    r_all = sum(c[3] for c in cols)
    s_all = sum(c[4] for c in cols)
    blank = ["", "", ""]
    rows.append(
        ["all columns", *blank, mb(r_all, digits), mb(s_all, digits), "", f"{r_all / s_all:.2f}"]
    )
    rows.append(["catalog (sqlite)", *blank, "", mb(catalog, digits), "", ""])
    rows.append(["store directory", *blank, "", mb(total, digits), "", ""])
    header = ["column", "dtype", "chunks", "rows/chunk", "raw MB", "stored MB", "B/chunk", "ratio"]
    print(table(header, rows))
