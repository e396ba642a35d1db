"""``course grade ASSIGNMENT``: grade every submission of an assignment in a course directory."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from course_lib.grading import sandbox
from course_lib.grading.grader import Grader, load_secret

COURSE_DIR_ENV = "COURSE_DIR"


def default_course_dir() -> Path:
    """``$COURSE_DIR``, else ``~/diffusion-course``: instructor state stays out of the repo."""
    return Path(os.environ.get(COURSE_DIR_ENV) or Path.home() / "diffusion-course")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="course grade",
        description=(
            "Grade every submission of ASSIGNMENT in nbgrader's submitted/ folder of a course "
            "directory, each in its own sandbox; write scores to gradebook.db, autograded "
            "notebooks and feedback."
        ),
    )
    p.add_argument("assignment", help="the assignment to grade (a folder of solutions/)")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    p.add_argument(
        "--course-dir",
        type=Path,
        default=None,
        help=f"the nbgrader course directory (default ${COURSE_DIR_ENV} or ~/diffusion-course)",
    )
    p.add_argument(
        "--secret-file", type=Path, help="the instructor's secret (default: in the course dir)"
    )
    p.add_argument(
        "--timeout", type=float, default=sandbox.Limits.wall_seconds, help="seconds per submission"
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=sandbox.Limits.memory_bytes // 1024**2,
        help="memory per submission",
    )
    return p


def main(argv: list[str]) -> int:
    """Entry point of ``course grade``; returns the exit status."""
    from course_lib.release import repo_root

    args = parser().parse_args(argv)
    course_dir = (args.course_dir or default_course_dir()).resolve()
    (course_dir / "submitted").mkdir(parents=True, exist_ok=True)
    prot = sandbox.protections()
    print(f"[grade] {prot.describe()}")
    for note in prot.notes:
        print(f"[grade] note: {note}")
    limits = sandbox.Limits(
        wall_seconds=args.timeout,
        cpu_seconds=int(args.timeout),
        memory_bytes=args.memory_mb * 1024**2,
    )
    grader = Grader(
        args.assignment,
        course_dir,
        repo_root(),
        limits=limits,
        secret=load_secret(course_dir, args.secret_file),
        protections=prot,
    )
    try:
        students = args.student or grader.students()
        print(
            f"[grade] {args.assignment}: {len(students)} submission(s) "
            f"in {course_dir / 'submitted'}"
        )
        results = grader.run(students, jobs=args.jobs)
    finally:
        grader.close()
    flagged = sorted({r.student for r in results for e in r.exercises if e.flagged})
    print(
        f"[grade] done: {len(results)} notebook(s) graded; gradebook {course_dir / 'gradebook.db'}"
    )
    if flagged:
        print(f"[grade] flagged (called a reference implementation): {', '.join(flagged)}")
    print(f"[grade] per-student reports (flags, logs): {course_dir / 'reports' / args.assignment}")
    for error in grader.errors:
        print(f"[grade] ERROR, not graded (run again once fixed): {error}")
    return 1 if grader.errors else 0
