"""The transaction every import runs in (CSV, HDF5, Parquet).

Why one place: an import commits what it copies as one transaction, and must neither abort the
caller's own pending work nor leave a store it opened itself (from a path) open behind it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..engine.store import Store
from ..engine.store import open as open_store
from ..errors import ColvaultError


@contextmanager
def import_transaction(
    store: Store | str | os.PathLike[str], what: str, *, keep_open: bool = False
) -> Iterator[Store]:
    """The store ``what`` (the import's name) writes into: ``store``, or the store at that path
    opened with mode ``"a"``. A store with pending changes is refused before anything starts
    (they are the caller's to commit or abort). On any error the import's changes are aborted
    and a store opened here is closed; after success a store opened here is closed too, unless
    ``keep_open`` (the import hands it back, as a table's ``store``). The import commits."""
    opened = not isinstance(store, Store)
    target = open_store(os.fspath(store), "a") if not isinstance(store, Store) else store
    if target.has_pending:
        raise ColvaultError(
            f"the store has pending changes: commit() or abort() them first ({what} commits "
            "what it imports as one transaction)"
        )
    try:
        yield target
    except BaseException:
        if not target.closed:
            target.abort()
            if opened:
                target.close()
        raise
    if opened and not keep_open and not target.closed:
        target.close()
