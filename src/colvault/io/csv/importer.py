"""``import_csv``: stream CSV files of any size into a table, in one transaction.

The pipeline (ARCHITECTURE.md, "CSV import"): each file is read in blocks of about 1 MiB
(:mod:`.source`), its first MiB is sniffed for the layout (:mod:`.sniff`), and a reading
thread cuts the blocks at record boundaries (:mod:`.blocks`). A block without quotes is parsed
row by row by one kernel task in a thread pool (:mod:`.plain`); any other block, and the rest of
a plain block from a record that kernel leaves, is tokenized into field offsets and each column
parsed by the number, date and text kernels in the pool (:mod:`.columns`). Parsed blocks go to
the table through the normal append path, in order, so memory stays bounded by a few blocks
whatever the file size.

Types are inferred from the first block and widened along the paths ARCHITECTURE.md lists. When a
later block needs a wider type, the rows written so far are still uncommitted: the import
discards them and starts over with the wider type (sources that cannot be read twice, such as a
pipe, get a ``CSVError`` suggesting ``schema=``). Text widths grow to powers of two, so this
happens a few times at most.

Any error (a ragged row, a value that does not parse, an unterminated quote, bad bytes) aborts
the import's transaction: the table stays exactly as it was. The store must have no other
pending changes, since the import commits.
"""

from __future__ import annotations

import codecs
import itertools
import os
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np

from ...engine.store import Store
from ...engine.table import Table
from ...errors import CSVError, CSVWarning
from ...kernels import compiling
from ...kernels.csv import background as csvbackground
from ...kernels.csv import dates as csvdates
from ...kernels.csv import jit as csvjit
from ...kernels.csv import text as csvtext
from ...kernels.csv import tokens as csvtokens
from ...progress import bar as progress_bar
from ...progress import enabled as progress_enabled
from ..importing import import_transaction
from . import precompile
from .blocks import record_blocks
from .columns import (
    CATEGORY,
    ColumnState,
    ColumnType,
    Fields,
    Options,
    Widen,
    convert,
    fixed_type,
    infer,
    na_parses,
    types_by_name,
)
from .plain import Parsed, RowKinds, parse_plain, row_kinds
from .records import Plan, TrailingColumn, make_plan, row_text, without_ragged
from .sniff import Layout, column_kinds, sniff
from .source import (
    COMPRESSED,
    DEFAULT_BLOCK_BYTES,
    FIRST_BLOCK_BYTES,
    Input,
    Piece,
    inputs,
    prefetched,
    utf8_blocks,
)

T = TypeVar("T")

DEFAULT_NA = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")
#: Starting over for a wider type happens at most this many times per import.
MAX_RESTARTS = 32
#: The row kernel reads plain blocks only in inputs of at least this many blocks. It is about
#: a tenth faster than the general path, but compiling it on a machine with an empty kernel
#: cache takes ~3 s: a first small import would pay that to save milliseconds.
PLAIN_MIN_BLOCKS = 8
#: Sniffing reads this much of each file (or all of a smaller one), whatever the block size.
SNIFF_BYTES = 1 << 20
#: A record may span this many default blocks (64 MiB; more with larger blocks): an unterminated
#: quote otherwise reads the file into memory before it is found.
MAX_RECORD_BLOCKS = 16


class _Widened(Exception):
    """Columns of one block that need wider types: the import starts over with all of them."""

    def __init__(self, widen: list[Widen], file: str) -> None:
        super().__init__("; ".join(map(str, widen)))
        self.widen, self.file = widen, file


@dataclass
class _State:
    columns: dict[str, ColumnState] = field(default_factory=dict)
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)


def _rows_at_most(f: Input, sample: bytes, limit: int) -> bool:
    """Whether file ``f`` likely has at most ``limit`` rows, from its size on disk and the
    lines of ``sample``, its first bytes (False when that is not known: a stream, or a
    compressed file)."""
    if f.size is None or not sample or f.name.lower().endswith(COMPRESSED):
        return False
    lines = max(sample.count(b"\n"), sample.count(b"\r"), 1)
    return f.size * lines <= limit * len(sample)


