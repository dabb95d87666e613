"""Parquet out of and into tables, through pyarrow, streaming.

``Table.to_parquet`` writes a row group per group of chunks as :func:`~colvault.io.arrow.
iter_batches` yields them; ``import_parquet`` reads file by file, row group by row group, into a
table as one transaction. Neither holds more than a batch in memory (an import of text columns
spools its batches once to find the text width, as ``create_table`` does with any Arrow stream).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..engine.store import Store
from ..engine.table import Table
from ..errors import ColvaultError
from .arrow import arrow_schema, iter_batches
from .importing import import_transaction

#: Rows per Parquet row group when writing: whole chunks grouped up to at least this many.
ROW_GROUP_ROWS = 1 << 17


def _parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Parquet needs pyarrow: pip install 'colvault[arrow]'") from None
    return pq


def to_parquet(
    table: Table,
    path: str | os.PathLike[str],
    columns: list[str] | None = None,
    *,
    where: str | None = None,
    condvars: Mapping[str, Any] | None = None,
    compression: str = "zstd",
) -> None:
    """Write committed rows (those satisfying ``where``, with ``condvars``) to the Parquet file
    ``path``, a row group per group of chunks (memory bounded by one), column types as
    ``to_arrow`` gives them. The file appears whole or not at all (written beside, then
    renamed).

    >>> import colvault, tempfile, os, pyarrow.parquet as pq
    >>> d = tempfile.mkdtemp()
    >>> with colvault.open(os.path.join(d, "s.colvault"), "w") as store:
    ...     t = store.create_table("/t", {"x": "i4"})
    ...     t.append({"x": [1, 2, 3]})
    ...     _ = store.commit()  # the new commit's id
    ...     t.to_parquet(os.path.join(d, "t.parquet"), where="x > 1")
    >>> pq.read_table(os.path.join(d, "t.parquet")).column("x").to_pylist()
    [2, 3]
    """
    pq = _parquet()
    target = os.fspath(path)
    schema = arrow_schema(table, columns)
    tmp = f"{target}.colvault-tmp"
    # dictionary pages for category columns only: on the others (floats, timestamps: mostly
    # distinct values) pyarrow's dictionary attempt costs about 70 MB and gives nothing
    dictionary = [f.name for f in schema if pa_types().is_dictionary(f.type)]
    try:
        with pq.ParquetWriter(
            tmp, schema, compression=compression, use_dictionary=dictionary
        ) as writer:
            for batch in iter_batches(
                table, columns, where=where, condvars=condvars, batch_rows=ROW_GROUP_ROWS
            ):
                writer.write_batch(batch)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def pa_types() -> Any:
    """``pyarrow.types`` (imported when a file is written)."""
    import pyarrow.types

    return pyarrow.types


def _files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The Parquet files of a path, a glob pattern or a list of paths."""
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        if glob.has_magic(text):
            files = sorted(glob.glob(text))
            if not files:
                raise ColvaultError(f"no file matches {text}")
            return files
        return [text]
    return [os.fspath(s) for s in source]


def _batches(pq: Any, files: list[str], first: Any, schema: Any) -> Iterator[Any]:
    """The record batches of ``files``, row group by row group; a file that cannot be read, or
    whose schema differs from the first file's, raises a ``ColvaultError`` naming it."""
    for name in files:
        try:
            pf = first if name == files[0] else pq.ParquetFile(name)
            if not pf.schema_arrow.equals(schema):
                raise ColvaultError(
                    f"{name}: its columns ({pf.schema_arrow}) differ from those of {files[0]}"
                )
            for i in range(pf.num_row_groups):
                yield from pf.iter_batches(row_groups=[i])
        except ColvaultError:
            raise
        except Exception as exc:
            raise ColvaultError(f"{name}: cannot read as Parquet ({exc})") from exc


def import_parquet(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    store: Store | str | os.PathLike[str],
    node: str,
) -> Table:
    """Import the Parquet file ``source`` (a path, a glob pattern or a list of paths, all with
    the same columns) into table ``node`` of ``store`` (created, its schema from the file's
    Arrow schema as ``create_table`` makes it from Arrow data; or appended to), row group by
    row group, as one transaction. ``store`` is an open :class:`~colvault.Store` without pending
    changes, or a path opened with mode ``"a"``. A file that cannot be read raises
    :class:`~colvault.ColvaultError` naming it, and nothing is imported.

    >>> import colvault, tempfile, os, pyarrow as pa, pyarrow.parquet as pq
    >>> d = tempfile.mkdtemp()
    >>> pq.write_table(pa.table({"x": [1, 2], "s": ["a", "bc"]}), os.path.join(d, "a.parquet"))
    >>> store = colvault.open(os.path.join(d, "s.colvault"), "w")
    >>> colvault.import_parquet(os.path.join(d, "*.parquet"), store, "/t").read().tolist()
    [(1, 'a'), (2, 'bc')]
    >>> store.close()
    """
    pq = _parquet()
    import pyarrow as pa

    files = _files(source)
    if not files:
        raise ColvaultError("import_parquet: no files given")
    with import_transaction(store, "import_parquet", keep_open=True) as target:
        try:
            try:
                first = pq.ParquetFile(files[0])
            except Exception as exc:
                raise ColvaultError(f"{files[0]}: cannot read as Parquet ({exc})") from exc
            schema = first.schema_arrow
            stream = pa.RecordBatchReader.from_batches(schema, _batches(pq, files, first, schema))
            if node in target:
                table = target[node]
                if not isinstance(table, Table):
                    raise ColvaultError(f"{node} in {target.path} is a {table.kind}, not a table")
                table.append(stream)
            else:
                table = target.create_table(node, stream)
            target.commit()
        except BaseException as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, ColvaultError) else None
            if cause is not None and cause is not exc:
                raise cause from None  # pyarrow wraps what the stream raised
            raise
    return table
