"""Sniffing a CSV file's layout from its first block: delimiter, metadata lines, header, names.

Instrument exports are rarely clean, so each guess follows one stated rule:

- **delimiter**: among ``, ; \\t |`` and space, the one that splits the body lines into the same
  number (more than one) of fields most consistently; ``,`` is not a candidate when the decimal
  mark is ``,``; space is taken only if it splits every line of the sample alike (a header
  ``time`` over ``2021-03-01 10:00`` is one column), save a first line with one field fewer
  than the lines below (R's ``write.table``: three or more fields, or a quoted name over two
  fields each starting with a quoted row name, ``"x"`` over ``"1" 3``), and only when no other
  candidate splits every body line alike (R's quoted texts may hold commas in some lines).
- **metadata lines** (when ``skiprows`` is not given): leading lines whose field count differs
  from the body's, as the site line above a TMY3 header.
- **header** (``header="infer"``): the first row is a header if one of its fields is quoted
  while every field below it is an unquoted number (R's ``write.csv`` quotes names such as
  ``"1940"``, not numbers); else unless every column whose body is numbers, dates or booleans
  also has one in the first row (an all-text file has a header, as pandas assumes). Missing
  values (``""`` and ``na_values``, such as R's ``NA``) are no evidence either way. A first
  row whose first field alone is empty is R's row-name header (``"","a","b"``), as is a row
  with one field fewer than the rows below it (R's ``write.table``), when those rows do not
  start with a header of their own (in an all-text file, when that row and the first field of
  every row below are quoted, as R writes them): the nameless first column is ``col0``. When
  the first row's fields disagree (a name above one typed column, a value of its type above
  another), only the empty first field says header, or an all-text file's quotes say R's
  header, the decision is a guess, and the import warns.
- **names**: as written; repeats get ``.1``, ``.2`` (as pandas does); empty ones ``col<i>``; a
  file without header gets ``col0 .. colN``.
- **trailing delimiter**: a header that ends with a delimiter, above body rows that all end with
  one too, has no last column: the exporter ends every line with a delimiter (pandas reads an
  all-NaN ``Unnamed: n`` column there, and turns the integer columns to float).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

CANDIDATES = (",", ";", "\t", "|", " ")
#: Rows of the first block that sniffing looks at.
SAMPLE_ROWS = 200

_INT = re.compile(r"^\s*[-+]?\d+\s*$")
_FLOAT = re.compile(
    r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$", re.I
)
_DATE = re.compile(
    r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[-+]\d{2}(:?\d{2})?)?\s*$"
)
_BOOL = frozenset({"true", "false"})
#: Fields that are no evidence of a column's kind unless ``na_values`` are given.
_MISSING = frozenset({""})


@dataclass(frozen=True)
class Layout:
    """What sniffing decided: the delimiter, physical lines to skip above the first row, whether
    that row is a header, and the column names."""

    delimiter: str
    skiprows: int
    header: bool
    names: tuple[str, ...]
    trailing: bool = False  # the header's last field is an empty one after a trailing delimiter
    rownames: bool = False  # the header has no name above the first column (R's row names)
    guess: str = ""  # why the header decision is a guess: the import says so


def _plain(field: str, thousands: str | None) -> str:
    """``field`` without its thousands separators."""
    return field.replace(thousands, "") if thousands else field


def _kind(field: str, decimal: str, thousands: str | None) -> str:
    field = _plain(field, thousands)
    if decimal != ".":
        field = field.replace(decimal, ".")
    if _INT.match(field) or _FLOAT.match(field):
        return "number"
    if _DATE.match(field):
        return "date"
    if field.strip().lower() in _BOOL:
        return "bool"
    return "text"


def _records(
    text: str, delimiter: str, quotechar: str | None, comment: str | None, final: bool
) -> list[tuple[int, list[str]]]:
    """(physical line after the record, fields) of the sample's complete, non-blank records."""
    if comment:
        text = "\n".join(line.split(comment, 1)[0] for line in text.split("\n"))
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quotechar or '"',
        quoting=csv.QUOTE_NONE if quotechar is None else csv.QUOTE_MINIMAL,
        strict=False,
    )
    out: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if row:
                out.append((reader.line_num, row))
            if len(out) > SAMPLE_ROWS:
                break
    except csv.Error:
        pass  # an unterminated quote in the sample: judge by what was read
    if not final and out and len(out) <= SAMPLE_ROWS:
        out.pop()  # the last record may be cut by the block's end
    return out


