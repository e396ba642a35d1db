"""The instructor's grader: every submission of an assignment, each in its own sandbox.

For each submitted notebook the trusted side (this module):

1. builds the program to run from the submission and the source (:mod:`.program`);
2. runs it in a sandbox (:mod:`.sandbox`) with the hidden inputs, drawn from the instructor's
   secret, fed in only after the learner's cells have run;
3. reads back plain values (:mod:`.values`), computes the expected ones with the library's
   references here, compares them exactly (type, dtype, shape, device) then within tolerance;
4. writes the autograded notebook, the feedback HTML and the report, then records the scores in
   nbgrader's gradebook (:mod:`.gradebook`), one submission per transaction.

Workers only run sandboxes; the main thread is the only writer, so a kill loses at most the
submission in flight, and grading again recomputes it without counting anything twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from course_lib.checks.compare import compare
from course_lib.checks.exercise import Exercise
from course_lib.exercises import exercises as registered_exercises
from course_lib.grading import feedback, gradebook, sandbox
from course_lib.grading.program import (
    ProgramCell,
    UnreadableNotebook,
    build_program,
    read_submission,
    source_cells,
)
from course_lib.grading.values import decode, dump, encode, load

SECRET_FILE = "grader_secret.json"
UID_BASE = sandbox.UID_BASE
MAX_VALUES_BYTES = 64 * 1024**2
REPORT_LOG_CHARS = 4000


@dataclass
class ExerciseResult:
    """One exercise of one submission: its score and the one line of feedback that explains it."""

    name: str
    grade_id: str
    max_points: float
    score: float
    line: str
    flagged: bool = False


@dataclass
class SubmissionResult:
    """One notebook of one student's submission."""

    student: str
    notebook: str
    exercises: list[ExerciseResult]
    note: str = ""
    seconds: float = 0.0
    program: list[ProgramCell] | None = field(default=None, repr=False)
    log: str = field(default="", repr=False)  # the sandbox's output, for the instructor only

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_points for e in self.exercises)


