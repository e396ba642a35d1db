"""``course doctor``: is this machine ready for the course? Each problem comes with its fix.

Every check returns a :class:`Finding`; :func:`diagnose` runs them all and :func:`report`
formats them. Nothing here needs the Jupyter stack to import, so the doctor can say that
the Jupyter stack is missing.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

# The design card's packages and what the library itself needs; (distribution, import name).
PACKAGES: tuple[tuple[str, str], ...] = (
    ("torch", "torch"),
    ("numpy", "numpy"),
    ("safetensors", "safetensors"),
    ("tqdm", "tqdm"),
    ("torchvision", "torchvision"),
    ("matplotlib", "matplotlib"),
    ("ipywidgets", "ipywidgets"),
    ("jupyterlab", "jupyterlab"),
    ("nbgrader", "nbgrader"),
    ("scikit-learn", "sklearn"),
)
#: Tools that run beside the kernel (the lab server, the grading CLI), never inside it: found,
#: not imported, since importing them costs seconds (jupyterlab 4 s, nbgrader 5 s here).
LOCATED_ONLY = frozenset({"jupyterlab", "nbgrader"})
MIN_PYTHON = (3, 11)
KERNEL_NAME = "diffusion-course"


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report: what was checked, whether it is fine, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # shown, but does not fail the doctor


def _check_python() -> Finding:
    version = platform.python_version()
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Finding(
        "python",
        ok,
        f"{version} at {sys.executable}",
        "" if ok else "install Python 3.11 or newer and rebuild the environment: make setup",
    )


def _check_mode() -> Finding:
    from course_lib.config import MODE_ENV, ModeError, get_mode

    try:
        mode = get_mode()
    except ModeError as err:
        return Finding("mode", False, str(err), f"unset {MODE_ENV} or set it to quick, cpu or gpu")
    source = f"from {MODE_ENV}" if os.environ.get(MODE_ENV) else "auto-detected"
    return Finding("mode", True, f"{mode} ({source})")


def _check_torch() -> list[Finding]:
    try:
        import torch
    except Exception as err:  # a broken wheel raises more than ImportError
        return [
            Finding("torch", False, f"cannot import torch: {err}", "rebuild the env: make setup")
        ]
    from course_lib.config import DEVICE_ENV, ModeError, get_device

    findings = [Finding("torch", True, f"{torch.__version__}, {torch.get_num_threads()} threads")]
    cuda = (
        f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): "
        + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "no CUDA GPU (fine: cpu mode runs every notebook)"
    )
    findings.append(Finding("cuda", True, cuda))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        findings.append(Finding("mps", True, "Apple MPS available"))
    try:
        findings.append(Finding("device", True, str(get_device())))
    except ModeError:
        pass  # reported by the mode check
    except ValueError as err:
        findings.append(Finding("device", False, str(err), f"unset {DEVICE_ENV} or fix its value"))
    return findings


def _check_packages() -> list[Finding]:
    findings = []
    for dist, module in PACKAGES:
        if dist == "torch":
            continue  # reported in detail by the torch check
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            findings.append(
                Finding(dist, False, "not installed", "make setup (or: pip install -e '.[lab]')")
            )
            continue
        try:
            if module in LOCATED_ONLY:
                if importlib.util.find_spec(module) is None:
                    raise ImportError(f"no module named {module!r} on sys.path")
            else:
                importlib.import_module(module)
        except Exception as err:
            findings.append(
                Finding(dist, False, f"{version} installed but import fails: {err}", "make setup")
            )
            continue
        findings.append(Finding(dist, True, version))
    return findings


def _check_kernel() -> Finding:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return Finding("kernel", False, "jupyter_client is missing", "make setup")
    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL_NAME in specs:
        return Finding("kernel", True, f"{KERNEL_NAME!r} registered at {specs[KERNEL_NAME]}")
    return Finding(
        "kernel",
        False,
        f"no Jupyter kernel named {KERNEL_NAME!r}",
        "course setup (registers this environment as the course's kernel)",
        warning=True,
    )


def _check_data(root: Path | None) -> list[Finding]:
    if root is None:
        return [Finding("data", True, "no repository here (installed package); skipped")]
    data = root / "data"
    if not data.is_dir():
        return [Finding("data", False, f"{data} is missing", "clone the whole repository again")]
    problems, count = [], 0
    for path in sorted(data.rglob("*")):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(path), framework="pt") as f:
                    list(f.keys())
            except Exception as err:
                problems.append(f"{path.relative_to(root)}: {err}")
            count += 1
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError) as err:
                problems.append(f"{path.relative_to(root)}: {err}")
            count += 1
    if problems:
        return [
            Finding(
                "data",
                False,
                "unreadable files: " + "; ".join(problems),
                "restore them: git checkout -- data/ (and git lfs pull if you use LFS)",
            )
        ]
    return [Finding("data", True, f"{count} files in data/ load")]


def _check_nbgrader(root: Path | None) -> Finding:
    if root is None:
        return Finding("nbgrader config", True, "no repository here; skipped")
    config_file = root / "nbgrader_config.py"
    if not config_file.exists():
        return Finding("nbgrader config", False, f"{config_file} is missing", "git checkout it")
    try:
        from traitlets.config import PyFileConfigLoader

        config = PyFileConfigLoader(config_file.name, path=str(root)).load_config()
    except Exception as err:
        return Finding(
            "nbgrader config", False, f"{config_file} does not load: {err}", "fix the file"
        )
    course = config.get("CourseDirectory", {})
    problems = []
    for key, expected in (("source_directory", "solutions"), ("release_directory", "notebooks")):
        value = course.get(key)
        if value != expected:
            problems.append(f"CourseDirectory.{key} is {value!r}, expected {expected!r}")
        elif not (root / value).is_dir():
            problems.append(f"{value}/ is missing")
    if problems:
        return Finding("nbgrader config", False, "; ".join(problems), "restore nbgrader_config.py")
    return Finding("nbgrader config", True, "solutions/ → notebooks/")


def diagnose(root: Path | None = None) -> list[Finding]:
    """Run every check. ``root`` is the repository (default: found from here, if any)."""
    if root is None:
        from course_lib.release import repo_root

        try:
            root = repo_root()
        except FileNotFoundError:
            root = None
    findings = [_check_python(), _check_mode()]
    findings += _check_torch()
    findings += _check_packages()
    findings.append(_check_kernel())
    findings += _check_data(root)
    findings.append(_check_nbgrader(root))
    return findings


def report(findings: list[Finding]) -> str:
    """The findings as aligned text lines, problems followed by their fixes."""
    width = max(len(f.name) for f in findings)
    lines = []
    for f in findings:
        mark = "ok  " if f.ok else ("warn" if f.warning else "FAIL")
        lines.append(f"[{mark}] {f.name:<{width}}  {f.detail}")
        if not f.ok and f.fix:
            lines.append(f"       {'':<{width}}  fix: {f.fix}")
    failed = [f for f in findings if not f.ok and not f.warning]
    lines.append(
        "all good: the course is ready" if not failed else f"{len(failed)} problem(s) to fix"
    )
    return "\n".join(lines)


def healthy(findings: list[Finding]) -> bool:
    return all(f.ok or f.warning for f in findings)


def matmul_gflops(size: int = 512, repeats: int = 5) -> float:
    """A rough speed figure for this machine: float32 matrix products per second, in GFLOP/s."""
    import time

    import torch

    from course_lib.config import get_device

    device = get_device()
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return 2 * size**3 * repeats / seconds / 1e9
