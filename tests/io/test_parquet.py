"""Parquet out of and into tables: round trips, globs, errors naming the file, and streaming
with memory that does not grow with the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import colvault

from ..engine._spawn import child_env
from .test_arrow import SCHEMA, _assert_equal, _fill, _plain

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

HERE = Path(__file__).resolve().parent


@pytest.fixture
def store(tmp_path):
    with colvault.open(str(tmp_path / "s.colvault"), "w") as s:
        yield s


@pytest.fixture
def table(store):
    t = store.create_table("/t", SCHEMA, chunk_rows=1024)
    _fill(t)
    store.commit()
    return t


def test_to_parquet_round_trip(store, table, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    got = pq.read_table(path)
    _assert_equal(got, table.read())
    back = colvault.import_parquet(str(path), store, "/back")
    _assert_equal(back.to_arrow(), table.read())
    assert back.dtypes["c"] == "category"
    assert back.column_specs(["ts"])[0].tz == "Europe/Paris"
    assert not store.has_pending  # one commit


def test_to_parquet_where_and_columns(table, tmp_path):
    path = tmp_path / "w.parquet"
    table.to_parquet(path, ["i", "nc"], where="(i > 10) & (i < 2000)", compression="snappy")
    _assert_equal(
        pq.read_table(path), table.read_where("(i > 10) & (i < 2000)", columns=["i", "nc"])
    )


def test_import_a_glob_and_append(store, table, tmp_path):
    for k, (a, b) in enumerate([(0, 1000), (1000, 2500), (2500, 3000)]):
        table.to_parquet(tmp_path / f"part{k}.parquet", where=f"(i >= {a}) & (i < {b})")
    t = colvault.import_parquet(str(tmp_path / "part*.parquet"), store, "/g")
    _assert_equal(t.to_arrow(), table.read())
    colvault.import_parquet([tmp_path / "part0.parquet"], store, "/g")  # appends
    assert len(t) == 4000


def test_a_bad_file_names_it_and_imports_nothing(store, table, tmp_path):
    table.to_parquet(tmp_path / "a.parquet")
    bad = tmp_path / "b.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(colvault.ColvaultError, match=r"b\.parquet"):
        colvault.import_parquet(str(tmp_path / "*.parquet"), store, "/x")
    assert "/x" not in store and not store.has_pending


def test_a_file_with_other_columns_names_it(store, table, tmp_path):
    table.to_parquet(tmp_path / "a.parquet")
    pq.write_table(pa.table({"z": [1]}), tmp_path / "b.parquet")
    with pytest.raises(colvault.ColvaultError, match=r"b\.parquet"):
        colvault.import_parquet(str(tmp_path / "*.parquet"), store, "/x")
    assert "/x" not in store


def test_a_truncated_file_names_it(store, table, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(colvault.ColvaultError, match=r"t\.parquet"):
        colvault.import_parquet(str(path), store, "/x")
    assert "/x" not in store


def test_unsupported_parquet_types_create_nothing(store, tmp_path):
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"ok": [1, 2], "tags": [["a"], ["b", "c"]]}), path)
    with pytest.raises(colvault.SchemaError, match="'tags'"):
        colvault.import_parquet(str(path), store, "/l")
    assert "/l" not in store


def test_no_match_and_pending_changes(store, table, tmp_path):
    with pytest.raises(colvault.ColvaultError, match="no file matches"):
        colvault.import_parquet(str(tmp_path / "*.parquet"), store, "/x")
    table.to_parquet(tmp_path / "a.parquet")
    table.append({name: table.read(stop=1)[name] for name in table.colnames})
    with pytest.raises(colvault.ColvaultError, match="pending"):
        colvault.import_parquet(str(tmp_path / "a.parquet"), store, "/x")
    assert store.has_pending  # the caller's work is left alone


def test_failed_export_leaves_no_file(table, tmp_path):
    path = tmp_path / "t.parquet"
    with pytest.raises(colvault.QueryError):
        table.to_parquet(path, where="nope > 1")
    assert list(tmp_path.glob("*parquet*")) == []


def test_round_trip_of_a_float_nan_column(store, tmp_path):
    t = store.create_table("/f", {"f": "f4"})
    t.append({"f": np.array([1.5, np.nan, -0.0], "f4")})
    store.commit()
    t.to_parquet(tmp_path / "f.parquet")
    back = colvault.import_parquet(str(tmp_path / "f.parquet"), store, "/f2")
    np.testing.assert_array_equal(back.col("f"), t.col("f"))
    assert _plain(pq.read_table(tmp_path / "f.parquet").column("f"))[0] == 1.5


# -- memory: streaming does not grow with the table --------------------------------------------

SMALL, LARGE = 1_000_000, 4_000_000  # 24 and 96 MB raw
MAX_GROWTH = 40_000_000  # a materialized 4M-row table adds about 72 MB over the 1M one


def _run(*args: object) -> str:
    env = child_env()
    env["COLVAULT_FSYNC"] = "0"  # durability is not what this test is about
    out = subprocess.run(
        [sys.executable, str(HERE / "_child_parquet_memory.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, f"_child_parquet_memory.py {args} failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def test_parquet_streaming_memory_does_not_grow_with_the_table(tmp_path):
    got = {}
    for rows in (SMALL, LARGE):
        store = tmp_path / f"s{rows}.colvault"
        assert _run("build", store, rows) == f"built {rows}"
        got[rows] = json.loads(
            _run("measure", store, tmp_path / f"{rows}.parquet", tmp_path / f"c{rows}.colvault")
        )
        assert got[rows]["rows"] == got[rows]["copied"] == rows
        assert got[rows]["samples"] > 10
    for key in ("export_growth", "import_growth"):
        growth = got[LARGE][key] - got[SMALL][key]
        assert growth < MAX_GROWTH, (
            f"{key}: {got[SMALL][key] / 1e6:.1f} MB for {SMALL:,} rows, "
            f"{got[LARGE][key] / 1e6:.1f} MB for {LARGE:,} rows (limit +{MAX_GROWTH / 1e6:.0f} MB)"
        )


def test_import_into_a_group_is_refused(store, table, tmp_path):
    table.to_parquet(tmp_path / "a.parquet")
    store.create_group("/grp")
    store.commit()
    with pytest.raises(colvault.ColvaultError, match="not a table"):
        colvault.import_parquet(str(tmp_path / "a.parquet"), store, "/grp")
