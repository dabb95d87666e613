"""HDF5 types for colvault's values, and a table's compound type: one member per column,
``outer/inner`` names nested again as PyTables nests its columns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


def h5type(h5py: Any, dtype: np.dtype, utf8: bool = False) -> Any:
    """The HDF5 type of values laid out as ``dtype`` (a base dtype, or with a cell shape)."""
    h5t = h5py.h5t
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return h5t.array_create(h5type(h5py, base, utf8), shape)
    if dtype.kind == "b":
        return h5t.NATIVE_B8.copy()  # PyTables' bool: h5py's is an enum PyTables reads as one
    if dtype.kind == "S":
        tid = h5t.C_S1.copy()
        tid.set_size(dtype.itemsize)
        tid.set_strpad(h5t.STR_NULLPAD)
        if utf8:
            tid.set_cset(h5t.CSET_UTF8)
        return tid
    return h5t.py_create(dtype)


_Level = list[tuple[str, Any]]  # (member name, column index or a nested level)


@dataclass
class Layout:
    """A table's compound type: HDF5's, numpy's of the same layout, where each column is in it,
    the top-level member names and the columns in PyTables' ``FIELD_<i>_FILL`` order."""

    tid: Any
    record: np.dtype
    paths: dict[str, tuple[str, ...]]
    top: list[str]
    fill_order: list[int]


def compound_type(h5py: Any, names: list[str], types: list[Any], dtypes: list[np.dtype]) -> Layout:
    """Columns named ``outer/inner`` (as an import flattens PyTables' nested columns) nested
    again, when each outer name's columns are contiguous; else flat (PyTables then cannot
    read the table: it takes ``/`` in a member name for nesting)."""
    tree = _nest(names) or [(name, i) for i, name in enumerate(names)]
    paths: dict[str, tuple[str, ...]] = {}

    def build(level: _Level, prefix: tuple[str, ...]) -> tuple[Any, np.dtype]:
        members = []
        for name, child in level:
            if isinstance(child, int):
                members.append((name, types[child], dtypes[child]))
                paths[names[child]] = (*prefix, name)
            else:
                members.append((name, *build(child, (*prefix, name))))
        tid = h5py.h5t.create(h5py.h5t.COMPOUND, max(1, sum(d.itemsize for _, _, d in members)))
        offset = 0
        for name, member, dt in members:
            tid.insert(name.encode("utf-8"), offset, member)
            offset += dt.itemsize
        return tid, np.dtype([(name, dt) for name, _, dt in members])

    tid, record = build(tree, ())
    fill_order: list[int] = []
    queue = [tree]
    while queue:  # breadth first, as PyTables' Description._f_walk
        for _, child in queue.pop(0):
            if isinstance(child, int):
                fill_order.append(child)
            else:
                queue.append(child)
    return Layout(tid, record, paths, [name for name, _ in tree], fill_order)


def _nest(names: list[str]) -> _Level | None:
    """The nesting of ``outer/inner`` names, or None where there is none or it would reorder
    the columns (or a name is both a column and an outer name)."""
    if not any("/" in name for name in names):
        return None
    root: _Level = []
    levels: dict[tuple[str, ...], _Level] = {(): root}
    leaves: set[tuple[str, ...]] = set()
    for i, name in enumerate(names):
        parts = tuple(name.split("/"))
        if "" in parts or parts in levels or parts in leaves:
            return None
        for k in range(1, len(parts)):
            if parts[:k] in leaves:
                return None
            if parts[:k] not in levels:
                levels[parts[:k]] = []
                levels[parts[: k - 1]].append((parts[k - 1], levels[parts[:k]]))
        levels[parts[:-1]].append((parts[-1], i))
        leaves.add(parts)

    def order(level: _Level) -> Iterator[int]:
        for _, child in level:
            yield from [child] if isinstance(child, int) else order(child)

    return root if list(order(root)) == list(range(len(names))) else None


def member(buf: np.ndarray, path: tuple[str, ...]) -> np.ndarray:
    """The member at ``path`` (names, outermost first) of records ``buf``."""
    for name in path:
        buf = buf[name]
    return buf
