"""The exercise format holds in every assignment, and the release gives away no solution."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from course_lib import exercises
from course_lib.release import assignments, generate

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = assignments(ROOT)
GRADED = [a for a in ASSIGNMENTS if exercises.exercises(a)]
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.DOTALL)


def cells(assignment: str, folder: str = "solutions") -> list[dict]:
    found = []
    for path in sorted((ROOT / folder / assignment).glob("*.ipynb")):
        found += json.loads(path.read_text())["cells"]
    return found


def nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release")
    generate(output=out, root=ROOT)
    return out


@pytest.mark.parametrize("assignment", GRADED)
def test_every_test_cell_is_a_registered_exercise_with_the_same_points(assignment):
    tests = {
        nbgrader(c)["grade_id"]: nbgrader(c).get("points")
        for c in cells(assignment)
        if nbgrader(c).get("grade") and not nbgrader(c).get("solution")
    }
    registered = {ex.grade_id: ex.points for ex in exercises.exercises(assignment)}
    assert tests == registered


@pytest.mark.parametrize("assignment", GRADED)
def test_every_exercise_has_a_solution_cell_named_after_its_function(assignment):
    solutions = {
        nbgrader(c)["grade_id"]: text(c) for c in cells(assignment) if nbgrader(c).get("solution")
    }
    for ex in exercises.exercises(assignment):
        assert f"def {ex.name}(" in solutions[ex.name]


@pytest.mark.parametrize("assignment", GRADED)
def test_every_code_cell_of_a_graded_notebook_has_a_grade_id(assignment):
    for cell in cells(assignment):
        if cell["cell_type"] == "code":
            assert nbgrader(cell).get("grade_id"), text(cell)[:60]
            assert nbgrader(cell).get("locked") or nbgrader(cell).get("solution"), text(cell)[:60]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_has_no_solution_or_hidden_test(assignment, released):
    student = "".join(p.read_text() for p in (released / assignment).glob("*.ipynb"))
    assert "BEGIN SOLUTION" not in student and "BEGIN HIDDEN TESTS" not in student
    for cell in cells(assignment):
        for block in SOLUTION.findall(text(cell)):
            for line in block.strip().splitlines():
                if len(line.strip()) > 12:
                    assert json.dumps(line.strip())[1:-1] not in student, line


@pytest.mark.parametrize("assignment", GRADED)
def test_the_student_notebook_runs_and_fails_exactly_its_exercises(assignment, released, tmp_path):
    from nbclient import NotebookClient

    for path in (released / assignment).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            kernel_name="python3",
            timeout=300,
            allow_errors=True,
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
        failed = {
            nbgrader(c)["grade_id"]
            for c in nb.cells
            if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)
        }
        assert failed == {ex.grade_id for ex in exercises.exercises(assignment)}
        printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert "not written yet" in printed, "an unsolved check should say the stub is unwritten"
        assert "using the library's" in printed, "later cells should fall back on the library"
