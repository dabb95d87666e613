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
- what colvault's :func:`~colvault.io.hdf5export.export_hdf5` wrote (marked
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
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import pickles
from ..engine.nodes import Group, Node
from ..engine.schema import Nullable
from ..engine.store import Store
from ..errors import ColvaultError, SchemaError
from ..progress import bar as progress_bar
from .importing import import_transaction

if TYPE_CHECKING:
    import h5py

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
#: colvault's own marks on what :func:`~colvault.io.hdf5export.export_hdf5` writes (see that
#: module): read here so that an export imports back exactly, and left out of ``attrs``.
FORMAT_ATTR = "COLVAULT_FORMAT"
COLUMN_TYPE_ATTR = "FIELD_{}_COLVAULT_TYPE"
ARRAY_TYPE_ATTR = "COLVAULT_DTYPE"
MASK_ATTR = "COLVAULT_MASK"
MASK_OF_ATTR = "COLVAULT_MASK_OF"
JSON_ATTRS_ATTR = "COLVAULT_JSON_ATTRS"
#: Bytes of rows read from the file at a time (at most; at least one row).
SLICE_BYTES = 8 << 20
#: The HDF5 chunk cache of the file opened for the import: none. HDF5 then reads the bytes of
#: uncompressed chunks straight into the slice's buffer (through a cache it copies them twice:
#: 0.37 against 0.12 s for 480 MB), and a compressed chunk that a slice ends inside is still
#: decompressed once (HDF5 keeps the chunk it last decompressed).
CHUNK_CACHE_BYTES = 0

_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
_DATETIME = re.compile(r"(datetime|timedelta)64\[(s|ms|us|ns)\]")


class HDF5Warning(UserWarning):
    """An HDF5 object the import left out (no colvault type holds it), or a value it changed."""


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ColvaultError("import_hdf5 needs h5py (pip install h5py)") from exc
    try:  # registers blosc, blosc2, lz4, zstd... with h5py's HDF5, where it is installed
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


def _missing_filters(dcpl: Any, h5z: Any) -> list[str]:
    """The compression filters of a dataset that h5py's HDF5 library cannot decode."""
    missing = []
    for i in range(dcpl.get_nfilters()):
        code, _flags, _values, name = dcpl.get_filter(i)
        if not h5z.filter_avail(code):
            missing.append(f"{name.decode('ascii', 'replace') or 'unnamed'} (filter {code})")
    return missing


# -- reading HDF5 types -------------------------------------------------------------------------


@dataclass
class _Leaf:
    """One column of a compound type (or the whole type of a plain dataset): where it is in the
    raw record (``fields``), its raw dtype, and how numpy converts it (``kind``)."""

    name: str
    fields: tuple[str, ...]
    kind: str = ""  # "", "bool", "time32", "time64", "half", "enum", "vlen", "M8[<unit>]",
    # "colvault" (a column colvault exported, of type ``dtype``)
    enum: dict[str, int] | None = None
    part: int | None = None  # one column of a pandas values block (a cell of shape (k,))
    encoding: str | None = None  # bytes pandas decodes to str with this encoding
    tz: str | None = None  # the zone pandas gives a datetime column
    dtype: str | None = None  # colvault's type of a column it exported ("category", "<U5"...)
    nullable: bool = False  # a column colvault exported with its missing values' mask


class _Unsupported(Exception):
    """An HDF5 type with no colvault equivalent (the reason is the message)."""


