"""``python -m asv_benchmarks.compare JOB [options]``: the registry of jobs and the command line.

Each job is a module with ``add_arguments(parser)`` and ``run(args) -> exit status``, imported
only when its job runs (or its options are listed), so that a missing optional tool fails only
the jobs that need it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Job:
    """A subcommand: its help line and the module (relative to ``asv_benchmarks``) running it."""

    help: str
    module: str

    def load(self) -> ModuleType:
        """The job's module, imported on first use."""
        return importlib.import_module(self.module, "asv_benchmarks")


JOBS: dict[str, Job] = {
    "append": Job("bulk-load the benchmark data set", ".compare.append"),
    "logger": Job(
        "commit every small batch durably, as an instrument logger does", ".compare.logger"
    ),
    "query": Job(
        "select, count, time range and stats queries; cold start of a query process",
        ".compare.query",
    ),
    "csv": Job(
        "import a numeric and a mixed CSV file; pandas and pyarrow read the same files",
        ".compare.csvimport",
    ),
    "first-use": Job(
        "a new user's first session on an empty kernel cache, beside PyTables + pandas",
        ".firstuse",
    ),
    "hdf5": Job(
        "import a PyTables file of the benchmark data; PyTables and h5py read the same file",
        ".compare.hdf5",
    ),
    "nodes": Job(
        "create many small tables in one commit, reopen and walk them; h5py and PyTables too",
        ".compare.nodes",
    ),
    "wide": Job(
        "a 300-column table: append, a 3-column query, a 10-row slice; PyTables and h5py too",
        ".compare.wide",
    ),
    "history": Job(
        "versions against ArcticDB: load with a commit per batch, as_of, update, filter",
        ".compare.history",
    ),
    "latency": Job(
        "the fixed cost per call: small-table queries, t[i], len(t), a wide slice, a time range",
        ".compare.latency",
    ),
    "cold": Job(
        "page cache dropped: bytes read by a one-column scan, the benchmark query's time",
        ".compare.cold",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line) and run the job it names."""
    parser = argparse.ArgumentParser(
        prog="python -m asv_benchmarks.compare",
        description="colvault vs. PyTables, h5py and DuckDB on the benchmark data sets.",
    )
    sub = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    for name, job in JOBS.items():
        job.load().add_arguments(sub.add_parser(name, help=job.help, description=job.help))
    args = parser.parse_args(argv)
    status: int = JOBS[args.job].load().run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
