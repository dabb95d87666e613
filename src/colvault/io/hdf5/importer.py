"""``import_hdf5``: copy an HDF5 file (PyTables, h5py, pandas' ``HDFStore``) into a store.

Every object is read in slices of about one target chunk through h5py's low-level API, with
the file's own HDF5 type as the memory type: HDF5 copies the bytes without converting them, and
numpy does what conversion colvault needs (byte order, PyTables' ``Time32``/``Time64`` and bool
columns, ``float16``). This also reads what h5py's high-level API refuses: PyTables writes its
time columns with the HDF5 ``TIME`` class, which has no numpy equivalent.

What becomes what:

- a compound dataset (a PyTables ``Table``, the table of a pandas ``format="table"`` frame, a
  structured h5py dataset) becomes a table, nested columns flattened to ``"outer/inner"``;
- any other dataset (PyTables ``Array``/``CArray``/``EArray``, h5py) becomes an array whose
  first axis is its rows; a scalar dataset becomes a one-row array (noted in its attrs);
  variable-length strings become fixed-width text as wide as the longest (``U`` for UTF-8,
  ``S`` for ASCII; the dataset is read twice, the first time for the width);
- a group becomes a group, or with ``group_as_table=True`` a table when it holds only 1-d
  datasets of one length (one column each);
- attributes are copied to ``attrs`` as JSON values, and those whose numpy type JSON would lose
  (numpy scalars and arrays, bytes) also to ``objects`` unchanged; PyTables' own bookkeeping
  (:data:`PYTABLES_SYSTEM_ATTRS`, ``FIELD_*``) is left out, and its pickled attributes are
  loaded through colvault's restricted unpickler, as PyTables would load them;
- PyTables' ``Time32`` columns become ``datetime64[s]``; ``Time64``, which PyTables reads as
  float seconds but stores as seconds and microseconds, become ``datetime64[us]``, exactly;
  pandas' int64 datetime columns, whose attributes name their ``datetime64`` dtype, become
  ``datetime64`` of that unit. What cannot be told apart (a zone pandas names, a time type
  outside PyTables) stays a number, with a line in the node's ``attrs["hdf5_notes"]``;
- the table of a pandas ``format="table"`` frame gets the frame's columns: pandas' values
  blocks are split into the columns they hold, text decoded as pandas decodes it;
- what colvault's :func:`~colvault.io.hdf5.export.export_hdf5` wrote (marked
  ``COLVAULT_FORMAT``) comes back as it was: categories, text, datetimes with their zone,
  nullable columns with their missing values (from the ``<table>_mask`` beside the table,
  which is not imported apart), attributes as the JSON values they were (none in ``objects``).

Data compressed with a filter h5py's HDF5 library lacks (PyTables' blosc, unless
``hdf5plugin`` is installed, as the ``hdf5`` extra does: it is imported when present) raise an
error naming the filter.

PyTables' column indexes (``_i_*`` groups of class ``TINDEX``) are derived data and not copied;
variable-length arrays, references and opaque data have no colvault type: they are left out
with an :class:`HDF5Warning` and listed in their parent's ``attrs["hdf5_skipped"]``.

The import is one transaction: it commits at the end, and any error (a truncated or damaged
file, a node that already exists) aborts it, so the store is as it was.

The work is split by concern: :mod:`.plan` decides what each object becomes (from types,
:mod:`.dtypes`, and attributes, :mod:`.attrs`), :mod:`.read` copies the rows, and
:mod:`.file` opens the file; this module runs them as one import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ...engine.nodes import Group, Node
from ...engine.store import Store
from ...errors import SchemaError
from ...progress import bar as progress_bar
from ..importing import import_transaction
from .attrs import (
    ARRAY_TYPE_ATTR,
    COLUMN_TYPE_ATTR,
    FORMAT_ATTR,
    JSON_ATTRS_ATTR,
    MASK_ATTR,
    MASK_OF_ATTR,
    PYTABLES_CLASSES,
    PYTABLES_SYSTEM_ATTRS,
    copy_attrs,
)
from .dtypes import HDF5Warning, cell, column_dtype, schema_type
from .file import load_h5py, open_file, reading
from .plan import Item, Planner
from .read import copy_rows


def import_hdf5(
    h5file: str | os.PathLike[str] | Any,
    store: Store | str | os.PathLike[str],
    *,
    paths: Sequence[str] | None = None,
    into: str = "/",
    progress: bool | None = True,
    group_as_table: bool = False,
) -> list[str]:
    """Copy the objects of HDF5 file ``h5file`` into ``store`` as one transaction; return the
    store paths of the nodes made from its objects, parents first.

    ``h5file`` is a path or a file object h5py can read; ``store`` an open
    :class:`~colvault.Store` without pending changes, or a path opened with mode ``"a"`` (left
    open: ``node.store.close()``; closed if the import fails). ``paths``: the HDF5 objects to
    copy, each with everything below it (default: the whole file); they keep their HDF5 paths
    below the group ``into``. Names colvault does not allow in node paths have those characters
    replaced by ``_`` (the HDF5 name is kept in ``attrs["hdf5_name"]``). ``group_as_table``:
    a group holding only 1-d datasets of one length becomes a table of those columns.
    ``progress``: a bar of bytes copied (see :mod:`colvault.progress`; ``None`` shows it only
    in a terminal or notebook). Memory stays bounded by a few slices of about a chunk each.

    A file that is not HDF5, truncated or damaged raises :class:`~colvault.ColvaultError`
    naming the file and the object; a node that already exists raises
    :class:`~colvault.NodeError`. Either way nothing of the import is committed. See
    :mod:`colvault.io.hdf5` for how PyTables' and pandas' conventions are read.

    >>> import colvault, h5py, numpy as np, tempfile, os
    >>> tmp = tempfile.mkdtemp()
    >>> with h5py.File(os.path.join(tmp, "lab.h5"), "w") as f:
    ...     f["runs/spectra"] = np.ones((4, 3), "f4")
    ...     f["runs"].attrs["operator"] = "Ada"
    >>> with colvault.open(os.path.join(tmp, "lab.colvault"), "w") as store:
    ...     colvault.import_hdf5(os.path.join(tmp, "lab.h5"), store, progress=False)
    ...     store["/runs/spectra"].shape, store["/runs"].attrs["operator"]
    ['/runs', '/runs/spectra']
    ((4, 3), 'Ada')
    """
    h5py = load_h5py()
    label = os.fspath(h5file) if isinstance(h5file, str | os.PathLike) else repr(h5file)
    with import_transaction(store, "import_hdf5") as target:
        with open_file(h5py, h5file, label) as f:
            items = Planner(h5py, f, label, into, group_as_table).plan(paths)
            created = _Import(h5py, f, label, target).copy(items, progress)
        target.commit()
    return created


class _Import:
    """Planned items copied into ``store``: nodes created, rows and attributes copied."""

    def __init__(self, h5py: Any, f: Any, label: str, store: Store) -> None:
        self.h5py, self.f, self.label, self.store = h5py, f, label, store

    def copy(self, items: list[Item], progress: bool | None) -> list[str]:
        """Create the node of each item, parents first, and copy its rows and attributes;
        return the paths of the nodes created."""
        total = sum(i.rows * i.row_bytes for i in items)
        created: list[str] = []
        bar = progress_bar(total, "B", f"import {self.label}", progress)
        try:
            for item in items:
                node, new = self._create(item)
                if new:
                    created.append(item.path)
                if item.kind != "group":
                    copy_rows(self.h5py, self.f, self.label, item, node, bar)
                with reading(self.label, item.h5path):
                    obj = self.f[item.h5path]
                copy_attrs(self.h5py, self.label, item, obj, node)
        finally:
            bar.close()
        return created

    def _create(self, item: Item) -> tuple[Node, bool]:
        """The node ``item`` goes into, and whether it is new (the root, ``into`` or a
        group an earlier path of ``paths`` created are not)."""
        store = self.store
        try:
            if item.kind == "group":
                if item.path in store and isinstance(store[item.path], Group):
                    return store[item.path], False
                return store.create_group(item.path), True
            rows = max(1, item.rows)
            assert item.raw is not None
            if item.kind == "array":
                (leaf,) = item.leaves
                array = store.create_array(
                    item.path, column_dtype(item.raw, leaf), inner_shape=item.inner,
                    expected_rows=rows,
                )  # fmt: skip
                return array, True
            schema = {leaf.name: (schema_type(item.raw, leaf), cell(item.raw, leaf))
                      for leaf in item.leaves}  # fmt: skip
            return store.create_table(item.path, schema, expected_rows=rows), True
        except SchemaError as exc:
            raise SchemaError(f"{self.label}: HDF5 object {item.h5path}: {exc}") from exc


__all__ = [
    "ARRAY_TYPE_ATTR",
    "COLUMN_TYPE_ATTR",
    "FORMAT_ATTR",
    "JSON_ATTRS_ATTR",
    "MASK_ATTR",
    "MASK_OF_ATTR",
    "PYTABLES_CLASSES",
    "PYTABLES_SYSTEM_ATTRS",
    "HDF5Warning",
    "import_hdf5",
]
