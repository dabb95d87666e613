"""One definition of each benchmark query per tool, shared by asv (``bench_query``) and ``compare``.

The queries, on the benchmark table (``colvault.benchdata``):

- ``select``: the rows of :data:`COND` (about 3.5 % of them), all four columns materialized;
- ``count``: how many rows satisfy :data:`COND`;
- ``t_range``: 0.1 % of the rows, a range of the sorted ``t`` column in the middle of the table
  (:func:`t_bounds` gives its bounds), all columns;
- ``stats``: count, min, max, sum, mean and std (ddof 0) of ``value`` over the rows of
  :data:`COND`.

Each tool answers them through a :class:`Queries` object opened on what it reads: a store built by
the tool's ``writers.WRITERS`` entry (colvault, PyTables, DuckDB), or the columns themselves
(numpy, in RAM). Opening is not part of any query: ``compare``'s cold-start figures time it, in
fresh processes running :attr:`QueryTool.cold_start`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .writers import BATCH_ROWS, TABLE, WRITERS, importable

#: The selective condition of ``select``, ``count`` and ``stats``.
COND = "(value > 10) & (value < 20.5) & (temp < 20)"
SQL_COND = "value > 10 AND value < 20.5 AND temp < 20"
#: :data:`COND`'s columns with other operators: another kernel (kernels are compiled once per
#: expression *shape*, constants are arguments), so a process that ran it has compiled everything
#: :data:`COND` needs but :data:`COND`'s own kernel.
COND_OTHER_SHAPE = "(value >= 10) & (value <= 20.5) & (temp <= 20)"
#: ``t_range``'s condition; ``lo`` and ``hi`` are condvars (datetime64[ns]; int64 in PyTables).
TIME_COND = "(t >= lo) & (t < hi)"
STATS_COLUMN = "value"
#: The statistics every tool gives for ``stats``, in colvault's names.
STATS = ("count", "min", "max", "sum", "mean", "std")


def t_bounds(t: np.ndarray) -> tuple[np.datetime64, np.datetime64]:
    """``[lo, hi)`` holding 0.1 % of the rows of the sorted column ``t``, around its middle."""
    n = len(t)
    k = max(1, n // 1000)
    first = max(0, n // 2 - k // 2)
    stop = min(first + k, n - 1)
    return t[first], t[stop]


def n_rows(result: Any) -> int:
    """Rows of a materialized answer: a structured array or a dict of columns."""
    if isinstance(result, dict):
        return len(next(iter(result.values())))
    return len(result)


class Queries:
    """The queries of one tool on one table; subclasses implement them."""

    def close(self) -> None:
        pass

    def select(self) -> Any:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def t_range(self, lo: np.datetime64, hi: np.datetime64) -> Any:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError


class ColvaultQueries(Queries):
    def __init__(self, path: str) -> None:
        import colvault

        self.store = colvault.open(path, "r")
        self.table = self.store["/" + TABLE]

    def close(self) -> None:
        self.store.close()

    def select(self) -> np.ndarray:
        return self.table.read_where(COND)

    def count(self) -> int:
        return self.table.count_where(COND)

    def t_range(self, lo: np.datetime64, hi: np.datetime64) -> np.ndarray:
        return self.table.read_where(TIME_COND, {"lo": lo, "hi": hi})

    def stats(self) -> dict[str, Any]:
        return self.table.stats(STATS_COLUMN, where=COND)


def _numpy_stats(values: np.ndarray) -> dict[str, Any]:
    nan_count = int(np.isnan(values).sum())
    return {
        "count": len(values) - nan_count,
        "nan_count": nan_count,
        "min": np.nanmin(values),
        "max": np.nanmax(values),
        "sum": np.nansum(values),
        "mean": np.nanmean(values),
        "std": np.nanstd(values),
    }


class PytablesQueries(Queries):
    """``t`` is an int64 column there (``writers.PYTABLES_DTYPE``): ranges compare int64 views.

    ``count`` has two ways (:attr:`COUNTS`); ``compare`` times both once and keeps the faster in
    :attr:`count_way`.
    """

    COUNTS: ClassVar[dict[str, Callable[[Any], int]]] = {
        "len(get_where_list)": lambda table: len(table.get_where_list(COND)),
        "sum(1 for _ in where)": lambda table: sum(1 for _ in table.where(COND)),
    }
    count_way = "len(get_where_list)"

    def __init__(self, path: str) -> None:
        import tables

        self.h5 = tables.open_file(path, "r")
        self.table = self.h5.get_node("/" + TABLE)

    def close(self) -> None:
        self.h5.close()

    def select(self) -> np.ndarray:
        return self.table.read_where(COND)

    def count(self) -> int:
        return self.COUNTS[self.count_way](self.table)

    def t_range(self, lo: np.datetime64, hi: np.datetime64) -> np.ndarray:
        bounds = {"lo": int(lo.view(np.int64)), "hi": int(hi.view(np.int64))}
        return self.table.read_where(TIME_COND, bounds)

    def stats(self) -> dict[str, Any]:
        return _numpy_stats(self.table.read_where(COND, field=STATS_COLUMN))


class NumpyQueries(Queries):
    """The columns in RAM: a boolean mask, then fancy indexing of every column."""

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        self.data = data

    def _mask(self) -> np.ndarray:
        d = self.data
        return (d["value"] > 10) & (d["value"] < 20.5) & (d["temp"] < 20)

    def _rows(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {name: column[mask] for name, column in self.data.items()}

    def select(self) -> dict[str, np.ndarray]:
        return self._rows(self._mask())

    def count(self) -> int:
        return int(self._mask().sum())

    def t_range(self, lo: np.datetime64, hi: np.datetime64) -> dict[str, np.ndarray]:
        t = self.data["t"]
        return self._rows((t >= lo) & (t < hi))

    def stats(self) -> dict[str, Any]:
        return _numpy_stats(self.data[STATS_COLUMN][self._mask()])


def _timestamp(value: np.datetime64) -> str:
    return f"TIMESTAMP_NS '{np.datetime_as_string(value, unit='ns')}'"


class DuckdbQueries(Queries):
    """A read-only connection to the native table; every answer is fetched with ``fetchnumpy``."""

    def __init__(self, path: str) -> None:
        import duckdb

        self.con = duckdb.connect(path, read_only=True)

    def close(self) -> None:
        self.con.close()

    def _fetch(self, sql: str) -> dict[str, np.ndarray]:
        return self.con.execute(sql).fetchnumpy()

    def select(self) -> dict[str, np.ndarray]:
        return self._fetch(f"SELECT * FROM {TABLE} WHERE {SQL_COND}")

    def count(self) -> int:
        return int(self._fetch(f"SELECT count(*) AS n FROM {TABLE} WHERE {SQL_COND}")["n"][0])

    def t_range(self, lo: np.datetime64, hi: np.datetime64) -> dict[str, np.ndarray]:
        where = f"t >= {_timestamp(lo)} AND t < {_timestamp(hi)}"
        return self._fetch(f"SELECT * FROM {TABLE} WHERE {where}")

    def stats(self) -> dict[str, Any]:
        c = STATS_COLUMN
        got = self._fetch(
            f'SELECT count({c}) AS "count", min({c}) AS "min", max({c}) AS "max", '
            f'sum({c}) AS "sum", avg({c}) AS "mean", stddev_pop({c}) AS "std" '
            f"FROM {TABLE} WHERE {SQL_COND}"
        )
        return {k: v[0] for k, v in got.items()}


# -- cold start ----------------------------------------------------------------------------------

#: Child-process programs for ``compare``'s cold start: import the tool, open the store given as
#: ``argv[1]``, materialize the rows of the condition ``argv[2]``, print how many.
_COLD_COLVAULT = f"""
import sys, colvault
with colvault.open(sys.argv[1], "r") as store:
    print(len(store["/{TABLE}"].read_where(sys.argv[2])))
