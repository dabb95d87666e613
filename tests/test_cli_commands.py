"""The command line through subprocesses: each command's output, exit status and one-line errors.

One store, prepared in this process, is shared by the read-only commands; every subprocess
pays Python's and numpy's start-up, so the tests run few of them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import colvault


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``colvault ARGS`` in a fresh Python (stdout a pipe: no progress bars)."""
    return subprocess.run(
        [sys.executable, "-m", "colvault.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res.stdout


def fails(res: subprocess.CompletedProcess[str], status: int, *texts: str) -> str:
    """The command failed with ``status`` and said why in one line on stderr."""
    assert res.returncode == status, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for text in texts:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a table of every kind of column (missing values too) and an array."""
    path = tmp_path_factory.mktemp("cli") / "lab.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table(
            "/runs/r1",
            {
                "sensor": "i4",
                "value": "f8",
                "site": "category",
                "t": "M8[s]",
                "count": {"dtype": "i8", "nullable": True},
                "note": {"dtype": "U8", "nullable": True},
                "temp": "f4",
            },
        )
        t.append(
            {
                "sensor": [1, 2, 3, 4],
                "value": [0.5, np.nan, 2.5, 3.5],
                "site": ["Lyon", "Oslo", "Lyon", "Oslo"],
                "t": [
                    "2025-03-01T00:00",
                    "2025-03-01T00:01",
                    "2025-03-01T00:02",
                    "2025-03-01T00:03",
                ],
                "count": np.ma.MaskedArray([10, 20, 30, 40], [True, False, False, False]),
                "note": np.ma.MaskedArray(["a", "b", "c", "d"], [False, True, False, False]),
                "temp": np.array([19.769825, 1.1, 2.2, 3.3], "f4"),
            }
        )
        t.attrs["operator"] = "Ada"
        store.create_array("/runs/spectra", "f4", inner_shape=(3,)).append(np.ones((5, 3)))
        store.commit()
    return path


def test_info_text_shows_tree_rows_dtypes_sizes_and_zone_maps(lab):
    out = ok(run("info", str(lab)))
    lines = out.splitlines()
    assert lines[0] == str(lab)
    table = next(line for line in lines if "/runs/r1" in line)
    assert "table, 4 rows x 7 columns" in table and "zone maps on 5/7 columns" in table
    assert "256 B raw" in table and "B stored" in table
    assert any("/runs/spectra" in line and "5 x 3 float32" in line for line in lines)
    assert lines[lines.index(table) + 1].strip() == 'attrs: operator="Ada"'
    count = next(line for line in lines if line.split()[:1] == ["count"])
    assert "int64 (nullable)" in count and count.split()[-4] == "1"  # one missing value
    site = next(line for line in lines if line.split()[:1] == ["site"])
    assert "category" in site and " no " in site  # text has no zone map


def test_info_json_of_one_node(lab):
    info = json.loads(ok(run("info", f"{lab}:/runs/r1", "--json")))
    assert info["store"] == str(lab)
    [node] = info["nodes"]
    assert node["path"] == "/runs/r1" and node["kind"] == "table" and node["rows"] == 4
    assert node["shape"] == [4, 7] and node["zone_map_columns"] == 5
    assert node["attrs"] == {"operator": "Ada"}
    cols = {c["name"]: c for c in node["columns"]}
    assert cols["sensor"]["dtype"] == "int32" and cols["sensor"]["zone_map"] is True
    assert cols["sensor"]["raw_bytes"] == 16 and cols["sensor"]["stored_bytes"] > 0
    assert cols["count"]["nullable"] is True and cols["count"]["nulls"] == 1
    assert cols["site"]["dtype"] == "category" and cols["site"]["raw_bytes"] is None
    assert node["stored_bytes"] == sum(c["stored_bytes"] for c in node["columns"])


def test_info_errors(lab, tmp_path):
    fails(run("info", str(tmp_path / "none.colvault")), 1, "no store at", "none.colvault")
    fails(run("info", f"{lab}:/runs/nope"), 1, "no node /runs/nope")
    fails(run("info"), 2, "required")


def test_query_formats(lab):
    table = ok(run("query", f"{lab}:/runs/r1", "sensor >= 2", "--columns", "sensor,count,note"))
    assert table.splitlines()[0].split() == ["sensor", "count", "note"]
    assert [line.split() for line in table.splitlines()[1:]] == [
        ["2", "20", "<NA>"],
        ["3", "30", "c"],
        ["4", "40", "d"],
    ]
    text = ok(run("query", f"{lab}:/runs/r1", "sensor < 3", "--format", "csv"))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["sensor", "value", "site", "t", "count", "note", "temp"],
        ["1", "0.5", "Lyon", "2025-03-01T00:00:00", "", "a", "19.769825"],  # float32 text
        ["2", "nan", "Oslo", "2025-03-01T00:01:00", "20", "", "1.1"],
    ]
    records = json.loads(ok(run("query", f"{lab}:/runs/r1", 'site == "Oslo"', "--format", "json")))
    assert records == [
        {"sensor": 2, "value": None, "site": "Oslo", "t": "2025-03-01T00:01:00", "count": 20,
         "note": None, "temp": 1.1},
        {"sensor": 4, "value": 3.5, "site": "Oslo", "t": "2025-03-01T00:03:00", "count": 40,
         "note": "d", "temp": 3.3},
    ]  # fmt: skip


def test_query_limit_var_and_empty_result(lab):
    out = ok(run("query", f"{lab}:/runs/r1", "sensor > lo", "--var", "lo=1", "--limit", "2",
                 "--format", "json"))  # fmt: skip
    assert [r["sensor"] for r in json.loads(out)] == [2, 3]
    assert json.loads(ok(run("query", f"{lab}:/runs/r1", "sensor > 9", "--format", "json"))) == []
    empty = ok(run("query", f"{lab}:/runs/r1", "sensor > 9", "--columns", "sensor,site"))
    assert empty.split() == ["sensor", "site"]


def test_query_vars_are_numbers_dates_or_text(lab):
    """Only decimal numbers and ISO dates are parsed: words numpy reads as dates or floats
    (``today``, ``nan``) stay text."""
    table = f"{lab}:/runs/r1"

    def sensors(cond: str, *var: str) -> list[int]:
        args = [a for v in var for a in ("--var", v)]
        out = ok(run("query", table, cond, *args, "--columns", "sensor", "--format", "json"))
        return [r["sensor"] for r in json.loads(out)]

    assert sensors("t >= since", "since=2025-03-01T00:02") == [3, 4]
    assert sensors("t >= since", "since=2025-03-01 00:03") == [4]
    assert sensors("value < v", "v=2.6") == [1, 3]
    assert sensors("value < v", "v=-1e3") == []
    assert sensors("sensor < v", "v=1_000") == [1, 2, 3, 4]
    assert sensors("t >= since", "since=2025-03-01T00:02Z") == [3, 4]
    assert sensors("site == s", "s=Lyon") == [1, 3]
    assert sensors("site != s", "s=today") == [1, 2, 3, 4]  # text, not a date
    assert sensors("site == s", "s=nan") == []  # text, not NaN
    fails(run("query", table, "t >= d", "--var", "d=2025-13-45"), 1, "not a valid date")


def test_query_to_files(lab, tmp_path):
    out = tmp_path / "q.csv"
    assert "wrote 2 rows" in ok(run("query", f"{lab}:/runs/r1", "value > 1", "--format", "csv",
                                    "--out", str(out)))  # fmt: skip
    assert out.read_text().splitlines()[1].startswith("3,2.5,Lyon")
    fails(run("query", f"{lab}:/runs/r1", "value > 0", "--out", str(out)), 1, "exists")
    assert len(out.read_text().splitlines()) == 3  # the existing file is left as it was
    ok(run("query", f"{lab}:/runs/r1", "value > 0", "--format", "csv", "--out", str(out),
           "--overwrite"))  # fmt: skip
    assert len(out.read_text().splitlines()) == 4
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "q.parquet"
    ok(run("query", f"{lab}:/runs/r1", "sensor > 0", "--format", "parquet", "--out", str(target)))
    got = pq.read_table(target).to_pydict()
    assert got["sensor"] == [1, 2, 3, 4] and got["count"] == [None, 20, 30, 40]
    assert got["note"] == ["a", None, "c", "d"] and got["site"] == ["Lyon", "Oslo", "Lyon", "Oslo"]
    assert [f for f in os.listdir(tmp_path) if f.endswith(".part")] == []


def test_query_errors(lab, tmp_path):
    table = f"{lab}:/runs/r1"
    fails(run("query", f"{tmp_path}/none.colvault:/t", "x > 1"), 1, "no store at")
    fails(run("query", f"{lab}:/runs/nope", "x > 1"), 1, "no node /runs/nope")
    fails(run("query", f"{lab}:/runs/spectra", "x > 1"), 1, "/runs/spectra is an array")
    fails(run("query", str(lab), "x > 1"), 1, "STORE:/path")
    res = run("query", table, "sensor >>> 1")
    fails(res, 1, "syntax error")
    assert res.stdout == ""  # nothing written before the condition is known to be good
    fails(run("query", table, "nosuch > 1"), 1, "unknown name 'nosuch'", "/runs/r1")
    fails(run("query", table, "sensor > 1", "--columns", "sensor,nosuch"), 1, "nosuch")
    fails(run("query", table, "sensor > 1", "--format", "xml"), 2, "invalid choice: 'xml'")
    fails(run("query", table, "sensor > 1", "--format", "parquet"), 2, "needs --out")
    fails(run("query", table, "sensor > 1", "--limit", "-1"), 2, "--limit")
    fails(run("query", table, "sensor > lo", "--var", "lo"), 1, "NAME=VALUE")
    fails(run("query", table, "sensor > 1", "--out", f"{tmp_path}/no/q.csv"), 1, "no folder")


def test_import_csv_adds_rows_then_replaces(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("sensor,value\n1,0.5\n2,1.5\n")
    b.write_text("sensor,value\n3,2.5\n")
    store = tmp_path / "s.colvault"
    res = run("import-csv", f"{store}:/runs/a", str(a))
    out = ok(res)
    assert res.stderr == ""  # stdout is no terminal: no progress bar
    assert "imported 2 rows" in out
    out = ok(run("import-csv", f"{store}:/runs/a", str(b), "--quiet"))
    assert "added 1 row to /runs/a (now 3)" in out
    out = ok(run("import-csv", f"{store}:/runs/a", str(b), "--replace"))
    assert "imported 1 row " in out
    with colvault.open(store) as s:
        assert s["/runs/a"].read()["sensor"].tolist() == [3]
        assert s.keys() == ["/runs", "/runs/a"]  # no leftover of the swap
    bad = tmp_path / "bad.csv"
    bad.write_text("sensor,value\n4,x,9\n")
    fails(run("import-csv", f"{store}:/runs/a", str(bad), "--replace"), 1, "line 2")
    with colvault.open(store) as s:  # a failed replace leaves the table as it was
        assert s["/runs/a"].read()["sensor"].tolist() == [3]
        assert s.keys() == ["/runs", "/runs/a"]
    fails(run("import-csv", f"{store}:/runs/a", str(tmp_path / "none.csv")), 1, "no file")
    fails(run("import-csv", f"{store}:/runs", str(a)), 1, "/runs is a group, not a table")
    fails(run("import-csv", f"{store}:/runs/a"), 2, "CSV files")


def test_export_then_import_hdf5(lab, tmp_path):
    h5 = tmp_path / "lab.h5"
    out = ok(run("export-hdf5", str(lab), str(h5)))
    assert "wrote" in out and h5.exists()
    out = ok(run("import-hdf5", f"{tmp_path / 'part.colvault'}:/lab", str(h5), "--paths",
                 "/runs/spectra"))  # fmt: skip
    assert "/lab/runs/spectra  (array)  5 rows" in out and "/lab/runs/r1" not in out
    with colvault.open(tmp_path / "part.colvault") as s:
        assert s["/lab/runs/spectra"].shape == (5, 3)
    fails(run("export-hdf5", str(lab), str(h5)), 1, "exists", "--overwrite")
    ok(run("export-hdf5", f"{lab}:/runs/r1", str(h5), "--overwrite", "--compression", "none"))
    store = tmp_path / "back.colvault"
    out = ok(run("import-hdf5", str(store), str(h5)))
    assert "imported 1 node(s)" in out and "/r1  (table)  4 rows" in out
    with colvault.open(store) as s, colvault.open(lab) as original:
        got, want = s["/r1"], original["/runs/r1"]
        assert got.dtypes == want.dtypes
        assert str(got.read()) == str(want.read())  # NaN and missing values alike
    fails(run("import-hdf5", str(store), str(h5)), 1, "/r1 already exists")
    fails(run("import-hdf5", str(store), str(tmp_path / "none.h5")), 1, "no file")
    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("not hdf5")
    fails(run("import-hdf5", str(store), str(not_h5)), 1, "x.h5", "nothing was imported")
    fails(
        run("export-hdf5", str(tmp_path / "none.colvault"), str(tmp_path / "o.h5")), 1, "no store"
    )
    fails(run("export-hdf5", f"{lab}:/nope", str(tmp_path / "o.h5")), 1, "no node /nope")
    assert not (tmp_path / "o.h5").exists()


def test_verify_compact_and_damage(tmp_path):
    store = tmp_path / "s.colvault"
    with colvault.open(store, "w") as s:
        s.create_table("/a", {"x": "f8"}).append({"x": np.arange(1000.0)})
        s.create_table("/b", {"x": "f8"}).append({"x": np.arange(1000.0)})
        s.commit()
        s.remove("/b")
        s.expire(s.commit())  # /b's bytes are kept for history until expired
    assert "0 damaged" in ok(run("verify", str(store)))
    out = ok(run("compact", str(store)))
    assert "bytes of segments" in out
    fails(run("compact", str(tmp_path / "none")), 1, "no store")
    fails(run("verify", str(tmp_path / "none")), 1, "no store")
    segments = sorted(store.rglob("*.seg"), key=lambda p: p.stat().st_size)
    seg = segments[-1]
    data = bytearray(seg.read_bytes())
    data[-100] ^= 0xFF
    seg.write_bytes(bytes(data))
    res = run("verify", str(store))
    fails(res, 1, "damaged", str(store))
    assert "DAMAGE:" in res.stdout and "/a" in res.stdout


def test_usage_errors():
    fails(run("nosuch"), 2, "invalid choice: 'nosuch'")
    fails(run(), 2, "required")
    fails(run("info", "x", "--nosuch"), 2, "unrecognized arguments: --nosuch")


def test_demo_and_warmup(tmp_path):
    out = ok(run("demo", "--path", str(tmp_path / "d.colvault"), "--rows", "20000", "--quiet"))
    assert "slice matches the generated data: True" in out and "0 damaged" in out
    assert "!= numpy" not in out
    out = ok(run("warmup", "--processes", "1"))
    assert out.splitlines()[-1].startswith("done in")


def test_progress_only_for_a_terminal_and_not_when_quiet(monkeypatch):
    from colvault import cli

    args = cli.parser().parse_args(["info", "x"])
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert cli.progress_wanted(args) is False
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.progress_wanted(args) is None  # colvault.progress: a bar after a second
    assert cli.progress_wanted(cli.parser().parse_args(["info", "x", "--quiet"])) is False


def test_query_parquet_without_pyarrow_names_the_extra(lab, tmp_path):
    out = tmp_path / "q.parquet"
    hide = "import sys; sys.modules['pyarrow'] = None; from colvault.cli import main; "
    args = [f"{lab}:/runs/r1", "sensor > 0", "--format", "parquet", "--out", str(out)]
    res = subprocess.run(
        [sys.executable, "-c", hide + f"sys.exit(main(['query', *{args!r}]))"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    fails(res, 1, "needs pyarrow", "colvault[arrow]")
    assert not out.exists() and os.listdir(tmp_path) == []


def test_export_then_import_parquet(lab, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    whole, some = tmp_path / "r1.parquet", tmp_path / "some.parquet"
    assert "wrote 4 rows" in ok(run("export-parquet", f"{lab}:/runs/r1", str(whole)))
    fails(run("export-parquet", f"{lab}:/runs/r1", str(whole)), 1, "exists", "--overwrite")
    ok(run("export-parquet", f"{lab}:/runs/r1", str(some), "--where", "sensor > lo", "--var",
           "lo=2", "--columns", "sensor,count", "--compression", "none"))  # fmt: skip
    assert pq.read_table(some).to_pydict() == {"sensor": [3, 4], "count": [30, 40]}
    store = tmp_path / "back.colvault"
    assert "imported 4 rows" in ok(run("import-parquet", f"{store}:/r1", str(whole)))
    out = ok(run("import-parquet", f"{store}:/r1", str(whole), "--quiet"))
    assert "added 4 rows to /r1 (now 8)" in out
    assert "imported 4 rows" in ok(run("import-parquet", f"{store}:/r1", str(whole), "--replace"))
    with colvault.open(store) as s, colvault.open(lab) as original:
        assert s.keys() == ["/r1"]
        got, want = s["/r1"].read(), original["/runs/r1"].read()
        assert got["sensor"].tolist() == want["sensor"].tolist()
        assert got["count"].tolist() == want["count"].tolist()  # None where missing
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("not parquet")
    fails(run("import-parquet", f"{store}:/r1", str(not_parquet)), 1, "x.parquet", "Parquet")
    fails(run("import-parquet", f"{store}:/r1", str(tmp_path / "none.parquet")), 1, "no file")
    with colvault.open(store) as s:
        assert len(s["/r1"]) == 4  # failed imports changed nothing
    bad = tmp_path / "bad.parquet"
    fails(run("export-parquet", f"{lab}:/runs/r1", str(bad), "--where", "nosuch > 1"), 1, "nosuch")
    fails(run("export-parquet", f"{lab}:/runs/spectra", str(bad)), 1, "is an array")
    fails(run("export-parquet", f"{lab}:/runs/r1", f"{tmp_path}/no/x.parquet"), 1, "no folder")
    fails(run("export-parquet", f"{tmp_path}/none.colvault:/t", str(bad)), 1, "no store")
    assert not bad.exists() and not [f for f in os.listdir(tmp_path) if "tmp" in f]


def test_log_tag_as_of_and_expire(tmp_path):
    store = tmp_path / "s.colvault"
    with colvault.open(store, "w") as s:
        t = s.create_table("/t", {"x": "i8"})
        t.append({"x": np.arange(3)})
        first = s.commit("three rows")
        t.append({"x": np.arange(3, 5)})
        s.rename("/t", "/u")
        second = s.commit("two more, renamed")
    out = ok(run("log", str(store)))
    assert f"commit {second}" in out and "two more, renamed" in out
    assert "/u (table) renamed from /t, +2 rows" in out and "/t (table) created, +3 rows" in out
    assert out.index(f"commit {second}") < out.index(f"commit {first}")
    assert f"tagged commit {first} v1" in ok(run("tag", str(store), "v1", "--commit", str(first)))
    log = json.loads(ok(run("log", f"{store}:/t", "--json")))
    assert [c["id"] for c in log] == [second, first] and log[1]["tags"] == ["v1"]
    assert log[1]["changes"][0]["rows_added"] == 3
    info = json.loads(ok(run("info", f"{store}:/t", "--json", "--as-of", "v1")))
    assert info["nodes"][0]["rows"] == 3
    rows = ok(run("query", f"{store}:/t", "x >= 1", "--format", "csv", "--as-of", str(first)))
    assert rows.split() == ["x", "1", "2"]
    fails(run("info", str(store), "--as-of", "nope"), 1, "no tag 'nope'")
    fails(run("tag", str(store), "v1"), 1, "already has a tag 'v1'")
    fails(run("expire", str(store), "--before", "v1"), 1, "--before takes a commit id")
    assert "expired" in ok(run("expire", str(store), "--before", str(second)))
    assert f"commit {first}" in ok(run("log", str(store)))  # tagged: kept
    ok(run("tag", str(store), "v1", "--remove"))
    ok(run("expire", str(store), "--before", str(second)))
    fails(run("info", str(store), "--as-of", str(first)), 1, "was expired")
    ok(run("compact", str(store)))
    with colvault.open(store) as s:
        assert s["/u"].col("x").tolist() == [0, 1, 2, 3, 4] and s.verify().ok
