"""The formative checks the notebooks call, and the exercise format behind them.

In a notebook::

    from course_lib.checks.demo import check_softmax, use_softmax
    check_softmax(softmax)          # the graded test cell: teaching message on failure
    softmax_ = use_softmax(softmax) # later cells: yours if it passes, else the library's

An assignment's exercises are declared once, in ``course_lib/exercises/<assignment>.py``
(see ``docs/authoring.md``).
"""

from course_lib.checks.compare import Problem, Tolerance, compare
from course_lib.checks.exercise import Case, CheckFailed, Exercise, Mistake

__all__ = ["Case", "CheckFailed", "Exercise", "Mistake", "Problem", "Tolerance", "compare"]
