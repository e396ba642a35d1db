"""The sandbox: what it mounts, what it inherits, what it says when a protection is off."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from course_lib.grading import sandbox
from course_lib.grading.grader import Grader

ROOT = Path(__file__).resolve().parent.parent


def test_the_sandbox_mounts_course_lib_but_not_the_repository():
    mounted = [str(p) for p in sandbox._readonly_paths()]
    assert str(ROOT / "course_lib") in mounted
    assert str(ROOT) not in mounted
    assert not any(m.startswith(str(ROOT / "solutions")) for m in mounted)


def test_the_harness_inherits_no_environment_variable():
    env = sandbox.environment()
    assert env["COURSE_MODE"] == "quick" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert not {"COURSE_DIR", "HOME_SECRET", "PYTHONPATH"} & set(env)


def test_a_missing_bubblewrap_is_named_as_a_protection_that_is_off():
    prot = sandbox.Protections(bubblewrap=None, separate_uid=False, rlimits=True)
    text = prot.describe()
    assert "OFF" in text and "bubblewrap" in text and "separate uid" in text


def test_all_protections_on_says_nothing_is_off():
    prot = sandbox.Protections(bubblewrap="/usr/bin/bwrap", separate_uid=True, rlimits=True)
    assert "OFF" not in prot.describe()


def demo_grader(course: Path, protections: sandbox.Protections) -> Grader:
    """A grader of the demo assignment with its solution submitted by one student."""
    folder = course / "submitted" / "student" / "demo"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "demo" / "demo.ipynb", folder / "demo.ipynb")
    return Grader("demo", course, ROOT, secret="demo", protections=protections, log=lambda _: None)


def test_without_any_sandbox_the_grader_still_grades_and_says_so(tmp_path):
    bare = sandbox.Protections(bubblewrap=None, separate_uid=False, rlimits=False)
    grader = demo_grader(tmp_path, bare)
    try:
        (result,) = grader.run()
    finally:
        grader.close()
    assert result.score == result.max_score == 5


@pytest.mark.skipif(
    not sandbox.protections().separate_uid, reason="needs root, setpriv and a readable checkout"
)
def test_a_separate_uid_without_bubblewrap_reaches_its_submission_but_not_the_release(tmp_path):
    uid_only = sandbox.Protections(bubblewrap=None, separate_uid=True, rlimits=True)
    grader = demo_grader(tmp_path, uid_only)
    try:
        assert grader._scratch.stat().st_mode & 0o777 == 0o711  # pass through, not list
        assert (grader._scratch / "release").stat().st_mode & 0o777 == 0o700
        (result,) = grader.run()
    finally:
        grader.close()
    assert result.score == result.max_score == 5, result.note


@pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("setpriv")), reason="needs root and setpriv"
)
def test_a_uid_that_cannot_reach_python_is_no_protection_and_says_why(tmp_path, monkeypatch):
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "python").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(hidden / "python"))
    prot = sandbox.protections()
    assert not prot.separate_uid
    assert any("separate uid cannot run" in note for note in prot.notes), prot.notes


@pytest.mark.skipif(not sandbox.protections().bubblewrap, reason="needs bubblewrap")
def test_the_bubblewrap_command_binds_the_submission_read_write_and_nothing_else(tmp_path):
    args = sandbox.bwrap_args(sandbox.protections().bubblewrap, tmp_path)
    rw = [args[i + 1 : i + 3] for i, a in enumerate(args) if a == "--bind"]
    assert rw == [[str(tmp_path), "/submission"]]
    assert "--unshare-net" in args and "--unshare-pid" in args
    under_repo = {a for a in args if a.startswith(str(ROOT))}
    assert under_repo <= {str(p) for p in sandbox._readonly_paths()} | {str(ROOT)}
