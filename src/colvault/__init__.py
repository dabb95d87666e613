"""colvault: a columnar numeric storage engine.

A store is a directory of groups, tables and arrays; column data live in blosc2-compressed chunks
in append-only segment files, indexed by a sqlite catalog that is also the commit point.

>>> import colvault, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "lab.colvault")
>>> with colvault.open(path, "w") as store:
...     t = store.create_table("/readings", {"sensor": "i4", "value": "f8"})
...     t.append([(1, 0.5), (2, 1.5)])
>>> with colvault.open(path) as store:
...     store["/readings"][1]
np.void((2, 1.5), dtype=[('sensor', '<i4'), ('value', '<f8')])
"""

from typing import TYPE_CHECKING

from .engine.array import Array
from .engine.nodes import Group, Node
from .engine.store import Store, open
from .engine.table import Cols, Column, Table
from .engine.verify import VerifyReport
from .errors import (
    CatalogError,
    ChecksumError,
    ColvaultError,
    CommitError,
    CSVError,
    CSVWarning,
    DiskError,
    LockError,
    NodeError,
    QueryError,
    ReadOnlyError,
    SchemaError,
    StoreClosedError,
    StoreNotFoundError,
    UnsafePickleError,
)
from .io import arrow as _arrow
from .io.pandas import to_pandas as _to_pandas
from .io.parquet import import_parquet
from .io.parquet import to_parquet as _to_parquet

Table.to_pandas = _to_pandas  # type: ignore[attr-defined]
Table.to_arrow = _arrow.to_arrow  # type: ignore[attr-defined]
Table.iter_batches = _arrow.iter_batches  # type: ignore[attr-defined]
Table.__arrow_c_stream__ = _arrow.arrow_c_stream  # type: ignore[attr-defined]
Table.to_parquet = _to_parquet  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from .io.csv.importer import import_csv
    from .io.hdf5 import export_hdf5, import_hdf5


def __getattr__(name: str) -> object:
    """``import_csv``, ``import_hdf5`` and ``export_hdf5`` are loaded on first use: the CSV
    kernels would add about 40 ms to every ``import colvault`` (a query process's cold start),
    h5py about 0.1 s."""
    if name == "import_csv":
        from .io.csv.importer import import_csv
        from .kernels import compiling

        compiling.watch()
        return import_csv
    if name == "import_hdf5":  # h5py takes about 0.1 s to import: only when asked
        from .io.hdf5 import import_hdf5

        return import_hdf5
    if name == "export_hdf5":  # h5py too
        from .io.hdf5 import export_hdf5

        return export_hdf5
    raise AttributeError(f"module 'colvault' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Array",
    "CSVError",
    "CSVWarning",
    "CatalogError",
    "ChecksumError",
    "Cols",
    "Column",
    "ColvaultError",
    "CommitError",
    "DiskError",
    "Group",
    "LockError",
    "Node",
    "NodeError",
    "QueryError",
    "ReadOnlyError",
    "SchemaError",
    "Store",
    "StoreClosedError",
    "StoreNotFoundError",
    "Table",
    "UnsafePickleError",
    "VerifyReport",
    "export_hdf5",
    "import_csv",
    "import_hdf5",
    "import_parquet",
    "open",
]
