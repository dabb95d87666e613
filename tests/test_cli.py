"""The command line: demo, info, verify, import-csv."""

from __future__ import annotations

import colvault
from colvault.cli import main


def test_demo_info_verify(tmp_path, capsys):
    path = str(tmp_path / "demo.colvault")
    assert main(["demo", "--path", path, "--rows", "300000", "--batch", "70000"]) == 0
    out = capsys.readouterr().out
    assert "300,000 rows" in out and "slice matches the generated data: True" in out
    assert "numeric columns" in out and "decimal" in out and "dict" in out
    assert main(["info", path]) == 0
    assert "/sensors/run1" in capsys.readouterr().out
    assert main(["verify", path]) == 0
    assert "0 damaged" in capsys.readouterr().out


def test_import_csv_command(tmp_path, capsys):
    import numpy as np

    import colvault

    a, b = tmp_path / "run 1.csv", tmp_path / "b.csv"
    a.write_text(
        "# lab export\nt;sensor;value\n2025-03-01T00:00:00Z;1;0,5\n2025-03-01 00:00:01;2;NA\n"
    )
    b.write_text("t;sensor;value\n2025-03-01T00:00:02+01:00;3;1,25\n")
    store = str(tmp_path / "lab.colvault")
    assert main(["import-csv", str(a), str(b), "--decimal", ",", "--no-progress", store]) == 0
    out = capsys.readouterr().out
    assert "imported 3 rows" in out and "/run_1" in out
    with colvault.open(store) as s:
        t = s["/run_1"]
        assert t.read()["sensor"].tolist() == [1, 2, 3]
        assert np.isnan(t.read()["value"][1]) and t.read()["value"][2] == 1.25
        assert t.read()["t"][2] == np.datetime64("2025-03-01T00:00:02") - np.timedelta64(1, "h")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3\n")
    assert main(["import-csv", str(bad), store + ":/bad", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "line 3" in err and "1 field where the header has 2" in err
    with colvault.open(store) as s:
        assert "/bad" not in s  # the failed import left nothing behind


def test_verify_of_a_store_whose_catalog_is_cut_short(tmp_path, capsys):
    store = tmp_path / "s.colvault"
    with colvault.open(store, "w") as s:
        s.create_table("/t", {"x": "f8"}).append({"x": [1.0]})
    catalog = store / "catalog.sqlite"
    catalog.write_bytes(catalog.read_bytes()[:2000])
    assert main(["verify", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the catalog of") and "is damaged" in err, err
