"""The shape of an import's records: the plan a header sets (column names, the field positions
``usecols`` picks, the row width), a record's fields as text (a header, an error message) and the
rows of a block that do not have the header's width.

Why apart from the importer: these rules say what a row *is* for every block of every file of an
import, whichever path (row kernel or tokenizer) reads the block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ...errors import CSVError
from ...kernels.csv import text as csvtext
from ...kernels.csv import tokens as csvtokens
from .sniff import Layout


class TrailingColumn(CSVError):
    """A row fills the column that the header's empty last name was taken to end with a
    trailing delimiter: the import starts over with that column (or, from a source that cannot
    be read twice, fails with this)."""


@dataclass
class Plan:
    """What the first block decided for the whole import."""

    layout: Layout
    names: tuple[str, ...]  # imported columns, in file order
    positions: tuple[int, ...]  # their field positions in a row
    width: int  # fields per row in the file


def make_plan(layout: Layout, names: tuple[str, ...], usecols: Sequence[str | int] | None) -> Plan:
    """The plan for a file whose header (or first row) gives ``names``."""
    layout = replace(layout, names=names)
    if usecols is None:
        positions = tuple(range(len(names)))
    else:
        positions = tuple(_position(c, names) for c in usecols)
    return Plan(layout, tuple(names[p] for p in positions), positions, len(names))


def _position(c: str | int, names: tuple[str, ...]) -> int:
    if isinstance(c, int) and not isinstance(c, bool):
        if not 0 <= c < len(names):
            raise CSVError(f"usecols position {c} is outside the {len(names)} columns")
        return c
    if c not in names:
        raise CSVError(f"usecols names {c!r}, which the file lacks; columns: {list(names)}")
    return names.index(c)


def row_text(
    buf: np.ndarray, tok: csvtokens.Tokens, r: int, *, file: str | None = None,
    line: int | None = None,
) -> list[str]:  # fmt: skip
    """Row ``r``'s fields as text; with ``file`` (a header), bytes that are not UTF-8 are a
    ``CSVError``, else they are replaced (the text of an error message)."""
    a, b = int(tok.row_first[r]), int(tok.row_first[r + 1])
    out = []
    for i in range(a, b):
        raw = bytes(buf[tok.starts[i] : tok.ends[i]])
        if tok.flags[i] & csvtokens.ESCAPED:
            raw = csvtext.unescape_bytes(raw)
        try:
            out.append(raw.decode("utf-8", "strict" if file is not None else "replace"))
        except UnicodeDecodeError:
            raise CSVError(
                f"bytes that are not UTF-8 in header field {i - a} (give encoding=)",
                file=file, line=line, text=raw.decode("utf-8", "replace"),
            ) from None  # fmt: skip
    return out


def without_ragged(
    plan: Plan, fail: bool, file: str, buf: np.ndarray, tok: csvtokens.Tokens, rows: np.ndarray,
    first: np.ndarray, counts: np.ndarray, row_line: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The ``rows`` (with their ``first`` fields and field ``counts``) that have the plan's width,
    and the 1-based lines of those left out; with ``fail``, the first of those is a
    ``CSVError`` instead. A trailing delimiter (one empty field more) is no field."""
    width = plan.width
    last = first + counts - 1
    trailing = (counts == width + 1) & (tok.starts[last] == tok.ends[last])
    bad = (counts != width) & ~trailing
    if not bad.any():
        return rows, first, np.empty(0, np.int64)
    i = int(np.flatnonzero(bad)[0])
    if plan.layout.trailing:
        wide = np.flatnonzero(bad & (counts == width + 1))
        if len(wide):  # the header's empty last name was a column after all
            j = int(wide[0])
            text = plan.layout.delimiter.join(row_text(buf, tok, int(rows[j])))
            raise TrailingColumn(
                f"{width + 1} fields, and the header has {width + 1} with an empty last name, "
                "read as a trailing delimiter because the first rows leave that column empty",
                file=file, line=int(row_line[rows[j]]) + 1, text=text,
            )  # fmt: skip
    if fail:
        text = plan.layout.delimiter.join(row_text(buf, tok, int(rows[i])))
        raise CSVError(
            f"{_fields(int(counts[i]))} where {_header_width(plan.layout, width)}",
            file=file, line=int(row_line[rows[i]]) + 1, text=text,
        )  # fmt: skip
    return rows[~bad], first[~bad], row_line[rows[bad]] + 1


def _fields(n: int) -> str:
    return f"{n} field{'s' * (n != 1)}"


def _header_width(layout: Layout, width: int) -> str:
    """The header's real field count, for a ragged row's message (rows have ``width``)."""
    if not layout.header:
        return f"the first row has {width}"
    if layout.trailing:
        return f"the header has {width + 1} (the last empty, read as a trailing delimiter)"
    if layout.rownames:
        return f"the header has {width - 1} names over {_fields(width)} (R's row names)"
    return f"the header has {width}"
