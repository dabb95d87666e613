"""HDF5 attributes read as PyTables reads them, and copied to a node's ``attrs`` and ``objects``.

PyTables' own bookkeeping (:data:`PYTABLES_SYSTEM_ATTRS`, ``FIELD_*``) is left out; its pickled
attributes are loaded through colvault's restricted unpickler; fixed-length strings are read as
their bytes. The ``COLVAULT_*`` marks are what :mod:`colvault.io.hdf5.export` writes.
"""

from __future__ import annotations

import json
import pickle
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ...engine import pickles
from ...errors import SchemaError
from .dtypes import HDF5Warning
from .file import reading

if TYPE_CHECKING:
    from .plan import Item

#: PyTables' bookkeeping attributes (``tables.attributeset.SYS_ATTRS``); names starting with
#: ``FIELD_`` are bookkeeping too. A non-empty ``TITLE`` is the user's text and is kept.
PYTABLES_SYSTEM_ATTRS = frozenset(
    {
        "CLASS", "VERSION", "NROWS", "EXTDIM", "ENCODING", "PYTABLES_FORMAT_VERSION", "FLAVOR",
        "FILTERS", "AUTO_INDEX", "DIRTY", "NODE_TYPE", "NODE_TYPE_VERSION", "PSEUDOATOM",
    }
)  # fmt: skip
#: Values of ``CLASS`` that PyTables writes (its node classes).
PYTABLES_CLASSES = frozenset(
    {
        "GROUP", "TABLE", "ARRAY", "CARRAY", "EARRAY", "VLARRAY", "TINDEX", "INDEX",
        "CACHEARRAY", "INDEXARRAY", "LASTROWARRAY", "UNIMPLEMENTED",
    }
)  # fmt: skip
#: colvault's own marks on what :func:`~colvault.io.hdf5.export.export_hdf5` writes (see that
#: module): read here so that an export imports back exactly, and left out of ``attrs``.
FORMAT_ATTR = "COLVAULT_FORMAT"
COLUMN_TYPE_ATTR = "FIELD_{}_COLVAULT_TYPE"
ARRAY_TYPE_ATTR = "COLVAULT_DTYPE"
MASK_ATTR = "COLVAULT_MASK"
MASK_OF_ATTR = "COLVAULT_MASK_OF"
JSON_ATTRS_ATTR = "COLVAULT_JSON_ATTRS"


def is_pytables(obj: Any) -> bool:
    """Whether PyTables wrote ``obj`` (its ``CLASS`` is one of PyTables' node classes)."""
    cls = attr_text(obj.attrs, "CLASS")
    return cls in PYTABLES_CLASSES


def attr_text(attrs: Any, key: str) -> str | None:
    """Attribute ``key`` as text, or None when it is missing, unreadable or not text."""
    try:
        value = attrs.get(key)
    except (OSError, TypeError, ValueError, KeyError):
        return None
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _is_utf8(obj: Any, key: str, h5a: Any, h5t: Any) -> bool:
    try:
        tid = h5a.open(obj.id, key.encode()).get_type()
        return bool(tid.get_class() == h5t.STRING and tid.get_cset() == h5t.CSET_UTF8)
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError):
        return False


def _read_attr(obj: Any, key: str, h5a: Any, h5t: Any) -> Any:
    """Attribute ``key`` of ``obj``. Fixed-length strings are read as their bytes, as PyTables
    reads them: h5py's conversion stops at the first NUL (a pickle of bytes may hold some)."""
    aid = h5a.open(obj.id, key.encode())
    tid = aid.get_type()
    shape = aid.shape
    if tid.get_class() != h5t.STRING or tid.is_variable_str() or shape is None:
        return obj.attrs[key]
    buf = np.empty(shape, f"S{tid.get_size()}")
    aid.read(buf, mtype=tid)
    return buf[()] if buf.ndim == 0 else buf


def maybe_unpickle(value: Any, where: str) -> Any:
    """As PyTables reads attributes: a bytes scalar ending with ``.`` may be a pickle (of a
    list, a dict...). It is loaded through colvault's restricted unpickler; a value that is not
    a pickle, or that the unpickler refuses, stays bytes."""
    if not (isinstance(value, np.bytes_) and len(value) and value.endswith(b".")):
        return value
    if value in (b"0", b"0."):
        return value
    try:
        return pickles.loads(bytes(value), where, False)
    except (pickle.UnpicklingError, ValueError, EOFError):
        return value


