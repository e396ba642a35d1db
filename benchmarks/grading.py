"""Grading throughput: seconds per submission, with one and two sandboxes at a time.

Each row grades copies of the solution notebook (every exercise runs on its hidden cases) in a
fresh course directory, so the figure includes the sandbox start, the notebook's cells in quick
mode, the hidden cases, the comparison and the gradebook write.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from course_lib.bench import BenchContext, Table
from course_lib.exercises import exercises
from course_lib.grading.grader import Grader
from course_lib.grading.sandbox import protections
from course_lib.release import assignments


def seconds_per_submission(root: Path, assignment: str, count: int, jobs: int) -> float:
    """Grade ``count`` copies of the assignment's solution with ``jobs`` sandboxes at a time."""
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        course = Path(tmp)
        for i in range(count):
            folder = course / "submitted" / f"student{i:03d}" / assignment
            folder.mkdir(parents=True)
            for notebook in (root / "solutions" / assignment).glob("*.ipynb"):
                shutil.copy(notebook, folder / notebook.name)
        grader = Grader(assignment, course, root, secret="bench", log=lambda _: None)
        try:
            start = time.perf_counter()
            results = grader.run(jobs=jobs)
            seconds = time.perf_counter() - start
        finally:
            grader.close()
        assert all(r.score == r.max_score for r in results), "a solution lost points"
        return seconds / count


def run(ctx: BenchContext) -> list[Table]:
    graded = [a for a in assignments(ctx.root) if exercises(a)]
    course = [a for a in graded if a != "demo"][:1]
    count = 2 if ctx.quick else 8
    prot = protections()
    table = Table(
        "Grading: seconds per submission",
        ["assignment", "exercises", "submissions", "jobs", "s / submission"],
        note=f"Solutions graded in quick mode on the CPU, one thread each; {prot.describe()}.",
    )
    for assignment in ["demo", *course]:
        for jobs in (1, 2):
            seconds = seconds_per_submission(ctx.root, assignment, count, jobs)
            table.add(assignment, len(exercises(assignment)), count, jobs, seconds)
    return [table]