def _byte(value: str | None, name: str) -> int:
    if value is None:
        return -1
    if not isinstance(value, str) or len(value) != 1 or ord(value) > 127:
        raise CSVError(f"{name} must be one ASCII character, not {value!r}")
    return ord(value)


def import_csv(
    source: Any,
    store: Store | str | os.PathLike[str],
    path: str,
    *,
    schema: dict[str, Any] | None = None,
    delimiter: str | None = None,
    quotechar: str | None = '"',
    header: bool | str | None = "infer",
    skiprows: int | None = None,
    comment: str | None = None,
    na_values: Sequence[str] = DEFAULT_NA,
    decimal: str = ".",
    thousands: str | None = None,
    usecols: Sequence[str | int] | None = None,
    encoding: str = "utf-8",
    datetime_formats: Sequence[str] | None = None,
    on_bad_lines: str = "error",
    chunk_bytes: int | None = None,
    progress: bool | None = None,
) -> Table:
    """Import CSV ``source`` into table ``path`` of ``store`` (created, or appended to with its
    schema checked), as one transaction.

    ``source`` is a path (plain, ``.gz``, ``.bz2``, ``.xz``, or a zip archive, whose members
    are files), a binary file object, a list of paths or a glob pattern (files with one header
    each, into one table). ``store`` is an open
    :class:`~colvault.Store` without pending changes, or a path opened with mode ``"a"`` (the
    store then stays open: ``table.store.close()``; it is closed if the import fails). Delimiter,
    header and metadata lines above it are sniffed unless given (later files follow the first
    file's header or lack of one); types are inferred (``schema`` fixes some: a dtype,
    ``"category"``, or ``{"dtype": ..., "nullable": True}``); bool, int and text columns with
    missing values are nullable (missing, not ``""`` nor float64); a column without any value,
    as in a file with a header and no rows, is float64. Errors raise
    :class:`~colvault.CSVError` naming file, line, column and text, and leave the table as it
    was. ``progress``: a bar of bytes read (see :mod:`colvault.progress`;
    by default shown in a terminal or notebook after a second, ``False`` never).

    >>> import colvault, io, tempfile, os
    >>> store = colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w")
    >>> data = io.BytesIO(b"sensor;value\\n1;0,5\\n2;NA\\n")
    >>> t = colvault.import_csv(data, store, "/readings", decimal=",")
    >>> t.read().tolist()
    [(1, 0.5), (2, nan)]
    >>> store.close()
    """
    if on_bad_lines not in ("error", "skip"):
        raise CSVError(f"on_bad_lines must be 'error' or 'skip', not {on_bad_lines!r}")
    if not (header is None or isinstance(header, bool) or header == "infer"):
        # not pandas' row number: header=0 would otherwise read as False
        raise CSVError(f"header must be 'infer', True or False, not {header!r}")
    for name, value in (("delimiter", delimiter), ("comment", comment), ("thousands", thousands)):
        _byte(value, name)
    _byte(quotechar, "quotechar")
    _byte(decimal, "decimal")
    specials = [c for c in (delimiter, quotechar, comment) if c is not None]
    if len(set(specials)) < len(specials):
        raise CSVError("the delimiter, the quote and the comment character must differ")
    if delimiter is not None and delimiter == decimal:
        raise CSVError(f"the delimiter {delimiter!r} is also the decimal mark")
    if thousands is not None and thousands == decimal:
        raise CSVError(f"the thousands separator {thousands!r} is also the decimal mark")
    if chunk_bytes is not None and chunk_bytes < 1:
        raise CSVError(f"chunk_bytes must be at least 1, not {chunk_bytes}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CSVError(f"unknown encoding {encoding!r}") from None
    na_buf, na_offsets = csvtext.pack_tokens(list(na_values))
    formats = tuple(csvdates.compile_format(f) for f in datetime_formats or ())
    quote = _byte(quotechar, "quotechar") if quotechar else -1
    numeric_na = na_parses(na_values, decimal, thousands)
    opts = Options(decimal, thousands, quote, na_buf, na_offsets, formats, numeric_na)
    files = inputs(source)
    with import_transaction(store, "import_csv", keep_open=True) as target:
        job = _Import(
            files, target, path, opts, schema, delimiter, quotechar, header, skiprows, comment,
            usecols, encoding, on_bad_lines, chunk_bytes or DEFAULT_BLOCK_BYTES, progress,
            tuple(na_values),
        )  # fmt: skip
        return job.run()


class _Import:
    def __init__(
        self, files: list[Input], store: Store, path: str, opts: Options,
        schema: dict[str, Any] | None, delimiter: str | None, quotechar: str | None,
        header: bool | str | None, skiprows: int | None, comment: str | None,
        usecols: Sequence[str | int] | None, encoding: str, on_bad_lines: str,
        block_bytes: int, progress: bool | None, na_values: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.files, self.store, self.path, self.opts = files, store, path, opts
        self.schema, self.delimiter, self.quotechar = schema, delimiter, quotechar
        self.header, self.skiprows, self.comment = header, skiprows, comment
        self.usecols, self.encoding, self.on_bad_lines = usecols, encoding, on_bad_lines
        self.block_bytes = block_bytes
        self.na_values = na_values  # no evidence of a column's type when sniffing the header
        self.progress = progress
        self.show = progress_enabled(progress)
        self.types: dict[str, ColumnType] | None = None
        self.plan: Plan | None = None
        self.table: Table | None = None
        self.pool = _Tasks(store.workers)
        self._comment = _byte(comment, "comment")
        self._line = 0
        self._plain: RowKinds | bool | None = None  # the row kernel's plan (False: none)
        sizes = [f.size for f in files]
        self._many_blocks = None in sizes or sum(s or 0 for s in sizes) >= (
            PLAIN_MIN_BLOCKS * block_bytes
        )
        self.trailing = True  # an empty last header name may be a trailing delimiter
        self._helper: csvbackground.Helper | None = None  # compiling kernels beside the import
        self._small = False  # a small file: Python may stand in for kernels not compiled
        self._helped = False  # whether a helper was considered

    # -- the whole import, started over when a column widens ---------------------------------

    def run(self) -> Table:
        try:
            for _ in range(MAX_RESTARTS):
                try:
                    state = _State()
                    self._pass(state)
                except TrailingColumn:
                    if not all(f.restartable for f in self.files) or not self.trailing:
                        raise
                    self.pool.settle()
                    self.store.abort()
                    self.trailing = False  # the header's empty last name is a column
                    self.plan = self.types = self.table = None
                    self._plain = None
                    continue
                except _Widened as w:
                    if not all(f.restartable for f in self.files):
                        wanted = ", ".join(f"{x.column!r}: ..." for x in w.widen)
                        raise CSVError(
                            f"{w}; this source cannot be read twice: give the column's type "
                            f"with schema={{{wanted}}}",
                            file=w.file,
                        ) from None
                    assert self.types is not None
                    if all(x.new == self.types[x.column] for x in w.widen):  # a bug, not a loop
                        raise CSVError(f"{w}, which it has already", file=w.file) from None
                    self.pool.settle()  # the abandoned pass's tasks end before the next starts
                    self.store.abort()
                    self.table = None
                    self._plain = None  # worked out again for the wider types
                    for x in w.widen:
                        self.types[x.column] = x.new
                    continue
                break
            else:
                raise CSVError(f"types kept widening after {MAX_RESTARTS} passes")
            if self.table is None:
                if self.plan is None:
                    raise CSVError("no header and no rows", file=self.files[0].name)
                # a header and no rows: the table gets the columns (types from schema=, else
                # float64 as any column without a value), or is checked if it exists
                if self.types is None:
                    self._start(self.files[0], None)
                self._ensure_table()
            if state.skipped:
                shown = ", ".join(map(str, state.skipped_lines))
                warnings.warn(
                    f"skipped {state.skipped} ragged rows (first lines: {shown})",
                    CSVWarning,
                    stacklevel=3,
                )
            for name, seen in state.columns.items():
                if seen.rounded:  # a float64 column the caller fixed took integers beyond 2**53
                    line, text, _ = min(seen.rounded)
                    count = sum(n for _, _, n in seen.rounded)
                    warnings.warn(
                        f"column {name!r}: {count} integer{'s' * (count > 1)} rounded to "
                        f"float64, as its type asks (first: line {line}, {text!r})",
                        CSVWarning,
                        stacklevel=3,
                    )
            self.store.commit()
            return self.store[self.path]
        finally:
            self.pool.settle()
            if self._helper is not None:
                self._helper.stop()
            if self._small:
                csvjit.small_file(False)

    def _pass(self, state: _State) -> None:
        total = sum(f.size or 0 for f in self.files) or None
        bar = progress_bar(total, "B", f"import {self.path}", self.progress)
        try:
            done = 0
            for f in self.files:
                stream, consumed = f.open()
                try:
                    for _ in self._file(f, stream, state):
                        if self.show:  # the reading thread may hold the file's lock a while
                            bar.update(done + consumed() - bar.n)
                finally:
                    stream.close()  # a caller's file object stays open (see :mod:`.source`)
                done += f.size or 0
            bar.update(done - bar.n)
        finally:
            bar.close()

    # -- one file -----------------------------------------------------------------------------

    def _file(self, f: Input, stream: Any, state: _State) -> Iterator[None]:
        # the types are inferred from the first block: a source that cannot be read twice, so
        # cannot start over for a wider type, gets a first block as large as the others
        first = FIRST_BLOCK_BYTES if f.restartable else self.block_bytes
        blocks = utf8_blocks(stream, self.encoding, self.block_bytes, f.name, first)
        # The layout is sniffed from the file's first SNIFF_BYTES, whatever the block size. Read
        # beyond them, to know whether the sample is all of the file (the reading thread would
        # read that piece before the first block is handed on anyway).
        head: list[Piece] = []
        size = 0
        for piece in blocks:
            head.append(piece)
            size += len(piece)
            if size > SNIFF_BYTES:
                break
        sample = b"".join(p.data[:SNIFF_BYTES].tobytes() for p in head)[:SNIFF_BYTES]
        layout = self._layout(f, sample, final=size <= SNIFF_BYTES)
        if not self._helped:
            self._helped = True
            self._small = _rows_at_most(f, sample, compiling.SMALL)
            if self._small:
                csvjit.small_file(True)
            self._start_helper(sample, layout)
        del sample
        source = itertools.chain(head, blocks)
        del head
        header_pending = True
        self._line = 0  # physical lines before the next block to take its line numbers
        # A software pipeline: blocks convert in the pool while earlier ones are appended;
        # errors and widenings still surface in block order.
        pending: deque[_Batch | _PlainBatch] = deque()
        records = record_blocks(
            source, ord(layout.delimiter), self.opts.quotechar, self._comment,
            MAX_RECORD_BLOCKS * max(self.block_bytes, DEFAULT_BLOCK_BYTES),
        )  # fmt: skip
        for block in prefetched(records):
            if block.too_long:
                self._drain(pending, 0)
                raise CSVError(
                    f"a record longer than {len(block.buf):,} bytes (an unterminated quote?)",
                    file=f.name, line=self._line + 1,
                )  # fmt: skip
            plain = None if block.tok is not None or header_pending else self._plain_plan()
            if plain is not None:
                pending.append(self._submit_plain(f, block.buf, block.cr, plain, state))
            else:
                # its line numbers depend on every earlier block's line count
                self._drain(pending, 0)
                tok = block.tok or self._tokenize_whole(block.buf, layout)
                batch, header_pending = self._rows(
                    f, layout, block.buf, tok, self._line, header_pending, state
                )
                if batch is not None:
                    pending.append(batch)
                if tok.error != csvtokens.OK:
                    self._drain(pending, 0)
                    raise CSVError(
                        "an unterminated quote", file=f.name,
                        line=self._line + tok.error_line + 1,
                        text=bytes(block.buf[tok.error_pos : tok.error_pos + 60]).decode(
                            "utf-8", "replace"
                        ),
                    )  # fmt: skip
                self._line += tok.lines
            self._drain(pending, PIPELINE_DEPTH)
            yield None
            if block.final:
                self._drain(pending, 0)
                if header_pending and self.plan is None:
                    raise CSVError("an empty file", file=f.name)
                return

    def _start_helper(self, sample: bytes, layout: Layout) -> None:
        """On a machine whose kernel cache lacks the kernels this file likely needs, start a
        process compiling them beside the import (:mod:`colvault.kernels.csv.background`)."""
        missing = bool(self.opts.na_offsets is not None and len(self.opts.na_offsets) > 1)
        if not csvbackground.waiting() and not csvbackground.cold(
            csvbackground.kernels_for([{"number"}], missing)
        ):
            return  # the usual case: an earlier import cached the kernels every import calls
        kinds = column_kinds(
            sample.decode("utf-8", "replace"), layout, quotechar=self.quotechar,
            comment=self.comment, decimal=self.opts.decimal, thousands=self.opts.thousands,
            na_values=self.na_values,
        )  # fmt: skip
        self._helper = csvbackground.start(
            csvbackground.kernels_for(kinds, missing, few=self._small),
            precompile.__name__,
            [",".join(precompile.dtypes_for(set().union(*kinds)))],
        )

    def _layout(self, f: Input, sample: bytes, final: bool) -> Layout:
        layout = sniff(
            sample.decode("utf-8", "replace"),
            final=final,
            delimiter=self.delimiter if self.plan is None else self.plan.layout.delimiter,
            quotechar=self.quotechar,
            comment=self.comment,
            # the files of one import share the first one's header (or lack of one)
            header=self.header if self.plan is None else self.plan.layout.header,
            skiprows=self.skiprows,
            decimal=self.opts.decimal,
            thousands=self.opts.thousands,
            trailing=self.trailing,
            na_values=self.na_values,
        )
        if layout.guess and self.plan is None and self.trailing:  # once, not again on a restart
            warnings.warn(
                f"file {f.name}: the first row read as R's write.table header ({layout.guess})"
                if layout.rownames
                else f"file {f.name}: the first row read as a header ({layout.guess}); give "
                "header=False if it is data",
                CSVWarning,
                stacklevel=6,
            )
        return layout

    # -- rows of one block --------------------------------------------------------------------

    def _rows(
        self, f: Input, layout: Layout, buf: np.ndarray, tok: csvtokens.Tokens, line: int,
        header_pending: bool, state: _State,
    ) -> tuple[_Batch | None, bool]:  # fmt: skip
        """Start converting the block's rows: (the conversions, or None without rows; whether the
        file's header is still to come)."""
        nrows = tok.nrows
        row_line = tok.row_line[:nrows]  # physical lines within the block
        r0 = int(np.searchsorted(row_line, layout.skiprows - line)) if layout.skiprows else 0
        if header_pending and r0 < nrows:
            if layout.header:
                header_line = line + int(tok.row_line[r0]) + 1
                fields = row_text(buf, tok, r0, file=f.name, line=header_line)
                if layout.trailing and len(fields) > 1 and fields[-1] == "":
                    fields.pop()  # the header ends with a delimiter, as every line does
                if layout.rownames:
                    fields.insert(0, "")  # no name above R's row names
                self._check_header(f, layout, fields, header_line)
                r0 += 1
            elif self.plan is None:
                self._check_header(f, layout, list(layout.names), 1)
            header_pending = False
        if r0 >= nrows:
            return None, header_pending
        assert self.plan is not None
        plan = self.plan
        first = tok.row_first[r0:nrows]
        # every row has the header's width: its fields lie back to back, read as strided views
        uniform = csvtokens.uniform_width(tok.row_first[r0 : nrows + 1]) == plan.width
        if uniform:
            k, base = nrows - r0, int(first[0])

            def line_of(i: int) -> int:  # 1-based line of the block's i-th imported row
                return line + int(row_line[r0 + i]) + 1
        else:
            counts = tok.row_first[r0 + 1 : nrows + 1] - first
            rows = np.arange(r0, nrows)
            rows, first, bad_lines = without_ragged(
                plan, self.on_bad_lines == "error", f.name, buf, tok, rows, first, counts,
                row_line + line,
            )  # fmt: skip
            state.skipped += len(bad_lines)
            state.skipped_lines.extend(bad_lines[: 10 - len(state.skipped_lines)].tolist())
            if not len(rows):
                return None, header_pending
            k, base = len(rows), int(first[0])
            kept = rows

            def line_of(i: int) -> int:
                return line + int(row_line[kept[i]]) + 1

        nf = int(tok.row_first[nrows])
        escaped = bool((tok.flags[:nf] & csvtokens.ESCAPED).any())

        def column(j: int) -> Fields:
            if uniform:
                at: Any = slice(base + plan.positions[j], base + k * plan.width, plan.width)
            else:
                at = first + plan.positions[j]
            starts, ends, flags = tok.starts[at], tok.ends[at], tok.flags[at]
            return Fields(buf, starts, ends, flags, None, self.opts, escaped)

        if self.types is None:
            self._start(f, [column(j) for j in range(len(plan.names))])
        return self._convert(f, column, line_of, state), header_pending

    def _check_header(self, f: Input, layout: Layout, fields: list[str], line: int) -> None:
        from .sniff import unique_names

        names = unique_names(fields) if layout.header else tuple(fields)
        if self.plan is None:
            self.plan = make_plan(layout, names, self.usecols)
        elif names != self.plan.layout.names and layout.header:
            raise CSVError(
                f"the header differs from the first file's {list(self.plan.layout.names)}",
                file=f.name, line=line, text=",".join(fields),
            )  # fmt: skip

    # -- types, table, append -----------------------------------------------------------------

    def _start(self, f: Input, sample: list[Fields] | None) -> None:
        """Decide the column types from the first block with rows (``None``: the files have a
        header and no rows) and check the existing table's columns, if any."""
        assert self.plan is not None
        names = self.plan.names
        fixed = types_by_name(names, self.schema)
        existing = self.path in self.store
        if existing:
            table = self.store[self.path]
            if not isinstance(table, Table):
                raise CSVError(f"{self.path} is not a table")
            specs = table.column_specs()
            have = [c.name for c in specs]
            if sorted(have) != sorted(names):
                raise CSVError(
                    f"the file's columns {list(names)} are not those of table {self.path} {have}",
                    file=f.name,
                )
            for c in specs:
                fixed[c.name] = fixed_type("category" if c.is_category else c.dtype, c.nullable)
        types = {}
        for j, name in enumerate(names):
            given = fixed.get(name)
            if given is not None:
                types[name] = given
            elif sample is None:
                types[name] = ColumnType("empty")  # no value: float64, as an all-missing column
            else:
                types[name] = infer(sample[j], self.opts)
        self.types = types

    def _ensure_table(self) -> Table:
        if self.table is None:
            assert self.types is not None and self.plan is not None
            if self.path in self.store:
                node = self.store[self.path]
                assert isinstance(node, Table)
                self.table = node
            else:
                spec = {n: self.types[n].table_dtype() for n in self.plan.names}
                self.table = self.store.create_table(self.path, spec)
        return self.table

    def _convert(self, f: Input, column: Any, line_of: Any, state: _State) -> _Batch:
        assert self.types is not None and self.plan is not None
        names = self.plan.names
        types = self.types

        def one(j: int) -> np.ndarray:
            name = names[j]
            seen = state.columns.setdefault(name, ColumnState())
            return convert(name, types[name], column(j), self.opts, line_of, seen)

        return _Batch(f.name, names, [self.pool.submit(one, j) for j in range(len(names))])

    # -- plain blocks ---------------------------------------------------------------------

    def _plain_plan(self) -> RowKinds | None:
        """The row kernel's plan for this import's columns, or None when the general path must
        read every block (types not known yet, a column it does not parse, options it does not
        follow, an input of fewer than :data:`PLAIN_MIN_BLOCKS` blocks)."""
        if self.types is None or self.plan is None:
            return None
        if self._plain is None:
            plan = self.plan
            usable = not plan.layout.trailing and not self.opts.na_parses and self._many_blocks
            kinds = row_kinds(plan.width, plan.positions, plan.names, self.types, self.opts)
            self._plain = kinds if usable and kinds is not None else False
        return self._plain if isinstance(self._plain, RowKinds) else None

    def _submit_plain(
        self, f: Input, buf: np.ndarray, cr: bool, kinds: RowKinds, state: _State
    ) -> _PlainBatch:
        assert self.plan is not None and self.types is not None
        plan, types = self.plan, self.types
        fut = self.pool.submit(
            parse_plain, buf, ord(plan.layout.delimiter), self._comment, cr, kinds,
            plan.positions, plan.names, types, self.opts, state.columns,
        )  # fmt: skip
        return _PlainBatch(f, buf, fut, state)

    def _tokenize_whole(self, buf: np.ndarray, layout: Layout | None = None) -> csvtokens.Tokens:
        """Tokens of a block of whole records (a plain block, or what the row kernel left)."""
        delimiter = (layout or cast(Plan, self.plan).layout).delimiter
        return csvtokens.tokenize(buf, ord(delimiter), self.opts.quotechar, self._comment, True)

    def _drain(self, pending: deque[_Batch | _PlainBatch], keep: int) -> None:
        while len(pending) > keep:
            batch = pending.popleft()
            if isinstance(batch, _PlainBatch):
                self._finish_plain(batch)
            else:
                self._finish(batch)

    def _finish_plain(self, batch: _PlainBatch) -> None:
        """Append a plain block's parsed rows, then read what the kernel left of it the general
        way (all of it when a text conversion failed, to name the line)."""
        parsed = batch.future.result()
        buf = batch.buf
        if parsed.rows:
            self._ensure_table().append(parsed.arrays, copy=False)
            self._line += parsed.rows  # one line per record the kernel read
        if parsed.end < len(buf):
            assert self.plan is not None
            rest = buf[parsed.end :]
            tok = self._tokenize_whole(rest)
            layout = self.plan.layout
            general, _ = self._rows(batch.file, layout, rest, tok, self._line, False, batch.state)
            if general is not None:
                self._finish(general)
            self._line += tok.lines

    def _finish(self, batch: _Batch) -> None:
        """Append a converted block, or raise its first error or all its widenings."""
        arrays = {}
        errors: list[CSVError] = []
        widen: list[Widen] = []
        for name, fut in zip(batch.names, batch.futures, strict=True):
            try:
                arrays[name] = fut.result()
            except Widen as exc:
                widen.append(exc)
            except CSVError as exc:
                errors.append(exc)
        if errors:  # an error is final, whatever widening other columns need: the first line's
            err = min(errors, key=lambda e: e.line if e.line is not None else 1 << 62)
            raise err.in_file(batch.file) if err.file is None else err
        if widen:
            raise _Widened(widen, batch.file)
        self._ensure_table().append(arrays, copy=False)  # fresh arrays, never touched again


#: Blocks converting in the pool while the main thread appends the oldest: enough to keep the
#: pool's threads busy with plain blocks, each of which is one task.
PIPELINE_DEPTH = 3


class _Tasks:
    """The import's tasks in the store's worker pool, where its chunks are encoded too: with a
    pool of its own beside that one, twice as many threads took turns on the cores, each turn a
    thread switch. :meth:`settle` cancels the tasks not started and waits for the rest, so none
    outlives the import (or the pass that a wider type ends)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._live: weakref.WeakSet[Future[Any]] = weakref.WeakSet()  # a result let go is done

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut = self._pool.submit(fn, *args)
        self._live.add(fut)
        return fut

    def settle(self) -> None:
        live = list(self._live)
        for fut in live:
            fut.cancel()
        wait(live)


@dataclass
class _PlainBatch:
    """A plain block parsing in the pool."""

    file: Input
    buf: np.ndarray
    future: Future[Parsed]
    state: _State


@dataclass
class _Batch:
    """One block's column conversions, running in the pool."""

    file: str
    names: tuple[str, ...]
    futures: list[Future[np.ndarray]]


__all__ = ["CATEGORY", "DEFAULT_NA", "CSVWarning", "import_csv"]
