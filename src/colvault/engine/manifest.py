"""The chunk manifest of one node as of one committed snapshot.

Every column of a table is cut at the same rows, so one sorted array of chunk start rows serves
all columns; each column has its own list of chunk locations. A :class:`NodeState` is immutable
and cached per process, keyed by the node's ``version`` (the id of the last commit that changed
its data), so a reader reloads it only after someone committed rows to that node.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ColvaultError
from .encodings import Encoding, ParamsError, parse
from .zonemaps import NO_ZONE_MAP, ZoneMap


class ManifestError(ColvaultError):
    """A node's manifest in the catalog does not add up (the catalog is damaged)."""


@dataclass(frozen=True)
class ChunkRef:
    """Where one column chunk lives and how to check and decode it."""

    index: int
    first_row: int
    nrows: int
    segment: str
    sealed: bool
    offset: int
    length: int
    crc: int
    encoding: Encoding  # with its parameters, parsed when the manifest loaded
    zone: ZoneMap = NO_ZONE_MAP  # the chunk's statistics, as stored
    #: Missing values in the chunk (nullable columns; 0: none, and no validity frame).
    nulls: int = 0
    #: Bytes of the validity frame at the end of the payload (0: none); the values' encoding
    #: decodes the first ``length - vlen`` bytes.
    vlen: int = 0

    @property
    def rows(self) -> int:
        """The chunk's rows (``nrows``)."""
        return self.nrows

    @property
    def values_length(self) -> int:
        """Bytes of the encoded values, before the validity frame."""
        return self.length - self.vlen


@dataclass(frozen=True)
class NodeState:
    """Committed rows and chunk locations of one table or array."""

    nrows: int
    version: int
    starts: np.ndarray  # first row of each chunk, shared by all columns
    columns: dict[str, tuple[ChunkRef, ...]]
    #: What queries derive from this snapshot and may reuse while it is current (the store
    #: keeps one NodeState per node until a commit changes it), e.g. zone-map arrays.
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def keep(self, key: tuple[Any, ...], value: Any, most: int) -> Any:
        """Keep ``value`` in ``derived`` under ``key``, whose first item names its kind, and
        drop the oldest entries of that kind beyond ``most`` (a few conditions at a time);
        the value."""
        # list() copies the keys at once: other threads' queries may add theirs meanwhile
        same = [k for k in list(self.derived) if isinstance(k, tuple) and k[:1] == key[:1]]
        for old in same[: max(0, len(same) - most + 1)]:
            self.derived.pop(old, None)
        self.derived[key] = value
        return value

    def chunk_span(self, start: int, stop: int) -> range:
        """Positions of the chunks that overlap rows [start, stop)."""
        if stop <= start:
            return range(0)
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, stop, side="left"))
        return range(max(first, 0), last)


def chunk_ref(row: tuple[Any, ...], zone: ZoneMap, encoding: Encoding | None = None) -> ChunkRef:
    """A ChunkRef from a row (col_id, index, first_row, nrows, segment, sealed, offset, length,
    crc32, encoding, params, min, max, nan_count, sorted, null_count, validity_length) as the
    manifest queries select them; ``encoding``: the row's, parsed already (else parsed here,
    ``ParamsError`` when its params are wrong)."""
    return ChunkRef(
        row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8],
        encoding or parse(row[9], row[10]), zone, row[15] or 0, row[16] or 0,
    )  # fmt: skip


def select_chunks(where: str) -> str:
    """The manifest query of the chunks ``where`` says."""
    return f"""
SELECT c.col_id, c.chunk_index, c.first_row, c.nrows, c.segment, COALESCE(s.sealed, 0),
       c.offset, c.length, c.crc32, c.encoding, c.params, c.min, c.max, c.nan_count, c.sorted,
       c.null_count, c.validity_length
FROM chunks c LEFT JOIN segments s ON s.path = c.segment
WHERE {where}
"""


_WHERE = "c.node_id = ? AND c.retired_commit IS NULL ORDER BY c.col_id, c.first_row"
_CHUNKS = select_chunks(_WHERE)


def load_state(
    conn: sqlite3.Connection, node_id: str, names: Mapping[str, str], nrows: int, version: int
) -> NodeState:
    """Read a node's live chunks inside the caller's read transaction; ``names`` maps its
    column ids to their names (for messages). A manifest that does not add up raises
    ManifestError (the caller names the node)."""
    col_ids = list(names)
    per_col: dict[str, list[ChunkRef]] = {c: [] for c in col_ids}
    for row in conn.execute(_CHUNKS, (node_id,)):
        refs = per_col.get(row[0])
        if refs is not None:
            encoding, wrong = _encoding(row[9], row[10])
            if any(type(v) is not int for v in (*row[1:4], *row[6:9])):
                wrong = f"a chunk row with fields that are not integers: {row[1:9]!r}"
            elif wrong is None and (row[15] is not None or row[16] is not None):
                wrong = _wrong_validity(row)  # a chunk with missing values
            if wrong is not None:
                raise ManifestError(f"chunk {row[1]} of column {names[row[0]]!r}: {wrong}")
            zone = ZoneMap(row[11], row[12], row[13], None if row[14] is None else bool(row[14]))
            refs.append(chunk_ref(row, zone, encoding))
    first = per_col[col_ids[0]]
    starts = np.fromiter((r.first_row for r in first), np.int64, len(first))
    for col, refs in per_col.items():
        if len(refs) != len(first) or any(
            a.first_row != b.first_row or a.nrows != b.nrows
            for a, b in zip(refs, first, strict=True)
        ):
            raise ManifestError(f"column {names[col]!r} is cut differently from the others")
    covered = sum(r.nrows for r in first)
    if covered != nrows:
        raise ManifestError(f"its chunks hold {covered} rows, not {nrows}")
    return NodeState(nrows, version, starts, {c: tuple(r) for c, r in per_col.items()})


def _encoding(name: Any, params: Any) -> tuple[Encoding | None, str | None]:
    """A chunk row's encoding, parsed once, or what is wrong with its name and params."""
    if not isinstance(name, str) or not (params is None or isinstance(params, str)):
        return None, f"a chunk row with an encoding that is not text: {name!r}, {params!r}"
    try:
        return parse(name, params), None
    except ParamsError as exc:
        return None, str(exc)


def _wrong_validity(row: tuple[Any, ...]) -> str | None:
    """What is wrong with a chunk row's count of missing values and validity length, or None."""
    nulls, vlen = row[15] or 0, row[16] or 0
    if type(nulls) is not int or type(vlen) is not int:
        return f"a chunk row with a validity that is not integers: {row[15:17]!r}"
    if not 0 <= nulls <= row[3] or not 0 <= vlen <= row[7] or (nulls > 0) != (vlen > 0):
        return f"a chunk row with a validity out of bounds: {row[15:17]!r}"
    return None
