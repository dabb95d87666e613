"""Dask collections over tables and arrays: the same rows as read_where, one snapshot whatever
commits (and compactions) land meanwhile, and workers that never open the catalog."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import colvault
from colvault import QueryError
from colvault.engine import leases
from colvault.io.dask import to_dask_array, to_dask_dataframe

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

SCHEMA = {
    "t": "M8[s]",
    "value": "f8",
    "k": {"dtype": "i4", "nullable": True},
    "site": "category",
}


def rows(n: int, start: int = 0) -> dict:
    i = np.arange(start, start + n)
    return {
        "t": i.astype("M8[s]"),
        "value": (i * 7919 % 1000) * 0.5,
        "k": np.ma.MaskedArray(i.astype("i4"), i % 7 == 0),
        "site": np.array(["a", "b", "c"])[i % 3],
    }


def make(path: str, n: int = 20_500, chunk_rows: int = 1000) -> None:
    with colvault.open(path, "w") as s:
        t = s.create_table("/t", SCHEMA, chunk_rows=chunk_rows)
        t.append(rows(n))
        s.commit()


@pytest.fixture
def path(tmp_path):
    p = str(tmp_path / "s.colvault")
    make(p)
    return p


def expected_frame(table, cond=None, env=None, columns=None) -> pd.DataFrame:
    """What the single-process reader gives, as pandas, indexed by row number."""
    frame = table.to_pandas(columns, where=cond, condvars=env)
    rows_ = table.get_where_list(cond, env) if cond else np.arange(len(table))
    frame.index = pd.Index(rows_, dtype=np.int64)
    return frame


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.copy()
    for name in got.columns:
        if isinstance(got[name].dtype, pd.CategoricalDtype):
            got[name] = got[name].astype(str)
            want = want.assign(**{name: want[name].astype(str)})
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_index_type=False)


@pytest.mark.parametrize("cond", [None, "(value > 100) & (value < 300)", "isna(k)", "value > 1e9"])
def test_dataframe_equals_read_where(path, cond):
    with colvault.open(path) as s:
        t = s["/t"]
        ddf = to_dask_dataframe(t, where=cond, chunks_per_partition=3, index=None, lease=0)
        got = ddf.compute(scheduler="sync")
        same(got, expected_frame(t, cond))
        if cond == "value > 1e9":
            assert len(got) == 0


def test_zone_maps_prune_partitions(tmp_path):
    p = str(tmp_path / "s.colvault")
    with colvault.open(p, "w") as s:
        t = s.create_table("/t", {"x": "i8"}, chunk_rows=100)
        t.append({"x": np.arange(10_000)})
        s.commit()
        ddf = to_dask_dataframe(t, where="(x >= 2050) & (x < 2420)", chunks_per_partition=1)
        assert ddf.npartitions == 5  # chunks 20..24; the other 95 get no task
        assert np.array_equal(ddf.compute()["x"].to_numpy(), np.arange(2050, 2420))
        assert ddf.divisions == (2000, 2100, 2200, 2300, 2400, 2499)


def test_sorted_datetime_index_has_divisions_and_loc_prunes(path):
    with colvault.open(path) as s:
        t = s["/t"]
        ddf = to_dask_dataframe(t, columns=["value", "k"], chunks_per_partition=2, lease=0)
        assert ddf.index.name == "t" and ddf.known_divisions
        assert ddf.npartitions == 11
        assert ddf.divisions[0] == pd.Timestamp(0, unit="s")
        assert ddf.divisions[-1] == pd.Timestamp(20_499, unit="s")
        lo, hi = pd.Timestamp(4500, unit="s"), pd.Timestamp(6200, unit="s")
        part = ddf.loc[lo:hi]
        assert part.npartitions == 2  # rows 4000..7999: two partitions of the eleven
        got = part.compute()
        want = t.to_pandas(["t", "value", "k"]).set_index("t").loc[lo:hi]
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_divisions_never_split_equal_index_values(tmp_path):
    """Chunks cut inside a run of equal values: a partition ends only where the value changes,
    so ``loc`` of a repeated value finds every row."""
    p = str(tmp_path / "s.colvault")
    k = np.array([1, 2, 2, 2, 2, 3, 3, 3, 4, 5])
    with colvault.open(p, "w") as s:
        t = s.create_table("/t", {"k": "i8", "v": "f8"}, chunk_rows=2)
        t.append({"k": k, "v": np.arange(10.0)})
        s.commit()
        ddf = to_dask_dataframe(t, index="k", chunks_per_partition=1, lease=0)
        assert ddf.known_divisions and ddf.divisions == (
            1,
            4,
            5,
        )  # chunks [1 2][2 2][2 3][3 3][4 5]
        for value in (2, 3):
            got = ddf.loc[value].compute()["v"].to_numpy()
            assert np.array_equal(got, np.flatnonzero(k == value).astype(float))
        # a gap left by the zone maps between equal values: no divisions rather than wrong ones
        gap = to_dask_dataframe(t, where="(v < 2) | (v > 3)", index="k", chunks_per_partition=1)
        assert np.array_equal(gap.loc[2].compute()["v"].to_numpy(), [1.0, 4.0])


def test_a_timedelta_index(tmp_path):
    p = str(tmp_path / "s.colvault")
    with colvault.open(p, "w") as s:
        t = s.create_table("/t", {"d": "m8[s]", "v": "f8"}, chunk_rows=3)
        t.append({"d": np.arange(9).astype("m8[s]"), "v": np.arange(9.0)})
        s.commit()
        ddf = to_dask_dataframe(t, index="d", chunks_per_partition=1, lease=0)
        assert ddf.divisions[0] == pd.Timedelta(0, "s")
        got = ddf.loc[pd.Timedelta(2, "s") : pd.Timedelta(4, "s")].compute()
        assert list(got["v"]) == [2.0, 3.0, 4.0]


def test_columns_projection_and_unknown_names(path):
    with colvault.open(path) as s:
        t = s["/t"]
        ddf = to_dask_dataframe(t, index=None, lease=0)
        assert list(ddf[["value"]].compute().columns) == ["value"]
        with pytest.raises(colvault.SchemaError, match="no column 'nope'"):
            to_dask_dataframe(t, columns=["nope"], lease=0)
        with pytest.raises(QueryError, match="unknown name 'nope'"):
            to_dask_dataframe(t, where="nope > 1", lease=0)
        with pytest.raises(ValueError, match="chunks_per_partition"):
            to_dask_dataframe(t, chunks_per_partition=0, lease=0)
        with pytest.raises(ValueError, match="chunks_per_block"):
            to_dask_array(t.cols.value, chunks_per_block=0, lease=0)
        for bad in (-1, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="lease must be a finite number"):
                to_dask_dataframe(t, lease=bad)


def test_an_empty_table(tmp_path):
    p = str(tmp_path / "s.colvault")
    with colvault.open(p, "w") as s:
        t = s.create_table("/t", SCHEMA)
        s.commit()
        got = to_dask_dataframe(t, index=None).compute()
        assert len(got) == 0 and list(got.columns) == list(SCHEMA)
        assert to_dask_array(t.cols.value).compute().shape == (0,)
        assert not os.path.isdir(os.path.join(p, leases.LEASES))  # nothing to hold


def test_a_collection_takes_a_lease_on_its_segments(path):
    with colvault.open(path) as s:
        t = s["/t"]
        to_dask_dataframe(t, lease=60)
        assert leases.held(path) == set(t.detached().segments)


def test_arrays_and_columns(tmp_path):
    p = str(tmp_path / "s.colvault")
    with colvault.open(p, "w") as s:
        a = s.create_array("/a", "f4", inner_shape=(3,), chunk_rows=100)
        cells = np.arange(3_050 * 3, dtype="f4").reshape(3_050, 3)
        a.append(cells)
        t = s.create_table("/t", SCHEMA, chunk_rows=1000)
        t.append(rows(2_500))
        s.commit()
        x = to_dask_array(a, chunks_per_block=4, lease=0)
        assert x.chunks == ((400,) * 7 + (250,), (3,))
        assert np.array_equal(x.compute(), cells)
        assert float(x[1000:2000, 1].sum().compute()) == float(cells[1000:2000, 1].sum())
        k = to_dask_array(t.cols.k, chunks_per_block=1, lease=0).compute()
        want = t.cols.k[:]
        assert np.array_equal(k.mask, want.mask) and np.array_equal(k.data, want.data)
        sites = to_dask_array(t.cols.site, lease=0).compute()
        assert sites.dtype == object and list(sites) == list(t.cols.site[:])
        with pytest.raises(TypeError, match="an Array or a table column"):
            to_dask_array(t)


# -- a real cluster: two worker processes ---------------------------------------------------


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        yield c


def slow(frame: pd.DataFrame) -> pd.DataFrame:
    """Spread the partitions' reads over a second or two (a commit lands among them)."""
    import time

    time.sleep(0.3)
    return frame


