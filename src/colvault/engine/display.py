"""HTML views for notebooks (``_repr_html_``): a store's tree, a table, a column, an array.

Every view is bounded: at most :data:`MAX_NODES` nodes of a tree and :data:`EDGE_ROWS` rows
from each end of a table are read, whatever the store holds; all text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .array import Array
    from .store import Store
    from .table import Column, Table

#: Nodes a tree view shows before it says how many more there are.
MAX_NODES = 50
#: Rows a table or column view shows from each end.
EDGE_ROWS = 3
#: Characters of one cell's text before it is cut short.
MAX_CELL = 60


#: How a missing value of a nullable column shows (as pandas shows it).
NA = "<NA>"


def _text(value: Any) -> str:
    if value is np.ma.masked:
        return NA
    with np.printoptions(threshold=8, edgeitems=2, precision=6):
        text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


def _ratio(raw: int, stored: int) -> str:
    return f"{raw / stored:.2f}x" if raw and stored else "-"


def _grid(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dtype_text(dtype: Any) -> str:
    if isinstance(dtype, str):
        return dtype
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return f"{base} {shape}"
    return str(dtype)


def tree_html(store: Store, top: str = "/") -> str:
    """The nodes at and below ``top`` with kind, rows, stored bytes and compression ratio
    (what ``colvault info`` prints), from one committed snapshot."""
    paths = store.paths(top)
    base = top.count("/") - (top == "/")
    rows = []
    with store.snapshot():
        for p in paths[:MAX_NODES]:
            node = store[p]
            depth = p.count("/") - (p == "/") - base
            name = "\u00a0\u00a0" * depth + (node.name if p != top else p)
            if node.kind in ("table", "array"):
                nrows, raw, stored = node.footprint()
                rows.append([name, node.kind, f"{nrows:,}", _size(stored), _ratio(raw, stored)])
            else:
                rows.append([name, node.kind, "", "", ""])
    more = len(paths) - MAX_NODES
    tail = f"<p>… and {more:,} more nodes</p>" if more > 0 else ""
    title = f"<p><b>colvault store</b> {html.escape(store.path)}</p>"
    return title + _grid(["node", "kind", "rows", "stored", "ratio"], rows) + tail


def _edges(read: Callable[..., Any], nrows: int) -> tuple[Any, Any]:
    """The first and last :data:`EDGE_ROWS` rows by ``read(start=, stop=)`` (the last None
    when the first hold all)."""
    if nrows <= 2 * EDGE_ROWS:
        return read(), None
    return read(stop=EDGE_ROWS), read(start=nrows - EDGE_ROWS)


def _numbered(first: Any, last: Any, nrows: int, cells: Callable[[Any], list[Any]]) -> list:
    """Grid rows of the edges: each row's number, then its ``cells``; a row of … between."""
    rows = [[i, *cells(r)] for i, r in enumerate(first)]
    if last is not None:
        rows.append(["…"] * len(rows[0]))
        rows += [[nrows - EDGE_ROWS + i, *cells(r)] for i, r in enumerate(last)]
    return rows


def table_html(table: Table) -> str:
    """A table's schema, size and first and last rows, from one committed snapshot."""
    with table.store.snapshot():
        nrows, raw, stored = table.footprint()
        first, last = _edges(table.read, nrows)
    names = table.columns
    title = (
        f"<p><b>colvault table</b> {html.escape(table.path)}: {nrows:,} rows × {len(names)} "
        f"columns; {_size(raw)} raw, {_size(stored)} stored ({_ratio(raw, stored)}), "
        f"{html.escape(table.codec.name)}</p>"
    )
    schema = _grid(names, [[_dtype_text(d) for d in table.dtypes.values()]])
    rows = _numbered(first, last, nrows, lambda r: [r[n] for n in names])
    return title + schema + _grid(["", *names], rows)


def column_html(column: Column) -> str:
    """A column's dtype, shape and first and last values, from one committed snapshot."""
    table = column.table
    with table.store.snapshot():
        nrows = table.nrows
        first, last = _edges(partial(table.read, columns=[column.name]), nrows)
    dtype = _dtype_text(table.dtypes[column.name])
    title = (
        f"<p><b>colvault column</b> {html.escape(column.name)} of {html.escape(table.path)}: "
        f"{html.escape(dtype)}, {nrows:,} rows</p>"
    )
    return title + _grid(["", column.name], _numbered(first, last, nrows, lambda r: [r[0]]))


def array_html(array: Array) -> str:
    """An array's shape, size and first and last cells, from one committed snapshot."""
    with array.store.snapshot():
        nrows, raw, stored = array.footprint()
        first, last = _edges(array.read, nrows)
    shape = (nrows, *array.inner_shape)
    title = (
        f"<p><b>colvault array</b> {html.escape(array.path)}: shape {shape} {array.dtype}; "
        f"{_size(raw)} raw, {_size(stored)} stored ({_ratio(raw, stored)})</p>"
    )
    return title + _grid(["", "cell"], _numbered(first, last, nrows, lambda cell: [cell]))
