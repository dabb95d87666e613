"""The ``colvault`` command line: look into a store (``info``, ``query``, ``verify``), move data in
and out (``import-csv``, ``import-hdf5``, ``export-hdf5``, ``import-parquet``,
``export-parquet``), look after it (``compact``, ``warmup``) and try it (``demo``).

Errors are one line on stderr: exit status 2 for a command line that does not parse, 1 for a
failure (no such store or node, a bad condition, damage found). Long work shows a progress bar
on stderr when stdout is a terminal, unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn, cast

import numpy as np

from . import open as open_store
from .benchdata import SCHEMA, benchmark_data
from .clihistory import add_as_of, expire_command, log_command, open_as_of, tag_command
from .engine.nodes import DataNode
from .errors import ColvaultError

FORMATS = ("table", "csv", "json", "parquet")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit status 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


class Failure(Exception):
    """A failure the command line reports in one line, with exit status 1."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _progress(args: argparse.Namespace) -> bool | None:
    """A bar only where someone watches: stdout a terminal and no ``--quiet`` (then, as
    :mod:`colvault.progress` does, after a second, so that short work shows nothing)."""
    if getattr(args, "quiet", False) or getattr(args, "no_progress", False):
        return False
    return None if sys.stdout.isatty() else False


def split_target(text: str) -> tuple[str, str | None]:
    """``STORE[:/path]`` -> (store, node path or None).

    >>> split_target("lab.colvault:/runs/r1")
    ('lab.colvault', '/runs/r1')
    >>> split_target("lab.colvault")
    ('lab.colvault', None)
    """
    store, sep, path = text.rpartition(":")
    if sep and store and path.startswith("/"):
        return store, path
    return text, None


def _open(path: str, mode: str = "r", as_of: str | None = None) -> Any:
    if mode in ("r", "r+") and not os.path.exists(path):
        raise Failure(f"no store at {path}")
    if as_of is not None:
        return open_as_of(path, as_of)
    return open_store(path, mode)


def _node(store: Any, path: str | None) -> Any:
    return store.root if path is None else store[path]


def _kind(node: Any) -> str:
    kind = getattr(node, "kind", "group")
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _table(store: Any, path: str | None) -> Any:
    if path is None:
        raise Failure("give the table as STORE:/path")
    node = store[path]
    if getattr(node, "kind", None) != "table":
        raise Failure(f"{path} is {_kind(node)}, not a table")
    return node


# -- demo ----------------------------------------------------------------------------------------


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
    from .progress import bar

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


# -- info ----------------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} TB"  # pragma: no cover


def _ratio(raw: int | None, stored: int) -> float | None:
    return round(raw / stored, 3) if raw and stored else None


def _jsonable(value: Any) -> Any:
    """Attribute values as JSON can hold them (numpy scalars and arrays as Python values)."""
    if isinstance(value, np.ndarray | np.generic):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def node_info(node: Any) -> dict[str, Any]:
    """What ``colvault info --json`` says of one node: kind, rows, sizes, and per column of a
    table its dtype, chunks, encodings, bytes, ratio, missing values and whether it has zone
    maps (the per-chunk minima and maxima that let a query skip chunks)."""
    out: dict[str, Any] = {"path": node.path, "kind": getattr(node, "kind", "group")}
    try:
        attrs = {k: _jsonable(node.attrs[k]) for k in node.attrs}
    except ColvaultError as exc:
        attrs = {"error": _one_line(exc)}
    if isinstance(node, DataNode):
        nrows, raw, stored = node.footprint()
        shape = list(cast(Any, node).shape)
        out.update(rows=nrows, shape=shape, raw_bytes=raw, stored_bytes=stored)
        out["ratio"] = _ratio(raw, stored)
        columns = []
        for c in node.storage():
            columns.append(
                {
                    "name": c.name,
                    "dtype": c.spec.type_name + (f" {c.spec.shape}" if c.spec.shape else ""),
                    "nullable": bool(c.spec.nullable),
                    "chunks": c.chunks,
                    "encodings": dict(sorted(c.encodings.items())),
                    "raw_bytes": c.raw_bytes,
                    "stored_bytes": c.stored_bytes,
                    "ratio": _ratio(c.raw_bytes, c.stored_bytes),
                    "nulls": c.nulls,
                    "zone_map": bool(c.spec.has_zone_map),
                }
            )
        out["columns"] = columns
        out["zone_map_columns"] = sum(c["zone_map"] for c in columns)
    out["attrs"] = attrs
    return out


