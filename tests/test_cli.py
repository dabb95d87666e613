"""The command line: demo, info, verify."""

from __future__ import annotations

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