def _json_view(value: Any) -> Any:
    """What ``attrs`` can hold of ``value`` (bytes as text), or ``_NO_JSON``."""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind == "S":
        return [bytes(v).decode("utf-8", "replace") for v in value.ravel()]
    if isinstance(value, complex | np.complexfloating) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "cVO"
    ):
        return _NO_JSON
    return value


_NO_JSON = object()


def user_attrs(
    h5py: Any, label: str, obj: Any, h5path: str, prefix: str, notes: list[str]
) -> dict[str, Any]:
    """The attributes of ``obj`` as PyTables reads them, without its bookkeeping ones;
    keys prefixed with ``prefix``; what cannot be read is left out with a line in ``notes``."""
    h5a, h5t = h5py.h5a, h5py.h5t
    pytables = is_pytables(obj)
    attrs = {}
    with reading(label, h5path):
        colvault = FORMAT_ATTR in obj.attrs
        as_json = json.loads(attr_text(obj.attrs, JSON_ATTRS_ATTR) or "[]") if colvault else []
        for key in list(obj.attrs):
            if pytables and (key in PYTABLES_SYSTEM_ATTRS or key.startswith("FIELD_")):
                continue
            if colvault and key.startswith("COLVAULT_"):
                continue
            if key in as_json:
                attrs[prefix + key] = json.loads(attr_text(obj.attrs, key) or "null")
                continue
            try:
                value = _read_attr(obj, key, h5a, h5t)
            except (OSError, TypeError, ValueError) as exc:
                notes.append(f"attribute {prefix}{key!r} left out: {exc}")
                continue
            if isinstance(value, h5py.Empty):
                continue  # PyTables' empty TITLE, or any attribute with no value
            if isinstance(value, np.bytes_) and _is_utf8(obj, key, h5a, h5t):
                value = np.str_(bytes(value).decode("utf-8", "replace"))
            if pytables:
                value = maybe_unpickle(value, f"{label}:{h5path}.attrs[{key!r}]")
            attrs[prefix + key] = value
    return attrs


def copy_attrs(h5py: Any, label: str, item: Item, obj: Any, node: Any) -> None:
    """The attributes of ``obj`` (and of a group's column datasets) into ``node``'s ``attrs``
    and ``objects``, with what the import noted of ``item``."""
    notes = list(item.notes)
    attrs = user_attrs(h5py, label, obj, item.h5path, "", notes)
    if item.kind == "columns":  # each column's attributes, as "column/key"
        for name in item.names:
            with reading(label, item.h5path):
                ds = obj[name]
            attrs.update(user_attrs(h5py, label, ds, f"{item.h5path}/{name}", f"{name}/", notes))
    enums = {
        leaf.name or "data": leaf.enum
        for leaf in item.leaves
        if leaf.enum and leaf.kind != "colvault"
    }
    if enums:
        attrs["hdf5_enums"] = enums
    if item.original is not None:
        attrs["hdf5_name"] = item.original
    if item.skipped:
        attrs["hdf5_skipped"] = dict(item.skipped)
    if notes:
        attrs["hdf5_notes"] = notes
    for key, value in attrs.items():
        _store_attr(label, node, key, value, item)


def _store_attr(label: str, node: Any, key: str, value: Any, item: Item) -> None:
    """One attribute in ``attrs`` as JSON can hold it, and in ``objects`` as it was when JSON
    would lose its type; left out with a warning when neither holds it."""
    exact = not item.colvault and (  # colvault's attrs were JSON values: no objects
        isinstance(value, np.ndarray | bytes)
        or (isinstance(value, np.generic) and not isinstance(value, np.str_))
    )
    view = _json_view(value)
    stored = False
    if view is not _NO_JSON:
        try:
            node.attrs[key] = view
            stored = True
        except SchemaError:
            exact = True
    if exact:
        try:
            node.objects[key] = value
            stored = True
        except SchemaError:
            pass
    if not stored:
        warnings.warn(
            f"{label}: attribute {key!r} of {item.h5path} is left out: "
            f"{type(value).__name__} fits neither attrs nor objects",
            HDF5Warning,
            stacklevel=4,
        )
