"""Notebook 03's exercises: the reference passes, each usual mistake fails with its hint."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.exercises import vector_fields as module

EXERCISES = {ex.name: ex for ex in module.EXERCISES}
MISTAKES = [(ex, m) for ex in module.EXERCISES for m in ex.mistakes]


def test_the_notebook_has_three_exercises_in_order():
    assert list(EXERCISES) == ["tweedie_x0", "score", "ideal_denoiser"]


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


def test_tweedie_inverts_the_forward_process():
    x0, noise = torch.randn(5, 2), torch.randn(5, 2)
    x_t = 0.6 * x0 + 0.8 * noise  # ᾱ = 0.36
    assert torch.allclose(module.tweedie_x0(x_t, noise, 0.36), x0, atol=1e-5)


def test_ideal_denoiser_returns_the_data_point_when_the_noise_is_tiny():
    data = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    x_t = torch.tensor([[0.99, 0.05]])
    assert torch.allclose(module.ideal_denoiser(x_t, 0.999, data), data[:1], atol=1e-4)
