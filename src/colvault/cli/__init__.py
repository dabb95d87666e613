"""The ``colvault`` command line: look into a store (``info``, ``query``, ``verify``), move data in
and out (``import-csv``, ``import-hdf5``, ``export-hdf5``, ``import-parquet``,
``export-parquet``), look after it (``compact``, ``warmup``) and try it (``demo``).

Errors are one line on stderr: exit status 2 for a command line that does not parse, 1 for a
failure (no such store or node, a bad condition, damage found). Long work shows a progress bar
on stderr when stdout is a terminal, unless ``--quiet``.

This module parses the command line; the commands live in one module per group: ``info``,
``query``, ``transfer`` (imports and exports), ``upkeep`` (``verify``, ``compact``,
``warmup``), ``history`` (``log``, ``tag``, ``expire``, ``--as-of``) and ``demo``, with what
they share in ``common``.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from ..errors import ColvaultError
from .common import Failure, Usage, one_line, progress_wanted, split_target
from .demo import demo
from .history import add_as_of, expire_command, log_command, tag_command
from .info import info_command
from .query import FORMATS, query_command
from .transfer import (
    export_hdf5_command,
    export_parquet_command,
    import_csv_command,
    import_hdf5_command,
    import_parquet_command,
)
from .upkeep import compact_command, verify_command, warmup_command

__all__ = ["main", "parser", "progress_wanted", "split_target"]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit status 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="STORE[:/path] FILE...")
    p.add_argument("--replace", action="store_true", help="replace the table, not append to it")
    p.add_argument("--delimiter", help="field delimiter (default: sniffed)")
    p.add_argument("--quotechar", default='"', help='quote character (default "; "" for none)')
    p.add_argument("--header", choices=["infer", "yes", "no"], default="infer")
    p.add_argument("--skiprows", type=int, help="lines above the header (default: sniffed)")
    p.add_argument("--comment", help="comment character: the rest of a line is ignored")
    p.add_argument("--na-values", help="comma-separated missing-value texts (replace defaults)")
    p.add_argument("--decimal", default=".", help="decimal mark (default .)")
    p.add_argument("--thousands", help="thousands separator")
    p.add_argument("--usecols", help="comma-separated column names to import")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--datetime-format", action="append", help="strptime format (repeatable)")
    p.add_argument("--on-bad-lines", choices=["error", "skip"], default="error")
    p.add_argument("--schema", action="append", metavar="NAME=DTYPE", help="fix a column's type")
    p.add_argument("--chunk-bytes", type=int, help="block size in bytes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (as --quiet)")


def parser() -> argparse.ArgumentParser:
    """The ``colvault`` argument parser."""
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    top = _Parser(
        prog="colvault",
        description="Look into a colvault store, query it, move data in and out, look after it.",
        epilog="Errors are one line on stderr; exit status 2 for a command line that does not "
        "parse, 1 for a failure. STORE:/path names a node of a store.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    p = command("demo", "bulk-load the benchmark data set and read it back")
    p.add_argument("--path", default="demo.colvault")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--batch", type=int, default=1_000_000)
    p = command("info", "the tree of a store: rows, dtypes, sizes, ratios, zone maps")
    p.add_argument("target", metavar="STORE[:/path]")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_as_of(p)
    p = command("query", "the rows of a table that satisfy a condition")
    p.add_argument("target", metavar="STORE:/path")
    p.add_argument("condition", help='e.g. "(value > 10) & (sensor == 3)"')
    p.add_argument("--columns", help="comma-separated columns to show (default: all)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--limit", type=int, help="at most N rows")
    p.add_argument("--out", help="write to this file (refused if it exists) instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="let --out replace a file")
    p.add_argument("--var", action="append", metavar="NAME=VALUE", help="a condition variable")
    add_as_of(p)
    _import_arguments(command("import-csv", "import CSV files into a table"))
    p = command("import-hdf5", "copy the objects of an HDF5 file (PyTables, h5py) into a store")
    p.add_argument("store", metavar="STORE[:/group]")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--paths", nargs="+", metavar="H5PATH", help="only these objects")
    p.add_argument("--group-as-table", action="store_true", help="groups of 1-d datasets as tables")
    p = command("export-hdf5", "write a store, or a node and what is below it, as an HDF5 file")
    p.add_argument("target", metavar="STORE[:/path]")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--compression", choices=["gzip", "lzf", "none"], default="gzip")
    add_as_of(p)
    p = command("import-parquet", "import Parquet files (same columns) into a table")
    p.add_argument("target", metavar="STORE[:/path]")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--replace", action="store_true", help="replace the table, not append to it")
    p = command("export-parquet", "write a table, or its rows that satisfy --where, as Parquet")
    p.add_argument("target", metavar="STORE:/path")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--columns", help="comma-separated columns (default: all)")
    p.add_argument("--where", help="a condition, as in query")
    p.add_argument("--var", action="append", metavar="NAME=VALUE", help="a condition variable")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument(
        "--compression", choices=["zstd", "snappy", "gzip", "lz4", "none"], default="zstd"
    )
    add_as_of(p)
    p = command("verify", "check every chunk's checksum (exit status 1 on damage)")
    p.add_argument("store")
    p = command("compact", "reclaim the bytes no kept commit needs (see expire)")
    p.add_argument("store")
    p = command("log", "the commits, newest first, and what each changed")
    p.add_argument("target", metavar="STORE[:/path]")
    p.add_argument("--limit", type=int, help="at most N commits")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command("tag", "name a commit (the last by default), for --as-of and to keep it")
    p.add_argument("store")
    p.add_argument("name")
    p.add_argument("--commit", type=int, help="the commit id (default: the last)")
    p.add_argument("--remove", action="store_true", help="remove the tag instead")
    p = command("expire", "forget the commits before one (compact then reclaims their bytes)")
    p.add_argument("store")
    p.add_argument("--before", required=True, metavar="COMMIT", help="a commit id or ISO time")
    p.add_argument("--drop-tags", action="store_true", help="expire tagged commits too")
    p = command("warmup", "compile the kernels for this machine ahead of first use")
    p.add_argument("--processes", type=int, help="parallel processes (default: one per CPU)")
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args, extra = top.parse_known_args(argv)  # import-csv's files may sit between options
    if extra and (args.command != "import-csv" or any(e.startswith("-") for e in extra)):
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.paths += extra
    try:
        if args.command == "demo":
            return demo(args.path, args.rows, args.batch, progress_wanted(args))
        if args.command == "warmup":
            return warmup_command(args.processes)
        run = {
            "info": info_command,
            "query": query_command,
            "import-csv": import_csv_command,
            "import-hdf5": import_hdf5_command,
            "export-hdf5": export_hdf5_command,
            "import-parquet": import_parquet_command,
            "export-parquet": export_parquet_command,
            "verify": verify_command,
            "compact": compact_command,
            "log": lambda a: log_command(a, *split_target(a.target)),
            "tag": tag_command,
            "expire": expire_command,
        }[args.command]
        return run(args)
    except Usage as exc:
        print(f"error: {exc} (see colvault {args.command} --help)", file=sys.stderr)
        return 2
    except (Failure, ColvaultError, OSError, ValueError, LookupError) as exc:
        # e.g. a catalog too damaged to open, a node that is not there: said, not a traceback
        if isinstance(exc, BrokenPipeError):  # `colvault query ... | head`
            sys.stderr.close()
            return 1
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