def test_cluster_results_equal_read_where(client, path):
    cond = "(value > 100) & (value < 300) | isna(k)"
    with colvault.open(path) as s:
        t = s["/t"]
        ddf = to_dask_dataframe(t, where=cond, chunks_per_partition=2, index=None, lease=0)
        same(client.compute(ddf).result(), expected_frame(t, cond))
        total = to_dask_array(t.cols.value, chunks_per_block=3, lease=0).sum()
        assert float(client.compute(total).result()) == float(t.cols.value[:].sum())


def test_cluster_commit_and_compact_mid_computation(client, path):
    """A writer appends and commits, then compacts (rewriting the table into new segments),
    while the workers read: the result is the snapshot the graph was built from."""
    cond = "value < 250"
    with colvault.open(path, "a") as s:
        t = s["/t"]
        want = expected_frame(t, cond)
        ddf = to_dask_dataframe(t, where=cond, chunks_per_partition=1, index=None)
        future = client.compute(ddf.map_partitions(slow))
        t.append(rows(3_000, 20_500))
        s.expire(s.commit())  # else the old chunks stay for history, and no segment moves
        report = s.compact()
        assert report.rewritten == ("/t",) and report.files_leased > 0
        assert not future.done()  # the commit and compaction landed mid-computation
        same(future.result(), want)
        assert len(t.read_where(cond)) > len(want)


