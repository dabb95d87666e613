"""HDF5 types read as numpy dtypes laid out as in the file, and the colvault types of what they
hold: a :class:`Leaf` per column, and how its raw values become colvault's.

Why apart: the plan reads types once per object; the rows read later only convert values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...engine.schema import Nullable


class HDF5Warning(UserWarning):
    """An HDF5 object the import left out (no colvault type holds it), or a value it changed."""


@dataclass
class Leaf:
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


class Unsupported(Exception):
    """An HDF5 type with no colvault equivalent (the reason is the message)."""


def raw_dtype(tid: Any, h5t: Any, name: str, leaves: list[Leaf] | None,
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
                formats.append(raw_dtype(tid.get_member_type(i), h5t, sub, leaves,
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
        inner: list[Leaf] = []
        base = raw_dtype(tid.get_super(), h5t, name, inner, fields)
        if base.names is not None:
            raise Unsupported(f"column {name!r} is an array of compound cells")
        if leaves is not None:
            leaves.extend(inner)
        return np.dtype((base, tuple(tid.get_array_dims())))
    elif cls == h5t.TIME:
        size = tid.get_size()
        big = tid.equal(h5t.UNIX_D32BE) or tid.equal(h5t.UNIX_D64BE)
        if size not in (4, 8):
            raise Unsupported(f"column {name!r}: a {size}-byte HDF5 time type")
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
            raise Unsupported(f"{what(name)} holds variable-length strings")
        dt = np.dtype(f"S{tid.get_size()}")
    elif cls in (h5t.INTEGER, h5t.FLOAT):
        dt = tid.dtype
        if dt.kind == "f" and dt.itemsize == 2:
            kind = "half"
        elif dt.kind == "f" and dt.itemsize > 8:
            raise Unsupported(f"{what(name)} is a {dt.itemsize * 8}-bit float")
    else:
        classes = {h5t.VLEN: "variable-length", h5t.REFERENCE: "reference", h5t.OPAQUE: "opaque"}
        raise Unsupported(f"{what(name)} holds {classes.get(cls, f'class {cls}')} data")
    if leaves is not None:
        leaves.append(Leaf(name, fields, kind, enum))
    return dt


def is_vlen_text(tid: Any, h5t: Any) -> bool:
    """Whether HDF5 type ``tid`` is variable-length strings (read apart, as object arrays)."""
    return bool(tid.get_class() == h5t.STRING and tid.is_variable_str())


def text_slice(ds: Any, utf8: bool, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of a variable-length string dataset as an object array."""
    values: np.ndarray = ds.asstr()[start:stop] if utf8 else ds[start:stop]
    return values


def what(name: str) -> str:
    """A leaf named in a message: its column, or "it" for a whole dataset."""
    return f"column {name!r}" if name else "it"


def _is_complex(tid: Any) -> bool:
    try:
        return bool(tid.dtype.kind == "c")
    except (TypeError, ValueError):
        return False


def _convert(a: np.ndarray, leaf: Leaf) -> np.ndarray:
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


def column_dtype(raw: np.dtype, leaf: Leaf) -> np.dtype:
    """The numpy dtype colvault stores ``leaf`` of raw records ``raw`` as."""
    base = raw
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


def schema_type(raw: np.dtype, leaf: Leaf) -> Any:
    """The column's type in ``create_table``'s schema: a zone-aware timestamp or a category is
    a string, a column colvault exported with missing values :class:`Nullable`."""
    spec: Any = column_dtype(raw, leaf)
    if leaf.kind == "colvault" and leaf.dtype is not None:
        spec = leaf.dtype if leaf.dtype == "category" or "," in leaf.dtype else np.dtype(leaf.dtype)
    elif leaf.tz is not None:
        spec = f"datetime64[{np.datetime_data(spec)[0]}, {leaf.tz}]"
    return Nullable(spec) if leaf.nullable else spec


def cell(raw: np.dtype, leaf: Leaf) -> tuple[int, ...]:
    """The shape of one value of ``leaf`` (``()`` for a scalar column)."""
    dt = raw
    for f in leaf.fields:
        dt = dt[f]
    return tuple(dt.shape[1:]) if leaf.part is not None else tuple(dt.shape)


def convert_leaf(raw: Any, leaf: Leaf) -> np.ndarray:
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


def _from_colvault(a: np.ndarray, leaf: Leaf) -> np.ndarray:
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
