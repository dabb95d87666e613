"""The helper process of a CSV import on a cold kernel cache, the table's side first:
``python -m colvault.io.csv.precompile DTYPES FOLDER PARENT KERNEL...``.

An import calls the table's kernels (zone maps, integer packing, decimals, dictionaries) last,
after the CSV kernels, so the helper (:mod:`colvault.kernels.csv.background`) compiles them early
(after the kernels it finishes while the import compiles the tokenizer): it appends a few
thousand rows of each column type the file likely has (``DTYPES``, comma separated) to a
scratch store, which writes them to Numba's cache, then compiles the other CSV kernels
``KERNEL...`` last first. (The table's kernels are not taken turns on with lock files: when the
import gets to one the helper has not finished, both compile it, which costs time, not
results.)
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ...engine.coded import Coded
from ...kernels.csv import background as csvbackground

#: Rows appended per sample, in chunks of CHUNK_ROWS: full chunks (encoded) and a short one.
ROWS = 5_000
CHUNK_ROWS = 1024


def dtypes_for(kinds: set[str]) -> list[str]:
    """The table dtypes an import likely creates for columns of ``kinds`` (see
    :func:`.sniff.column_kinds`)."""
    out = []
    if "number" in kinds:
        out.append("int64")
    if "float" in kinds:
        out.append("float64")
    if "date" in kinds:
        out.append("datetime64[ns]")
    if "bool" in kinds:
        out.append("bool")
    if "text" in kinds:
        out.append("category")
    return out


def _samples(dtype: str, rng: np.random.Generator) -> Iterator[Any]:
    """Values of ``dtype`` that take each encoding path a CSV column may take."""
    if dtype == "category":  # as the import hands them on: codes into the block's values
        yield Coded(rng.integers(0, 5, ROWS), np.array(["UA", "AA", "B6", "DL", "EV"]))
    elif dtype == "bool":
        yield rng.random(ROWS) < 0.3
    elif dtype == "float64":  # decimals packed to 1, 2 and 4 bytes
        for scale in (1, 100, 10_000):
            values = np.round(rng.random(ROWS) * scale, 2)
            values[::97] = np.nan
            yield values
    else:  # int64, datetime64[ns]: sorted (delta), and not (frame of reference, 1-4 bytes)
        yield np.arange(ROWS, dtype=np.int64).astype(dtype)
        for top in (200, 60_000, 100_000):
            yield rng.integers(0, top, ROWS).astype(dtype)


def warm_tables(dtypes: Sequence[str]) -> None:
    """Append samples of each of ``dtypes`` to a scratch store, compiling the table's kernels
    for them (into Numba's cache)."""
    from ...engine.store import open as open_store

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="colvault-helper-") as workdir:
        store = open_store(os.path.join(workdir, "warm.colvault"), "w")
        try:
            for i, dtype in enumerate(dtypes):
                table = store.create_table(f"/t{i}", {"x": dtype}, chunk_rows=CHUNK_ROWS)
                for values in _samples(dtype, rng):
                    table.append({"x": values})
                    store.commit()
        finally:
            store.close()


def between(before: Sequence[str]) -> Callable[[], None]:
    """The helper's work between kernels: ``before[0]`` the dtypes (comma separated) whose
    table kernels it compiles (:func:`warm_tables`)."""
    dtypes = [d for d in before[0].split(",") if d]
    os.environ["COLVAULT_FSYNC"] = "0"  # the helper's scratch store: nothing to keep
    return lambda: warm_tables(dtypes) if dtypes else None


def main(argv: Sequence[str]) -> None:
    """The helper: ``argv[0]`` the dtypes (comma separated), then :func:`csvbackground.main`'s
    arguments; the table's kernels are compiled where its list says."""
    csvbackground.main(argv[1:], between=between(argv[:1]))


if __name__ == "__main__":
    main(sys.argv[1:])