def test_cluster_workers_never_open_the_catalog(client, path):
    with colvault.open(path) as s:
        t = s["/t"]
        want = expected_frame(t, "k > 5")
        ddf = to_dask_dataframe(t, where="k > 5", chunks_per_partition=2, index=None, lease=0)
    catalog = os.path.join(path, "catalog.sqlite")
    os.rename(catalog, catalog + ".away")  # no reader can open it now
    try:
        got = client.compute(ddf).result()
    finally:
        os.rename(catalog + ".away", catalog)
    same(got, want)


def test_cluster_to_colvault_commits_every_partition_at_once(client, tmp_path):
    import dask.dataframe as dd

    from colvault.io.dask import to_colvault

    frame = pd.DataFrame(
        {"x": np.arange(10_000, dtype="i8"), "y": np.arange(10_000) * 0.5,
         "s": pd.Categorical([f"k{i % 4}" for i in range(10_000)])}
    )  # fmt: skip
    ddf = dd.from_pandas(frame, npartitions=5)
    path = str(tmp_path / "w.colvault")
    with colvault.open(path, "w") as store:
        first = store.commit()
    commit = to_colvault(ddf, path, "/t", message="from dask")
    with colvault.open(path) as store:
        t = store["/t"]
        got = t.to_pandas()
        assert got["x"].tolist() == frame["x"].tolist() and got["y"].equals(frame["y"])
        assert got["s"].astype(str).tolist() == frame["s"].astype(str).tolist()
        log = store.history(limit=2)
        assert log[0].id == commit and log[0].message == "from dask" and log[1].id > first
        assert log[0].changes[0].rows_added == 10_000  # one commit for all five partitions
        assert store.verify().ok


def fail_on_third(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) and int(frame["x"].iloc[0]) == 4_000:
        raise RuntimeError("partition 3 fails")
    return frame


def test_cluster_to_colvault_failed_partition_leaves_the_table_as_it_was(client, tmp_path):
    import dask.dataframe as dd

    from colvault.io.dask import to_colvault

    frame = pd.DataFrame({"x": np.arange(10_000, dtype="i8"), "y": np.zeros(10_000)})
    ddf = dd.from_pandas(frame, npartitions=5).map_partitions(fail_on_third)
    path = str(tmp_path / "w.colvault")
    with colvault.open(path, "w") as store:
        store.create_table("/t", {"x": "i8", "y": "f8"}).append({"x": [-1], "y": [0.0]})
    with pytest.raises(RuntimeError, match="partition 3 fails"):
        to_colvault(ddf, path, "/t")
    with colvault.open(path, "a") as store:
        assert store["/t"].col("x").tolist() == [-1] and store.discard_staged() == 0
        store.compact()  # the staged partitions' bytes go
        assert store.verify().ok and store.verify().info == []


def test_cluster_reads_a_table_as_of_a_commit(client, path):
    """The graph of a table opened as_of a commit carries that commit's manifest rows: the
    workers read what the commit saw, though later commits changed the table."""
    cond = "value < 250"
    with colvault.open(path, "a") as s:
        commit = s.commit()  # nothing pending: the last commit's id
        want = expected_frame(s["/t"], cond)
        s["/t"].delete_where("value < 100")
        s["/t"].append(rows(500, 90_000))
        s.commit()
    with colvault.open(path, as_of=commit) as past:
        ddf = to_dask_dataframe(past["/t"], where=cond, chunks_per_partition=1, index=None)
        same(client.compute(ddf).result(), want)
