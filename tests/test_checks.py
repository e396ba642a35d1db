"""The teaching checks: each reference passes, and each usual mistake fails with its hint."""

from __future__ import annotations

import pytest
import torch

from course_lib import exercises
from course_lib.checks import CheckFailed, Exercise, Tolerance, compare
from course_lib.diffusion import q_sample as _library_q_sample
from course_lib.release import assignments

ALL = [(a, ex) for a in assignments() for ex in exercises.exercises(a)]
MISTAKES = [(a, ex, m) for a, ex in ALL for m in ex.mistakes]


def ids(items):
    return [
        f"{item[0]}-{item[1].name}" + (f"-{item[2].name}" if len(item) > 2 else "")
        for item in items
    ]


@pytest.mark.parametrize(("assignment", "exercise"), ALL, ids=ids(ALL))
def test_reference_passes_its_own_check(assignment, exercise, capsys):
    exercise.check(exercise.reference)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(("assignment", "exercise"), ALL, ids=ids(ALL))
def test_every_exercise_names_at_least_three_usual_mistakes(assignment, exercise):
    assert len(exercise.mistakes) >= 3


@pytest.mark.parametrize(("assignment", "exercise", "mistake"), MISTAKES, ids=ids(MISTAKES))
def test_a_usual_mistake_fails_with_its_hint(assignment, exercise, mistake, capsys):
    with pytest.raises(CheckFailed):
        exercise.check(mistake.fn)
    out = capsys.readouterr().out
    assert f"Hint: {mistake.hint}" in out


@pytest.mark.parametrize(("assignment", "exercise", "mistake"), MISTAKES, ids=ids(MISTAKES))
def test_the_hidden_cases_catch_every_usual_mistake(assignment, exercise, mistake):
    def caught(case: dict) -> bool:
        try:
            got = mistake.fn(**case)
        except Exception:
            return True  # a crash on a hidden case costs the exercise its points too
        return compare(got, exercise.expected(case), exercise.tolerance) is not None

    assert any(caught(case) for case in exercise.hidden_cases(1234)), (
        f"no hidden case of {exercise.name} tells {mistake.name!r} from the reference"
    )


def flat(cases: list[dict]) -> torch.Tensor:
    """Every tensor of every case, flattened into one float64 vector."""
    return torch.cat(
        [
            v.flatten().double()
            for case in cases
            for v in case.values()
            if isinstance(v, torch.Tensor)
        ]
    )


@pytest.mark.parametrize(("assignment", "exercise"), ALL, ids=ids(ALL))
def test_hidden_cases_are_drawn_from_the_seed_alone(assignment, exercise):
    first, again, other = (exercise.hidden_cases(seed) for seed in (7, 7, 8))
    assert len(first) >= 3
    assert torch.equal(flat(first), flat(again))
    assert flat(first).shape != flat(other).shape or not torch.equal(flat(first), flat(other))


def test_an_unwritten_exercise_says_to_fill_in_the_stub(capsys):
    ex = exercises.by_name("demo")["softmax"]

    def stub(logits):
        raise NotImplementedError()

    with pytest.raises(CheckFailed):
        ex.check(stub)
    assert "not written yet" in capsys.readouterr().out


def test_a_value_problem_names_the_element_and_the_expected_value():
    problem = compare(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]))
    assert problem.kind == "values"
    assert (
        "element [1]" in problem.detail
        and "2.5" in problem.detail
        and "expected 2" in problem.detail
    )


def test_a_value_problem_summary_reveals_no_numbers_of_the_values():
    problem = compare(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]))
    assert "2.5" not in problem.summary and "2.0" not in problem.summary


def test_dtype_is_compared_exactly_before_any_tolerance():
    problem = compare(torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0]))
    assert problem.kind == "dtype"


def test_a_subclass_of_tensor_is_the_wrong_type():
    class Sneaky(torch.Tensor):
        def __eq__(self, other):
            return True

    problem = compare(torch.tensor([9.0]).as_subclass(Sneaky), torch.tensor([1.0]))
    assert problem.kind == "type"


def test_nan_where_a_number_is_expected_is_wrong():
    assert compare(torch.tensor([float("nan")]), torch.tensor([0.5])).kind == "values"


def test_tolerance_is_relative_and_absolute():
    tol = Tolerance(rtol=1e-3, atol=0.0)
    assert compare(torch.tensor([1000.5]), torch.tensor([1000.0]), tol) is None
    assert compare(torch.tensor([0.0015]), torch.tensor([0.001]), tol) is not None


def test_use_returns_the_learners_function_when_it_passes():
    ex = exercises.by_name("demo")["softmax"]

    def mine(logits):
        return ex.reference(logits)

    assert ex.use(mine) is mine


def test_use_falls_back_to_the_reference_when_the_check_fails(capsys):
    ex = exercises.by_name("demo")["softmax"]
    assert ex.use(lambda logits: logits) is ex.reference
    assert "using the library's `softmax`" in capsys.readouterr().out


def test_an_assignment_without_exercises_has_none():
    assert exercises.exercises("00_setup") == []


def _thin_wrapper(x0, t, noise, alphas_cumprod):
    return _library_q_sample(x0, t, noise, alphas_cumprod)


def test_a_thin_wrapper_reference_also_watches_the_library_function_it_wraps():
    exercise = Exercise("q_sample", _thin_wrapper, [], lambda gen: [], points=1)
    assert exercise.library_functions() == [_thin_wrapper, _library_q_sample]


def test_a_reference_written_out_in_full_watches_only_itself():
    exercise = exercises.by_name("demo")["softmax"]
    assert exercise.library_functions() == [exercise.reference]
