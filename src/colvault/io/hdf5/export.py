"""``export_hdf5``: a store, or a node and its subtree, written to an HDF5 file that PyTables
reads as its own and that :func:`~colvault.io.hdf5.import_hdf5` gives back exactly.

What becomes what (PyTables' bookkeeping attributes set on each object, as PyTables 3.x writes
them, so that ``tables.open_file`` sees Tables, EArrays and Groups):

- a group becomes a group (``CLASS="GROUP"``); the store's root is the file's root;
- a table becomes a chunked, extendable compound dataset (``CLASS="TABLE"``, ``FIELD_<i>_NAME``,
  ``FIELD_<i>_FILL``, ``NROWS``), one member per column, ``n``-d cells as HDF5 array members;
  bool is PyTables' 8-bit bitfield, complex h5py's and PyTables' ``(r, i)`` compound; columns
  named ``outer/inner`` (an import's names for PyTables' nested columns) are nested again when
  each outer name's columns are contiguous (else they keep their names, which PyTables, taking
  ``/`` for nesting, cannot read);
- an array becomes a chunked dataset extendable along its first axis, a PyTables ``EArray``
  (``CLASS="EARRAY"``, ``EXTDIM=0``);
- ``category`` columns become HDF5 enums (``uint8`` or ``uint16`` codes; the members are the
  values present, sorted), which PyTables reads as ``EnumCol`` (``table.get_enum(name)``);
  a column with a value HDF5 or PyTables refuses as an enum member (empty, starting with
  ``_``, holding NUL), or with more than :data:`MAX_ENUM` values, is written as UTF-8 text;
- ``U<n>`` text (numpy's UCS-4) becomes fixed-length UTF-8 of ``4 n`` bytes, ``S<n>`` stays
  ASCII bytes; ``datetime64``/``timedelta64`` become int64 of their unit (HDF5 has no such
  type, and PyTables' ``Time64``, float seconds, would lose nanoseconds);
- a nullable column's missing values are written as the column's fill value (0, ``False``,
  empty text, enum code 0: ``FIELD_<i>_FILL``), and the table gets a sibling dataset
  ``<table>_mask``, a PyTables Table of one bool column per nullable column, True where the
  value is missing (numpy's mask convention), same rows and chunks;
- a node's ``attrs`` become HDF5 attributes: int as int64, float as float64, text, and
  non-empty lists of only ints or only floats as 1-d arrays; any other JSON value (bools,
  which PyTables cannot read as HDF5 attributes, None, dicts, mixed or nested lists, text
  holding NUL, ints beyond int64) as its JSON text, its key listed in the node's
  ``COLVAULT_JSON_ATTRS``. A string ``TITLE`` is PyTables' title.
  ``objects`` (pickled values) are not exported.

colvault's own marks, which an import reads to give back what HDF5 cannot say: every object
has ``COLVAULT_FORMAT`` (:data:`FORMAT`); a column whose HDF5 type does not say all has
``FIELD_<i>_COLVAULT_TYPE`` (``i``: its position among the table's columns), e.g.
``"datetime64[ns, Europe/Paris]"``, ``"timedelta64[ms]"``, ``"category"``, ``"<U5"``, and an
array ``COLVAULT_DTYPE``; a table with nullable columns has ``COLVAULT_MASK`` (its mask's
name), the mask ``COLVAULT_MASK_OF`` (the table's). PyTables lists the ``COLVAULT_*`` marks
among a node's user attributes and hides the ``FIELD_*`` ones, as its own.

Everything is read from one committed snapshot (``store.snapshot()``), chunk by chunk: memory
stays within a few chunks of the widest table. With gzip, HDF5 chunks are deflated by the
store's worker threads (HDF5 runs filters on one thread) and written whole. The file is
written under a temporary name in the target's directory, fsync'd and renamed when complete,
so a failure leaves no file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...engine.array import Array
from ...engine.nodes import Group, Node
from ...engine.schema import ColumnSpec
from ...engine.store import Store
from ...engine.store import open as open_store
from ...engine.table import Table
from ...errors import ColvaultError
from ...progress import bar as progress_bar
from .chunks import GZIP_LEVEL, ChunkSink
from .compound import Layout, compound_type, h5type, member
from .importer import (
    ARRAY_TYPE_ATTR,
    COLUMN_TYPE_ATTR,
    FORMAT_ATTR,
    JSON_ATTRS_ATTR,
    MASK_ATTR,
    MASK_OF_ATTR,
    PYTABLES_SYSTEM_ATTRS,
)

#: The version of the conventions above, in every object's ``COLVAULT_FORMAT``.
FORMAT = 1
#: The compressions ``export_hdf5`` takes: HDF5's deflate at level :data:`GZIP_LEVEL` (PyTables'
#: ``zlib``), h5py's LZF (which PyTables cannot decode), or none; both with HDF5's shuffle
#: filter, as PyTables compresses.
COMPRESSIONS = ("gzip", "lzf", None)
#: Uncompressed bytes per HDF5 chunk, at most (a power of two of rows, at least one row).
HDF5_CHUNK_BYTES = 1 << 20
#: Category columns with more distinct values are written as text: HDF5 checks each enum
#: member against all the others as it is inserted.
MAX_ENUM = 1 << 16
#: The suffix of a table's mask dataset.
MASK_SUFFIX = "_mask"
#: What PyTables writes as the ``VERSION`` of each class.
_VERSIONS = {"GROUP": "1.0", "TABLE": "2.7", "EARRAY": "1.1"}


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ColvaultError("export_hdf5 needs h5py (pip install h5py)") from exc
    return h5py


@dataclass
class _Col:
    """One column as written: the numpy dtype of its field in the rows buffer (the HDF5 type
    has the same layout) and how values become it (``kind``)."""

    spec: ColumnSpec
    kind: str  # "plain", "text" (U as UTF-8), "time" (M8/m8 as int64), "enum", "cattext"
    field: np.dtype
    type_attr: str | None = None
    dictionary: np.ndarray | None = None  # category columns: the values present, sorted
    chunks: int = 0


@dataclass
class _Out:
    """One node to write, and where."""

    node: Node
    h5path: str
    kind: str  # "group", "table", "array"
    attrs: dict[str, Any] = field(default_factory=dict)
    columns: list[_Col] = field(default_factory=list)
    rows: int = 0
    row_bytes: int = 0

    @property
    def mask_path(self) -> str | None:
        if not any(c.spec.nullable for c in self.columns):
            return None
        return self.h5path + MASK_SUFFIX


def export_hdf5(
    store_or_node: Store | Node | str | os.PathLike[str],
    h5file: str | os.PathLike[str],
    *,
    compression: str | None = "gzip",
    overwrite: bool = False,
    progress: bool | None = None,
) -> list[str]:
    """Write ``store_or_node`` (a store, a store's path, or a node and everything below it) to
    the new HDF5 file ``h5file``; return the HDF5 paths written, parents first (masks left out).

    The store's root becomes the file's root; any other node becomes a child of the file's
    root under its own name (``/runs/a`` is ``/a``, its children ``/a/...``). Only committed
    data are written, all from one snapshot; a store with pending changes is refused
    (``commit()`` or ``abort()`` them first). ``compression``: ``"gzip"`` (default), ``"lzf"``
    (faster, but h5py's filter: PyTables cannot read it) or None. An existing ``h5file`` is
    refused unless ``overwrite=True``, which replaces it whole when the export is complete
    (there is no appending into an existing file).
    ``progress``: a bar of bytes written (see :mod:`colvault.progress`).

    The file is PyTables' (``tables.open_file`` gives Tables, EArrays and Groups, ``read()``
    the values) and an import gives the nodes back exactly; :mod:`colvault.io.hdf5.export` says
    how each type is written, with missing values' masks and colvault's marks. On any error
    (a full disk, an attribute key that PyTables reserves) no file is left behind.

    >>> import colvault, tables, tempfile, os
    >>> tmp = tempfile.mkdtemp()
    >>> with colvault.open(os.path.join(tmp, "lab.colvault"), "w") as store:
    ...     t = store.create_table("/runs/a", {"sensor": "i4", "value": "f8"})
    ...     t.append({"sensor": [1, 2], "value": [0.5, 1.5]})
    ...     t.attrs["site"] = "Lyon"
    ...     _ = store.commit()  # the new commit's id
    ...     colvault.export_hdf5(store, os.path.join(tmp, "lab.h5"), progress=False)
    ['/', '/runs', '/runs/a']
    >>> with tables.open_file(os.path.join(tmp, "lab.h5")) as f:
    ...     f.root.runs.a.read()["value"], str(f.root.runs.a.attrs.site)
    (array([0.5, 1.5]), 'Lyon')
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
    h5py = _h5py()
    target = os.path.abspath(os.fspath(h5file))
    if os.path.exists(target) and not overwrite:
        raise ColvaultError(
            f"{target} exists: pass overwrite=True to replace it; nothing was written"
        )
    opened = isinstance(store_or_node, str | os.PathLike)
    if isinstance(store_or_node, str | os.PathLike):
        store: Store = open_store(os.fspath(store_or_node), "r")
        top = "/"
    elif isinstance(store_or_node, Store):
        store, top = store_or_node, "/"
    elif isinstance(store_or_node, Node):
        store, top = store_or_node.store, store_or_node.path
    else:
        raise TypeError(
            f"export_hdf5 takes a Store, a node or a store's path, not {type(store_or_node)}"
        )
    try:
        if store.has_pending:
            raise ColvaultError(
                f"{store.path} has pending changes: commit() or abort() them first "
                "(export_hdf5 writes committed data); nothing was written"
            )
        with store.snapshot():
            items = _plan(store, top, target)
            _write(h5py, items, target, compression, overwrite, progress)
        return [item.h5path for item in items]
    finally:
        if opened:
            store.close()


# -- planning: what each node becomes ------------------------------------------------------------


def _plan(store: Store, top: str, target: str) -> list[_Out]:
    """The nodes to write, parents first, each checked: an error here writes nothing."""
    cut = 0 if top == "/" else len(top) - len(top.rsplit("/", 1)[1]) - 1
    items: list[_Out] = []
    for path in store.paths(top):
        node = store[path]
        h5path = path[cut:] or "/"
        attrs = dict(node.attrs)
        for key in attrs:
            if key in PYTABLES_SYSTEM_ATTRS or key.startswith(("FIELD_", "COLVAULT_")):
                raise ColvaultError(
                    f"{target}: attribute {key!r} of {path} has a name PyTables or colvault "
                    "reserves for their bookkeeping; rename it to export; nothing was written"
                )
            if not key or "\x00" in key:
                raise ColvaultError(
                    f"{target}: attribute {key!r} of {path}: HDF5 attribute names are neither "
                    "empty nor hold NUL; rename it to export; nothing was written"
                )
        if isinstance(node, Table):
            item = _Out(node, h5path, "table", attrs)
            item.columns = [_column(node, s.spec, s.chunks) for s in node.storage()]
            item.rows = node.nrows
            item.row_bytes = sum(_field_bytes(c.field) for c in item.columns)
        elif isinstance(node, Array):
            item = _Out(node, h5path, "array", attrs, rows=node.nrows)
            item.row_bytes = _field_bytes(np.dtype((_array_dtype(node.dtype), node.inner_shape)))
        elif isinstance(node, Group):
            item = _Out(node, h5path, "group", attrs)
        else:  # pragma: no cover - every node kind is handled
            raise ColvaultError(f"{path}: a {type(node).__name__} cannot be exported")
        items.append(item)
    names = {item.h5path for item in items}
    for item in items:
        mask = item.mask_path
        if mask is not None and mask in names:
            raise ColvaultError(
                f"{target}: the missing values of table {item.node.path} go to {mask}, the "
                "name of another exported node; rename one of them; nothing was written"
            )
    return items


def _field_bytes(dt: np.dtype) -> int:
    return int(dt.itemsize)


def _array_dtype(dtype: np.dtype) -> np.dtype:
    """The numpy dtype an array's or column's values are written as (HDF5's layout)."""
    if dtype.kind in "Mm":
        return np.dtype("<i8")
    if dtype.kind == "U":
        return np.dtype(f"S{4 * (dtype.itemsize // 4)}")
    return dtype


def _column(table: Table, spec: ColumnSpec, chunks: int) -> _Col:
    if spec.is_category:
        dictionary = _dictionary(table, spec, chunks)
        if _enum_names_ok(dictionary):
            codes = np.uint8 if len(dictionary) <= 256 else np.uint16
            return _Col(spec, "enum", np.dtype(codes), "category", dictionary, chunks)
        width = max([1, *(len(_utf8(v)) for v in dictionary)])
        return _Col(spec, "cattext", np.dtype(f"S{width}"), "category", dictionary, chunks)
    base = _array_dtype(spec.dtype)
    kind, type_attr = "plain", None
    if spec.dtype.kind in "Mm":
        kind, type_attr = "time", spec.type_name
    elif spec.dtype.kind == "U":
        kind, type_attr = "text", spec.dtype.str
    return _Col(spec, kind, np.dtype((base, spec.shape)), type_attr, chunks=chunks)


def _dictionary(table: Table, spec: ColumnSpec, chunks: int) -> np.ndarray:
    """The values present in a category column, sorted (its chunks' codes read once)."""
    parts = []
    for i in range(chunks):
        codes, values = table.col(spec.name, codes=True, chunk=i)
        if spec.nullable and len(values):  # a chunk of only missing values holds a placeholder
            values = values[np.unique(codes[codes >= 0])]
        parts.append(values)
    if not parts:
        return np.empty(0, "U1")
    return np.unique(np.concatenate(parts))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _enum_names_ok(dictionary: np.ndarray) -> bool:
    """Whether HDF5 (no empty name, no NUL) and PyTables (no leading ``_``) take the values
    as enum members."""
    if not 0 < len(dictionary) <= MAX_ENUM:
        return False
    for value in dictionary.tolist():
        if not value or value.startswith("_") or "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


# -- HDF5 types ----------------------------------------------------------------------------------


def _column_type(h5py: Any, col: _Col) -> Any:
    """A column's HDF5 type: an enum of its dictionary, or its values' type
    (:func:`.compound.h5type`)."""
    if col.kind == "enum":
        assert col.dictionary is not None
        base = h5py.h5t.NATIVE_UINT8 if col.field == np.uint8 else h5py.h5t.NATIVE_UINT16
        tid = h5py.h5t.enum_create(base)
        for value, name in enumerate(col.dictionary.tolist()):
            tid.enum_insert(name.encode("utf-8"), value)
        return tid
    return h5type(h5py, col.field, utf8=col.kind in ("text", "cattext"))


# -- writing -------------------------------------------------------------------------------------


def _write(h5py: Any, items: list[_Out], target: str, compression: str | None,
           overwrite: bool, progress: bool | None) -> None:  # fmt: skip
    """Write ``items`` to a temporary file beside ``target``, then give it ``target``'s name."""
    folder = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".tmp",
                                   dir=folder)  # fmt: skip
    except OSError as exc:
        raise ColvaultError(
            f"{target}: cannot create a file in {folder} ({exc}); nothing was written"
        ) from exc
    os.close(fd)
    try:
        total = sum(item.rows * item.row_bytes for item in items)
        desc = f"export {os.path.basename(target)}"
        with (
            progress_bar(total, "B", desc, progress) as bar,
            h5py.File(tmp, "w", rdcc_nbytes=4 * HDF5_CHUNK_BYTES) as f,
        ):
            job = _Writer(h5py, f, target, compression, bar, items[0].node.store.workers)
            if items[0].h5path != "/":
                job.pytables_attrs(f, "GROUP", root=True)
                f.attrs[FORMAT_ATTR] = np.int64(FORMAT)
            for item in items:
                job.write(item)
        _publish(tmp, target, overwrite)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _publish(tmp: str, target: str, overwrite: bool) -> None:
    """Make the complete file durable, then give it its name (never replacing a file that
    appeared meanwhile, unless ``overwrite``)."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    if overwrite:
        os.replace(tmp, target)
    else:
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise ColvaultError(
                f"{target} appeared during the export: pass overwrite=True to replace it; "
                "nothing was written"
            ) from None
        except OSError:  # a file system without hard links: check, then rename
            if os.path.exists(target):
                raise ColvaultError(
                    f"{target} appeared during the export; nothing was written"
                ) from None
            os.replace(tmp, target)
        else:
            os.unlink(tmp)
    try:
        dfd = os.open(os.path.dirname(target), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class _Writer:
    def __init__(self, h5py: Any, f: Any, target: str, compression: str | None, bar: Any,
                 pool: Any = None) -> None:  # fmt: skip
        self.h5py, self.f, self.target, self.bar = h5py, f, target, bar
        self.compression, self.pool = compression, pool

    def write(self, item: _Out) -> None:
        try:
            if item.kind == "group":
                obj = self.f if item.h5path == "/" else self.f.create_group(item.h5path)
                self.pytables_attrs(obj, "GROUP", root=item.h5path == "/")
            elif item.kind == "array":
                obj = self._array(item)
            else:
                obj = self._table(item)
            obj.attrs[FORMAT_ATTR] = np.int64(FORMAT)
            self._user_attrs(obj, item.attrs)
        except ColvaultError:
            raise
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise ColvaultError(
                f"{self.target}: writing {item.node.path} to HDF5 failed ({exc}); no file was "
                "written"
            ) from exc

    # -- attributes -------------------------------------------------------------------------

    def pytables_attrs(self, obj: Any, cls: str, title: Any = None, root: bool = False) -> None:
        attrs = obj.attrs
        attrs.create("CLASS", np.bytes_(cls.encode()))
        attrs.create("VERSION", np.bytes_(_VERSIONS[cls].encode()))
        if root:
            attrs.create("PYTABLES_FORMAT_VERSION", np.bytes_(b"2.1"))
        if not isinstance(title, str):  # the user's TITLE, or PyTables' empty one
            attrs.create("TITLE", self.h5py.Empty("S1"))

    def _user_attrs(self, obj: Any, attrs: dict[str, Any]) -> None:
        as_json = []
        for key, value in attrs.items():
            stored = _attr_value(value)
            if stored is None:
                stored = json.dumps(value)
                as_json.append(key)
            obj.attrs[key] = stored
        if as_json:
            obj.attrs[JSON_ATTRS_ATTR] = json.dumps(as_json)

    def _fills(self, ds: Any, layout: Layout, types: list[Any], dtypes: list[np.dtype]) -> None:
        """PyTables' ``FIELD_<i>_NAME`` (top-level members) and ``FIELD_<i>_FILL`` (each
        column's fill value, zero, in its member's type, in PyTables' order)."""
        h5a, h5s = self.h5py.h5a, self.h5py.h5s
        for i, name in enumerate(layout.top):
            ds.attrs.create(f"FIELD_{i}_NAME", np.bytes_(name.encode("utf-8")))
        for i, column in enumerate(layout.fill_order):
            tid, dt = types[column], dtypes[column]
            base_tid = tid.get_super() if tid.get_class() == self.h5py.h5t.ARRAY else tid
            if base_tid.get_class() == self.h5py.h5t.ENUM:  # PyTables writes the code's type
                base_tid = base_tid.get_super()
            base = dt.base
            aid = h5a.create(ds.id, f"FIELD_{i}_FILL".encode(), base_tid, h5s.create(h5s.SCALAR))
            aid.write(np.zeros((), base), mtype=base_tid)

    # -- datasets ---------------------------------------------------------------------------

    def _dataset(self, h5path: str, tid: Any, rows: int, inner: tuple[int, ...],
                 row_bytes: int) -> ChunkSink:  # fmt: skip
        h5p, h5s, h5d = self.h5py.h5p, self.h5py.h5s, self.h5py.h5d
        chunk = max(1, HDF5_CHUNK_BYTES // max(1, row_bytes))
        chunk = 1 << (chunk.bit_length() - 1)
        if rows:
            chunk = min(chunk, rows)
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_chunk((chunk, *inner))
        if self.compression is not None:
            dcpl.set_shuffle()
            if self.compression == "gzip":
                dcpl.set_deflate(GZIP_LEVEL)
            else:
                dcpl.set_filter(self.h5py.h5z.FILTER_LZF, self.h5py.h5z.FLAG_OPTIONAL)
        space = h5s.create_simple((rows, *inner), (h5s.UNLIMITED, *inner))
        parent, name = h5path.rsplit("/", 1)
        loc = self.f[parent or "/"]
        h5d.create(loc.id, name.encode("utf-8"), tid, space, dcpl=dcpl)
        pool = self.pool if self.compression == "gzip" else None
        return ChunkSink(self.h5py, loc[name], tid, chunk, pool)

    def _put(self, sink: ChunkSink, start: int, buf: np.ndarray) -> None:
        """Rows ``[start, start + len(buf))`` of a dataset (the rows come in order)."""
        sink.put(start, buf)

    def _array(self, item: _Out) -> Any:
        node = item.node
        assert isinstance(node, Array)
        dtype = node.dtype
        base = _array_dtype(dtype)
        tid = h5type(self.h5py, base, utf8=dtype.kind == "U")
        sink = self._dataset(item.h5path, tid, item.rows, node.inner_shape, item.row_bytes)
        ds = sink.ds
        self.pytables_attrs(ds, "EARRAY", item.attrs.get("TITLE"))
        ds.attrs.create("EXTDIM", np.int32(0))
        if dtype.kind in "MmU":
            ds.attrs[ARRAY_TYPE_ATTR] = str(dtype) if dtype.kind != "U" else dtype.str
        start = 0
        for values in node.iter_chunks():
            self._put(sink, start, _as_written(values, dtype).astype(base, copy=False))
            start += len(values)
            self.bar.update(len(values) * item.row_bytes)
        sink.close()
        return ds

    def _table(self, item: _Out) -> Any:
        node = item.node
        assert isinstance(node, Table)
        h5py = self.h5py
        cols = item.columns
        names = [c.spec.name for c in cols]
        types = [_column_type(h5py, c) for c in cols]
        dtypes = [c.field for c in cols]
        layout = compound_type(h5py, names, types, dtypes)
        tid = layout.tid
        sink = self._dataset(item.h5path, tid, item.rows, (), item.row_bytes)
        ds = sink.ds
        self.pytables_attrs(ds, "TABLE", item.attrs.get("TITLE"))
        self._fills(ds, layout, types, dtypes)
        ds.attrs.create("NROWS", np.int64(item.rows))
        for i, c in enumerate(cols):
            if c.type_attr is not None:
                ds.attrs[COLUMN_TYPE_ATTR.format(i)] = c.type_attr
        nullable = [c.spec.name for c in cols if c.spec.nullable]
        b8s = [h5py.h5t.NATIVE_B8.copy() for _ in nullable]
        bools = [np.dtype(bool)] * len(nullable)
        mask = compound_type(h5py, nullable, b8s, bools)
        mask_sink = None
        if nullable:
            mask_path = item.mask_path
            assert mask_path is not None
            mask_sink = self._dataset(mask_path, mask.tid, item.rows, (), len(nullable))
            mask_ds = mask_sink.ds
            self.pytables_attrs(mask_ds, "TABLE")
            self._fills(mask_ds, mask, b8s, bools)
            mask_ds.attrs.create("NROWS", np.int64(item.rows))
            mask_ds.attrs[MASK_OF_ATTR] = item.h5path.rsplit("/", 1)[1]
            mask_ds.attrs[FORMAT_ATTR] = np.int64(FORMAT)
            ds.attrs[MASK_ATTR] = mask_path.rsplit("/", 1)[1]
        start = 0
        for n, fields, missing in _table_chunks(node, cols):
            buf = np.empty(n, layout.record)
            for name, values in fields.items():
                member(buf, layout.paths[name])[...] = values
            self._put(sink, start, buf)
            if mask_sink is not None:
                mbuf = np.empty(n, mask.record)
                for name, m in missing.items():
                    member(mbuf, mask.paths[name])[...] = m
                self._put(mask_sink, start, mbuf)
            start += n
            self.bar.update(n * item.row_bytes)
        sink.close()
        if mask_sink is not None:
            mask_sink.close()
        return ds


def _table_chunks(
    table: Table, cols: list[_Col]
) -> Iterator[tuple[int, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Per committed chunk: its rows, each column's values as written, and the missing values
    of the nullable columns. Category columns are read as their codes."""
    plain = [c for c in cols if not c.spec.is_category]
    cats = [c for c in cols if c.spec.is_category]
    chunks = table.iter_chunks([c.spec.name for c in plain])
    count = cols[0].chunks if cols else 0
    for i in range(count):
        arrays = next(chunks)
        fields: dict[str, np.ndarray] = {}
        missing: dict[str, np.ndarray] = {}
        n = 0
        for c in plain:
            values = arrays[c.spec.name]
            n = len(values)
            if c.spec.nullable:
                missing[c.spec.name] = np.ma.getmaskarray(values)
                values = _filled(values, c.spec.dtype)
            fields[c.spec.name] = _as_written(values, c.spec.dtype)
        for c in cats:
            codes, values = table.col(c.spec.name, codes=True, chunk=i)
            n = len(codes)
            gone = codes < 0 if c.spec.nullable else np.zeros(n, bool)
            if c.spec.nullable:
                missing[c.spec.name] = gone
            fields[c.spec.name] = _category_field(c, codes, values, gone)
        yield n, fields, missing


def _filled(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A nullable column's values, missing ones replaced by the fill value (zero, empty)."""
    if not isinstance(values, np.ma.MaskedArray):
        return values
    data = np.array(np.ma.getdata(values), copy=True)
    data[np.ma.getmaskarray(values)] = np.zeros((), dtype)
    return data


def _as_written(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    values = np.ma.getdata(values)
    if dtype.kind in "Mm":
        return values.view("<i8")
    if dtype.kind == "U":
        return np.strings.encode(values, "utf-8", "surrogatepass")
    return values


def _category_field(col: _Col, codes: np.ndarray, values: np.ndarray,
                    gone: np.ndarray) -> np.ndarray:  # fmt: skip
    """A category chunk's codes into the column's sorted dictionary (enum codes), or the text."""
    assert col.dictionary is not None
    if len(values):
        remap = np.searchsorted(col.dictionary, values)
        out = remap[np.where(gone, 0, codes)]
    else:
        out = np.zeros(len(codes), np.intp)
    if col.kind == "enum":
        out = out.astype(col.field)
        out[gone] = 0
        return out
    text = np.strings.encode(col.dictionary, "utf-8", "surrogatepass")
    if not len(text):  # no values: every row is missing
        text = np.array([b""])
    written = text[np.minimum(out, len(text) - 1)].astype(col.field)
    written[gone] = b""
    return written


def _attr_value(value: Any) -> Any:
    """What an HDF5 attribute holds of a JSON value, or None when only its JSON text can."""
    if isinstance(value, bool):  # h5py's bool is an enum, which PyTables reads in no attribute
        return None
    if isinstance(value, int):
        return np.int64(value) if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, str):
        if "\x00" in value:
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return value
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        if kinds == {int} and all(-(2**63) <= v < 2**63 for v in value):
            return np.array(value, np.int64)
        if kinds == {float}:
            return np.array(value, np.float64)
    return None


__all__ = ["COMPRESSIONS", "FORMAT", "HDF5_CHUNK_BYTES", "MASK_SUFFIX", "MAX_ENUM", "export_hdf5"]
