"""An exercise: the one place that says what a learner's function must do.

Each assignment lists its exercises in ``course_lib/exercises/<assignment>.py``. The same
:class:`Exercise` drives both tiers: :meth:`Exercise.check` runs the public cases in the
notebook and explains what is wrong; the grader draws hidden inputs from :attr:`Exercise.hidden`
with the instructor's seed and compares the learner's outputs with :attr:`Exercise.reference`
outside the learner's process.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from course_lib.checks.compare import Tolerance, compare

Inputs = dict[str, Any]
DEFAULT_TOLERANCE = Tolerance()


class CheckFailed(AssertionError):
    """A learner's function failed its public check (the teaching message is printed above)."""


@dataclass(frozen=True)
class Case:
    """One public input, with a label that says what it tests (``"large logits (overflow)"``)."""

    label: str
    inputs: Inputs


@dataclass(frozen=True)
class Mistake:
    """A usual wrong implementation and the hint a learner who made it should read."""

    name: str
    fn: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Exercise:
    """What a learner's function must compute, and how it is checked and graded.

    Attributes:
        name: the function the learner writes (also the grade_id of its solution cell).
        reference: the library's implementation; the answer key for every case.
        cases: public cases, run by :meth:`check` in the notebook.
        hidden: ``hidden(generator) -> list of inputs``; the grader seeds the generator with the
            instructor's secret, so hidden inputs cannot be known in advance.
        points: what the exercise is worth (must match the test cell's nbgrader points).
        tolerance: elementwise tolerance, applied after exact type, dtype, shape and device checks.
        mistakes: usual mistakes; a learner whose output matches one is shown its hint.
        grade_id: the grade_id of the test cell that holds the check (default ``test_<name>``).
        aliases: other library functions that compute the same thing: calling any of them
            while graded also counts as calling the reference. The library function a thin
            reference wraps is found without being listed (see :meth:`library_functions`).
    """

    name: str
    reference: Callable[..., Any]
    cases: Sequence[Case]
    hidden: Callable[[torch.Generator], list[Inputs]]
    points: float
    tolerance: Tolerance = DEFAULT_TOLERANCE
    mistakes: Sequence[Mistake] = ()
    grade_id: str = ""
    aliases: Sequence[Callable[..., Any]] = ()

    def __post_init__(self) -> None:
        if not self.grade_id:
            object.__setattr__(self, "grade_id", f"test_{self.name}")

    def library_functions(self) -> list[Callable[..., Any]]:
        """The reference, its aliases, and the library functions the reference calls by name.

        A reference is often a thin wrapper, ``def q_sample(...): return _q_sample(...)``: a
        learner who calls ``course_lib.diffusion.q_sample`` calls the same implementation, so
        the grader watches it too. Only functions of ``course_lib`` outside ``exercises`` and
        ``checks`` count (the library's implementations, not the course's test helpers).
        """
        found = [self.reference, *self.aliases]
        code = getattr(self.reference, "__code__", None)
        for name in code.co_names if code is not None else ():
            obj = getattr(self.reference, "__globals__", {}).get(name)
            module = getattr(obj, "__module__", "") or ""
            if (
                isinstance(obj, types.FunctionType)
                and module.startswith("course_lib.")
                and not module.startswith(("course_lib.exercises", "course_lib.checks"))
                and obj not in found
            ):
                found.append(obj)
        return found

    def hidden_cases(self, seed: int) -> list[Inputs]:
        """The hidden inputs drawn with ``seed`` (the same seed always gives the same inputs)."""
        gen = torch.Generator().manual_seed(seed)
        return self.hidden(gen)

    def expected(self, inputs: Inputs) -> Any:
        """The reference's answer for ``inputs`` (on a copy, so the inputs stay untouched)."""
        return self.reference(**copy.deepcopy(inputs))

    def diagnose(self, fn: Callable[..., Any]) -> str | None:
        """``None`` if ``fn`` passes every public case, else the message for the first failure."""
        for case in self.cases:
            expected = self.expected(case.inputs)
            try:
                got = fn(**copy.deepcopy(case.inputs))
            except NotImplementedError:
                return (
                    f"`{self.name}` is not written yet: "
                    "replace `raise NotImplementedError()` with your code."
                )
            except Exception as err:
                hint = self._hint_for_exception(case, err)
                return (
                    f"`{self.name}` raised {type(err).__name__} on {case.label} "
                    f"({_describe_inputs(case.inputs)}): {err}"
                    + (f"\nHint: {hint}" if hint else "")
                )
            problem = compare(got, expected, self.tolerance)
            if problem is not None:
                hint = self._hint_for_output(case, got)
                return (
                    f"`{self.name}` on {case.label} ({_describe_inputs(case.inputs)}): "
                    f"{problem.detail}." + (f"\nHint: {hint}" if hint else "")
                )
        return None

    def check(self, fn: Callable[..., Any]) -> None:
        """Run the public cases: print a short success line, or the teaching message and raise."""
        message = self.diagnose(fn)
        if message is not None:
            print(f"✗ {message}")
            raise CheckFailed(f"`{self.name}` does not pass its check yet (see the message above)")
        print(f"✓ `{self.name}` passes its {len(self.cases)} checks.")

    def use(self, fn: Callable[..., Any] | None) -> Callable[..., Any]:
        """The learner's ``fn`` if it passes its check, else the library's reference.

        Later cells call this, so a skipped exercise never breaks the rest of the notebook.
        """
        if fn is not None and self.diagnose(fn) is None:
            return fn
        print(f"(using the library's `{self.name}` below, since yours does not pass its check yet)")
        return self.reference

    def _hint_for_output(self, case: Case, got: Any) -> str | None:
        for mistake in self.mistakes:
            try:
                wrong = mistake.fn(**copy.deepcopy(case.inputs))
            except Exception:
                continue
            if compare(got, wrong, self.tolerance) is None:
                return mistake.hint
        return None

    def _hint_for_exception(self, case: Case, err: Exception) -> str | None:
        for mistake in self.mistakes:
            try:
                mistake.fn(**copy.deepcopy(case.inputs))
            except Exception as wrong:
                if type(wrong) is type(err):
                    return mistake.hint
        return None


def _describe_inputs(inputs: Inputs) -> str:
    parts = []
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            parts.append(f"{key}: {value.dtype} tensor of shape {tuple(value.shape)}")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts)
