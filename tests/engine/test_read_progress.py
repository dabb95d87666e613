"""Whole-table reads with a progress bar (issue 13 item 3): ``Table.read``, ``to_pandas`` and
``describe`` take ``progress``; a bar changes nothing in what they return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import colvault
from colvault import progress

pd = pytest.importorskip("pandas")


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(progress.ENV, raising=False)
    n = 1050
    rng = np.random.default_rng(2)
    store = colvault.open(str(tmp_path / "s.colvault"), "w")
    t = store.create_table(
        "/t",
        {"x": "f8", "i": "i4", "site": "category", "cell": ("f4", (2,)), "t": "M8[s]"},
        chunk_rows=20,  # 53 chunks: four pieces of 16
    )
    t.append(
        {
            "x": rng.standard_normal(n),
            "i": np.arange(n, dtype=np.int32),
            "site": rng.choice(["n", "east", "south-west"], n),
            "cell": rng.standard_normal((n, 2)).astype(np.float32),
            "t": np.arange(n).astype("M8[s]"),
        }
    )
    store.commit()
    yield t
    store.close()


SLICES = [(None, None, None), (5, 999, None), (-300, None, 7), (None, None, -3), (40, 40, None)]


@pytest.mark.parametrize(("start", "stop", "step"), SLICES)
def test_read_with_a_bar_reads_the_same(
    table: Any, capsys: pytest.CaptureFixture[str], start: Any, stop: Any, step: Any
) -> None:
    plain = table.read(start, stop, step, progress=False)
    assert capsys.readouterr().err == ""
    shown = table.read(start, stop, step, progress=True)
    err = capsys.readouterr().err
    assert "read /t" in err and ("100%" in err or len(plain) == 0)
    assert shown.dtype == plain.dtype
    assert shown.tobytes() == plain.tobytes()
    some = table.read(start, stop, step, columns=["site", "x"], progress=True)
    assert some.tolist() == table.read(start, stop, step, columns=["site", "x"]).tolist()


def test_to_pandas_with_a_bar(table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    plain = table.to_pandas(progress=False)
    assert capsys.readouterr().err == ""
    shown = table.to_pandas(progress=True)
    assert "to_pandas /t" in capsys.readouterr().err
    pd.testing.assert_frame_equal(shown, plain)
    pd.testing.assert_frame_equal(
        table.to_pandas(["site", "i"], progress=True), table.to_pandas(["site", "i"])
    )


def test_no_bar_by_default_off_a_terminal(table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    table.read()
    table.to_pandas()
    table.describe()
    assert capsys.readouterr().err == ""


def test_environment_turns_bars_off(
    table: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(progress.ENV, "0")
    table.read(progress=True)
    table.to_pandas(progress=True)
    table.describe(progress=True)
    assert capsys.readouterr().err == ""


def test_auto_bar_in_a_fake_notebook(
    table: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "in_jupyter", lambda: True)
    monkeypatch.setattr(progress, "DELAY", 3600.0)
    table.read()  # shorter than the delay: nothing
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "DELAY", 0.0)  # as if it took longer
    table.read()
    assert "read /t" in capsys.readouterr().err
    table.describe()
    assert "describe /t" in capsys.readouterr().err