"""
_COLD_PYTABLES = f"""
import sys, tables
with tables.open_file(sys.argv[1], "r") as h5:
    print(len(h5.get_node("/{TABLE}").read_where(sys.argv[2])))
"""
_COLD_DUCKDB = f"""
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(len(con.execute(f"SELECT * FROM {TABLE} WHERE {{sys.argv[2]}}").fetchnumpy()["t"]))
con.close()
"""


# -- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryTool:
    name: str
    module: str  # import name; the tool is skipped when it is missing
    queries: Callable[[Any], Queries]  # opens what ``build`` gave
    writer: str | None  # the ``writers.WRITERS`` entry that builds its store; None: in RAM
    cold_start: str | None = None  # program of a fresh process: open, one ``select``
    cold_cond: str = COND  # the condition in the tool's language

    @property
    def available(self) -> bool:
        return importable(self.module)

    def build(self, data: dict[str, np.ndarray], workdir: str) -> Any:
        """The store of ``data`` in ``workdir`` (bulk append, as the append job does), or
        ``data`` itself for an in-RAM tool."""
        if self.writer is None:
            return data
        writer = WRITERS[self.writer]
        n = len(next(iter(data.values())))
        return writer.write(writer.prepare(data, BATCH_ROWS), workdir, n)


QUERY_TOOLS = {
    q.name: q
    for q in (
        QueryTool("colvault", "colvault", ColvaultQueries, "colvault", _COLD_COLVAULT),
        QueryTool("pytables-128k", "tables", PytablesQueries, "pytables-128k", _COLD_PYTABLES),
        QueryTool("pytables", "tables", PytablesQueries, "pytables", _COLD_PYTABLES),
        QueryTool("numpy", "numpy", NumpyQueries, None),
        QueryTool("duckdb", "duckdb", DuckdbQueries, "duckdb", _COLD_DUCKDB, SQL_COND),
    )
}