def _head(text: str, final: bool) -> tuple[str, bool]:
    """The sample's first lines, enough for SAMPLE_ROWS records unless they span several lines
    each (the csv module copies all the text it is given, for every delimiter tried), and
    whether that is all of the file."""
    pos = 0
    for _ in range(4 * SAMPLE_ROWS):
        pos = text.find("\n", pos) + 1
        if pos == 0:
            return text, final
    return (text, final) if pos >= len(text) else (text[:pos], False)


def _consistency(counts: list[int]) -> tuple[float, int]:
    """(share of body rows with the body's most common field count, that count)."""
    body = counts[len(counts) // 3 :] or counts
    common, n = Counter(body).most_common(1)[0]
    return n / len(body), common


def sniff_delimiter(
    text: str, quotechar: str | None, comment: str | None, decimal: str, final: bool
) -> str:
    best: tuple[float, int, int] | None = None
    chosen = ","
    for rank, d in enumerate(CANDIDATES):
        if d == decimal or d not in text:  # absent: one field per record, never chosen
            continue
        records = _records(text, d, quotechar, comment, final)
        if not records:
            continue
        counts = [len(r) for _, r in records]
        share, fields = _consistency(counts)
        if fields < 2:
            continue
        if d == " ":
            # spaces inside a single column ("2021-03-01 10:00") split lines too; R's
            # write.table header alone may have one field fewer (no name above the row names)
            r_header = counts[0] == fields - 1 and (
                fields > 2 or _r_quoted(text, " ", quotechar, comment, 0)
            )
            if any(n != fields for n in counts[r_header:]):
                continue
            # every line split alike: better than a delimiter that splits some lines only
            # (a comma inside some of the quoted texts of R's write.table)
            if best is None or best[0] < 1:
                chosen = d
            continue
        score = (share, fields, -rank)
        if best is None or score > best:
            best, chosen = score, d
    return chosen


def _metadata_lines(records: list[tuple[int, list[str]]]) -> int:
    """Physical lines taken by leading records whose field count is not the body's."""
    counts = [len(r) for _, r in records]
    if len(counts) < 3:
        return 0
    _, common = _consistency(counts)
    # rows that end with a delimiter have one empty field more than a header without one
    trailing = common > 1 and all(r[-1] == "" for _, r in records if len(r) == common)
    skip = 0
    for i, n in enumerate(counts):
        if n == common or (trailing and n == common - 1):
            return skip
        if n == common + 1 and records[i][1][-1] == "" and counts[i + 1 : i + 2] == [common]:
            return skip  # a header that ends with a delimiter, above rows that do not
        skip = records[i][0]
    return 0


def _quoting(
    text: str, delimiter: str, quotechar: str | None, comment: str | None
) -> list[list[bool]]:
    """Which fields of the sample's first records were quoted, record by record as
    :func:`_records` reads them (the csv module does not say)."""
    if quotechar is None:
        return []
    if comment:
        text = "\n".join(line.split(comment, 1)[0] for line in text.split("\n"))
    out: list[list[bool]] = []
    flags: list[bool] = []
    quoted = inside = False
    start = empty = True  # at a field's start; the record has nothing yet
    i, n = 0, len(text)
    while i < n and len(out) <= SAMPLE_ROWS:
        c = text[i]
        i += 1
        if inside:
            if c == quotechar:
                if i < n and text[i] == quotechar:
                    i += 1
                else:
                    inside = False
        elif c == quotechar and start:
            inside = quoted = True
            start = empty = False
        elif c == delimiter:
            flags.append(quoted)
            quoted, start, empty = False, True, False
        elif c in "\r\n":
            if c == "\r" and i < n and text[i] == "\n":
                i += 1
            if not empty:
                out.append([*flags, quoted])
            flags, quoted, start, empty = [], False, True, True
        else:
            start = empty = False
    if not empty:
        out.append([*flags, quoted])
    return out


def _has_header(
    first: list[str],
    body: list[list[str]],
    decimal: str,
    thousands: str | None,
    missing: frozenset[str] = _MISSING,
) -> tuple[bool, str]:
    """Whether the first row is a header, and why, when that is a guess (else "")."""
    if not body:
        return True, ""
    names, data = _evidence(first, body, decimal, thousands, missing)
    if names:
        if not data:
            return True, ""
        kind = _kind_of(body, first.index(names[0]), decimal, thousands, missing)
        return True, f"{names[0]!r} is no {kind} as below it, though {data[0]!r} is"
    if not data:
        return True, ""  # all text: a header, as pandas assumes
    if first[0] == "" and len(first) > 1 and all(r and r[0] != "" for r in body):
        # R's row-name header: no name above the row names
        return True, "its first field alone is empty, as in R's row-name header"
    return False, ""


def _evidence(
    first: list[str],
    body: list[list[str]],
    decimal: str,
    thousands: str | None,
    missing: frozenset[str],
) -> tuple[list[str], list[str]]:
    """The first row's fields above typed columns (numbers, dates or booleans) that are not of
    their column's type (names), and those that are (data)."""
    names: list[str] = []
    data: list[str] = []
    for j, field in enumerate(first):
        if field in missing:
            continue  # a missing value or an unnamed column: no evidence either way
        kinds = _kinds(body, j, decimal, thousands, missing)
        if len(kinds) != 1 or kinds == {"text"}:
            continue
        (data if _kind(field, decimal, thousands) in kinds else names).append(field)
    return names, data


def _kinds(
    body: list[list[str]], j: int, decimal: str, thousands: str | None, missing: frozenset[str]
) -> set[str]:
    """The kinds of column ``j``'s values in ``body``, missing values aside."""
    return {_kind(r[j], decimal, thousands) for r in body if j < len(r) and r[j] not in missing}


def _kind_of(
    body: list[list[str]], j: int, decimal: str, thousands: str | None, missing: frozenset[str]
) -> str:
    return next(_kind(r[j], decimal, thousands) for r in body if j < len(r) and r[j] not in missing)


def _quoted_names(
    first: list[str],
    body: list[list[str]],
    quoting: list[list[bool]],
    decimal: str,
    thousands: str | None,
    missing: frozenset[str],
) -> bool:
    """Whether a column's first field is quoted while every field below it is an unquoted
    number (missing values aside), as R's ``write.csv`` writes names such as ``"1940"`` above
    numbers."""
    head = quoting[0]
    for j, field in enumerate(first):
        if field == "" or j >= len(head) or not head[j]:
            continue
        below = [
            (r[j], q[j])
            for r, q in zip(body, quoting[1:], strict=False)
            if j < len(r) and j < len(q) and r[j] not in missing
        ]
        if below and all(not q and _kind(v, decimal, thousands) == "number" for v, q in below):
            return True
    return False


def unique_names(fields: list[str]) -> tuple[str, ...]:
    """Header names as written, with repeats numbered as pandas does and blanks named.

    >>> unique_names(["a", "a", "", "b", "a"])
    ('a', 'a.1', 'col2', 'b', 'a.2')
    """
    seen: Counter[str] = Counter()
    taken = set(fields)
    out = []
    for i, raw in enumerate(fields):
        name = raw if raw != "" else f"col{i}"
        if seen[name]:
            k = seen[name]
            while f"{name}.{k}" in taken:
                k += 1
            seen[name] = k + 1
            name = f"{name}.{k}"
        else:
            seen[name] += 1
        taken.add(name)
        out.append(name)
    return tuple(out)


def sniff(
    text: str,
    *,
    final: bool,
    delimiter: str | None,
    quotechar: str | None,
    comment: str | None,
    header: bool | str | None,
    skiprows: int | None,
    decimal: str,
    thousands: str | None,
    trailing: bool = True,
    na_values: tuple[str, ...] = (),
) -> Layout:
    """The layout of a file whose first block decodes to ``text`` (``final`` when that block is
    the whole file); given options are taken as they are; ``trailing=False`` reads an empty
    last header name as a column, whatever the sample's rows. Fields in ``na_values`` are
    missing values: no evidence of a column's type."""
    text, final = _head(text, final)
    missing = _MISSING | frozenset(na_values)
    d = delimiter or sniff_delimiter(text, quotechar, comment, decimal, final)
    records = _records(text, d, quotechar, comment, final)
    skip = _metadata_lines(records) if skiprows is None else skiprows
    rows = [r for line, r in records if line > skip]
    if not rows:
        return Layout(d, skip, header is not False and header is not None, ())
    first = rows[0]
    infer = header == "infer"
    rownames = False
    guess = ""  # why the header decision is a guess, if it is one
    if skiprows is None and header is not False and header is not None and skip:
        # R's write.table header: one name fewer than the rows, above the row names
        k = max(i for i, (line, _) in enumerate(records) if line <= skip)
        short = records[k][1]
        if len(short) == len(first) - 1:
            above, values = _evidence(first, rows[1:], decimal, thousands, missing)
            if not above and not values and _r_quoted(text, d, quotechar, comment, k):
                # all text, so no type says which row is the header; R quotes the names and
                # every row name, a title line above a header rarely so
                rownames = True
                guess = (
                    "one name short of the rows below it, all text, every name and first "
                    f"field quoted; give skiprows={records[k][0]} if it is a title line"
                )
            else:
                rownames = not _has_header(first, rows[1:], decimal, thousands, missing)[0]
            if rownames:
                skip = records[k - 1][0] if k else 0
                rows = [["", *short], *rows]
                first = rows[0]
    if rownames:
        has = True
    elif infer:
        has, guess = _has_header(first, rows[1:], decimal, thousands, missing)
        if (guess or not has) and quotechar and quotechar in text:
            # which fields were quoted may say header: read them only then (a Python loop)
            quoting = _quoting(text, d, quotechar, comment)[len(records) - len(rows) :]
            if len(quoting) > len(rows) - 1 and _quoted_names(
                first, rows[1:], quoting, decimal, thousands, missing
            ):
                has, guess = True, ""
    else:
        has = bool(header)
    trailing = trailing and has and _trailing_delimiter(first, rows[1:])
    if trailing:
        first = first[:-1]
    names = unique_names(first) if has else tuple(f"col{i}" for i in range(len(first)))
    return Layout(d, skip, has, names, trailing, rownames, guess)


def column_kinds(
    text: str,
    layout: Layout,
    *,
    quotechar: str | None,
    comment: str | None,
    decimal: str,
    thousands: str | None,
    na_values: tuple[str, ...] = (),
) -> list[set[str]]:
    """The kinds ("number", "date", "bool", "text"; beside "number", "float" when a number is
    not an integer and "long" when one has more than 8 bytes) of each column's values below the
    header in the first rows of ``text``, sniffed as ``layout``: which kernels the import will
    likely call, in which order."""
    text, final = _head(text, False)
    records = _records(text, layout.delimiter, quotechar, comment, final)
    rows = [r for line, r in records if line > layout.skiprows][1 if layout.header else 0 :]
    missing = _MISSING | frozenset(na_values)
    width = max((len(r) for r in rows), default=0)
    out = []
    for j in range(width):
        kinds = _kinds(rows, j, decimal, thousands, missing)
        values = [r[j] for r in rows if j < len(r) and r[j] not in missing]
        if "number" in kinds and any(len(v.encode()) > 8 for v in values):
            kinds.add("long")
        if "number" in kinds and not all(_INT.match(_plain(v, thousands)) for v in values):
            kinds.add("float")  # an integer column never calls the float kernels
        out.append(kinds)
    return out


def _r_quoted(
    text: str, delimiter: str, quotechar: str | None, comment: str | None, k: int
) -> bool:
    """Whether record ``k`` of the sample and the first field of every record below it are
    quoted, as R's ``write.table`` quotes the names and the row names."""
    if not quotechar or quotechar not in text:
        return False
    quoting = _quoting(text, delimiter, quotechar, comment)
    below = quoting[k + 1 :]
    return bool(below) and all(quoting[k]) and all(q[0] for q in below)


def _trailing_delimiter(first: list[str], body: list[list[str]]) -> bool:
    """Whether the header's empty last field is only a trailing delimiter: every body row of
    the sample ends with an empty field there too (or lacks it)."""
    n = len(first)
    if n < 2 or first[-1] != "" or not body:
        return False
    return all(len(r) == n - 1 or (len(r) == n and r[-1] == "") for r in body)