def _print_attrs(info: dict[str, Any], pad: str) -> None:
    if info["attrs"]:
        text = ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in info["attrs"].items()
        )
        print(f"{pad}    attrs: {text if len(text) <= 90 else text[:87] + '...'}")


def _print_info(info: dict[str, Any], depth: int) -> None:
    pad = "  " * depth
    if info["kind"] == "group":
        print(f"{pad}{info['path']}  (group)")
        _print_attrs(info, pad)
        return
    ratio = f"{info['ratio']:.2f}x" if info["ratio"] else "-"
    if info["kind"] == "table":
        shape = f"{info['rows']:,} rows x {len(info['columns'])} columns"
        zones = f"; zone maps on {info['zone_map_columns']}/{len(info['columns'])} columns"
    else:
        dtype = info["columns"][0]["dtype"].split()[0]  # the cell shape is in the shape
        shape = " x ".join(f"{n:,}" for n in info["shape"]) + f" {dtype}"
        zones = ""
    print(
        f"{pad}{info['path']}  ({info['kind']}, {shape}; {_size(info['raw_bytes'])} raw, "
        f"{_size(info['stored_bytes'])} stored, {ratio}{zones})"
    )
    _print_attrs(info, pad)
    if info["kind"] != "table":
        return
    head = ("column", "dtype", "chunks", "raw", "stored", "ratio", "nulls", "zones", "encodings")
    rows = [head]
    for c in info["columns"]:
        rows.append(
            (
                c["name"],
                c["dtype"] + (" (nullable)" if c["nullable"] else ""),
                f"{c['chunks']:,}",
                _size(c["raw_bytes"]),
                _size(c["stored_bytes"]),
                f"{c['ratio']:.2f}x" if c["ratio"] else "-",
                f"{c['nulls']:,}",
                "yes" if c["zone_map"] else "no",
                ", ".join(f"{k} {n}" for k, n in c["encodings"].items()),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    for r in rows:
        cells = [
            str(v).ljust(w) if i in (0, 1, 8) else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ]
        print(pad + "    " + "  ".join(cells).rstrip())


def info_command(args: argparse.Namespace) -> int:
    """``colvault info STORE[:/path] [--json]``: the tree below a node, with sizes."""
    store_path, path = split_target(args.target)
    with _open(store_path, as_of=args.as_of) as store:
        top = _node(store, path)
        nodes = [node_info(n) for n in store.walk(top.path)]
        if args.json:
            print(json.dumps({"store": store.path, "nodes": nodes}, indent=2))
            return 0
        print(store.path)
        base = top.path.count("/") - (top.path == "/")
        for n in nodes:
            _print_info(n, n["path"].count("/") - (n["path"] == "/") - base)
    return 0


# -- query ---------------------------------------------------------------------------------------


def _texts(spec: Any, values: np.ndarray) -> list[Any]:
    """A column's cells as Python values for output (datetimes as ISO text, ``Z`` for UTC;
    NaT as None, a missing value, never as the text ``"NaT"``)."""
    if values.dtype.kind in "Mm":
        if values.dtype.kind == "m":
            texts = [str(v) for v in values]
        elif spec.tz:
            texts = np.datetime_as_string(values, timezone="UTC").tolist()
        else:
            texts = np.datetime_as_string(values).tolist()
        if values.shape[1:]:
            return texts
        nat = np.isnat(values).tolist()
        return [None if n else t for t, n in zip(texts, nat, strict=True)]
    if values.dtype.kind == "f" and values.dtype.itemsize < 8 and not values.shape[1:]:
        # float32's shortest text (19.769825), not float64's of the same value (19.76982498...)
        return [float(v) for v in values.astype(str).tolist()]
    if values.dtype.kind == "S":
        return [v.decode("utf-8", "backslashreplace") for v in values.tolist()]
    return values.tolist()


def _cells(spec: Any, values: np.ndarray) -> list[Any]:
    """Python values of a column, None where a nullable column is missing."""
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        data = _texts(spec, values.data)
        return [None if m else v for v, m in zip(data, mask.tolist(), strict=True)]
    return _texts(spec, values)


def _json_value(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None  # JSON has no NaN nor infinity
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _text_value(v: Any, missing: str) -> str:
    if v is None:
        return missing
    if isinstance(v, float):
        return repr(v)
    return str(v)


class _Writer:
    """Writes query batches in one format; ``close()`` finishes the output."""

    def __init__(
        self, fmt: str, out: IO[str] | None, path: str | None, specs: list[Any], schema: Any = None
    ):
        self.fmt, self.out, self.path, self.specs = fmt, out, path, specs
        self.names = [s.name for s in specs]
        self.rows = 0
        self.records = 0  # JSON records written: all but the first follow a comma
        self.widths: list[int] | None = None
        self.parquet: Any = None  # a pyarrow ParquetWriter of io.arrow's schema
        if fmt == "csv":
            assert out is not None
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(self.names)
        elif fmt == "json":
            assert out is not None
            out.write("[")
        elif fmt == "parquet":
            _, pq = _pyarrow()
            self.parquet = pq.ParquetWriter(path, schema)

    def write(self, batch: Any) -> None:
        n = _length(batch)
        self.rows += n
        if self.fmt == "parquet":  # a pyarrow RecordBatch
            self.parquet.write_batch(batch)
            return
        columns = [_cells(s, batch[s.name]) for s in self.specs]
        assert self.out is not None
        if self.fmt == "csv":
            for row in zip(*columns, strict=True):
                self.csv.writerow([_text_value(v, "") for v in row])
        elif self.fmt == "json":
            for row in zip(*columns, strict=True):
                record = {k: _json_value(v) for k, v in zip(self.names, row, strict=True)}
                self.out.write((",\n" if self.records else "\n") + json.dumps(record))
                self.records += 1
        else:
            texts = [[_text_value(v, "<NA>") for v in col] for col in columns]
            if self.widths is None:  # widths from the first batch; later cells may run over
                self.widths = [
                    min(40, max([len(name), *map(len, col)]))
                    for name, col in zip(self.names, texts, strict=True)
                ]
                self._line(self.names)
            for row in zip(*texts, strict=True):
                self._line(row)

    def _line(self, cells: Any) -> None:
        assert self.out is not None and self.widths is not None
        line = "  ".join(c.ljust(w) for c, w in zip(cells, self.widths, strict=True))
        self.out.write(line.rstrip() + "\n")

    def close(self) -> None:
        if self.fmt == "parquet":
            self.parquet.close()
            return
        assert self.out is not None
        if self.fmt == "json":
            self.out.write("\n]\n" if self.records else "]\n")
        elif self.fmt == "table" and self.widths is None:
            self.widths = [len(n) for n in self.names]
            self._line(self.names)


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise Failure(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'colvault[arrow]' (or pyarrow)"
        ) from exc
    return pa, pq


_DIGITS = r"\d+(?:_\d+)*"  # Python's literals: 1_000
_INT = re.compile(rf"[+-]?{_DIGITS}")
_FLOAT = re.compile(rf"[+-]?(?:{_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})(?:[eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?Z?")


def _condvars(items: list[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` -> an int or float for a decimal number (``1_000`` too), a datetime64
    for an ISO date (``2025-03-01``, ``2025-03-01T12:00``; a final ``Z`` says UTC, which
    datetime64 values are), else the text as given: words numpy would read as dates or
    numbers (``today``, ``now``, ``nan``, ``inf``) stay text."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise Failure(f"--var wants NAME=VALUE, not {item!r}")
        value: Any = text
        if _INT.fullmatch(text):
            value = int(text)
        elif _FLOAT.fullmatch(text):
            value = float(text)
        elif _ISO_DATE.fullmatch(text):
            try:
                value = np.datetime64(text.removesuffix("Z").replace(" ", "T"))
            except ValueError:
                raise Failure(f"--var {name}: {text!r} is not a valid date") from None
        out[name] = value
    return out


def _length(batch: Any) -> int:
    """Rows in a batch: a dict of arrays, or a pyarrow RecordBatch."""
    if hasattr(batch, "num_rows"):
        return int(batch.num_rows)
    return len(next(iter(batch.values()))) if batch else 0


def _limited(batches: Iterator[Any], limit: int | None) -> Iterator[Any]:
    left = limit
    for batch in batches:
        if left is not None:
            n = _length(batch)
            if n >= left:
                yield (
                    batch.slice(0, left)
                    if hasattr(batch, "slice")
                    else {k: v[:left] for k, v in batch.items()}
                )
                return
            left -= n
        yield batch


def _check_output(path: str, overwrite: bool) -> None:
    """Refuse an existing output file (unless ``overwrite``) or a missing folder up front."""
    if os.path.exists(path) and not overwrite:
        raise Failure(f"{path} exists: pass --overwrite to replace it; nothing was written")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise Failure(f"no folder {folder} for {path}")


def query_command(args: argparse.Namespace) -> int:
    """``colvault query STORE:/path CONDITION``: the matching rows, streamed chunk by chunk."""
    from .progress import bar

    if args.format == "parquet" and not args.out:
        raise _Usage("--format parquet needs --out FILE")
    if args.limit is not None and args.limit < 0:
        raise _Usage("--limit must be 0 or more")
    if args.out:
        _check_output(args.out, args.overwrite)
    condvars = _condvars(args.var)
    store_path, path = split_target(args.target)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    with _open(store_path, as_of=args.as_of) as store:
        t = _table(store, path)
        specs = t.column_specs(columns)
        schema = None
        if args.format == "parquet":  # Arrow's types as Table.to_arrow gives them
            from .io.arrow import arrow_schema

            _pyarrow()
            schema = arrow_schema(t, [s.name for s in specs])
            found = t.iter_batches(columns, where=args.condition, condvars=condvars)
        else:
            found = t.iter_where(args.condition, condvars, columns=columns)
        batches = _limited(found, args.limit)
        first = next(batches, None)  # a bad condition fails here, before any output
        if not args.out:
            w = _Writer(args.format, sys.stdout, None, specs)
            for batch in _chain(first, batches):
                w.write(batch)
            w.close()
            return 0
        folder = os.path.dirname(os.path.abspath(args.out))
        fd, tmp = tempfile.mkstemp(prefix=".colvault-", suffix=".part", dir=folder)
        os.close(fd)
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                text = None if args.format == "parquet" else f
                w = _Writer(args.format, text, tmp, specs, schema)
                with bar(None, "rows", "query", _progress(args)) as b:
                    for batch in _chain(first, batches):
                        w.write(batch)
                        b.update(_length(batch))
                w.close()
            os.replace(tmp, args.out)
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"wrote {_rows(w.rows)} to {args.out}")
    return 0


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
        yield from rest


# -- imports and exports -------------------------------------------------------------------------


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
    from .io.csv.importer import import_csv

    if len(args.paths) < 2:
        raise _Usage("give STORE[:/path], then one or more CSV files")
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
        "progress": _progress(args),
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
    from .io.hdf5 import import_hdf5

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
            progress=_progress(args),
            group_as_table=args.group_as_table,
        )
        seconds = time.perf_counter() - start
        print(f"imported {len(made)} node(s) from {args.file} in {seconds:.2f} s")
        for p in made:
            node = store[p]
            size = f"  {_rows(node.nrows)}" if isinstance(node, DataNode) else ""
            print(f"  {p}  ({getattr(node, 'kind', 'group')}){size}")
    return 0


def export_hdf5_command(args: argparse.Namespace) -> int:
    """``colvault export-hdf5 STORE[:/path] FILE``: write a store or a subtree as HDF5."""
    from .io.hdf5 import export_hdf5

    if os.path.exists(args.file) and not args.overwrite:
        raise Failure(f"{args.file} exists: pass --overwrite to replace it; nothing was written")
    store_path, path = split_target(args.target)
    compression = None if args.compression == "none" else args.compression
    start = time.perf_counter()
    with _open(store_path, as_of=args.as_of) as store:
        source = store if path is None else store[path]
        written = export_hdf5(
            source, args.file, compression=compression, overwrite=args.overwrite,
            progress=_progress(args),
        )  # fmt: skip
    seconds = time.perf_counter() - start
    print(f"wrote {len(written)} object(s) to {args.file} in {seconds:.2f} s")
    return 0


def import_parquet_command(args: argparse.Namespace) -> int:
    """``colvault import-parquet STORE[:/path] FILE...``: append (or ``--replace``) a table."""
    from .io.parquet import import_parquet

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
            raise Failure(f"{table_path} is {_kind(existing)}, not a table")
        if existing is not None and replace:
            t = _replace(store, table_path, lambda tmp: load(store, tmp))
        else:
            before = existing.nrows if existing is not None else 0
            t = load(store, table_path)
        seconds = time.perf_counter() - start
        if existing is not None and not replace:
            print(
                f"added {_rows(t.nrows - before)} to {table_path} (now {t.nrows:,}) "
                f"in {seconds:.2f} s"
            )
        else:
            print(f"imported {_rows(t.nrows)} in {seconds:.2f} s")
        print(repr(t))
        if storage:
            print_storage(t)


def export_parquet_command(args: argparse.Namespace) -> int:
    """``colvault export-parquet STORE:/path FILE``: a table (or its rows that satisfy
    ``--where``) as one Parquet file."""
    _check_output(args.file, args.overwrite)
    _pyarrow()
    store_path, path = split_target(args.target)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    start = time.perf_counter()
    with _open(store_path, as_of=args.as_of) as store:
        t = _table(store, path)
        t.column_specs(columns)  # an unknown column is named before anything is written
        t.to_parquet(
            args.file, columns, where=args.where, condvars=_condvars(args.var),
            compression=args.compression,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    rows = _pyarrow()[1].ParquetFile(args.file).metadata.num_rows
    print(f"wrote {_rows(rows)} to {args.file} in {seconds:.2f} s")
    return 0


# -- upkeep --------------------------------------------------------------------------------------


def verify_command(args: argparse.Namespace) -> int:
    """``colvault verify STORE``: every chunk's checksum; damage named, exit status 1."""
    with _open(args.store) as store:
        report = store.verify()
    print(report)
    if not report.ok:
        raise Failure(f"{len(report.damage)} damaged item(s) in {args.store} (listed above)")
    return 0


def compact_command(args: argparse.Namespace) -> int:
    """``colvault compact STORE``: reclaim bytes of removed and replaced data."""
    with _open(args.store, "r+") as store:
        report = store.compact()
    print(report)
    return 0


def warmup_command(processes: int | None) -> int:
    from .warmup import warmup

    where = os.environ.get("NUMBA_CACHE_DIR") or (
        "Numba's cache (beside the package, or under ~/.cache when that is read-only)"
    )
    print(f"compiling colvault's kernels for this machine into {where}:", flush=True)
    seconds = warmup(processes, sys.stdout)
    print(f"done in {seconds:.1f} s; later processes load them from the cache")
    return 0


# -- the parser ----------------------------------------------------------------------------------


class _Usage(Exception):
    """A command line that parses but does not make sense: exit status 2."""


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
            return demo(args.path, args.rows, args.batch, _progress(args))
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
    except _Usage as exc:
        print(f"error: {exc} (see colvault {args.command} --help)", file=sys.stderr)
        return 2
    except (Failure, ColvaultError, OSError, ValueError, LookupError) as exc:
        # e.g. a catalog too damaged to open, a node that is not there: said, not a traceback
        if isinstance(exc, BrokenPipeError):  # `colvault query ... | head`
            sys.stderr.close()
            return 1
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
