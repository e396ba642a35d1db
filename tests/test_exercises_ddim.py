"""Notebook 04's exercises: the reference passes, each usual mistake fails with its hint."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.exercises import ddim as module

EXERCISES = {ex.name: ex for ex in module.EXERCISES}
MISTAKES = [(ex, m) for ex in module.EXERCISES for m in ex.mistakes]


def test_the_notebook_has_three_exercises_in_order():
    assert list(EXERCISES) == ["ddim_step", "ddim_eta_step"]


@pytest.mark.parametrize("exercise", module.EXERCISES, ids=lambda ex: ex.name)
def test_reference_passes_its_check(exercise, capsys):
    exercise.check(exercise.reference)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", module.EXERCISES, ids=lambda ex: ex.name)
def test_at_least_three_usual_mistakes(exercise):
    assert len(exercise.mistakes) >= 3


@pytest.mark.parametrize(("exercise", "mistake"), MISTAKES, ids=lambda x: getattr(x, "name", ""))
def test_usual_mistake_fails_with_its_hint(exercise, mistake, capsys):
    with pytest.raises(CheckFailed):
        exercise.check(mistake.fn)
    assert f"Hint: {mistake.hint}" in capsys.readouterr().out


@pytest.mark.parametrize(("exercise", "mistake"), MISTAKES, ids=lambda x: getattr(x, "name", ""))
def test_hidden_cases_tell_the_mistake_from_the_reference(exercise, mistake):
    from course_lib.checks import compare

    cases = exercise.hidden_cases(1234)
    assert any(
        compare(mistake.fn(**case), exercise.expected(case), exercise.tolerance) is not None
        for case in cases
    )


def test_eta_one_is_the_ddpm_step():
    from course_lib.diffusion import ddpm_step, make_schedule

    ac = make_schedule("linear", 1000)
    x, eps, z = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    a, a_prev = float(ac[600]), float(ac[550])
    assert torch.allclose(
        module.ddim_eta_step(x, eps, a, a_prev, 1.0, z), ddpm_step(x, eps, a, a_prev, z), atol=1e-5
    )


def test_eta_zero_is_the_ddim_step():
    x, eps, z = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    assert torch.allclose(
        module.ddim_eta_step(x, eps, 0.3, 0.5, 0.0, z), module.ddim_step(x, eps, 0.3, 0.5)
    )
