"""The notebooks in notebooks/ run top to bottom, show their plots and compute what they say.

Each notebook is executed by nbclient in a fresh kernel of this interpreter, in a temporary
working directory, with ``COLVAULT_NOTEBOOK_SMALL=1`` (the first code cell of every notebook
reads it and picks small sizes) and ``MPLBACKEND=Agg`` (no GUI anywhere; the notebooks select
``%matplotlib inline``, which is what makes their figures image/png outputs). The last cell of
each notebook prints ``SUMMARY {json}``, which the checks below read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TIMEOUT = 120  # seconds per cell
EXPECTED = ["from_pytables.ipynb", "out_of_core.ipynb", "quickstart.ipynb"]


def run_notebook(name: str, workdir: Path) -> nbformat.NotebookNode:
    """Execute notebooks/<name> with small sizes; raises CellExecutionError if a cell fails."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = {**os.environ, "COLVAULT_NOTEBOOK_SMALL": "1", "MPLBACKEND": "Agg"}
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[Any]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def summary(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The ``SUMMARY {json}`` line the notebook's last cell prints."""
    lines = [
        line
        for out in outputs(nb)
        if out.output_type == "stream" and out.name == "stdout"
        for line in out.text.splitlines()
        if line.startswith("SUMMARY ")
    ]
    assert len(lines) == 1, f"expected one SUMMARY line, got {lines}"
    return json.loads(lines[0].removeprefix("SUMMARY "))


def check_ran(nb: nbformat.NotebookNode) -> None:
    """Every code cell ran without an error output, and at least one figure was shown."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code)
    errors = [out for out in outputs(nb) if out.output_type == "error"]
    assert not errors, errors
    images = [out for out in outputs(nb) if "image/png" in out.get("data", {})]
    assert images, "the notebook shows no plot (no image/png output)"


@pytest.fixture
def executed(tmp_path: Path, request: pytest.FixtureRequest) -> nbformat.NotebookNode:
    nb = run_notebook(request.param, tmp_path)
    check_ran(nb)
    return nb


def test_notebooks_are_committed_without_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == sorted(EXPECTED)
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


def test_the_kernel_is_this_interpreter(tmp_path: Path) -> None:
    """A kernelspec named python3 elsewhere (~/.local) must not run the notebooks."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")]
    )
    NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT).execute()
    assert nb.cells[0].outputs[0].text.strip() == sys.prefix


@pytest.mark.parametrize("executed", ["quickstart.ipynb"], indirect=True)
def test_quickstart(executed: nbformat.NotebookNode) -> None:
    got = summary(executed)
    assert got["rows"] == 20_000
    assert got["count_where"] == got["numpy_count"] > 0
    assert got["instrument"] == "LX-200"
    assert got["pandas_matches_group_by"] is True


@pytest.mark.parametrize("executed", ["from_pytables.ipynb"], indirect=True)
def test_from_pytables(executed: nbformat.NotebookNode) -> None:
    got = summary(executed)
    assert got["rows"] == 50_000
    assert got["pytables_hits"] == got["colvault_hits"] > 0
    assert got["same_hits"] and got["same_column"] and got["same_attrs"]
    assert got["timings"] == 8  # four steps, each timed in both libraries


@pytest.mark.parametrize("executed", ["out_of_core.ipynb"], indirect=True)
def test_out_of_core(executed: nbformat.NotebookNode) -> None:
    got = summary(executed)
    assert 0 < got["csv_rows"] <= 1_000_000  # small sizes were picked
    assert got["table_rows"] == got["grouped_rows"] == got["value_count"] == got["csv_rows"]
    assert got["stations"] == 40
    assert got["pandas_means_agree"] is True
    assert got["steps"] == ["import_csv", "group_by", "describe"]
    assert got["max_added_mb"] > 0  # RSS was sampled (not asserted against the budget: noisy)
