"""Every solution notebook executes top to bottom in quick mode on a fresh kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib import nbrun

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.parent.name for p in SOLUTIONS])
def test_solution_notebook_runs_in_quick_mode(path, tmp_path):
    notebook, seconds = nbrun.execute(path, mode="quick", workdir=tmp_path)
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert outputs, "the notebook ran but printed nothing"
    assert not [out for out in outputs if out.output_type == "error"]
    print(f"{path.parent.name}: {seconds:.1f} s")


def test_a_failing_cell_names_the_notebook_and_the_error(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "broken.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 / 0")]), path)
    with pytest.raises(nbrun.NotebookFailed, match=r"broken.ipynb failed in quick mode"):
        nbrun.execute(path, mode="quick")


def test_there_is_a_solution_for_every_released_notebook():
    released = sorted(p.parent.name for p in (ROOT / "notebooks").glob("*/*.ipynb"))
    assert released == [p.parent.name for p in SOLUTIONS]
    assert "00_setup" in released
