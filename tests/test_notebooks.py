"""Every solution notebook executes top to bottom in quick mode on a fresh kernel."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def execute(path: Path, tmp_path: Path) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",  # this interpreter: the one `make setup` registers for the course
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - start


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.parent.name for p in SOLUTIONS])
def test_solution_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook, seconds = execute(path, tmp_path)
    errors = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
    assert not errors, errors
    print(f"{path.parent.name}: {seconds:.1f} s")


def test_there_is_a_solution_for_every_released_notebook():
    released = sorted(p.parent.name for p in (ROOT / "notebooks").glob("*/*.ipynb"))
    assert released == [p.parent.name for p in SOLUTIONS]
    assert "00_setup" in released
