"""Adversarial submissions of the demo assignment, graded in one batch with two jobs.

Every submission gets exactly the score its code earns on the hidden cases; the batch completes;
honest students keep their marks; nothing leaks out of the sandbox or into the feedback.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from attacks import ATTACKS, FULL, Context
from filelock import FileLock

from course_lib.exercises import by_name
from course_lib.grading import gradebook, sandbox
from course_lib.grading.grader import Grader, case_seed, read_reports
from course_lib.release import generate

ROOT = Path(__file__).resolve().parents[2]
SECRET = "adversarial-suite-secret"
HONEST = ["honest_a", "honest_b"]
LIMITS = sandbox.Limits(wall_seconds=90, cpu_seconds=80, cell_seconds=8, exercise_seconds=4)


@pytest.fixture(scope="module")
def protections() -> sandbox.Protections:
    prot = sandbox.protections()
    if prot.off:
        message = "sandbox protections off here: " + "; ".join(prot.off)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return prot


class Listener:
    """A loopback server that records every connection it gets (there should be none)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


def shared_dir(tmp_path_factory) -> Path:
    """A folder this test session's xdist workers share (so the batch is graded once)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def grade_batch(course: Path, release: Path, prot: sandbox.Protections) -> dict:
    """Submit the honest, untouched and adversarial notebooks and grade them all, two at a time."""
    released = generate(["demo"], output=release, root=ROOT)[0] / "demo.ipynb"
    solution = json.loads((ROOT / "solutions" / "demo" / "demo.ipynb").read_text())
    listener = Listener()
    ctx = Context(repo=ROOT, course_dir=course.resolve(), victim=HONEST[0], port=listener.port)

    def submit(student: str, content: bytes) -> None:
        folder = course / "submitted" / student / "demo"
        folder.mkdir(parents=True)
        (folder / "demo.ipynb").write_bytes(content)

    for student in HONEST:
        submit(student, json.dumps(solution).encode())
    submit("untouched", released.read_bytes())
    for attack in ATTACKS:
        made = attack.make(solution, ctx)
        submit(attack.name, made if isinstance(made, bytes) else json.dumps(made).encode())
    victim = (course / "submitted" / HONEST[0] / "demo" / "demo.ipynb").read_bytes()
    grader = Grader("demo", course, ROOT, limits=LIMITS, secret=SECRET, protections=prot)
    try:
        grader.run(jobs=2)
    finally:
        grader.close()
        listener.close()
    return {"connections": listener.connections, "victim_before": victim.decode()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, protections):
    shared = shared_dir(tmp_path_factory)
    course, summary = shared / "adversarial-course", shared / "adversarial-batch.json"
    with FileLock(str(shared / "adversarial.lock")):
        if not summary.exists():
            summary.write_text(
                json.dumps(grade_batch(course, shared / "adversarial-release", protections))
            )
    report = read_reports(course, "demo")
    return {
        **json.loads(summary.read_text()),
        "course": course,
        "ctx": Context(repo=ROOT, course_dir=course.resolve(), victim=HONEST[0], port=0),
        "results": {student: notebooks["demo"] for student, notebooks in report.items()},
        "scores": gradebook.scores(course, "demo"),
    }


def auto_scores(batch, student: str) -> dict[str, float]:
    return {grade_id: auto for grade_id, (auto, _manual) in batch["scores"][student].items()}


def test_the_suite_has_at_least_25_attacks():
    assert len(ATTACKS) >= 25


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_gets_exactly_the_score_its_code_earns(batch, attack):
    assert auto_scores(batch, attack.name) == attack.scores, batch["results"][attack.name][
        "exercises"
    ]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_reference_calls_are_flagged_and_nothing_else_is(batch, attack):
    flagged = tuple(e["name"] for e in batch["results"][attack.name]["exercises"] if e["flagged"])
    assert flagged == attack.flagged


def test_every_submission_is_graded(batch):
    assert set(batch["scores"]) == {*HONEST, "untouched", *(a.name for a in ATTACKS)}


def test_honest_students_keep_full_marks(batch):
    for student in HONEST:
        assert auto_scores(batch, student) == FULL


def test_the_untouched_notebook_scores_zero(batch):
    assert set(auto_scores(batch, "untouched").values()) == {0.0}


def test_points_come_from_the_source_not_the_submission(batch):
    exercises = batch["results"]["inflated_points"]["exercises"]
    assert sum(e["max_points"] for e in exercises) == sum(FULL.values())


def test_nothing_was_written_outside_the_sandbox(batch):
    ctx = batch["ctx"]
    for path in [
        ROOT / "solutions" / "demo" / "pwned.txt",
        ROOT / "pwned.txt",
        ctx.course_dir / "pwned.txt",
    ]:
        assert not path.exists(), path
    victim = ctx.course_dir / "submitted" / ctx.victim / "demo" / "demo.ipynb"
    assert victim.read_text() == batch["victim_before"]


def test_the_loopback_listener_received_no_connection(batch):
    assert batch["connections"] == 0


def test_feedback_contains_no_hidden_input(batch):
    html = (
        batch["course"] / "feedback" / "hidden_inputs_in_errors" / "demo" / "demo.html"
    ).read_text()
    assert "LEAKED" not in html
    exercise = by_name("demo")["softmax"]
    for case in exercise.hidden_cases(case_seed(SECRET, "demo", "softmax")):
        for value in case["logits"].flatten().tolist()[:6]:
            assert repr(value) not in html and f"{value:.4f}" not in html


def test_feedback_says_what_went_wrong_in_one_line(batch):
    exercises = batch["results"]["infinite_loop"]["exercises"]
    line = next(e["line"] for e in exercises if e["name"] == "softmax")
    assert "did not finish" in line


def test_unreadable_notebooks_say_why(batch):
    assert "not valid JSON" in batch["results"]["invalid_json"]["note"]
    assert "UTF-8" in batch["results"]["non_utf8_bytes"]["note"]
