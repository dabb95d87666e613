"""CSV import: ``import_csv`` (:mod:`.importer`) and the stages of its pipeline: sources,
sniffing, record blocks, plain blocks, column types, records, the compile helper's entry point.

``import_csv`` is loaded on first use (``colvault.io.csv.import_csv``): the helper process
runs :mod:`.precompile` without the importer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .importer import import_csv


def __getattr__(name: str) -> object:
    if name == "import_csv":
        from .importer import import_csv

        return import_csv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["import_csv"]
