"""Zone maps of column chunks, stored as BLOBs in the column's own dtype.

sqlite turns NaN into NULL and cannot hold uint64 values of 2^63 and above, so min and max are
kept as raw little-endian bytes of the column dtype (ARCHITECTURE.md "Commit protocol").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..kernels.encoding import zonenumpy
from ..lazy import kernel_module
from .schema import ColumnSpec

if TYPE_CHECKING:
    from ..kernels.encoding import zonemap
else:
    zonemap = kernel_module("encoding.zonemap")


class ZoneMap(NamedTuple):
    min: bytes | None
    max: bytes | None
    nan_count: int | None
    sorted: bool | None


NO_ZONE_MAP = ZoneMap(None, None, None, None)
#: Chunks this short take numpy, not the kernel: as fast (a few microseconds either way, the
#: kernel's call costs as much as numpy's passes), and a store of small tables is written
#: without importing Numba (0.7 s).
SMALL_ROWS = 4096


def kernel_view(chunk: np.ndarray) -> tuple[np.ndarray, bool]:
    """The view the kernel understands: bools as uint8, datetimes as int64 with NaT flagged."""
    if chunk.dtype.kind == "b":
        return chunk.view(np.uint8), False
    if chunk.dtype.kind in "Mm":
        return chunk.view(np.int64), True
    return chunk, False


def compute(chunk: np.ndarray, spec: ColumnSpec) -> ZoneMap:
    if not spec.has_zone_map or len(chunk) == 0:
        return NO_ZONE_MAP
    values, nat = kernel_view(chunk)
    if len(values) <= SMALL_ROWS:
        lo, hi, nan_count, is_sorted, valid = zonenumpy.stats(values, nat)
    elif values.dtype.kind == "f":
        lo, hi, nan_count, is_sorted, valid = zonemap.float_stats(values)
    else:
        lo, hi, nan_count, is_sorted, valid = zonemap.int_stats(values, nat)
    if valid == 0:
        return ZoneMap(None, None, int(nan_count), False)
    pair = np.array([lo, hi], dtype=values.dtype).view(spec.dtype)
    return ZoneMap(pair[:1].tobytes(), pair[1:].tobytes(), int(nan_count), bool(is_sorted))


def decode_bound(blob: bytes | None, spec: ColumnSpec) -> np.generic | None:
    return None if blob is None else np.frombuffer(blob, spec.dtype)[0]


def merge(a: ZoneMap, b: ZoneMap, spec: ColumnSpec) -> ZoneMap:
    """The zone map of chunk ``a`` followed by chunk ``b`` (a short chunk grown in place)."""
    if not spec.has_zone_map or a.nan_count is None or b.nan_count is None:
        return NO_ZONE_MAP
    nan_count = a.nan_count + b.nan_count
    if a.min is None or a.max is None or b.min is None or b.max is None:
        kept = b if a.min is None else a
        return ZoneMap(kept.min, kept.max, nan_count, False)
    mins = np.frombuffer(a.min + b.min, spec.dtype)
    maxs = np.frombuffer(a.max + b.max, spec.dtype)
    in_order = bool(a.sorted and b.sorted and maxs[0] <= mins[1])
    return ZoneMap(mins.min().tobytes(), maxs.max().tobytes(), nan_count, in_order)
