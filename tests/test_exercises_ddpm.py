"""Notebook 02's exercises: the reference passes, each usual mistake fails with its hint."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.exercises import ddpm

EXERCISES = {ex.name: ex for ex in ddpm.EXERCISES}
MISTAKES = [(ex, m) for ex in ddpm.EXERCISES for m in ex.mistakes]


def test_the_notebook_has_three_exercises_in_order():
    assert list(EXERCISES) == ["q_sample", "ddpm_loss", "ddpm_step"]


@pytest.mark.parametrize("exercise", ddpm.EXERCISES, ids=lambda ex: ex.name)
def test_reference_passes_its_check(exercise, capsys):
    exercise.check(exercise.reference)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", ddpm.EXERCISES, ids=lambda ex: ex.name)
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


def test_q_sample_at_the_last_step_is_almost_pure_noise():
    ac = ddpm.make_schedule("linear", 1000)
    x0, noise = torch.ones(4, 2), torch.randn(4, 2)
    x_t = ddpm.q_sample(x0, torch.full((4,), 999), noise, ac)
    assert torch.allclose(x_t, noise, atol=0.01)


def test_ddpm_loss_is_zero_for_a_perfect_prediction():
    noise = torch.randn(5, 2)
    assert ddpm.ddpm_loss(noise.clone(), torch.randn(5, 2), noise).item() == 0.0
