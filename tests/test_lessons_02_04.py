"""Notebooks 02-04: check cells carry their exercises' points, and the lesson helpers behave as
the notebooks say (that each release fails exactly its exercises: test_release_exercises.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from course_lib import exercises

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = [
    a for a in ("02_ddpm", "03_vector_fields", "04_ddim") if (ROOT / "notebooks" / a).is_dir()
]


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
