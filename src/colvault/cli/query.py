"""``colvault query``: the rows of a table that satisfy a condition, streamed chunk by chunk
as a table, CSV, JSON or Parquet, to stdout or to a file that appears only when complete."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from .common import (
    Usage,
    check_output,
    condition_vars,
    open_at,
    progress_wanted,
    pyarrow_modules,
    rows_text,
    split_target,
    table_at,
)

FORMATS = ("table", "csv", "json", "parquet")


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
            _, pq = pyarrow_modules()
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


def query_command(args: argparse.Namespace) -> int:
    """``colvault query STORE:/path CONDITION``: the matching rows, streamed chunk by chunk."""
    from ..progress import bar

    if args.format == "parquet" and not args.out:
        raise Usage("--format parquet needs --out FILE")
    if args.limit is not None and args.limit < 0:
        raise Usage("--limit must be 0 or more")
    if args.out:
        check_output(args.out, args.overwrite)
    condvars = condition_vars(args.var)
    store_path, path = split_target(args.target)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    with open_at(store_path, as_of=args.as_of) as store:
        t = table_at(store, path)
        specs = t.column_specs(columns)
        schema = None
        if args.format == "parquet":  # Arrow's types as Table.to_arrow gives them
            from ..io.arrow import arrow_schema

            pyarrow_modules()
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
                with bar(None, "rows", "query", progress_wanted(args)) as b:
                    for batch in _chain(first, batches):
                        w.write(batch)
                        b.update(_length(batch))
                w.close()
            os.replace(tmp, args.out)
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"wrote {rows_text(w.rows)} to {args.out}")
    return 0


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
        yield from rest
