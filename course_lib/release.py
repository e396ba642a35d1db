"""The release step: student notebooks in ``notebooks/`` generated from ``solutions/`` by nbgrader.

``course release`` (and ``make release``) runs nbgrader's ``generate_assignment`` for every
assignment, with no gradebook (``--no-db``): releasing never touches instructor state. nbgrader
replaces solution regions with stubs, removes hidden tests and clears every output, so the
result is deterministic: releasing twice changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"


def repo_root() -> Path:
    """The repository root: the folder holding ``nbgrader_config.py`` above this package."""
    here = Path(__file__).resolve().parent.parent
    if (here / "nbgrader_config.py").exists():
        return here
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / "nbgrader_config.py").exists() and (folder / SOURCE_DIR).is_dir():
            return folder
    raise FileNotFoundError(
        "cannot find the course repository (a folder with nbgrader_config.py and solutions/): "
        "run this from inside your clone of the course"
    )


def assignments(root: Path | None = None) -> list[str]:
    """Names of the assignments in ``solutions/`` (each a folder holding its notebook)."""
    root = root or repo_root()
    return sorted(
        p.name for p in (root / SOURCE_DIR).iterdir() if p.is_dir() and any(p.glob("*.ipynb"))
    )


def generate(
    names: list[str] | None = None,
    output: Path | None = None,
    root: Path | None = None,
) -> list[Path]:
    """Generate the student version of each assignment into ``output/<assignment>/``.

    Args:
        names: assignments to release (default: all in ``solutions/``).
        output: the release folder (default: the repository's ``notebooks/``). Each assignment's
            folder there is replaced whole, so files removed from a solution disappear too.
        root: the repository root (default: found from this package or the working directory).

    Returns:
        The released assignment folders.
    """
    root = root or repo_root()
    known = assignments(root)
    names = names or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(
            f"unknown assignment(s) {', '.join(unknown)}: expected one of {', '.join(known)}"
        )
    output = (output or root / RELEASE_DIR).resolve()
    output.mkdir(parents=True, exist_ok=True)
    released = []
    for name in names:
        # nbgrader writes into a scratch folder first; the real one is swapped in only on success,
        # so a failed release never leaves a half-written notebook behind.
        with tempfile.TemporaryDirectory(prefix=f"release-{name}-") as scratch:
            cmd = [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                name,
                "--no-db",
                "--force",
                "--log-level=WARN",
                f"--CourseDirectory.root={root}",
                f"--CourseDirectory.source_directory={SOURCE_DIR}",
                f"--CourseDirectory.release_directory={scratch}",
            ]
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(
                    f"nbgrader could not release {name!r} (exit {done.returncode}):\n"
                    f"{done.stdout}{done.stderr}"
                )
            target = output / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Path(scratch) / name, target)
        released.append(target)
    return released
