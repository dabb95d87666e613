"""What each object of an HDF5 file becomes in the store: a group, a table (a compound dataset,
or with ``group_as_table`` a group of 1-d datasets), or an array; with the conventions of
PyTables, pandas and colvault's own export read from types and attributes.

Why apart: the whole plan is made before anything is written, so that an object colvault
cannot hold is refused (or skipped with a warning) before the import creates any node.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ColvaultError
from .attrs import (
    ARRAY_TYPE_ATTR,
    COLUMN_TYPE_ATTR,
    FORMAT_ATTR,
    MASK_ATTR,
    MASK_OF_ATTR,
    attr_text,
    is_pytables,
    maybe_unpickle,
)
from .dtypes import (
    HDF5Warning,
    Leaf,
    Unsupported,
    cell,
    column_dtype,
    is_vlen_text,
    raw_dtype,
    text_slice,
    what,
)
from .file import missing_filters, reading
from .read import SLICE_BYTES

_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
_DATETIME = re.compile(r"(datetime|timedelta)64\[(s|ms|us|ns)\]")


@dataclass
class Item:
    """One object to copy: its HDF5 path, its store path and what it becomes."""

    h5path: str
    path: str
    kind: str  # "group", "table", "array", "columns" (a group read as a table)
    rows: int = 0
    row_bytes: int = 0
    leaves: list[Leaf] = field(default_factory=list)
    raw: np.dtype | None = None
    inner: tuple[int, ...] = ()
    scalar: bool = False
    names: list[str] = field(default_factory=list)  # datasets of a "columns" group
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    original: str | None = None  # the HDF5 name, when colvault's node name differs
    h5chunk: int | None = None  # rows per HDF5 chunk of a compressed dataset
    colvault: bool = False  # written by colvault's export_hdf5
    mask: str | None = None  # the HDF5 path of its missing values' mask (colvault's export)
    mask_raw: np.dtype | None = None
    mask_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column: its field


class Planner:
    """What each object of an open HDF5 file becomes (:meth:`plan`), read from its types and
    attributes only: no rows are read (but variable-length text, once, for its width)."""

    def __init__(self, h5py: Any, f: Any, label: str, into: str, group_as_table: bool) -> None:
        self.h5py, self.f, self.label = h5py, f, label
        self.into = "/" + into.strip("/") if into.strip("/") else "/"
        self.group_as_table = group_as_table

    def plan(self, paths: Sequence[str] | None) -> list[Item]:
        """The objects at ``paths`` (default: the whole file) and everything below them,
        parents first; an object with no colvault type raises, one below them is skipped."""
        items: list[Item] = []
        roots = ["/"] if paths is None else [("/" + p.strip("/")) for p in paths]
        for h5path in roots:
            with reading(self.label, h5path):
                if h5path not in self.f:
                    raise ColvaultError(f"{self.label}: no HDF5 object {h5path}")
                try:
                    self._plan(h5path, self.f[h5path], items)
                except Unsupported as exc:
                    raise ColvaultError(
                        f"{self.label}: HDF5 object {h5path} cannot be imported: {exc}"
                    ) from None
        return items

    def _dest(self, h5path: str) -> tuple[str, str | None]:
        parts = [p for p in h5path.split("/") if p]
        safe = [_NAME.sub("_", p) if p not in (".", "..") else p.replace(".", "_") for p in parts]
        base = self.into.rstrip("/")
        original = parts[-1] if parts and safe[-1] != parts[-1] else None
        return (base + "/" + "/".join(safe)) if safe else (base or "/"), original

    def _plan(self, h5path: str, obj: Any, items: list[Item]) -> Item | None:
        h5py = self.h5py
        path, original = self._dest(h5path)
        with reading(self.label, h5path):
            if isinstance(obj, h5py.Group):
                if attr_text(obj.attrs, "CLASS") in ("TINDEX", "INDEX"):
                    return None  # PyTables' column index: derived data
                if self.group_as_table and h5path != "/":
                    item = self._plan_columns(h5path, path, obj)
                    if item is not None:
                        item.original = original
                        items.append(item)
                        return item
                item = Item(h5path, path, "group", original=original)
                item.colvault = FORMAT_ATTR in obj.attrs
                items.append(item)
                for name in obj:
                    child_path = f"{h5path.rstrip('/')}/{name}"
                    link = obj.get(name, getlink=True)
                    if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
                        self._skip(item, name, f"a {type(link).__name__} to {link.path}")
                        continue
                    if _is_mask(obj, name):
                        continue  # read with the table whose missing values it marks
                    try:
                        self._plan(child_path, obj[name], items)
                    except Unsupported as exc:
                        self._skip(item, name, str(exc))
                return item
            if not isinstance(obj, h5py.Dataset):
                raise Unsupported(f"an HDF5 {type(obj).__name__}")
            item = self._plan_dataset(h5path, path, obj)
            item.original = original
            items.append(item)
            return item

    def _skip(self, parent: Item, name: str, why: str) -> None:
        parent.skipped[name] = why
        warnings.warn(
            f"{self.label}: {parent.h5path.rstrip('/')}/{name} is left out: {why}",
            HDF5Warning,
            stacklevel=5,
        )

    def _plan_dataset(self, h5path: str, path: str, ds: Any) -> Item:
        h5t = self.h5py.h5t
        shape = ds.shape
        if shape is None:
            raise Unsupported("it is an empty (null) dataset")
        if attr_text(ds.attrs, "CLASS") == "VLARRAY":
            raise Unsupported("it is a PyTables VLArray (rows of varying length)")
        missing = missing_filters(ds.id.get_create_plist(), self.h5py.h5z)
        if missing:
            raise ColvaultError(
                f"{self.label}: HDF5 object {h5path} is compressed with {', '.join(missing)}, "
                "which h5py cannot decode here: pip install hdf5plugin (PyTables' blosc is "
                "among its filters), or leave the object out with paths=; nothing was imported"
            )
        leaves: list[Leaf] = []
        if is_vlen_text(ds.id.get_type(), h5t):
            raw = self._text_dtype(h5path, ds)
            leaves.append(Leaf("", (), "vlen"))
        else:
            raw = raw_dtype(ds.id.get_type(), h5t, "", leaves, ())
        rows = shape[0] if shape else 1
        inner = tuple(shape[1:])
        if raw.names is not None:
            if len(shape) > 1:
                raise Unsupported(f"it is a {len(shape)}-d compound dataset")
            kind = "table"
        else:
            kind = "array"
        if any(s == 0 for s in inner):
            raise Unsupported(f"its cells have shape {inner}, with no values")
        cell = int(np.prod(inner, dtype=np.int64)) * raw.itemsize
        item = Item(h5path, path, kind, rows, cell, leaves, raw, inner, scalar=not shape)
        if ds.chunks and shape and ds.id.get_create_plist().get_nfilters():
            item.h5chunk = ds.chunks[0]
        if not shape:
            item.notes.append("a scalar HDF5 dataset, stored as a one-row array")
        extdim = ds.attrs.get("EXTDIM") if "EXTDIM" in ds.attrs else None
        if extdim is not None and int(extdim) != 0:
            item.notes.append(
                f"a PyTables EArray extendable along axis {int(extdim)}; colvault arrays grow "
                "along axis 0"
            )
        if not is_pytables(ds):
            for leaf in leaves:
                if leaf.kind == "time64":  # the seconds+microseconds packing is PyTables' own
                    leaf.kind = ""
                    item.notes.append(
                        f"{what(leaf.name)}: a 64-bit HDF5 time type outside PyTables, whose "
                        "meaning is not known: kept as int64"
                    )
        if FORMAT_ATTR in ds.attrs:
            self._colvault_types(ds, item)
        elif kind == "table":
            self._pandas_datetimes(ds, item)
            self._pandas_columns(ds, item)
        self._leaf_notes(item)
        return item

    def _leaf_notes(self, item: Item) -> None:
        for leaf in item.leaves:
            what = f"column {leaf.name!r}" if leaf.name else "the data"
            if leaf.kind == "time64":
                item.notes.append(
                    f"{what}: PyTables Time64 (seconds and microseconds since 1970), stored "
                    "as datetime64[us]"
                )
            elif leaf.kind == "time32":
                item.notes.append(f"{what}: PyTables Time32, stored as datetime64[s]")
            elif leaf.kind == "half":
                item.notes.append(f"{what}: float16 in the file, stored as float32")
            elif leaf.kind == "enum":
                item.notes.append(f"{what}: an HDF5 enum, stored as its integer codes")
            elif leaf.kind == "vlen":
                item.notes.append(f"{what}: variable-length strings, stored as fixed width")
        if len({leaf.name for leaf in item.leaves}) != len(item.leaves):
            raise Unsupported("two of its columns have the same name")

    def _colvault_types(self, ds: Any, item: Item) -> None:
        """What colvault's export marked: the colvault types of columns (or an array) that
        HDF5 types do not say, and the mask dataset of a table's nullable columns."""
        h5t = self.h5py.h5t
        item.colvault = True
        if item.kind == "array":
            text = attr_text(ds.attrs, ARRAY_TYPE_ATTR)
            if text is not None:
                item.leaves[0].kind, item.leaves[0].dtype = "colvault", text
            return
        tid = ds.id.get_type()
        for i, leaf in enumerate(item.leaves):
            text = attr_text(ds.attrs, COLUMN_TYPE_ATTR.format(i))
            if text is None:
                continue
            leaf.kind, leaf.dtype = "colvault", text
            member = tid.get_member_type(i)
            if text == "category" and member.get_class() == h5t.ENUM:  # h5py's bool too
                leaf.enum = {
                    member.get_member_name(j).decode("utf-8"): int(member.get_member_value(j))
                    for j in range(member.get_nmembers())
                }
        mask = attr_text(ds.attrs, MASK_ATTR)
        if mask is None:
            return
        h5path = f"{item.h5path.rsplit('/', 1)[0]}/{mask}"
        obj = self.f.get(h5path)
        name = item.h5path.rsplit("/", 1)[1]
        if obj is None or attr_text(obj.attrs, MASK_OF_ATTR) != name or obj.shape != ds.shape:
            raise ColvaultError(
                f"{self.label}: the mask {h5path} of the missing values of {item.h5path} is "
                "missing or not that table's; nothing was imported"
            )
        item.mask = h5path
        flags: list[Leaf] = []
        item.mask_raw = raw_dtype(obj.id.get_type(), h5t, "", flags, ())
        item.mask_fields = {flag.name: flag.fields for flag in flags}
        for leaf in item.leaves:
            leaf.nullable = leaf.name in item.mask_fields

    def _pandas_datetimes(self, ds: Any, item: Item) -> None:
        """pandas' HDFStore tables keep datetimes and timedeltas as int64 and say so in
        ``<column>_dtype`` (``datetime64[ns]``), or for the index in ``index_kind``
        (``datetime64``); a zone is in the group's pickled ``info``, as UTC values."""
        try:
            info = maybe_unpickle(ds.parent.attrs.get("info"), f"{self.label}:{item.h5path}")
        except (OSError, KeyError, ValueError, TypeError):
            info = None
        for leaf in item.leaves:
            if leaf.kind or item.raw is None:
                continue
            base = item.raw
            for f in leaf.fields:
                base = base[f]
            if base.base.kind != "i" or base.base.itemsize != 8:
                continue
            dtype_attr = attr_text(ds.attrs, f"{leaf.name}_dtype")
            kind_attr = attr_text(ds.attrs, f"{leaf.name}_kind")
            kind = None
            if dtype_attr is not None:
                m = _DATETIME.fullmatch(dtype_attr)
                if m:
                    kind = f"{'M' if m.group(1) == 'datetime' else 'm'}8[{m.group(2)}]"
                elif dtype_attr.startswith(("datetime64", "timedelta64")):
                    item.notes.append(
                        f"column {leaf.name!r}: pandas dtype {dtype_attr} kept as int64"
                    )
            elif kind_attr in ("datetime64", "timedelta64"):
                kind = f"{'M' if kind_attr == 'datetime64' else 'm'}8[ns]"
            if kind is None:
                continue
            leaf.kind = kind
            zone = info.get(leaf.name, {}).get("tz") if isinstance(info, dict) else None
            if kind.startswith("M8") and isinstance(zone, str):
                leaf.tz = zone
            shown = str(np.dtype(kind)) + (f", zone {zone}" if leaf.tz else "")
            item.notes.append(
                f"column {leaf.name!r}: int64 that pandas marks as {shown}, stored so"
            )

    def _text_dtype(self, h5path: str, ds: Any) -> np.dtype:
        """Fixed-width text wide enough for a dataset of variable-length strings (read once
        for the width, slice by slice): ``U`` for UTF-8, ``S`` for ASCII."""
        utf8 = self.h5py.check_string_dtype(ds.dtype).encoding == "utf-8"
        width = 1
        with reading(self.label, h5path):
            if not ds.shape:
                value = ds.asstr()[()] if utf8 else ds[()]
                return np.dtype(f"{'U' if utf8 else 'S'}{max(1, len(value))}")
            step = max(1, SLICE_BYTES // 64 // max(1, int(np.prod(ds.shape[1:]))))
            for start in range(0, ds.shape[0], step):
                values = text_slice(ds, utf8, start, start + step)
                if values.size:
                    width = max(width, max(len(v) for v in values.ravel()))
        return np.dtype(f"{'U' if utf8 else 'S'}{width}")

    def _pandas_columns(self, ds: Any, item: Item) -> None:
        """The table of a pandas ``format="table"`` frame keeps columns of one dtype together
        in blocks (``values_block_0`` with cells of shape ``(k,)``), their names pickled in
        ``values_block_0_kind``: each block is split into its named columns, and text, which
        pandas decodes with the group's ``encoding``, becomes str."""
        try:
            parent = ds.parent
            pandas_type = attr_text(parent.attrs, "pandas_type")
        except (OSError, KeyError, ValueError):
            return
        if pandas_type is None or not pandas_type.endswith("table"):
            return
        encoding = attr_text(parent.attrs, "encoding")
        where = f"{self.label}:{item.h5path}"
        assert item.raw is not None
        leaves: list[Leaf] = []
        for leaf in item.leaves:
            shape = cell(item.raw, leaf)
            names = maybe_unpickle(ds.attrs.get(f"{leaf.name}_kind"), where)
            text = (
                encoding is not None and column_dtype(item.raw, leaf).kind == "S" and not leaf.kind
            )
            self._pandas_notes(ds, item, leaf.name, names)
            if isinstance(names, list) and len(shape) == 1 and shape[0] == len(names):
                for j, name in enumerate(names):
                    leaves.append(Leaf(str(name), leaf.fields, leaf.kind, leaf.enum, j,
                                       encoding if text else None, leaf.tz))  # fmt: skip
            else:
                leaf.encoding = encoding if text else None
                leaves.append(leaf)
        if len({leaf.name for leaf in leaves}) == len(leaves):
            item.leaves = leaves
            item.notes.append(
                "a pandas table: its values blocks split into their named columns"
                + (f", text decoded from {encoding}" if encoding else "")
            )

    def _pandas_notes(self, ds: Any, item: Item, block: str, names: Any) -> None:
        """What the import keeps as pandas stored it: category codes, ``nan_rep`` text."""
        shown = ", ".join(map(repr, names)) if isinstance(names, list) else repr(block)
        if attr_text(ds.attrs, f"{block}_meta") == "category":
            where = f"{item.h5path.rsplit('/', 1)[0]}/meta/{block}/meta/table"
            item.notes.append(
                f"column {shown}: pandas category codes, kept as such; the categories are in "
                f"{where} (-1: missing)"
            )
        nan_rep = attr_text(ds.attrs, f"{block}_nan_rep")
        if nan_rep is not None:
            item.notes.append(f"column {shown}: text {nan_rep!r} is pandas' missing value")

    def _plan_columns(self, h5path: str, path: str, group: Any) -> Item | None:
        """A group whose children are all 1-d datasets of one length, as a table."""
        h5py, h5t = self.h5py, self.h5py.h5t
        if not len(group):
            return None
        names, leaves, lengths, row_bytes = [], [], set(), 0
        raws = []
        for name in group:
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                return None
            ds = group[name]
            if not isinstance(ds, h5py.Dataset) or ds.shape is None or len(ds.shape) != 1:
                return None
            inner: list[Leaf] = []
            if is_vlen_text(ds.id.get_type(), h5t):
                raw = self._text_dtype(f"{h5path}/{name}", ds)
                inner.append(Leaf(name, (), "vlen"))
            else:
                try:
                    raw = raw_dtype(ds.id.get_type(), h5t, name, inner, ())
                except Unsupported:
                    return None
            if raw.names is not None:
                return None
            lengths.add(ds.shape[0])
            names.append(name)
            raws.append(raw)
            leaves.append(Leaf(name, (name,), inner[0].kind, inner[0].enum))
            row_bytes += raw.itemsize
        if len(lengths) != 1:
            return None
        item = Item(h5path, path, "columns", lengths.pop(), row_bytes, leaves, names=names)
        item.inner = ()
        item.raw = np.dtype([(n, r) for n, r in zip(names, raws, strict=True)])
        self._leaf_notes(item)
        return item

    # -- copying --------------------------------------------------------------------------------


def _is_mask(group: Any, name: str) -> bool:
    """Whether child ``name`` of ``group`` is the mask colvault's export wrote for a table."""
    try:
        attrs = group[name].attrs
        if FORMAT_ATTR not in attrs:
            return False
        owner = attr_text(attrs, MASK_OF_ATTR)
    except (OSError, KeyError, ValueError, TypeError):
        return False
    return owner is not None and owner in group
