"""Killing the grader mid-batch and running it again loses nothing and counts nothing twice,
and keeps the grader's manual scores and comments."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from nbgrader.api import Gradebook

from course_lib.grading import gradebook
from course_lib.grading.grader import Grader
from course_lib.grading.sandbox import Limits
from course_lib.release import generate

ROOT = Path(__file__).resolve().parent.parent
STUDENTS = {"ada": "solution", "bo": "release", "cy": "solution"}
CLI = "import sys; from course_lib.grading.cli import main; sys.exit(main(sys.argv[1:]))"


def grade_cli(course: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "demo", "--course-dir", str(course), "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_kill_and_rerun_gives_the_gradebook_of_one_clean_run(tmp_path):
    course = tmp_path / "course"
    release = generate(["demo"], output=tmp_path / "release", root=ROOT)[0]
    for student, kind in STUDENTS.items():
        folder = course / "submitted" / student / "demo"
        folder.mkdir(parents=True)
        source = ROOT / "solutions" / "demo" if kind == "solution" else release
        shutil.copy(source / "demo.ipynb", folder / "demo.ipynb")

    grader = Grader("demo", course, ROOT, limits=Limits(wall_seconds=120))
    grader.run(["ada"])
    grader.close()
    gradebook._alembic_on_path()
    with Gradebook(gradebook.db_url(course)) as gb:
        gb.find_grade("test_softmax", "demo", "demo", "ada").manual_score = 1.5
        gb.find_comment("softmax", "demo", "demo", "ada").manual_comment = "nice and stable"
        gb.db.commit()

    batch = grade_cli(course)
    reports = course / "reports" / "demo"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # ada's report is there from the first run
        if len(list(reports.glob("*.json"))) >= 2:
            break
        time.sleep(0.2)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    assert grade_cli(course).wait(timeout=600) == 0

    scores = gradebook.scores(course, "demo")
    assert {s: sum(a for a, _ in cells.values()) for s, cells in scores.items()} == {
        "ada": 5,
        "bo": 0,
        "cy": 5,
    }
    assert scores["ada"]["test_softmax"] == (2.0, 1.5)
    with Gradebook(gradebook.db_url(course)) as gb:
        assert gb.find_comment("softmax", "demo", "demo", "ada").manual_comment == "nice and stable"
        assert len(gb.assignment_submissions("demo")) == 3
        assert all(
            len(nb.grades) == 3 for s in gb.assignment_submissions("demo") for nb in s.notebooks
        )
