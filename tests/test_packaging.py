"""The environment files agree, the pins are exact, the core imports alone, ruff is clean."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch"}  # conda-forge's name where it differs from PyPI's


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {Requirement(r).name.lower().replace("_", "-"): Requirement(r) for r in reqs}


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                if not pip_dep.startswith("-"):
                    r = Requirement(pip_dep)
                    found[r.name.lower().replace("_", "-")] = str(r.specifier)
            continue
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", dep).groups()
        found[name.lower()] = spec.replace(" ", "")
    return found


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    conda = conda_requirements()
    for name, req in pyproject_requirements().items():
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"{name} is in pyproject.toml but not in environment.yml"
        assert set(conda[conda_name].split(",")) == set(str(req.specifier).split(",")), name
    extra = (
        set(conda) - {CONDA_NAMES.get(n, n) for n in pyproject_requirements()} - {"python", "pip"}
    )
    assert not extra, f"in environment.yml only: {sorted(extra)}"


def test_constraints_pin_every_dependency_inside_its_range():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    for name, req in pyproject_requirements().items():
        assert name in pins, f"{name} is not pinned in constraints.txt (run make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_torch_range_admits_older_gpu_machines():
    torch_req = pyproject_requirements()["torch"]
    assert torch_req.specifier.contains("2.11.0") and torch_req.specifier.contains("2.14.1")


BLOCKED = ("matplotlib", "IPython", "ipywidgets", "jupyterlab", "nbgrader", "sklearn",
           "torchvision", "nbformat", "nbclient")  # fmt: skip
CORE_MODULES = ("course_lib", "course_lib.config", "course_lib.diffusion", "course_lib.models",
                "course_lib.train", "course_lib.data", "course_lib.metrics")  # fmt: skip


def test_training_and_sampling_code_imports_without_the_jupyter_stack():
    available = [
        m
        for m in CORE_MODULES
        if (ROOT / (m.replace(".", "/") + ".py")).exists()
        or (ROOT / m.replace(".", "/") / "__init__.py").exists()
    ]
    script = (
        "import sys\n"
        f"BLOCKED = {BLOCKED!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} must not be imported by the core')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {available!r}:\n"
        "    __import__(m)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "course_lib.config" in available


def test_ruff_is_clean():
    check = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert fmt.returncode == 0, fmt.stdout


def test_the_wheel_carries_every_shipped_data_file(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import zipfile

    (wheel,) = tmp_path.glob("course_lib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "course_lib/_data/" + str(p.relative_to(ROOT / "data"))
        for p in (ROOT / "data").rglob("*")
        if p.is_file()
    }
    assert shipped and shipped <= names
    assert "course_lib/cli.py" in names and not any(n.startswith("tests/") for n in names)


def test_data_dir_is_the_repository_data_folder_in_a_clone(monkeypatch):
    from course_lib import paths

    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert paths.data_dir() == ROOT / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", "/somewhere/else")
    assert paths.data_path("clip") == Path("/somewhere/else/clip")
