"""The notebooks in notebooks/: committed without outputs, and they run top to bottom.

Test-only requirements (requirements-dev.txt): nbformat, nbclient, ipykernel, pandas.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STUDIES = ("activation", "lr", "batch", "size")  # one notebook per study, named after it


def _read(study: str):
    return nbformat.read(NOTEBOOKS / f"{study}.ipynb", as_version=4)


def test_there_is_one_notebook_per_study_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(STUDIES)


@pytest.mark.parametrize("study", STUDIES)
def test_committed_notebook_is_valid_and_has_no_outputs(study):
    notebook = _read(study)
    nbformat.validate(notebook)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"notebooks/{study}.ipynb has outputs in cells {dirty}: clear them before committing "
        f"(jupyter nbconvert --clear-output --inplace notebooks/{study}.ipynb)"
    )


@pytest.mark.parametrize("study", STUDIES)
def test_notebook_runs_on_its_reference_folder_and_draws_figures_and_tables(study):
    notebook = _read(study)
    # The kernel starts in notebooks/ (as Jupyter starts it), whatever pytest's cwd is.
    client = NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    kinds = {kind for o in outputs for kind in o.get("data", {})}
    assert "image/png" in kinds and "text/html" in kinds  # a figure, and pandas tables
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
