"""Notebooks 02-04: each released notebook runs in quick mode and fails exactly its unsolved
exercises (each check cell, and nothing else); the lesson helpers behave as the notebooks say."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from course_lib import exercises

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = [
    a for a in ("02_ddpm", "03_vector_fields", "04_ddim") if (ROOT / "notebooks" / a).is_dir()
]


def run_allowing_errors(path: Path, workdir: Path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    saved = os.environ.get("COURSE_MODE")
    os.environ["COURSE_MODE"] = "quick"
    try:
        NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=600,
            allow_errors=True,
            resources={"metadata": {"path": str(workdir)}},
        ).execute()
    finally:
        if saved is None:
            os.environ.pop("COURSE_MODE", None)
        else:
            os.environ["COURSE_MODE"] = saved
    return notebook


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_fails_exactly_its_unsolved_exercises(assignment, tmp_path):
    notebook = run_allowing_errors(
        ROOT / "notebooks" / assignment / f"{assignment}.ipynb", tmp_path
    )
    failed = {
        cell.metadata.get("nbgrader", {}).get("grade_id")
        for cell in notebook.cells
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs)
    }
    expected = {ex.grade_id for ex in exercises.exercises(assignment)}
    assert failed == expected
    texts = "".join(
        o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "not written yet" in texts and "using the library's" in texts


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_cells_carry_the_exercises_points(assignment):
    import nbformat

    notebook = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    graded = {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in notebook.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert graded == {ex.grade_id: ex.points for ex in exercises.exercises(assignment)}
    assert 2 <= len(graded) <= 5


def test_without_fresh_noise_the_reverse_process_collapses_to_the_mean():
    """Gaussian data N(0, 0.5² I) and its exact noise predictor: with fresh noise the samples keep
    the data's spread; without, they shrink to the mean (spread below 1 % of the data's)."""
    from course_lib.diffusion import ddpm_step, make_schedule
    from course_lib.lessons import ddpm as lesson

    ac = make_schedule("linear", 1000)

    def eps(x, t):
        a = ac[t].to(x.dtype).view(-1, 1)
        return (1 - a).sqrt() * x / (a * 0.25 + 1 - a)

    start = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    with_noise = list(lesson.reverse_process(eps, start, ac, ddpm_step, 1000))
    without = list(lesson.reverse_process(eps, start, ac, ddpm_step, 1000, add_noise=False))
    data_spread = 0.5 * 2**0.5
    assert lesson.spread(with_noise[-1:])[0] == pytest.approx(data_spread, rel=0.05)
    assert lesson.spread(without[-1:])[0] < 0.01 * data_spread


def test_expected_spread_goes_from_pure_noise_to_the_data():
    from course_lib.diffusion import make_schedule
    from course_lib.lessons import ddpm as lesson

    data = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)) * 0.5
    spread = lesson.expected_spread(data, make_schedule("linear", 1000), [999, -1])
    assert spread[0] == pytest.approx(2**0.5, rel=0.01)
    assert spread[1] == pytest.approx(0.5 * 2**0.5, rel=0.05)