def load_secret(course_dir: Path, secret_file: Path | None = None) -> str:
    """The instructor's secret: from ``secret_file``, or the course directory's (made on first use).

    It lives with the gradebook, outside the repository and outside every sandbox; hidden inputs
    are drawn from it, so they cannot be known before grading.
    """
    path = secret_file or course_dir / SECRET_FILE
    if not path.exists():
        if secret_file is not None:
            raise FileNotFoundError(f"no grader secret at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"secret": secrets.token_hex(32)}, fh)
    return str(json.loads(path.read_text())["secret"])


def dotted(fn: Callable[..., Any]) -> str:
    """``"module:qualname"`` of a function, which the harness resolves inside the sandbox."""
    return f"{fn.__module__}:{fn.__qualname__}"


def case_seed(secret: str, assignment: str, exercise: str) -> int:
    """The seed of one exercise's hidden inputs (the same for every student of a course)."""
    digest = hashlib.sha256(f"{secret}/{assignment}/{exercise}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def read_regular_file(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (no link, FIFO or device) of at most
    ``max_bytes``; ``None`` otherwise. The sandbox wrote this folder, so trust nothing about it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        return fh.read(max_bytes + 1)


@dataclass
class _Key:
    """Everything the grader knows about one exercise before any submission runs."""

    exercise: Exercise
    notebook: str
    max_points: float
    inputs: list[dict[str, Any]]
    expected: list[Any]


class Grader:
    """Grades the submissions of one assignment in a course directory."""

    def __init__(
        self,
        assignment: str,
        course_dir: Path,
        root: Path,
        limits: sandbox.Limits | None = None,
        secret: str | None = None,
        protections: sandbox.Protections | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.assignment = assignment
        self.course_dir = course_dir.resolve()
        self.root = root.resolve()
        self.limits = limits or sandbox.Limits()
        self.secret = secret if secret is not None else load_secret(self.course_dir)
        self.protections = protections or sandbox.protections()
        self.log = log
        self.errors: list[str] = []  # submissions the grader itself failed on (nothing recorded)
        self._scratch = Path(tempfile.mkdtemp(prefix=f"course-grade-{assignment}-"))
        if self.protections.separate_uid and not self.protections.bubblewrap:
            # the sandbox's uid opens its own submission folder by this path, so it must be
            # able to pass through (not list) the scratch folder; the release stays root's
            self._scratch.chmod(0o711)
        self._prepare()
        (self._scratch / "release").chmod(0o700)

    # ------------------------------------------------------------------ preparation

    def _prepare(self) -> None:
        released = gradebook.sync_assignment(
            self.assignment, self.course_dir, self.root, self._scratch / "release"
        )
        self.released = {
            p.stem: nbformat.read(p, as_version=4) for p in sorted(released.glob("*.ipynb"))
        }
        self.sources = {name: source_cells(nb) for name, nb in self.released.items()}
        tests = {
            c.grade_id: (name, c)
            for name, cells in self.sources.items()
            for c in cells
            if c.kind == "test"
        }
        self.keys: dict[str, _Key] = {}
        for ex in registered_exercises(self.assignment):
            if ex.grade_id not in tests:
                raise ValueError(
                    f"exercise {ex.name!r} of {self.assignment!r} has no test cell "
                    f"{ex.grade_id!r} in the source"
                )
            notebook, cell = tests[ex.grade_id]
            inputs = ex.hidden_cases(case_seed(self.secret, self.assignment, ex.name))
            expected = [ex.expected(case) for case in inputs]
            self.keys[ex.name] = _Key(ex, notebook, cell.points, inputs, expected)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # ------------------------------------------------------------------ the batch

    def students(self) -> list[str]:
        """Students with a submission of this assignment in ``submitted/``."""
        submitted = self.course_dir / "submitted"
        if not submitted.is_dir():
            return []
        return sorted(p.name for p in submitted.iterdir() if (p / self.assignment).is_dir())

    def run(self, students: Iterable[str] | None = None, jobs: int = 1) -> list[SubmissionResult]:
        """Grade ``students`` (default: every submission), ``jobs`` sandboxes at a time."""
        students = list(students) if students is not None else self.students()
        slots: queue.Queue[int] = queue.Queue()
        for slot in range(max(1, jobs)):
            slots.put(slot)

        def work(student: str) -> list[SubmissionResult]:
            slot = slots.get()
            try:
                return [self.grade_notebook(student, nb, slot) for nb in self.released]
            finally:
                slots.put(slot)

        results: list[SubmissionResult] = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(work, s): s for s in students}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    graded = future.result()
                    for result in graded:
                        self.write(result)
                except Exception as err:  # a grader bug: report it, record nothing, go on
                    self.errors.append(f"{student}: {type(err).__name__}: {err}")
                    self.log(f"{student}: NOT GRADED (grader error: {type(err).__name__}: {err})")
                    continue
                for result in graded:
                    results.append(result)
                    flagged = " FLAGGED" if any(e.flagged for e in result.exercises) else ""
                    self.log(
                        f"{result.student}: {result.score:g} / {result.max_score:g} "
                        f"({result.seconds:.1f} s){flagged}"
                        + (f" [{result.note}]" if result.note else "")
                    )
        return results

    # ------------------------------------------------------------------ one notebook

    def grade_notebook(self, student: str, notebook: str, slot: int = 0) -> SubmissionResult:
        """Grade one student's notebook (runs in a worker thread; writes nothing shared)."""
        start = time.monotonic()
        keys = [k for k in self.keys.values() if k.notebook == notebook]
        path = self.course_dir / "submitted" / student / self.assignment / f"{notebook}.ipynb"
        try:
            program = build_program(self.sources[notebook], read_submission(path))
        except UnreadableNotebook as err:
            lines = [self._zero(k, f"not graded: {err}") for k in keys]
            return SubmissionResult(student, notebook, lines, str(err), time.monotonic() - start)
        if not keys:
            return SubmissionResult(student, notebook, [], "", time.monotonic() - start, program)
        work = Path(tempfile.mkdtemp(prefix="submission-", dir=self._scratch))
        try:
            run = self._run_sandbox(work, program, keys, slot)
            results = [self._judge(k, work / "out", run) for k in keys]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        note = ""
        if run.timed_out:
            limit = self.limits.wall_seconds
            note = f"your notebook ran past the {limit:g} s time limit and was stopped"
        elif run.returncode not in (0, None):
            note = f"your notebook's process ended abnormally (exit status {run.returncode})"
        return SubmissionResult(
            student, notebook, results, note, time.monotonic() - start, program, run.output
        )

    def _run_sandbox(
        self, work: Path, program: list[ProgramCell], keys: list[_Key], slot: int
    ) -> sandbox.RunResult:
        spec = {
            "cells": [{"source": c.source, "origin": c.origin, "label": c.label} for c in program],
            "exercises": [
                {
                    "name": k.exercise.name,
                    "references": [dotted(f) for f in k.exercise.library_functions()],
                }
                for k in keys
            ],
            "isolated": bool(self.protections.bubblewrap or self.protections.separate_uid),
            "cell_timeout": self.limits.cell_seconds,
            "exercise_timeout": self.limits.exercise_seconds,
        }
        (work / "program.json").write_text(json.dumps(spec))
        (work / "out").mkdir()
        tensors: dict[str, Any] = {}
        tree = {
            k.exercise.name: [
                encode(case, tensors, f"{k.exercise.name}.{i}") for i, case in enumerate(k.inputs)
            ]
            for k in keys
        }
        uid = UID_BASE + slot if self.protections.separate_uid else None
        if uid is not None:
            for path in (work, work / "out", work / "program.json"):
                os.chown(path, uid, uid)
        work.chmod(0o700)
        return sandbox.run(work, dump(tree, tensors), uid, self.limits, self.protections)

    def _zero(self, key: _Key, why: str, flagged: bool = False) -> ExerciseResult:
        name = key.exercise.name
        return ExerciseResult(
            name,
            key.exercise.grade_id,
            key.max_points,
            0.0,
            f"✗ {name}: 0 / {key.max_points:g}: {why}",
            flagged,
        )

    def _judge(self, key: _Key, out: Path, run: sandbox.RunResult) -> ExerciseResult:
        """Score one exercise from the values file its sandboxed run left behind."""
        name = key.exercise.name
        n = len(key.inputs)
        values = out / f"{name}.bin"
        if (out / f"{name}.missing").exists():
            return self._zero(
                key, f"no `{name}` was defined when your notebook ran (renamed, or a cell failed?)"
            )
        if (out / f"{name}.timeout").exists():
            return self._zero(
                key,
                f"`{name}` did not finish the hidden cases "
                f"within {self.limits.exercise_seconds:g} s",
            )
        if (out / f"{name}.crashed").exists():
            return self._zero(
                key,
                f"`{name}` ended its process on the hidden cases "
                "(os._exit, a signal or the memory limit?)",
            )
        data = read_regular_file(values, MAX_VALUES_BYTES)
        if data is None:
            if run.timed_out:
                return self._zero(
                    key, "not graded: your notebook ran past its time limit before this exercise"
                )
            return self._zero(
                key, "not graded: your notebook's process stopped before this exercise finished"
            )
        try:
            tree, tensors = load(data, MAX_VALUES_BYTES)
            cases, called = tree["cases"], tree["reference_called"]
            if not isinstance(cases, list) or len(cases) != n or type(called) is not bool:
                raise ValueError("wrong structure")
        except Exception:
            return self._zero(key, "not graded: the values your code produced could not be read")
        if called:
            ref = key.exercise.reference
            return self._zero(
                key,
                f"`{name}` called the library's reference `{dotted(ref).replace(':', '.')}` while "
                "being graded; calling the reference earns no points (flagged for the instructor)",
                flagged=True,
            )
        errors: dict[str, int] = {}
        wrong = []
        for case, expected in zip(cases, key.expected, strict=True):
            if isinstance(case, dict) and "error" in case:
                kind = str(case["error"])[:100]
                errors[kind] = errors.get(kind, 0) + 1
                continue
            got = decode(case.get("value") if isinstance(case, dict) else None, tensors)
            problem = compare(got, expected, key.exercise.tolerance)
            if problem is not None:
                wrong.append(problem)
        if not errors and not wrong:
            return ExerciseResult(
                name,
                key.exercise.grade_id,
                key.max_points,
                key.max_points,
                f"✓ {name}: {key.max_points:g} / {key.max_points:g}: "
                f"correct on all {n} hidden cases",
            )
        parts = []
        if errors:
            parts.append(
                "raised "
                + ", ".join(f"{k} on {v} of {n}" for k, v in errors.items())
                + " hidden cases"
            )
        if wrong:
            parts.append(f"wrong on {len(wrong)} of {n} hidden cases (first: {wrong[0].summary})")
        return self._zero(key, "; ".join(parts))

    # ------------------------------------------------------------------ the one writer

    def write(self, result: SubmissionResult) -> None:
        """Autograded notebook, feedback HTML, report entry, then the gradebook (main thread)."""
        lines = {e.grade_id: [e.line] for e in result.exercises}
        nb = feedback.autograded_notebook(
            self.released[result.notebook], result.program, lines, result.note
        )
        base = Path(result.student) / self.assignment
        feedback.write_atomically(
            self.course_dir / "autograded" / base / f"{result.notebook}.ipynb",
            json.dumps(nb, indent=1),
        )
        submitted = self.course_dir / "submitted" / base
        stamp = submitted / "timestamp.txt"
        timestamp = stamp.read_text().strip() if stamp.is_file() else None
        if timestamp:
            feedback.write_atomically(
                self.course_dir / "autograded" / base / "timestamp.txt", timestamp
            )
        summary = [e.line for e in result.exercises] + ([result.note] if result.note else [])
        score = f"{result.score:g} of {result.max_score:g} points"
        title = f"{self.assignment} / {result.notebook}: {score}"
        feedback.write_atomically(
            self.course_dir / "feedback" / base / f"{result.notebook}.html",
            feedback.feedback_html(nb, title, summary),
        )
        self._report(result)
        gradebook.record(
            self.course_dir,
            self.assignment,
            result.student,
            result.notebook,
            {e.grade_id: e.score for e in result.exercises},
            timestamp,
        )

    def _report(self, result: SubmissionResult) -> None:
        """``reports/<assignment>/<student>.json``: scores, flags and the tail of the sandbox's
        log (it may show hidden inputs the learner printed: for the instructor, not the learner)."""
        path = self.course_dir / "reports" / self.assignment / f"{result.student}.json"
        report = json.loads(path.read_text()) if path.is_file() else {}
        entry = {
            "score": result.score,
            "max_score": result.max_score,
            "note": result.note,
            "seconds": round(result.seconds, 2),
            "flagged": [e.name for e in result.exercises if e.flagged],
            "exercises": [asdict(e) for e in result.exercises],
            "log_tail": result.log[-REPORT_LOG_CHARS:],
        }
        report[result.notebook] = entry
        feedback.write_atomically(path, json.dumps(report, indent=1, ensure_ascii=False))


def read_reports(course_dir: Path, assignment: str) -> dict[str, dict[str, Any]]:
    """Every student's report for ``assignment``: ``{student: {notebook: entry}}``."""
    folder = course_dir / "reports" / assignment
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
