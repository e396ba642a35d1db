"""Notebook 01's exercises: references pass their checks, usual mistakes fail with hints."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.exercises.clip import EXERCISES
from course_lib.models import clip

MISTAKES = [(ex, m) for ex in EXERCISES for m in ex.mistakes]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.name)
def test_the_reference_passes_its_own_check(exercise, capsys):
    exercise.check(exercise.reference)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.name)
def test_the_reference_is_the_library_function(exercise):
    inputs = exercise.hidden_cases(0)[0]
    assert torch.equal(exercise.reference(**inputs), getattr(clip, exercise.name)(**inputs))


@pytest.mark.parametrize(
    ("exercise", "mistake"), MISTAKES, ids=[f"{e.name}-{m.name}" for e, m in MISTAKES]
)
def test_a_usual_mistake_fails_with_its_hint(exercise, mistake, capsys):
    with pytest.raises(CheckFailed):
        exercise.check(mistake.fn)
    assert f"Hint: {mistake.hint}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("exercise", "mistake"), MISTAKES, ids=[f"{e.name}-{m.name}" for e, m in MISTAKES]
)
def test_the_hidden_cases_catch_every_usual_mistake(exercise, mistake):
    from course_lib.checks import compare

    cases = exercise.hidden_cases(1234)
    caught = False
    for inputs in cases:
        expected = exercise.reference(**inputs)
        got = mistake.fn(**inputs)
        if compare(got, expected, exercise.tolerance) is not None:
            caught = True
    assert caught


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.name)
def test_hidden_cases_depend_on_the_seed_only(exercise):
    a, b, c = exercise.hidden_cases(7), exercise.hidden_cases(7), exercise.hidden_cases(8)
    first = next(iter(a[0].values()))
    assert torch.equal(first, next(iter(b[0].values())))
    assert not torch.equal(first, next(iter(c[0].values())))