def _raw_dtype(tid: Any, h5t: Any, name: str, leaves: list[_Leaf] | None,
               fields: tuple[str, ...]) -> np.dtype:  # fmt: skip
    """The numpy dtype laid out as HDF5 type ``tid`` is in the file (so bytes read with the
    file's type as memory type need no conversion); appends a leaf per column to ``leaves``."""
    cls = tid.get_class()
    kind, enum = "", None
    if cls == h5t.COMPOUND:
        dt = tid.dtype if _is_complex(tid) else None
        if dt is None:
            names, formats, offsets = [], [], []
            for i in range(tid.get_nmembers()):
                member = tid.get_member_name(i).decode("utf-8", "surrogateescape")
                sub = f"{name}/{member}" if name else member
                formats.append(_raw_dtype(tid.get_member_type(i), h5t, sub, leaves,
                                          (*fields, member)))  # fmt: skip
                names.append(member)
                offsets.append(tid.get_member_offset(i))
            return np.dtype(
                {
                    "names": names,
                    "formats": formats,
                    "offsets": offsets,
                    "itemsize": tid.get_size(),
                }
            )
    elif cls == h5t.ARRAY:
        inner: list[_Leaf] = []
        base = _raw_dtype(tid.get_super(), h5t, name, inner, fields)
        if base.names is not None:
            raise _Unsupported(f"column {name!r} is an array of compound cells")
        if leaves is not None:
            leaves.extend(inner)
        return np.dtype((base, tuple(tid.get_array_dims())))
    elif cls == h5t.TIME:
        size = tid.get_size()
        big = tid.equal(h5t.UNIX_D32BE) or tid.equal(h5t.UNIX_D64BE)
        if size not in (4, 8):
            raise _Unsupported(f"column {name!r}: a {size}-byte HDF5 time type")
        dt = np.dtype(f"i{size}").newbyteorder(">" if big else "<")
        kind = "time32" if size == 4 else "time64"
    elif cls == h5t.BITFIELD:
        dt = np.dtype(f"u{tid.get_size()}")
        kind = "bool" if tid.get_size() == 1 else ""
    elif cls == h5t.ENUM:
        dt = tid.get_super().dtype
        enum = {
            tid.get_member_name(i).decode("utf-8", "surrogateescape"): int(tid.get_member_value(i))
            for i in range(tid.get_nmembers())
        }
        if set(enum) == {"FALSE", "TRUE"} and dt.itemsize == 1:  # h5py's bool
            kind, enum = "bool", None
        else:
            kind = "enum"
    elif cls == h5t.STRING:
        if tid.is_variable_str():
            raise _Unsupported(f"{_what(name)} holds variable-length strings")
        dt = np.dtype(f"S{tid.get_size()}")
    elif cls in (h5t.INTEGER, h5t.FLOAT):
        dt = tid.dtype
        if dt.kind == "f" and dt.itemsize == 2:
            kind = "half"
        elif dt.kind == "f" and dt.itemsize > 8:
            raise _Unsupported(f"{_what(name)} is a {dt.itemsize * 8}-bit float")
    else:
        classes = {h5t.VLEN: "variable-length", h5t.REFERENCE: "reference", h5t.OPAQUE: "opaque"}
        raise _Unsupported(f"{_what(name)} holds {classes.get(cls, f'class {cls}')} data")
    if leaves is not None:
        leaves.append(_Leaf(name, fields, kind, enum))
    return dt


def _is_vlen_text(tid: Any, h5t: Any) -> bool:
    return bool(tid.get_class() == h5t.STRING and tid.is_variable_str())


