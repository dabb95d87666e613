"""Column types of a CSV import: inferred from a sample, widened along fixed paths, and the
conversion of one block's fields into a column array.

A column's :class:`ColumnType` is a *kind* on the lattice ARCHITECTURE.md gives (``bool`` ->
``int64`` -> ``uint64`` -> ``float64``; ``category`` -> ``text``; ``datetime`` -> ``text``; text
widths grow), or a dtype fixed by the caller's schema or by an existing table, which never
widens. A column whose sample is all missing is ``empty`` until a value shows what it is.

Converting a block either gives the array, or raises :class:`Widen` with the type the block
needs (the importer starts over with it), or :class:`~colvault.errors.CSVError` naming the line,
column and text, when no path leads from the column's type to the value.

Integers are never rounded without a word. An int64 column meeting a value beyond int64 widens
to uint64 when every value fits it (missing values keep an integer column integer, nullable:
stored with a validity bitmap); a float64 column (negative values and values beyond int64,
values beyond uint64, or integers beside non-integer numbers) must hold each integer text
exactly: float64 holds any integer up to 2**53, and a larger one whose double is another number
is a ``CSVError`` naming the first such field, unless the caller's schema (or the table appended
to) says float64, where the importer warns how many were rounded (:func:`_check_exact`; the
row kernel of :mod:`.plain` leaves such fields to this path).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...engine.coded import Coded
from ...engine.masked import Masked
from ...engine.schema import PANDAS_NULLABLE
from ...errors import CSVError
from ...kernels.csv import dates as csvdates
from ...kernels.csv import numbers as csvnumbers
from ...kernels.csv import text as csvtext
from ...kernels.csv.tokens import ESCAPED

NUMERIC = ("bool", "int64", "uint64", "float64")
#: The kinds that keep missing values in a validity bitmap.
NULLABLE = ("bool", "int64", "uint64", "category", "text")
#: The ``fixed`` marker of a column the caller declared ``"category"``.
CATEGORY = np.dtype(object)
#: Text columns with at most this many distinct values in the sample (and at most a quarter of
#: its rows) become ``category``; more distinct values over the import make them text.
CATEGORY_MAX = 65_536
#: Text widths grow to a power of two at least this large, so a file whose later values are a
#: little longer does not restart the import once per block.
MIN_TEXT_WIDTH = 16
#: float64 holds every integer of at most this magnitude exactly; the double of an integer
#: text that may differ from it is at least this large in magnitude.
EXACT_INT = 2.0**53
#: An integer beyond 2**53 has at least 16 digits: shorter fields need no look.
_EXACT_DIGITS = 16
_INTEGER = re.compile(rb"[+-]?[0-9]+")


class Widen(Exception):
    """Raised by a conversion: the column needs ``new`` (rows written so far must be redone)."""

    def __init__(self, column: str, new: ColumnType, why: str) -> None:
        super().__init__(f"column {column!r} widens to {new.label}: {why}")
        self.column, self.new, self.why = column, new, why


@dataclass(frozen=True)
class Options:
    """The parsing options that concern values."""

    decimal: str = "."
    thousands: str | None = None
    quotechar: int = 34
    na_buf: np.ndarray | None = None
    na_offsets: np.ndarray | None = None
    formats: tuple[Any, ...] = ()  # compiled datetime formats, tried in order after ISO 8601
    #: Some missing-value text reads as a number or a date ("-9999"): then every column must be
    #: matched against them before parsing, not only the blocks where parsing fails.
    na_parses: bool = False


def na_parses(tokens: Sequence[str], decimal: str, thousands: str | None) -> bool:
    """Whether one of the missing-value ``tokens`` is a number or an ISO date to the kernels.

    >>> na_parses(["", "NA", "NaN", "null"], ".", None), na_parses(["-9999"], ".", None)
    (False, True)
    """
    # Only a token with an ASCII digit, or spelling inf or a boolean, can parse: the others
    # need no kernel (on a fresh machine each would be compiled for nothing).
    raw = [t.encode() for t in tokens if _may_parse(t)]
    if not raw:
        return False
    buf = np.frombuffer(b"".join(raw) or b" ", np.uint8)
    ends = np.cumsum([len(r) for r in raw]).astype(np.int64)
    starts = ends - np.array([len(r) for r in raw], np.int64)
    for i in range(len(raw)):
        s, e = starts[i : i + 1], ends[i : i + 1]
        _, bad = csvnumbers.parse_float64_py(buf, s, e, None, decimal, thousands)
        _, dbad = csvdates.parse_iso_datetime(buf, s, e, None)
        _, bbad = csvnumbers.parse_bool(buf, s, e, None)
        if bad < 0 or dbad < 0 or bbad < 0:
            return True
    return False


_WORDS = {b"inf", b"infinity", b"true", b"false"}


def _may_parse(token: str) -> bool:
    """Whether a number, date or bool kernel may read ``token``: they all need an ASCII digit,
    except for ``inf``/``infinity`` (one sign allowed) and ``true``/``false``, in any case."""
    raw = token.encode()
    if any(48 <= b <= 57 for b in raw):
        return True
    word = raw.lower()
    return word in _WORDS or (word[:1] in (b"+", b"-") and word[1:] in (b"inf", b"infinity"))


@dataclass(frozen=True)
class ColumnType:
    """What a column becomes: a kind (``width`` for text), or a ``fixed`` dtype."""

    kind: str
    width: int = 0
    fixed: np.dtype | None = None
    negative: bool = False  # an int64 column holds negative values (uint64 cannot widen it)
    #: float64 of integers beyond int64 and uint64: the integers converted, as pandas converts
    #: them ("-0" is 0.0, where a float column keeps -0.0)
    ints: bool = False
    #: a bool, integer, category or text column with missing values: stored with a validity
    #: bitmap (floats and times have NaN and NaT)
    nullable: bool = False

    @property
    def label(self) -> str:
        if self.fixed is not None:
            name = "category" if self.fixed == CATEGORY else str(self.fixed)
        elif self.ints:
            name = "float64 (integers)"
        else:
            name = f"text (U{self.width})" if self.kind == "text" else self.kind
        return f"{name} with missing values" if self.nullable else name

    @property
    def intish(self) -> bool:
        """Every value so far is an integer."""
        return self.kind in ("int64", "uint64") or self.ints

    @property
    def boolish(self) -> bool:
        """Parsed from ``true``/``false``."""
        return self.kind == "bool"

    def table_dtype(self) -> Any:
        """The dtype the table column gets (in the dict form when it is nullable)."""
        if self.nullable and (self.kind != "empty" and self.kind in NULLABLE):
            return {"dtype": self._dtype(), "nullable": True}
        return self._dtype()

    def _dtype(self) -> Any:
        if self.fixed is not None:
            return "category" if self.fixed == CATEGORY else self.fixed
        return {
            "bool": np.dtype(np.bool_),
            "int64": np.dtype(np.int64),
            "uint64": np.dtype(np.uint64),
            "float64": np.dtype(np.float64),
            "empty": np.dtype(np.float64),
            "datetime": np.dtype("datetime64[ns]"),
            "category": "category",
            "text": np.dtype(f"U{max(self.width, 1)}"),
        }[self.kind]


def fixed_type(dtype: Any, nullable: bool = False) -> ColumnType:
    """The type of a column whose dtype the caller fixed (``"category"``, a numpy dtype,
    pandas' nullable ``"Int64"``/``"boolean"``..., or ``{"dtype": ..., "nullable": True}``)."""
    if isinstance(dtype, Mapping):
        return fixed_type(dtype.get("dtype"), bool(dtype.get("nullable")))
    if isinstance(dtype, str) and dtype in PANDAS_NULLABLE:
        dtype, nullable = PANDAS_NULLABLE[dtype], True
    if isinstance(dtype, str) and dtype == "category":
        return ColumnType("category", fixed=CATEGORY, nullable=nullable)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        kind = "bool"
    elif dt.kind in "iu":
        kind = "int64" if dt.kind == "i" else "uint64"
    elif dt.kind == "f":
        kind = "float64"
    elif dt.kind == "M":
        kind = "datetime"
    elif dt.kind == "U":
        kind = "text"
    else:
        raise CSVError(f"a CSV column cannot be stored as {dt}")
    if nullable and kind not in NULLABLE:
        raise CSVError(f"a {dt} column holds NaN or NaT for missing values: it is not nullable")
    width = dt.itemsize // 4 if dt.kind == "U" else 0
    return ColumnType(kind, width=width, fixed=dt, nullable=nullable)


def _text_width(n: int) -> int:
    w = MIN_TEXT_WIDTH
    while w < n:
        w *= 2
    return w


@dataclass
class ColumnState:
    """What the import has seen of a column so far (its values' types stay as inferred)."""

    distinct: set[str] = field(default_factory=set)  # a category column's values
    negative: bool = False  # an int64 column held negative values (uint64 cannot widen it)
    #: integers a float64 column fixed by the caller rounded: (line, text) of the first and the
    #: count, per block (appended by the tasks of several blocks at once, summed at the end)
    rounded: list[tuple[int, str, int]] = field(default_factory=list)

    def note_ints(self, values: np.ndarray) -> None:
        """Take in a block's int64 values: a later value beyond int64 then widens the column
        to float64 if any was negative, not to uint64."""
        if len(values) and not self.negative:
            self.negative = bool(values.min() < 0)


@dataclass
class Fields:
    """One column of one block: the block's bytes and the column's field offsets; which fields
    are missing values is worked out when first asked (``opts`` gives the texts)."""

    buf: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    flags: np.ndarray
    _na: np.ndarray | None = None
    opts: Options | None = None
    #: False when the caller knows no field of the block is escaped (the common case, checked
    #: once per block instead of once per column)
    maybe_escaped: bool = True

    @property
    def na(self) -> np.ndarray:
        """Bool per field: a missing value."""
        if self._na is None:
            assert self.opts is not None
            self._na = missing(self.buf, self.starts, self.ends, self.flags, self.opts)
        return self._na

    def text(self, i: int) -> str:
        raw = self.buf[self.starts[i] : self.ends[i]].tobytes()
        if self.flags[i] & ESCAPED:
            raw = csvtext.unescape_bytes(raw)
        return raw.decode("utf-8", "replace")

    def escaped(self) -> np.ndarray:
        return np.flatnonzero(self.flags & ESCAPED)


def missing(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, flags: np.ndarray,
            opts: Options) -> np.ndarray:  # fmt: skip
    """Which fields are missing values (their exact text is one of ``na_values``)."""
    if opts.na_buf is None or opts.na_offsets is None or len(opts.na_offsets) <= 1:
        return np.zeros(len(starts), np.bool_)
    return csvtext.match_tokens(
        buf, starts, ends, flags, opts.na_buf, opts.na_offsets, quotechar=opts.quotechar
    )


def _plain(f: Fields) -> Fields:
    """The fields with escaped ones rewritten (rare: quoted numbers with ``""`` or text after
    the closing quote), so number kernels can read every slice as it is."""
    if not f.maybe_escaped:
        return f
    esc = f.escaped()
    if not len(esc):
        return f
    parts = [f.buf]
    starts, ends = f.starts.copy(), f.ends.copy()
    pos = len(f.buf)
    for i in esc.tolist():
        raw = csvtext.unescape_bytes(f.buf[f.starts[i] : f.ends[i]].tobytes())
        parts.append(np.frombuffer(raw, np.uint8))
        starts[i], ends[i] = pos, pos + len(raw)
        pos += len(raw)
    buf = np.concatenate(parts)
    return Fields(buf, starts, ends, np.zeros_like(f.flags), f.na)


# ---------------------------------------------------------------------------------------------
# inference


def _parses_datetime(f: Fields, opts: Options) -> bool:
    if not opts.formats and not _may_be_iso(f):
        return False  # no date kernel to compile for a column of text (on a fresh machine)
    return _datetimes(f, opts)[1] < 0


def _may_be_iso(f: Fields) -> bool:
    """Whether the first value (missing ones aside) may be ISO 8601: ``YYYY-MM-...`` once
    ASCII whitespace is trimmed, which the ISO kernel needs of every value (``f`` unescaped)."""
    valid = np.flatnonzero(~f.na)
    if not len(valid):
        return True
    i = int(valid[0])
    raw = f.buf[f.starts[i] : f.ends[i]].tobytes().strip(b" \t\n\v\f\r")
    return len(raw) >= 10 and raw[:4].isdigit() and raw[4:5] == b"-" and raw[7:8] == b"-"


def infer(f: Fields, opts: Options) -> ColumnType:
    """The narrowest type that holds every field of a sample column: the first of bool ->
    int64 -> uint64 -> float64 that parses every value, else datetime, else text.

    The column is tried with the parsers the conversion calls anyway (no separate classifying
    kernel to compile on a fresh machine); a first value no parser of a kind can read skips
    that kind's kernels."""
    f = _plain(f)
    valid = np.flatnonzero(~f.na)
    if not len(valid):
        return ColumnType("empty")
    has_missing = len(valid) < len(f.starts)
    i = int(valid[0])
    first = f.buf[f.starts[i] : f.ends[i]].tobytes()
    kind = None
    if _may_be_number(first):
        values, status = csvnumbers.parse_int64(f.buf, f.starts, f.ends, f.na, opts.thousands)
        if status == csvnumbers.FITS_INT64:
            kind = "int64"
        elif status == csvnumbers.NEEDS_UINT64:
            kind = "uint64"
        else:
            _, _, bad = csvnumbers.parse_float64(
                f.buf, f.starts, f.ends, f.na, opts.decimal, opts.thousands
            )
            if bad < 0:  # integers beyond int64 and uint64 are floats of integers
                return ColumnType("float64", ints=status < 0)
    elif (
        first.lower() in (b"true", b"false")
        and csvnumbers.parse_bool(f.buf, f.starts, f.ends, f.na)[1] < 0
    ):
        kind = "bool"
    if kind is not None:
        negative = kind == "int64" and bool((values[valid] < 0).any())
        return ColumnType(kind, negative=negative, nullable=has_missing)
    if _parses_datetime(f, opts):
        return ColumnType("datetime")
    return replace(_text_type(f, opts, len(f.starts)), nullable=has_missing)


def _may_be_number(raw: bytes) -> bool:
    """Whether the integer or float kernels may read field ``raw``: they need an ASCII digit,
    save for ``inf``/``infinity`` (one sign allowed, any case, no blanks)."""
    if any(48 <= b <= 57 for b in raw):
        return True
    word = raw.lower()
    if word[:1] in (b"+", b"-"):
        word = word[1:]
    return word in (b"inf", b"infinity")


def _text_type(f: Fields, opts: Options, rows: int) -> ColumnType:
    d = csvtext.dictionary_encode_fields(
        f.buf, f.starts, f.ends, f.flags, max_distinct=CATEGORY_MAX, quotechar=opts.quotechar
    )
    longest = int((f.ends - f.starts).max()) if len(f.starts) else 1  # bytes >= characters
    if not d.overflow and len(d.first) * 4 <= max(rows, 4):
        return ColumnType("category", width=_text_width(longest))
    return ColumnType("text", width=_text_width(longest))


# ---------------------------------------------------------------------------------------------
# conversion of one block


def _bad(column: str, f: Fields, i: int, line_of: Any, what: str) -> CSVError:
    return CSVError(what, line=line_of(i), column=column, text=f.text(i))


def _datetimes(f: Fields, opts: Options) -> tuple[np.ndarray, int]:
    values, bad = csvdates.parse_iso_datetime(f.buf, f.starts, f.ends, f.na)
    if bad < 0 or not opts.formats:
        return values, bad
    for program in opts.formats:
        values, bad = csvdates.parse_format_datetime(f.buf, f.starts, f.ends, f.na, program)
        if bad < 0:
            return values, bad
    return values, bad


def convert(
    column: str, t: ColumnType, f: Fields, opts: Options, line_of: Any, seen: ColumnState
) -> np.ndarray:
    """The block's values of one column as ``t`` says (``seen`` gathers what later blocks need
    to know). Raises :class:`Widen` or ``CSVError``."""
    if t.kind in ("category", "text"):
        return _convert_text(column, t, f, opts, line_of, seen.distinct)
    values = _convert_value(column, t, f, opts, line_of, seen)
    if t.nullable and t.kind in NULLABLE:
        return _masked(values, f)
    return values


def _masked(values: Any, f: Fields) -> Any:
    """A nullable column's values, with their validity when some are missing."""
    return Masked(values, ~f.na) if f.na.any() else values


def _convert_value(
    column: str, t: ColumnType, f: Fields, opts: Options, line_of: Any, seen: ColumnState
) -> np.ndarray:
    f = _plain(f)
    if not opts.na_parses:
        values = _without_missing(t, f, opts, seen)
        if values is not None:
            if t.kind == "float64":
                _check_exact(column, t, f, values, opts, line_of, seen)
            return _fixed(column, t, values, f, line_of)
    has_missing = bool(f.na.any())
    if t.kind == "empty":
        if not (~f.na).any():
            return np.full(len(f.starts), np.nan)
        raise Widen(column, _join_new(column, t, f, opts, line_of), "a first value")
    if has_missing and t.kind in ("bool", "int64", "uint64") and not t.nullable:
        if t.fixed is not None:
            i = int(np.flatnonzero(f.na)[0])
            raise _bad(
                column, f, i, line_of,
                f"a missing value in a {t.label} column, which is not nullable (give the "
                "column as {'dtype': ..., 'nullable': True} or 'Int64' in schema=)",
            )  # fmt: skip
        raise Widen(column, replace(t, nullable=True), "missing values")
    if t.kind == "bool":
        values, bad = csvnumbers.parse_bool(f.buf, f.starts, f.ends, f.na)
        if bad >= 0:
            _widen_or_fail(column, t, f, opts, line_of, bad)
        return _fixed(column, t, values, f, line_of)
    if t.kind in ("int64", "uint64"):
        return _convert_int(column, t, f, opts, line_of, seen)
    if t.kind == "float64":
        if t.ints:
            _, status = csvnumbers.parse_int64(f.buf, f.starts, f.ends, f.na, opts.thousands)
            if status >= 0:  # not an integer: a float column after all, or no number
                _widen_or_fail(column, t, f, opts, line_of, status)
        values, bad = csvnumbers.parse_float64_py(
            f.buf, f.starts, f.ends, f.na, opts.decimal, opts.thousands
        )
        if bad >= 0:
            raise _bad(column, f, bad, line_of, f"not a number in a {t.label} column")
        if t.ints:
            values[values == 0] = 0.0  # the integer -0 is 0
        _check_exact(column, t, f, values, opts, line_of, seen)
        return _fixed(column, t, values, f, line_of)
    if t.kind == "datetime":
        values, bad = _datetimes(f, opts)
        if bad >= 0:
            if t.fixed is not None:
                raise _bad(column, f, bad, line_of, "not a date or time")
            raise Widen(column, _join_new(column, t, f, opts, line_of), "a value is not a date")
        return _fixed(column, t, values.view("datetime64[ns]"), f, line_of)
    raise AssertionError(t.kind)


def _without_missing(
    t: ColumnType, f: Fields, opts: Options, seen: ColumnState
) -> np.ndarray | None:
    """The common case without matching missing values first: a block whose fields all parse
    as the column's type has none (no missing-value text parses, see ``Options.na_parses``).
    None: some field did not parse; the caller takes the general path."""
    if t.ints or t.kind not in ("int64", "float64", "datetime"):
        return None
    if t.kind == "float64":
        values, bad = csvnumbers.parse_float64_py(
            f.buf, f.starts, f.ends, None, opts.decimal, opts.thousands
        )
        return values if bad < 0 else None
    if t.kind == "int64":
        ints, status = csvnumbers.parse_int64(f.buf, f.starts, f.ends, None, opts.thousands)
        if status != csvnumbers.FITS_INT64:
            return None
        seen.note_ints(ints)
        return ints
    if opts.formats:
        return None
    stamps, bad = csvdates.parse_iso_datetime(f.buf, f.starts, f.ends, None)
    return stamps.view("datetime64[ns]") if bad < 0 else None


def _convert_int(
    column: str, t: ColumnType, f: Fields, opts: Options, line_of: Any, seen: ColumnState
) -> np.ndarray:
    values, status = csvnumbers.parse_int64(f.buf, f.starts, f.ends, f.na, opts.thousands)
    if status >= 0:
        _widen_or_fail(column, t, f, opts, line_of, status)
    if t.kind == "int64":
        negative = t.negative or seen.negative
        if status == csvnumbers.NEEDS_UINT64 and not negative and t.fixed is None:
            raise Widen(column, ColumnType("uint64", nullable=t.nullable), "a value beyond int64")
        if status != csvnumbers.FITS_INT64:
            if t.fixed is not None:
                i = _first_unfit(f, opts, t.fixed)
                raise _bad(column, f, i, line_of, f"out of the range of {t.label}")
            raise Widen(column, ColumnType("float64", ints=True), "a value beyond int64 and uint64")
        seen.note_ints(values)
        return _fixed(column, t, values, f, line_of)
    uvalues, ustatus = csvnumbers.parse_uint64(f.buf, f.starts, f.ends, f.na, opts.thousands)
    if ustatus != csvnumbers.FITS_INT64:
        if t.fixed is not None:
            i = ustatus if ustatus >= 0 else _first_unfit(f, opts, t.fixed)
            raise _bad(column, f, i, line_of, f"out of the range of {t.label}")
        raise Widen(
            column, ColumnType("float64", ints=True), "a negative value or one beyond uint64"
        )
    return _fixed(column, t, uvalues, f, line_of)


def _may_round(values: np.ndarray) -> bool:
    """Whether a block's float64 values may hold an integer text that float64 rounded: some
    value (NaN aside) is at least 2**53 in magnitude. Two reductions, about a quarter of a
    nanosecond per value on the general path (the row kernel checks its fields as it goes)."""
    if not len(values):
        return False
    hi, lo = np.fmax.reduce(values), np.fmin.reduce(values)  # NaN only when all are
    return bool(hi >= EXACT_INT or lo <= -EXACT_INT)


#: Bytes that cannot be part of an integer text (digits, sign, whitespace): a decimal mark, an
#: exponent, the letters of inf.
_NOT_INTEGER = np.ones(256, np.bool_)
_NOT_INTEGER[[ord(c) for c in "0123456789+- \t\n\v\f\r"]] = False


def _rounded_integers(f: Fields, values: np.ndarray, opts: Options, first_only: bool) -> list[int]:
    """The fields (ascending) that are integer texts whose float64 in ``values`` is another
    number (``first_only``: the first of them at most)."""
    big = np.flatnonzero(np.abs(values) >= EXACT_INT)  # NaN is not
    big = big[f.ends[big] - f.starts[big] >= _EXACT_DIGITS]
    if not len(big):
        return []
    # drop the fields holding a byte no integer has (floats such as 1.2345678901234567e+20)
    # with one look at their bytes, before a Python look at each of the rest
    lens = f.ends[big] - f.starts[big]
    heads = np.cumsum(lens) - lens
    at = np.repeat(f.starts[big] - heads, lens) + np.arange(int(lens.sum()))
    not_integer = _NOT_INTEGER.copy()
    if opts.thousands is not None:
        not_integer[ord(opts.thousands)] = False
    odd = np.add.reduceat(not_integer[f.buf[at]].astype(np.int64), heads) > 0
    sep = opts.thousands.encode() if opts.thousands is not None else b""
    out = []
    for i in big[~odd].tolist():
        raw = f.buf[f.starts[i] : f.ends[i]].tobytes().strip()
        if sep:
            raw = raw.replace(sep, b"")
        if not _INTEGER.fullmatch(raw):
            continue
        v = float(values[i])
        if not math.isfinite(v) or int(v) != int(raw):
            out.append(i)
            if first_only:
                break
    return out


def _check_exact(
    column: str,
    t: ColumnType,
    f: Fields,
    values: np.ndarray,
    opts: Options,
    line_of: Any,
    seen: ColumnState,
) -> None:
    """Refuse a float64 column's integer text that ``values`` does not hold exactly (a
    ``CSVError`` naming the first), or count them when the caller fixed the type to float64.
    A narrower float the caller asked for rounds integers as it rounds other numbers."""
    if (t.fixed is not None and t.fixed != np.float64) or not _may_round(values):
        return
    rounded = _rounded_integers(f, values, opts, first_only=t.fixed is None)
    if not rounded:
        return
    i = rounded[0]
    if t.fixed is not None:
        seen.rounded.append((line_of(i), f.text(i), len(rounded)))
        return
    why = (
        "it has missing values, or integers that int64 and uint64 cannot all hold"
        if t.ints
        else "it has numbers that are not integers"
    )
    raise _bad(
        column, f, i, line_of,
        f"an integer that float64 cannot hold: it would read {float(values[i])!r} (the column "
        f"is float64: {why}); schema={{{column!r}: 'float64'}} accepts the rounding, a text "
        "dtype keeps the digits",
    )  # fmt: skip


def _first_unfit(f: Fields, opts: Options, dt: np.dtype) -> int:
    for i in range(len(f.starts)):
        if f.na[i]:
            continue
        try:
            v = int(f.text(i).strip().replace(opts.thousands or "\0", ""))
        except ValueError:
            return i
        info = np.iinfo(dt)
        if not info.min <= v <= info.max:
            return i
    return 0


def _fixed(column: str, t: ColumnType, values: np.ndarray, f: Fields, line_of: Any) -> np.ndarray:
    """``values`` cast to the fixed dtype when there is one, refusing lossy casts."""
    if t.fixed is None or values.dtype == t.fixed:
        return values
    dt = t.fixed
    out = values.astype(dt)
    if dt.kind in "iu" or dt.kind == "M":
        back = out.astype(values.dtype)
        lost = np.flatnonzero((back != values) & ~f.na)
        if len(lost):
            raise _bad(column, f, int(lost[0]), line_of, f"does not fit {dt} exactly")
    return out


def _widen_or_fail(
    column: str, t: ColumnType, f: Fields, opts: Options, line_of: Any, bad: int
) -> None:
    if t.fixed is not None:
        raise _bad(column, f, bad, line_of, f"not a {t.label} value")
    raise Widen(column, _join_new(column, t, f, opts, line_of, bad), f"line {line_of(bad)}")


def _join_new(
    column: str, t: ColumnType, f: Fields, opts: Options, line_of: Any, bad: int = 0
) -> ColumnType:
    """The type that holds both what ``t`` held and this block's fields, or a ``CSVError``
    (``bad``: the first field that does not parse as ``t``)."""
    got = infer(f, opts)
    new = join(t, got)
    if new is None:
        bad = _first_misfit(t, f, opts, bad)
        raise _bad(column, f, bad, line_of, f"does not fit the column's type {t.label}")
    return new


def join(a: ColumnType, b: ColumnType) -> ColumnType | None:
    """The least type holding both, along the widening paths; None when there is none.

    >>> join(ColumnType("int64"), ColumnType("float64")).kind
    'float64'
    >>> join(ColumnType("float64"), ColumnType("category")) is None
    True
    >>> join(ColumnType("bool"), ColumnType("int64")) is None
    True
    """
    if a.kind == "empty":
        return b
    if b.kind == "empty":
        return a
    if a.kind in NUMERIC and b.kind in NUMERIC:
        if a.boolish != b.boolish:
            return None  # no number kernel reads true/false, nor the bool one digits
        nullable = a.nullable or b.nullable
        if a.boolish:
            return ColumnType("bool", nullable=nullable)
        ints = a.intish and b.intish
        if {a.kind, b.kind} == {"int64", "uint64"}:
            negative = a.negative if a.kind == "int64" else b.negative
            if negative:
                return ColumnType("float64", ints=True)
            return ColumnType("uint64", nullable=nullable)
        kind = NUMERIC[max(NUMERIC.index(a.kind), NUMERIC.index(b.kind))]
        if kind == "float64":  # NaN marks missing values
            return ColumnType(kind, ints=ints)
        return ColumnType(kind, negative=a.negative or b.negative, nullable=nullable)
    if a.kind == b.kind == "datetime":
        return a
    texty = ("category", "text")
    if a.kind in texty or a.kind == "datetime":
        if b.kind in NUMERIC and a.kind != "datetime":
            return replace(a, nullable=a.nullable or b.nullable)  # numbers in text are text
        width = max(a.width, b.width, MIN_TEXT_WIDTH)
        kind = "category" if a.kind == b.kind == "category" else "text"
        return ColumnType(kind, width=_text_width(width), nullable=a.nullable or b.nullable)
    return None


def _first_misfit(t: ColumnType, f: Fields, opts: Options, bad: int) -> int:
    """The field to name when a block has no type in common with ``t``: the first that is no
    number at all in a numeric column (``abc`` rather than an earlier ``2.5`` in an int
    column), else ``bad``, the first that does not parse as ``t``."""
    if t.kind in NUMERIC and not t.boolish:
        _, nan = csvnumbers.parse_float64_py(
            f.buf, f.starts, f.ends, f.na, opts.decimal, opts.thousands
        )
        if nan >= 0:
            return nan
    return bad


def _convert_text(
    column: str, t: ColumnType, f: Fields, opts: Options, line_of: Any, distinct: set[str]
) -> np.ndarray:
    if t.kind == "category":
        d = csvtext.dictionary_encode_fields(
            f.buf, f.starts, f.ends, f.flags, quotechar=opts.quotechar
        )
        # one field per distinct value: missing-value texts are matched on those alone
        sub = Fields(f.buf, f.starts[d.first], f.ends[d.first], f.flags[d.first], None, opts)
        words, bad = csvtext.fields_to_ucs4(sub.buf, sub.starts, sub.ends, sub.flags)
        if bad >= 0:
            raise _bad(
                column, sub, bad, line_of_first(d.first, line_of), "bytes that are not UTF-8"
            )
        words = np.where(sub.na, "", words)
        missing = sub.na.any()
        if missing and not t.nullable and t.fixed is None:
            raise Widen(column, replace(t, nullable=True), "missing values")
        if t.fixed is None:
            distinct.update(words[~sub.na].tolist())
            if len(distinct) > CATEGORY_MAX:
                longest = max(len(w) for w in distinct)
                raise Widen(
                    column,
                    ColumnType("text", width=_text_width(longest), nullable=t.nullable),
                    "too many values",
                )
        coded = Coded(d.codes, words)
        if missing and t.nullable:  # the rows whose value is a missing-value text
            return Masked(coded, ~sub.na[d.codes])  # type: ignore[return-value]
        return coded  # type: ignore[return-value]  # the table takes codes
    words, bad = csvtext.fields_to_ucs4(f.buf, f.starts, f.ends, f.flags)
    if bad >= 0:
        raise _bad(column, f, bad, line_of, "bytes that are not UTF-8")
    missing = f.na.any()
    if missing:
        if not t.nullable and t.fixed is None:
            raise Widen(column, replace(t, nullable=True), "missing values")
        words = np.where(f.na, "", words)
    n = words.dtype.itemsize // 4
    if n > t.width:
        if t.fixed is not None:
            i = int(np.argmax(np.char.str_len(words)))
            raise _bad(column, f, i, line_of, f"longer than {t.label} allows")
        wider = ColumnType("text", width=_text_width(n), nullable=t.nullable)
        raise Widen(column, wider, "a longer value")
    out = words.astype(f"U{max(t.width, 1)}")
    return _masked(out, f) if t.nullable else out


def line_of_first(first: np.ndarray, line_of: Any) -> Any:
    return lambda i: line_of(int(first[i]))


def types_by_name(names: Sequence[str], schema: dict[str, Any] | None) -> dict[str, ColumnType]:
    """The fixed types a ``schema`` argument gives, checked against the file's columns."""
    if not schema:
        return {}
    unknown = [k for k in schema if k not in names]
    if unknown:
        raise CSVError(f"schema names columns the file lacks: {unknown}; columns: {list(names)}")
    return {k: fixed_type(v) for k, v in schema.items()}
