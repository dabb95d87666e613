"""Plain blocks: records without quotes, parsed row by row in one pass.

Why: most blocks of most files have no quote character. Such a block, cut after its last LF,
holds whole records only, so it needs no carry-over and no tokenizer: the row kernel
(:mod:`colvault.kernels.csv.rows`) parses its numbers and times where they lie and leaves only the
offsets of text fields, for the text conversion of :mod:`.columns`. Blocks are independent,
so several parse at once in the importer's pool.

The kernel stops at the first record it does not handle (a missing value, a blank or comment
line, a ragged row, a value that needs the general path); :class:`Parsed` says where, and the
importer reads the rest of the block the general way. Text conversions that fail (bytes that are
not UTF-8, a category that outgrows its type) are not reported from here, where the block's first
line is not yet known: the importer reads the whole block again the general way, which names the
line. The kernel also stops at an integer text in a float column that float64 may round (2**53
or more in magnitude): the general way checks it is held exactly, or names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import CSVError
from ...kernels.csv import rows as csvrows
from .columns import ColumnState, ColumnType, Fields, Options, Widen, convert

_NATURAL = {
    "int64": (csvrows.INT64, np.dtype(np.int64)),
    "float64": (csvrows.FLOAT64, np.dtype(np.float64)),
    "datetime": (csvrows.DATETIME, np.dtype("datetime64[ns]")),
}


@dataclass(frozen=True)
class RowKinds:
    """What the row kernel does with each field position of a row (see :func:`row_kinds`)."""

    kinds: np.ndarray  # csvrows kind per field position
    slots: np.ndarray  # row of that kind's output array
    counts: tuple[int, int, int, int]  # columns of each kind: int64, float64, datetime, text


def row_kinds(
    width: int,
    positions: Sequence[int],
    names: Sequence[str],
    types: dict[str, ColumnType],
    opts: Options,
) -> RowKinds | None:
    """The kernel's plan for rows of ``width`` fields whose ``positions`` hold columns
    ``names`` of ``types``, or None when a column needs the general path (bool, uint64 and
    nullable columns, floats read from integers, a dtype fixed to something else, times when
    ``datetime_formats`` are given: the general path reads a block by one format or ISO 8601,
    not field by field)."""
    kinds = np.full(width, csvrows.SKIP, np.int64)
    slots = np.zeros(width, np.int64)
    counts = [0, 0, 0, 0]
    formats = bool(opts.formats)
    for p, name in zip(positions, names, strict=True):
        t = types[name]
        if t.nullable:  # the kernel keeps no validity: missing values take the general path
            return None
        if t.kind in ("category", "text"):
            kind = csvrows.TEXT
        elif t.kind in _NATURAL and not (t.ints or (t.kind == "datetime" and formats)):
            kind, natural = _NATURAL[t.kind]
            if t.fixed is not None and t.fixed != natural:
                return None
        else:
            return None
        kinds[p] = kind
        slots[p] = counts[kind - 1]
        counts[kind - 1] += 1
    return RowKinds(kinds, slots, (counts[0], counts[1], counts[2], counts[3]))


@dataclass
class Parsed:
    """The rows the kernel parsed from the start of a block, as column arrays."""

    arrays: dict[str, np.ndarray]
    rows: int
    end: int  # byte where the first record it left starts (the block's length: none left)


def parse_plain(
    buf: np.ndarray,
    delimiter: int,
    comment: int,
    cr: bool,
    plan: RowKinds,
    positions: Sequence[int],
    names: Sequence[str],
    types: dict[str, ColumnType],
    opts: Options,
    seen: dict[str, ColumnState],
) -> Parsed:
    """Parse the plain block ``buf`` (no quote character; ``cr``: it may hold a CR byte) from its
    start (``seen``: what the import has seen of each column, updated)."""
    dec = ord(opts.decimal)
    tsep = -1 if opts.thousands is None else ord(opts.thousands)
    dtypes = (np.int64, np.float64, np.int64, np.int64, np.int64)
    counts = (*plan.counts, plan.counts[3])  # text: starts and ends
    cap = _estimated_rows(buf)
    out = [np.empty((k, cap), dt) for k, dt in zip(counts, dtypes, strict=True)]
    rows, end = 0, 0
    while True:
        rows, end = csvrows.parse_rows(
            buf, end, rows, delimiter, comment, cr, plan.kinds, plan.slots, dec, tsep,
            out[0], out[1], out[2], out[3], out[4], True,  # exact_ints: integers float64 may round
        )  # fmt: skip
        if rows < cap or end >= len(buf):
            break
        cap *= 2  # the estimate fell short: grow the outputs and go on
        out = [_grown(a, cap) for a in out]
    rows, end = int(rows), int(end)
    ints, floats, stamps, tstarts, tends = out
    arrays: dict[str, np.ndarray] = {}
    for p, name in zip(positions, names, strict=True):
        kind, slot = int(plan.kinds[p]), int(plan.slots[p])
        if kind == csvrows.INT64:
            arrays[name] = ints[slot, :rows]
            seen.setdefault(name, ColumnState()).note_ints(arrays[name])
        elif kind == csvrows.FLOAT64:
            arrays[name] = floats[slot, :rows]
        elif kind == csvrows.DATETIME:
            arrays[name] = stamps[slot, :rows].view("datetime64[ns]")
        else:
            f = Fields(buf, tstarts[slot, :rows], tends[slot, :rows],
                       np.zeros(rows, np.uint8), None, opts, False)  # fmt: skip
            state = seen.setdefault(name, ColumnState())
            try:
                arrays[name] = convert(name, types[name], f, opts, _unknown_line, state)
            except (CSVError, Widen):
                return Parsed({}, 0, 0)  # the general way reads it all and names the line
    return Parsed(arrays, rows, end)


def _unknown_line(i: int) -> None:
    return None


def _estimated_rows(buf: np.ndarray) -> int:
    """Records in a block, from the length of its first lines (a little more, to spare the
    outputs' growing)."""
    head = buf[: 1 << 16]
    lines = int(np.count_nonzero(head == 10))
    if not lines:
        return 1024
    return int(len(buf) * lines / len(head) * 1.125) + 64


def _grown(a: np.ndarray, cap: int) -> np.ndarray:
    out = np.empty((a.shape[0], cap), a.dtype)
    out[:, : a.shape[1]] = a
    return out
