"""Moving data in and out: ``import-csv``, ``import-hdf5``, ``export-hdf5``,
``import-parquet`` and ``export-parquet``."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from .. import open as open_store
from ..engine.nodes import DataNode
from .common import (
    Failure,
    Usage,
    check_output,
    condition_vars,
    kind_text,
    open_at,
    progress_wanted,
    pyarrow_modules,
    rows_text,
    split_target,
    table_at,
)
from .demo import print_storage


def _target(text: str, first_file: str) -> tuple[str, str]:
    """``STORE[:/path]`` -> (store, table path); the default path is ``/<first file's stem>``.

    >>> _target("lab.colvault:/runs/r1", "x.csv")
    ('lab.colvault', '/runs/r1')
    >>> _target("lab.colvault", "data/2025-03 run.csv.gz")
    ('lab.colvault', '/2025-03_run')
    """
    store, path = split_target(text)
    if path is not None:
        return store, path
    stem = os.path.basename(first_file).split(".")[0] or "imported"
    return text, "/" + "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)


def _store_and_files(paths: list[str]) -> tuple[str, list[str]]:
    """``STORE[:/path] FILE...`` or (as before) ``FILE... STORE[:/path]``: the store is the
    end that names a node or an existing directory; else the last argument when the first is
    a file and the last does not exist yet; else the first."""

    def is_store(text: str) -> bool:
        return split_target(text)[1] is not None or os.path.isdir(text)

    first, last = paths[0], paths[-1]
    if is_store(first):
        return first, paths[1:]
    if is_store(last) or (os.path.isfile(first) and not os.path.exists(last)):
        return last, paths[:-1]
    return first, paths[1:]


def import_csv_command(args: argparse.Namespace) -> int:
    """``colvault import-csv STORE[:/path] FILE...``: import, then say what the table holds."""
    from ..io.csv.importer import import_csv

    if len(args.paths) < 2:
        raise Usage("give STORE[:/path], then one or more CSV files")
    target, files = _store_and_files(args.paths)
    for f in files:
        if not os.path.exists(f) and not any(c in f for c in "*?["):
            raise Failure(f"no file {f}")
    store_path, table_path = _target(target, files[0])
    schema = {}
    for item in args.schema or []:
        name, _, dtype = item.partition("=")
        schema[name] = dtype
    na = list(args.na_values.split(",")) if args.na_values is not None else None
    options = {
        "schema": schema or None,
        "delimiter": args.delimiter,
        "quotechar": args.quotechar or None,
        "header": {"infer": "infer", "yes": True, "no": False}[args.header],
        "skiprows": args.skiprows,
        "comment": args.comment,
        "decimal": args.decimal,
        "thousands": args.thousands,
        "usecols": args.usecols.split(",") if args.usecols else None,
        "encoding": args.encoding,
        "datetime_formats": args.datetime_format,
        "on_bad_lines": args.on_bad_lines,
        "chunk_bytes": args.chunk_bytes,
        "progress": progress_wanted(args),
    }
    if na is not None:
        options["na_values"] = na
    source = files if len(files) > 1 else files[0]
    _import_rows(
        store_path,
        table_path,
        args.replace,
        lambda store, path: import_csv(source, store, path, **options),
        storage=True,
    )
    return 0


def _replace(store: Any, path: str, load: Any) -> Any:
    """Load a new table beside ``path`` (one commit), then swap it in (a second commit): a
    failed load leaves the old table as it was. Between the two commits a reader sees the new
    table under a hidden name beside the old one."""
    parent, _, name = path.rpartition("/")
    tmp = f"{parent}/_colvault_replacing_{name}"
    if tmp in store:  # left by an interrupted replace
        store.remove(tmp, recursive=True)
        store.commit()
    load(tmp)
    store.remove(path, recursive=True)
    store.rename(tmp, path)
    store.commit()
    return store[path]


def import_hdf5_command(args: argparse.Namespace) -> int:
    """``colvault import-hdf5 STORE FILE [--paths ...]``: copy an HDF5 file's objects."""
    from ..io.hdf5 import import_hdf5

    if not os.path.isfile(args.file):
        raise Failure(f"no file {args.file}")
    store_path, into = split_target(args.store)
    start = time.perf_counter()
    with open_store(store_path, "a") as store:
        made = import_hdf5(
            args.file,
            store,
            paths=args.paths or None,
            into=into or "/",
            progress=progress_wanted(args),
            group_as_table=args.group_as_table,
        )
        seconds = time.perf_counter() - start
        print(f"imported {len(made)} node(s) from {args.file} in {seconds:.2f} s")
        for p in made:
            node = store[p]
            size = f"  {rows_text(node.nrows)}" if isinstance(node, DataNode) else ""
            print(f"  {p}  ({getattr(node, 'kind', 'group')}){size}")
    return 0


