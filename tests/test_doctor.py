"""``course doctor``: passes on a working install, fails with the fix on a broken one."""

from __future__ import annotations

import os
import subprocess
import sys

from course_lib import doctor


def run_doctor(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "doctor"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doctor_passes_here():
    done = run_doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all good" in done.stdout
    assert "[FAIL]" not in done.stdout


def test_doctor_fails_on_an_unknown_mode_and_says_how_to_fix_it():
    done = run_doctor(COURSE_MODE="fast")
    assert done.returncode == 1
    assert "unknown course mode 'fast': expected one of quick, cpu, gpu" in done.stdout
    assert "fix: unset COURSE_MODE or set it to quick, cpu or gpu" in done.stdout


def test_doctor_reports_a_corrupt_data_file(tmp_path, repo_root):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00not a header")
    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "nbgrader_config.py").write_text((repo_root / "nbgrader_config.py").read_text())
    findings = doctor.diagnose(tmp_path)
    data = next(f for f in findings if f.name == "data")
    assert not data.ok and "model.safetensors" in data.detail
    assert not doctor.healthy(findings)


def test_doctor_reports_a_wrong_nbgrader_config(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.source_directory = "source"\n'
    )
    finding = next(f for f in doctor.diagnose(tmp_path) if f.name == "nbgrader config")
    assert not finding.ok
    assert "source_directory is 'source', expected 'solutions'" in finding.detail


def test_matmul_speed_is_a_positive_number():
    assert doctor.matmul_gflops(size=64, repeats=2) > 0


def test_a_package_that_is_installed_but_cannot_be_imported_or_found_is_reported(monkeypatch):
    packages = (("pytest", "pytest"), ("pluggy", "no_such_module"), ("iniconfig", "also_absent"))
    monkeypatch.setattr(doctor, "PACKAGES", packages)
    monkeypatch.setattr(doctor, "LOCATED_ONLY", frozenset({"also_absent"}))
    findings = {f.name: f for f in doctor._check_packages()}
    assert findings["pytest"].ok
    for dist in ("pluggy", "iniconfig"):
        assert not findings[dist].ok and "import fails" in findings[dist].detail
        assert findings[dist].fix == "make setup"
