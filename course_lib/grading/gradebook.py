"""nbgrader's gradebook, through its own API: the assignment's cells in, autograde scores out.

Only the grader's main thread writes here, one submission per transaction. A score is an upsert
of ``auto_score``: manual scores, comments and extensions are never touched, so grading twice (or
after a kill mid-batch) gives the same gradebook as grading once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning


def _alembic_on_path() -> None:
    """nbgrader's Gradebook runs the ``alembic`` command; make sure this environment's is found."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path


def db_url(course_dir: Path) -> str:
    """nbgrader's default gradebook location for a course directory."""
    return f"sqlite:///{course_dir.resolve() / 'gradebook.db'}"


def sync_assignment(
    assignment: str, course_dir: Path, source_root: Path, release_dir: Path
) -> Path:
    """Record the assignment's notebooks and grade cells in the gradebook, as nbgrader's own
    ``generate_assignment`` does (it is that command), and release the student version into
    ``release_dir``. Returns the released assignment folder."""
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        "generate_assignment",
        assignment,
        "--force",
        "--log-level=WARN",
        f"--CourseDirectory.root={course_dir.resolve()}",
        f"--CourseDirectory.source_directory={(source_root / 'solutions').resolve()}",
        f"--CourseDirectory.release_directory={release_dir.resolve()}",
        f"--CourseDirectory.db_url={db_url(course_dir)}",
    ]
    _alembic_on_path()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(cmd, cwd=course_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"nbgrader could not record {assignment!r} in the gradebook:\n"
            f"{done.stdout}{done.stderr}"
        )
    return release_dir / assignment


def record(
    course_dir: Path,
    assignment: str,
    student: str,
    notebook: str,
    scores: dict[str, float],
    timestamp: str | None,
) -> None:
    """Upsert one submission's autograder scores (keeping manual grades and comments)."""
    _alembic_on_path()
    with warnings.catch_warnings(), Gradebook(db_url(course_dir)) as gb:
        # nbgrader's add_submission trips SQLAlchemy's autoflush warnings; they are harmless
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            gb.add_submission(assignment, student)
        if timestamp:
            try:
                gb.update_or_create_submission(assignment, student, timestamp=timestamp)
            except Exception:  # an unparsable timestamp.txt: keep the submission, skip the time
                gb.db.rollback()
        for grade_id, score in scores.items():
            grade = gb.find_grade(grade_id, notebook, assignment, student)
            grade.auto_score = score
            grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()


def scores(
    course_dir: Path, assignment: str
) -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """Every student's ``{grade_id: (auto_score, manual_score)}`` for ``assignment`` (for tests)."""
    found: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    _alembic_on_path()
    with Gradebook(db_url(course_dir)) as gb:
        for submission in gb.assignment_submissions(assignment):
            cells = found.setdefault(submission.student.id, {})
            for nb in submission.notebooks:
                for grade in nb.grades:
                    cells[grade.name] = (grade.auto_score, grade.manual_score)
    return found
