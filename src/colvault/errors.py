"""One exception hierarchy for colvault.

Every error a caller can act on derives from :class:`ColvaultError`; each also derives from the
builtin exception a Python programmer would expect (``ValueError`` for bad input, ``LookupError``
for missing nodes), so generic ``except`` clauses keep working.
"""

from __future__ import annotations

import pickle


class ColvaultError(Exception):
    """Base class of every error colvault raises on purpose."""


class SchemaError(ColvaultError, ValueError):
    """Data or a schema that does not fit: wrong columns, lengths, dtypes or lossy casts."""


class QueryError(ColvaultError, ValueError):
    """A condition string that is not in the query language, or names what the table lacks."""


class CSVError(ColvaultError, ValueError):
    """A CSV file that cannot be imported as asked: a ragged row, a value that does not parse
    as its column's type, an unterminated quote, bytes that are not in the file's encoding.

    ``file``, ``line`` (1-based physical line), ``column`` (header name) and ``text`` (the
    offending field or line, shortened) say where; any of them may be None when unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
        text: str | None = None,
    ) -> None:
        self.message = message
        self.file, self.line, self.column, self.text = file, line, column, text
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file is not None else "",
                f"line {line}" if line is not None else "",
                f"column {column!r}" if column is not None else "",
            )
            if part
        )
        shown = f": {text[:80]!r}" if text is not None else ""
        super().__init__(f"{where}: {message}{shown}" if where else f"{message}{shown}")

    def in_file(self, file: str) -> CSVError:
        """The same error, naming ``file``."""
        return CSVError(self.message, file=file, line=self.line, column=self.column, text=self.text)


class CSVWarning(UserWarning):
    """Something an import did as asked that changed what the file says: rows skipped by
    ``on_bad_lines="skip"`` (how many, the first line numbers), or integers rounded to the
    float64 the schema asked for (how many, the first one)."""


class StoreNotFoundError(ColvaultError, FileNotFoundError):
    """No store at the path given to ``open`` with mode ``r`` or ``r+``."""


class NodeError(ColvaultError, LookupError):
    """A node path that is invalid, missing, already taken or of the wrong kind."""


class ReadOnlyError(ColvaultError):
    """A write on a store opened with ``mode="r"``."""


class LockError(ColvaultError):
    """Another process holds the store in a way that excludes this operation."""


class CommitError(ColvaultError, OSError):
    """A commit failed (an I/O error, a full disk); nothing of it was applied."""


class DiskError(ColvaultError, OSError):
    """The disk refused to let a store be read (full, or an I/O error); the store itself is not
    known to be damaged, and may open once space is freed."""


class CatalogError(ColvaultError):
    """The catalog (``catalog.sqlite``) is damaged: sqlite reports corruption, or a record
    in it does not decode. ``store`` names the store; nothing was changed by the failed call."""

    def __init__(self, store: str, detail: str) -> None:
        self.store = store
        self.detail = detail
        super().__init__(f"the catalog of {store} is damaged: {detail}")


class UnsafePickleError(ColvaultError, pickle.UnpicklingError):
    """A pickle in ``node.objects`` that colvault will not load: it names a global outside the
    allow-list, would rebuild something that can crash the reader (a dtype whose fields lie
    outside its items), would create far more than its size warrants, or is malformed. The
    message names the node, key, object and reason."""


class StoreClosedError(ColvaultError):
    """An operation on a store (or one of its nodes) after ``close()``."""


class ChecksumError(ColvaultError):
    """A chunk whose bytes are missing or do not match the crc32 recorded at commit.

    The attributes say where to look: ``store``, ``node``, ``column``, ``chunk`` (index within
    the column), ``stored`` and ``computed`` checksums (``computed`` is ``None`` when the bytes
    could not be read at all).
    """

    def __init__(
        self,
        store: str,
        node: str,
        column: str,
        chunk: int,
        stored: int,
        computed: int | None,
        detail: str = "",
    ) -> None:
        self.store = store
        self.node = node
        self.column = column
        self.chunk = chunk
        self.stored = stored
        self.computed = computed
        if computed is None:
            what = "bytes missing"
        elif computed == stored:  # the bytes are as written; what says how to read them is not
            what = f"crc32 {computed:#010x} matches"
        else:
            what = f"crc32 {computed:#010x} != stored {stored:#010x}"
        msg = f"chunk {chunk} of column {column!r} of {node} in {store} is damaged: {what}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