def export_hdf5_command(args: argparse.Namespace) -> int:
    """``colvault export-hdf5 STORE[:/path] FILE``: write a store or a subtree as HDF5."""
    from ..io.hdf5 import export_hdf5

    if os.path.exists(args.file) and not args.overwrite:
        raise Failure(f"{args.file} exists: pass --overwrite to replace it; nothing was written")
    store_path, path = split_target(args.target)
    compression = None if args.compression == "none" else args.compression
    start = time.perf_counter()
    with open_at(store_path, as_of=args.as_of) as store:
        source = store if path is None else store[path]
        written = export_hdf5(
            source, args.file, compression=compression, overwrite=args.overwrite,
            progress=progress_wanted(args),
        )  # fmt: skip
    seconds = time.perf_counter() - start
    print(f"wrote {len(written)} object(s) to {args.file} in {seconds:.2f} s")
    return 0


def import_parquet_command(args: argparse.Namespace) -> int:
    """``colvault import-parquet STORE[:/path] FILE...``: append (or ``--replace``) a table."""
    from ..io.parquet import import_parquet

    for f in args.files:
        if not os.path.exists(f) and not any(c in f for c in "*?["):
            raise Failure(f"no file {f}")
    store_path, table_path = _target(args.target, args.files[0])
    source = args.files if len(args.files) > 1 else args.files[0]
    _import_rows(
        store_path,
        table_path,
        args.replace,
        lambda store, path: import_parquet(source, store, path),
    )
    return 0


def _import_rows(
    store_path: str,
    table_path: str,
    replace: bool,
    load: Callable[[Any, str], Any],
    storage: bool = False,
) -> None:
    """Run ``load(store, path)`` (an import) into ``table_path``: appending to an existing
    table, or with ``replace`` starting over beside it; say how many rows it added or imported
    (and with ``storage``, how the table is stored)."""
    start = time.perf_counter()
    with open_store(store_path, "a") as store:
        existing = store.get(table_path)
        if existing is not None and getattr(existing, "kind", None) != "table":
            raise Failure(f"{table_path} is {kind_text(existing)}, not a table")
        if existing is not None and replace:
            t = _replace(store, table_path, lambda tmp: load(store, tmp))
        else:
            before = existing.nrows if existing is not None else 0
            t = load(store, table_path)
        seconds = time.perf_counter() - start
        if existing is not None and not replace:
            print(
                f"added {rows_text(t.nrows - before)} to {table_path} (now {t.nrows:,}) "
                f"in {seconds:.2f} s"
            )
        else:
            print(f"imported {rows_text(t.nrows)} in {seconds:.2f} s")
        print(repr(t))
        if storage:
            print_storage(t)


def export_parquet_command(args: argparse.Namespace) -> int:
    """``colvault export-parquet STORE:/path FILE``: a table (or its rows that satisfy
    ``--where``) as one Parquet file."""
    check_output(args.file, args.overwrite)
    pyarrow_modules()
    store_path, path = split_target(args.target)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    start = time.perf_counter()
    with open_at(store_path, as_of=args.as_of) as store:
        t = table_at(store, path)
        t.column_specs(columns)  # an unknown column is named before anything is written
        t.to_parquet(
            args.file, columns, where=args.where, condvars=condition_vars(args.var),
            compression=args.compression,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    rows = pyarrow_modules()[1].ParquetFile(args.file).metadata.num_rows
    print(f"wrote {rows_text(rows)} to {args.file} in {seconds:.2f} s")
    return 0