def _text_slice(ds: Any, utf8: bool, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of a variable-length string dataset as an object array."""
    values: np.ndarray = ds.asstr()[start:stop] if utf8 else ds[start:stop]
    return values


def _what(name: str) -> str:
    return f"column {name!r}" if name else "it"


def _is_complex(tid: Any) -> bool:
    try:
        return bool(tid.dtype.kind == "c")
    except (TypeError, ValueError):
        return False


def _convert(a: np.ndarray, leaf: _Leaf) -> np.ndarray:
    """A leaf's raw values as colvault stores them: native byte order, PyTables' conventions."""
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("="))
    if leaf.kind == "bool":
        return a != 0
    if leaf.kind == "half":
        return a.astype(np.float32)
    if leaf.kind == "time32":
        return a.astype(np.int64).view("M8[s]")
    if leaf.kind == "time64":
        return _timeval_to_us(a)
    if leaf.kind == "enum":
        return a.astype(a.dtype.str)  # the codes, without h5py's enum metadata
    return a


def _timeval_to_us(packed: np.ndarray) -> np.ndarray:
    """PyTables' ``Time64`` as stored: not the float64 it reads back, but a 64-bit integer of
    seconds (high 32 bits, signed) and microseconds (low 32 bits, signed), as its
    ``conv_float64_timeval32`` packs them; as ``datetime64[us]``, exactly."""
    v = packed.astype(np.int64)
    usec = (v & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    return ((v >> 32) * 1_000_000 + usec).view("M8[us]")


# -- attributes ---------------------------------------------------------------------------------


def _is_pytables(obj: Any) -> bool:
    cls = _attr_text(obj.attrs, "CLASS")
    return cls in PYTABLES_CLASSES


def _attr_text(attrs: Any, key: str) -> str | None:
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


def _maybe_unpickle(value: Any, where: str) -> Any:
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


# -- the import ---------------------------------------------------------------------------------


@dataclass
class _Item:
    """One object to copy: its HDF5 path, its store path and what it becomes."""

    h5path: str
    path: str
    kind: str  # "group", "table", "array", "columns" (a group read as a table)
    rows: int = 0
    row_bytes: int = 0
    leaves: list[_Leaf] = field(default_factory=list)
    raw: np.dtype | None = None
    inner: tuple[int, ...] = ()
    scalar: bool = False
    names: list[str] = field(default_factory=list)  # datasets of a "columns" group
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    original: str | None = None  # the HDF5 name, when colvault's node name differs
    colvault: bool = False  # written by colvault's export_hdf5
    mask: str | None = None  # the HDF5 path of its missing values' mask (colvault's export)
    mask_raw: np.dtype | None = None
    mask_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column: its field


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
    h5py = _h5py()
    label = os.fspath(h5file) if isinstance(h5file, str | os.PathLike) else repr(h5file)
    with import_transaction(store, "import_hdf5") as target:
        try:
            f = h5py.File(h5file, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
        except (OSError, ValueError, TypeError) as exc:
            raise ColvaultError(
                f"{label}: cannot open as an HDF5 file ({exc}); nothing was imported"
            ) from exc
        with f:
            job = _Import(h5py, f, label, target, into, group_as_table)
            items = job.plan(paths)
            created = job.copy(items, progress)
        target.commit()
    return created


class _Import:
    def __init__(self, h5py: Any, f: h5py.File, label: str, store: Store, into: str,
                 group_as_table: bool) -> None:  # fmt: skip
        self.h5py, self.f, self.label, self.store = h5py, f, label, store
        self.into = "/" + into.strip("/") if into.strip("/") else "/"
        self.group_as_table = group_as_table

    @contextmanager
    def reading(self, h5path: str) -> Iterator[None]:
        """HDF5 errors while reading ``h5path`` as a ColvaultError naming the file and object."""
        try:
            yield
        except ColvaultError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise ColvaultError(
                f"{self.label}: cannot read HDF5 object {h5path} ({exc}); nothing was imported"
            ) from exc

    # -- planning: what each object becomes --------------------------------------------------

    def plan(self, paths: Sequence[str] | None) -> list[_Item]:
        items: list[_Item] = []
        roots = ["/"] if paths is None else [("/" + p.strip("/")) for p in paths]
        for h5path in roots:
            with self.reading(h5path):
                if h5path not in self.f:
                    raise ColvaultError(f"{self.label}: no HDF5 object {h5path}")
                try:
                    self._plan(h5path, self.f[h5path], items)
                except _Unsupported as exc:
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

    def _plan(self, h5path: str, obj: Any, items: list[_Item]) -> _Item | None:
        h5py = self.h5py
        path, original = self._dest(h5path)
        with self.reading(h5path):
            if isinstance(obj, h5py.Group):
                if _attr_text(obj.attrs, "CLASS") in ("TINDEX", "INDEX"):
                    return None  # PyTables' column index: derived data
                if self.group_as_table and h5path != "/":
                    item = self._plan_columns(h5path, path, obj)
                    if item is not None:
                        item.original = original
                        items.append(item)
                        return item
                item = _Item(h5path, path, "group", original=original)
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
                    except _Unsupported as exc:
                        self._skip(item, name, str(exc))
                return item
            if not isinstance(obj, h5py.Dataset):
                raise _Unsupported(f"an HDF5 {type(obj).__name__}")
            item = self._plan_dataset(h5path, path, obj)
            item.original = original
            items.append(item)
            return item

    def _skip(self, parent: _Item, name: str, why: str) -> None:
        parent.skipped[name] = why
        warnings.warn(
            f"{self.label}: {parent.h5path.rstrip('/')}/{name} is left out: {why}",
            HDF5Warning,
            stacklevel=5,
        )

    def _plan_dataset(self, h5path: str, path: str, ds: Any) -> _Item:
        h5t = self.h5py.h5t
        shape = ds.shape
        if shape is None:
            raise _Unsupported("it is an empty (null) dataset")
        if _attr_text(ds.attrs, "CLASS") == "VLARRAY":
            raise _Unsupported("it is a PyTables VLArray (rows of varying length)")
        missing = _missing_filters(ds.id.get_create_plist(), self.h5py.h5z)
        if missing:
            raise ColvaultError(
                f"{self.label}: HDF5 object {h5path} is compressed with {', '.join(missing)}, "
                "which h5py cannot decode here: pip install hdf5plugin (PyTables' blosc is "
                "among its filters), or leave the object out with paths=; nothing was imported"
            )
        leaves: list[_Leaf] = []
        if _is_vlen_text(ds.id.get_type(), h5t):
            raw = self._text_dtype(h5path, ds)
            leaves.append(_Leaf("", (), "vlen"))
        else:
            raw = _raw_dtype(ds.id.get_type(), h5t, "", leaves, ())
        rows = shape[0] if shape else 1
        inner = tuple(shape[1:])
        if raw.names is not None:
            if len(shape) > 1:
                raise _Unsupported(f"it is a {len(shape)}-d compound dataset")
            kind = "table"
        else:
            kind = "array"
        if any(s == 0 for s in inner):
            raise _Unsupported(f"its cells have shape {inner}, with no values")
        cell = int(np.prod(inner, dtype=np.int64)) * raw.itemsize
        item = _Item(h5path, path, kind, rows, cell, leaves, raw, inner, scalar=not shape)
        if not shape:
            item.notes.append("a scalar HDF5 dataset, stored as a one-row array")
        extdim = ds.attrs.get("EXTDIM") if "EXTDIM" in ds.attrs else None
        if extdim is not None and int(extdim) != 0:
            item.notes.append(
                f"a PyTables EArray extendable along axis {int(extdim)}; colvault arrays grow "
                "along axis 0"
            )
        if not _is_pytables(ds):
            for leaf in leaves:
                if leaf.kind == "time64":  # the seconds+microseconds packing is PyTables' own
                    leaf.kind = ""
                    item.notes.append(
                        f"{_what(leaf.name)}: a 64-bit HDF5 time type outside PyTables, whose "
                        "meaning is not known: kept as int64"
                    )
        if FORMAT_ATTR in ds.attrs:
            self._colvault_types(ds, item)
        elif kind == "table":
            self._pandas_datetimes(ds, item)
            self._pandas_columns(ds, item)
        self._leaf_notes(item)
        return item

    def _leaf_notes(self, item: _Item) -> None:
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
            raise _Unsupported("two of its columns have the same name")

    def _colvault_types(self, ds: Any, item: _Item) -> None:
        """What colvault's export marked: the colvault types of columns (or an array) that
        HDF5 types do not say, and the mask dataset of a table's nullable columns."""
        h5t = self.h5py.h5t
        item.colvault = True
        if item.kind == "array":
            text = _attr_text(ds.attrs, ARRAY_TYPE_ATTR)
            if text is not None:
                item.leaves[0].kind, item.leaves[0].dtype = "colvault", text
            return
        tid = ds.id.get_type()
        for i, leaf in enumerate(item.leaves):
            text = _attr_text(ds.attrs, COLUMN_TYPE_ATTR.format(i))
            if text is None:
                continue
            leaf.kind, leaf.dtype = "colvault", text
            member = tid.get_member_type(i)
            if text == "category" and member.get_class() == h5t.ENUM:  # h5py's bool too
                leaf.enum = {
                    member.get_member_name(j).decode("utf-8"): int(member.get_member_value(j))
                    for j in range(member.get_nmembers())
                }
        mask = _attr_text(ds.attrs, MASK_ATTR)
        if mask is None:
            return
        h5path = f"{item.h5path.rsplit('/', 1)[0]}/{mask}"
        obj = self.f.get(h5path)
        name = item.h5path.rsplit("/", 1)[1]
        if obj is None or _attr_text(obj.attrs, MASK_OF_ATTR) != name or obj.shape != ds.shape:
            raise ColvaultError(
                f"{self.label}: the mask {h5path} of the missing values of {item.h5path} is "
                "missing or not that table's; nothing was imported"
            )
        item.mask = h5path
        flags: list[_Leaf] = []
        item.mask_raw = _raw_dtype(obj.id.get_type(), h5t, "", flags, ())
        item.mask_fields = {flag.name: flag.fields for flag in flags}
        for leaf in item.leaves:
            leaf.nullable = leaf.name in item.mask_fields

    def _pandas_datetimes(self, ds: Any, item: _Item) -> None:
        """pandas' HDFStore tables keep datetimes and timedeltas as int64 and say so in
        ``<column>_dtype`` (``datetime64[ns]``), or for the index in ``index_kind``
        (``datetime64``); a zone is in the group's pickled ``info``, as UTC values."""
        try:
            info = _maybe_unpickle(ds.parent.attrs.get("info"), f"{self.label}:{item.h5path}")
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
            dtype_attr = _attr_text(ds.attrs, f"{leaf.name}_dtype")
            kind_attr = _attr_text(ds.attrs, f"{leaf.name}_kind")
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
        with self.reading(h5path):
            if not ds.shape:
                value = ds.asstr()[()] if utf8 else ds[()]
                return np.dtype(f"{'U' if utf8 else 'S'}{max(1, len(value))}")
            step = max(1, SLICE_BYTES // 64 // max(1, int(np.prod(ds.shape[1:]))))
            for start in range(0, ds.shape[0], step):
                values = _text_slice(ds, utf8, start, start + step)
                if values.size:
                    width = max(width, max(len(v) for v in values.ravel()))
        return np.dtype(f"{'U' if utf8 else 'S'}{width}")

    def _pandas_columns(self, ds: Any, item: _Item) -> None:
        """The table of a pandas ``format="table"`` frame keeps columns of one dtype together
        in blocks (``values_block_0`` with cells of shape ``(k,)``), their names pickled in
        ``values_block_0_kind``: each block is split into its named columns, and text, which
        pandas decodes with the group's ``encoding``, becomes str."""
        try:
            parent = ds.parent
            pandas_type = _attr_text(parent.attrs, "pandas_type")
        except (OSError, KeyError, ValueError):
            return
        if pandas_type is None or not pandas_type.endswith("table"):
            return
        encoding = _attr_text(parent.attrs, "encoding")
        where = f"{self.label}:{item.h5path}"
        leaves: list[_Leaf] = []
        for leaf in item.leaves:
            cell = _cell(item, leaf)
            names = _maybe_unpickle(ds.attrs.get(f"{leaf.name}_kind"), where)
            text = encoding is not None and _column_dtype(item, leaf).kind == "S" and not leaf.kind
            self._pandas_notes(ds, item, leaf.name, names)
            if isinstance(names, list) and len(cell) == 1 and cell[0] == len(names):
                for j, name in enumerate(names):
                    leaves.append(_Leaf(str(name), leaf.fields, leaf.kind, leaf.enum, j,
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

    def _pandas_notes(self, ds: Any, item: _Item, block: str, names: Any) -> None:
        """What the import keeps as pandas stored it: category codes, ``nan_rep`` text."""
        shown = ", ".join(map(repr, names)) if isinstance(names, list) else repr(block)
        if _attr_text(ds.attrs, f"{block}_meta") == "category":
            where = f"{item.h5path.rsplit('/', 1)[0]}/meta/{block}/meta/table"
            item.notes.append(
                f"column {shown}: pandas category codes, kept as such; the categories are in "
                f"{where} (-1: missing)"
            )
        nan_rep = _attr_text(ds.attrs, f"{block}_nan_rep")
        if nan_rep is not None:
            item.notes.append(f"column {shown}: text {nan_rep!r} is pandas' missing value")

    def _plan_columns(self, h5path: str, path: str, group: Any) -> _Item | None:
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
            inner: list[_Leaf] = []
            if _is_vlen_text(ds.id.get_type(), h5t):
                raw = self._text_dtype(f"{h5path}/{name}", ds)
                inner.append(_Leaf(name, (), "vlen"))
            else:
                try:
                    raw = _raw_dtype(ds.id.get_type(), h5t, name, inner, ())
                except _Unsupported:
                    return None
            if raw.names is not None:
                return None
            lengths.add(ds.shape[0])
            names.append(name)
            raws.append(raw)
            leaves.append(_Leaf(name, (name,), inner[0].kind, inner[0].enum))
            row_bytes += raw.itemsize
        if len(lengths) != 1:
            return None
        item = _Item(h5path, path, "columns", lengths.pop(), row_bytes, leaves, names=names)
        item.inner = ()
        item.raw = np.dtype([(n, r) for n, r in zip(names, raws, strict=True)])
        self._leaf_notes(item)
        return item

    # -- copying --------------------------------------------------------------------------------

    def copy(self, items: list[_Item], progress: bool | None) -> list[str]:
        total = sum(i.rows * i.row_bytes for i in items)
        created: list[str] = []
        bar = progress_bar(total, "B", f"import {self.label}", progress)
        try:
            for item in items:
                node, new = self._create(item)
                if new:
                    created.append(item.path)
                if item.kind != "group":
                    self._copy_rows(item, node, bar)
                with self.reading(item.h5path):
                    obj = self.f[item.h5path]
                self._copy_attrs(item, obj, node)
        finally:
            bar.close()
        return created

    def _create(self, item: _Item) -> tuple[Node, bool]:
        """The node ``item`` goes into, and whether it is new (the root, ``into`` or a
        group an earlier path of ``paths`` created are not)."""
        store = self.store
        try:
            if item.kind == "group":
                if item.path in store and isinstance(store[item.path], Group):
                    return store[item.path], False
                return store.create_group(item.path), True
            rows = max(1, item.rows)
            if item.kind == "array":
                (leaf,) = item.leaves
                array = store.create_array(
                    item.path, _column_dtype(item, leaf), inner_shape=item.inner,
                    expected_rows=rows,
                )  # fmt: skip
                return array, True
            schema = {leaf.name: (_schema_type(item, leaf), _cell(item, leaf))
                      for leaf in item.leaves}  # fmt: skip
            return store.create_table(item.path, schema, expected_rows=rows), True
        except SchemaError as exc:
            raise SchemaError(f"{self.label}: HDF5 object {item.h5path}: {exc}") from exc

    def _copy_rows(self, item: _Item, node: Any, bar: Any) -> None:
        step = _slice_rows(item, node.chunk_rows)
        with self.reading(item.h5path):
            obj = self.f[item.h5path]  # looked up once: h5py's lookup costs ~1 ms
            dsets = [obj[name] for name in item.names] if item.kind == "columns" else [obj]
            ids = [d.id for d in dsets]
            texts = [leaf.kind == "vlen" for leaf in item.leaves][: len(dsets)]
        assert item.raw is not None
        if item.kind == "columns":
            bufs = [np.empty(min(step, item.rows), item.raw[n]) for n in item.names]
        else:
            bufs = [np.empty((min(step, item.rows), *item.inner), item.raw)]
        for start in range(0, item.rows, step):
            stop = min(start + step, item.rows)
            with self.reading(item.h5path):
                parts = [
                    self._read_text(item, d, start, stop, buf)
                    if text
                    else self._read(item, i, start, stop, buf)
                    for d, i, buf, text in zip(dsets, ids, bufs, texts, strict=True)
                ]
            raw: Any = dict(zip(item.names, parts, strict=True)) if item.names else parts[0]
            # the buffers are read into again: what the writer keeps must be a copy
            columns = {leaf.name: _owned(_convert_leaf(raw, leaf), bufs) for leaf in item.leaves}
            if item.mask is not None:
                missing = self._read_mask(item, start, stop)
                for leaf in item.leaves:
                    if leaf.nullable:
                        flags = missing
                        for name in item.mask_fields[leaf.name]:
                            flags = flags[name]
                        columns[leaf.name] = np.ma.MaskedArray(columns[leaf.name], flags != 0)
            if item.kind == "array":
                node.append(columns[item.leaves[0].name])
            else:
                node.append(columns, copy=False)
            bar.update((stop - start) * item.row_bytes)

    def _read_mask(self, item: _Item, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of the mask colvault's export wrote beside a table."""
        h5s = self.h5py.h5s
        assert item.mask is not None and item.mask_raw is not None
        out = np.empty(stop - start, item.mask_raw)
        with self.reading(item.mask):
            dsid = self.f[item.mask].id
            fspace = dsid.get_space()
            fspace.select_hyperslab((start,), (stop - start,))
            dsid.read(h5s.create_simple((stop - start,)), fspace, out, mtype=dsid.get_type())
        return out

    def _read_text(
        self, item: _Item, ds: Any, start: int, stop: int, buf: np.ndarray
    ) -> np.ndarray:
        """Variable-length strings: h5py's own read (HDF5 hands out pointers), into ``buf``."""
        utf8 = buf.dtype.kind == "U"
        if item.scalar:
            buf[0] = ds.asstr()[()] if utf8 else ds[()]
            return buf
        out = buf[: stop - start]
        out[...] = _text_slice(ds, utf8, start, stop)
        return out

    def _read(self, item: _Item, dsid: Any, start: int, stop: int, buf: np.ndarray) -> np.ndarray:
        """Rows ``[start, stop)`` of a dataset as raw bytes, into ``buf``: the file's type is
        the memory type, so HDF5 converts nothing."""
        h5s = self.h5py.h5s
        if item.scalar:
            out = buf.reshape(())
            dsid.read(h5s.create(h5s.SCALAR), dsid.get_space(), out, mtype=dsid.get_type())
            return buf
        n = stop - start
        out = buf[:n]
        fspace = dsid.get_space()
        fspace.select_hyperslab((start,) + (0,) * len(item.inner), (n, *item.inner))
        mspace = h5s.create_simple((n, *item.inner))
        dsid.read(mspace, fspace, out, mtype=dsid.get_type())
        return out

    def _user_attrs(self, obj: Any, h5path: str, prefix: str, notes: list[str]) -> dict[str, Any]:
        """The attributes of ``obj`` as PyTables reads them, without its bookkeeping ones;
        keys prefixed with ``prefix``."""
        h5a, h5t = self.h5py.h5a, self.h5py.h5t
        pytables = _is_pytables(obj)
        attrs = {}
        with self.reading(h5path):
            colvault = FORMAT_ATTR in obj.attrs
            as_json = json.loads(_attr_text(obj.attrs, JSON_ATTRS_ATTR) or "[]") if colvault else []
            for key in list(obj.attrs):
                if pytables and (key in PYTABLES_SYSTEM_ATTRS or key.startswith("FIELD_")):
                    continue
                if colvault and key.startswith("COLVAULT_"):
                    continue
                if key in as_json:
                    attrs[prefix + key] = json.loads(_attr_text(obj.attrs, key) or "null")
                    continue
                try:
                    value = _read_attr(obj, key, h5a, h5t)
                except (OSError, TypeError, ValueError) as exc:
                    notes.append(f"attribute {prefix}{key!r} left out: {exc}")
                    continue
                if isinstance(value, self.h5py.Empty):
                    continue  # PyTables' empty TITLE, or any attribute with no value
                if isinstance(value, np.bytes_) and _is_utf8(obj, key, h5a, h5t):
                    value = np.str_(bytes(value).decode("utf-8", "replace"))
                if pytables:
                    value = _maybe_unpickle(value, f"{self.label}:{h5path}.attrs[{key!r}]")
                attrs[prefix + key] = value
        return attrs

    def _copy_attrs(self, item: _Item, obj: Any, node: Any) -> None:
        notes = list(item.notes)
        attrs = self._user_attrs(obj, item.h5path, "", notes)
        if item.kind == "columns":  # each column's attributes, as "column/key"
            for name in item.names:
                with self.reading(item.h5path):
                    ds = obj[name]
                attrs.update(self._user_attrs(ds, f"{item.h5path}/{name}", f"{name}/", notes))
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
            self._set_attr(node, key, value, item)

    def _set_attr(self, node: Any, key: str, value: Any, item: _Item) -> None:
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
                f"{self.label}: attribute {key!r} of {item.h5path} is left out: "
                f"{type(value).__name__} fits neither attrs nor objects",
                HDF5Warning,
                stacklevel=4,
            )


def _column_dtype(item: _Item, leaf: _Leaf) -> np.dtype:
    assert item.raw is not None
    base = item.raw
    for f in leaf.fields:
        base = base[f]
    base = base.base
    if leaf.kind == "colvault" and leaf.dtype is not None and leaf.dtype != "category":
        return np.dtype(leaf.dtype.split(",")[0].rstrip("]") + "]" if "," in leaf.dtype
                        else leaf.dtype)  # fmt: skip
    if leaf.kind == "bool":
        return np.dtype(bool)
    if leaf.kind == "half":
        return np.dtype(np.float32)
    if leaf.kind == "time32":
        return np.dtype("M8[s]")
    if leaf.kind == "time64":
        return np.dtype("M8[us]")
    if leaf.kind[:2] in ("M8", "m8"):
        return np.dtype(leaf.kind)
    if leaf.encoding is not None:
        return np.dtype(f"U{base.itemsize}")
    return base.newbyteorder("=") if base.byteorder == ">" else base


def _schema_type(item: _Item, leaf: _Leaf) -> Any:
    """The column's type in ``create_table``'s schema: a zone-aware timestamp or a category is
    a string, a column colvault exported with missing values :class:`Nullable`."""
    spec: Any = _column_dtype(item, leaf)
    if leaf.kind == "colvault" and leaf.dtype is not None:
        spec = leaf.dtype if leaf.dtype == "category" or "," in leaf.dtype else np.dtype(leaf.dtype)
    elif leaf.tz is not None:
        spec = f"datetime64[{np.datetime_data(spec)[0]}, {leaf.tz}]"
    return Nullable(spec) if leaf.nullable else spec


def _cell(item: _Item, leaf: _Leaf) -> tuple[int, ...]:
    assert item.raw is not None
    dt = item.raw
    for f in leaf.fields:
        dt = dt[f]
    return tuple(dt.shape[1:]) if leaf.part is not None else tuple(dt.shape)


def _is_mask(group: Any, name: str) -> bool:
    """Whether child ``name`` of ``group`` is the mask colvault's export wrote for a table."""
    try:
        attrs = group[name].attrs
        if FORMAT_ATTR not in attrs:
            return False
        owner = _attr_text(attrs, MASK_OF_ATTR)
    except (OSError, KeyError, ValueError, TypeError):
        return False
    return owner is not None and owner in group


def _owned(a: np.ndarray, bufs: list[np.ndarray]) -> np.ndarray:
    """``a`` as a contiguous array of its own (a view of a read buffer is copied)."""
    if any(np.may_share_memory(a, b) for b in bufs):
        return np.array(a, order="C", copy=True)
    return np.ascontiguousarray(a)


def _convert_leaf(raw: Any, leaf: _Leaf) -> np.ndarray:
    """A leaf's values from the raw rows (a record array, or a dict of a group's columns)."""
    a = raw
    for f in leaf.fields:
        a = a[f]
    if leaf.part is not None:
        a = a[:, leaf.part]
    if leaf.kind == "colvault":
        return _from_colvault(a, leaf)
    if leaf.kind[:2] in ("M8", "m8"):
        return a.astype("<i8").view(leaf.kind)
    a = _convert(a, leaf)
    if leaf.encoding is not None:
        return np.char.decode(a, leaf.encoding)
    return a


def _from_colvault(a: np.ndarray, leaf: _Leaf) -> np.ndarray:
    """Values colvault's export wrote as HDF5 could hold them, as the column's colvault type:
    enum codes or UTF-8 bytes as category text, int64 as datetime64, UTF-8 bytes as ``U``."""
    assert leaf.dtype is not None
    if leaf.dtype == "category":
        if leaf.enum is not None:
            names = np.array(sorted(leaf.enum, key=leaf.enum.__getitem__) or [""])
            return names[np.minimum(a.astype(np.intp), len(names) - 1)]
        return np.strings.decode(a, "utf-8", "surrogatepass")
    if leaf.dtype[:1] == "<" and "U" in leaf.dtype:
        return np.strings.decode(a, "utf-8", "surrogatepass").astype(leaf.dtype)
    unit = leaf.dtype.split(",")[0].rstrip("]") + "]"
    return a.astype("<i8").view(unit)


def _slice_rows(item: _Item, chunk_rows: int) -> int:
    """Rows read at a time: whole chunks of the new node within :data:`SLICE_BYTES` (the
    writer then compresses each slice's columns as they are, without joining pieces), or
    an even part of one chunk where a chunk is larger."""
    per_row = max(1, item.row_bytes)
    fit = max(1, SLICE_BYTES // per_row)
    if chunk_rows <= fit:
        return chunk_rows * (fit // chunk_rows)
    parts = -(-chunk_rows // fit)
    return -(-chunk_rows // parts)


__all__ = ["PYTABLES_CLASSES", "PYTABLES_SYSTEM_ATTRS", "HDF5Warning", "import_hdf5"]
