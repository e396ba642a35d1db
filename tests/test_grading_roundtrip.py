"""Grading round trip over every assignment in solutions/: solutions score full marks, untouched
student notebooks score zero, and an assignment without exercises grades to nothing, cleanly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from course_lib import exercises
from course_lib.grading import gradebook, sandbox
from course_lib.grading.grader import Grader, read_reports
from course_lib.release import assignments, generate

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = assignments(ROOT)
LIMITS = sandbox.Limits(wall_seconds=180, cpu_seconds=170, cell_seconds=90, exercise_seconds=30)


def grade_everything(course: Path, released: Path) -> None:
    """Submit each assignment's solution ("solved") and its release ("untouched"); grade them."""
    generate(output=released, root=ROOT)
    for assignment in ASSIGNMENTS:
        for student, folder in (("solved", ROOT / "solutions"), ("untouched", released)):
            target = course / "submitted" / student / assignment
            target.mkdir(parents=True)
            for notebook in (folder / assignment).glob("*.ipynb"):
                shutil.copy(notebook, target / notebook.name)
        grader = Grader(assignment, course, ROOT, limits=LIMITS, secret="round-trip")
        try:
            grader.run(jobs=2)
        finally:
            grader.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The graded course directory, made once per session even with xdist workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "round-trip-course"
    with FileLock(str(shared / "round-trip.lock")):
        if not (folder / "done").exists():
            grade_everything(folder, shared / "round-trip-release")
            (folder / "done").write_text("")
    return folder


def total(course: Path, assignment: str, student: str) -> float:
    return sum(auto for auto, _ in gradebook.scores(course, assignment)[student].values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_scores_full_marks(course, assignment):
    points = sum(ex.points for ex in exercises.exercises(assignment))
    assert total(course, assignment, "solved") == points, read_reports(course, assignment)["solved"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_notebook_scores_zero(course, assignment):
    assert total(course, assignment, "untouched") == 0


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if not exercises.exercises(a)])
def test_an_assignment_without_exercises_has_nothing_to_grade_and_no_failure(course, assignment):
    assert gradebook.scores(course, assignment)["solved"] == {}
    for notebook in read_reports(course, assignment)["solved"].values():
        assert notebook["exercises"] == [] and notebook["note"] == ""


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograded_notebooks_and_feedback_are_written(course, assignment):
    for notebook in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        assert (course / "autograded" / "solved" / assignment / notebook.name).is_file()
        assert (course / "feedback" / "solved" / assignment / f"{notebook.stem}.html").is_file()
