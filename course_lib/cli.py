"""The ``course`` command: every Makefile target is a thin wrapper over one of its subcommands.

    course doctor                 is this machine ready? (each problem with its fix)
    course setup                  register this environment as the course's Jupyter kernel
    course lab [-- LAB_ARGS]      JupyterLab on your own working copy of the notebooks
    course test [-- PYTEST_ARGS]  the whole test suite
    course release [NAME ...]     regenerate notebooks/ from solutions/ (nbgrader)
    course grade ASSIGNMENT       grade every submission of an assignment, in a sandbox
    course t2i train|sample ...   train the text-to-image model, or sample it from a prompt
    course bench [--only GROUP]   measure, and write BENCHMARKS.md

Learners without ``make`` (Windows) run the same subcommands directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

WORKSPACE = "workspace"


def _root() -> Path:
    from course_lib.release import repo_root

    return repo_root()


def cmd_doctor(args: argparse.Namespace) -> int:
    from course_lib import doctor

    findings = doctor.diagnose()
    print(doctor.report(findings))
    return 0 if doctor.healthy(findings) else 1


def register_kernel() -> str:
    """Register this Python as the Jupyter kernel ``diffusion-course`` inside its environment."""
    from ipykernel.kernelspec import install

    from course_lib.doctor import KERNEL_NAME

    return install(
        kernel_name=KERNEL_NAME,
        display_name="Python (Diffusion from Scratch)",
        prefix=sys.prefix,
    )


def cmd_setup(args: argparse.Namespace) -> int:
    path = register_kernel()
    print(f"registered the course kernel at {path}")
    return 0


def fill_workspace(release: Path, workspace: Path) -> list[Path]:
    """Copy every released file missing from ``workspace``; never overwrite the learner's work.

    Returns the files copied (an empty list when the workspace was already complete).
    """
    copied = []
    for src in sorted(release.rglob("*")):
        if not src.is_file() or ".ipynb_checkpoints" in src.parts:
            continue
        dest = workspace / src.relative_to(release)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        copied.append(dest)
    return copied


def lab_command(workspace: Path, extra: Sequence[str]) -> list[str]:
    """The JupyterLab command line for ``workspace``, headless-friendly and root-safe."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}"]
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if headless and not any(a.startswith("--no-browser") for a in extra):
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        cmd.append("--allow-root")
    return cmd + list(extra)


def cmd_lab(args: argparse.Namespace) -> int:
    root = _root()
    workspace = Path(args.workspace or root / WORKSPACE).resolve()
    copied = fill_workspace(root / "notebooks", workspace)
    if copied:
        print(f"copied {len(copied)} new file(s) from notebooks/ into {workspace}")
    print(f"your notebooks: {workspace} (yours to edit; notebooks/ stays pristine)")
    register_kernel()
    cmd = lab_command(workspace, args.lab_args)
    print("starting JupyterLab: open the URL it prints below", flush=True)
    return subprocess.call(cmd, cwd=workspace)


def cmd_test(args: argparse.Namespace) -> int:
    root = _root()
    cmd = [sys.executable, "-m", "pytest", "-n", str(args.jobs), *args.pytest_args]
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=root)


def cmd_release(args: argparse.Namespace) -> int:
    from course_lib.release import generate

    for folder in generate(args.names or None):
        print(f"released {folder}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from course_lib.grading.cli import main as grade_main

    return grade_main(args.grade_args)


def cmd_t2i(args: argparse.Namespace) -> int:
    from course_lib.t2i.cli import main as t2i_main

    return t2i_main(args.t2i_args)


def cmd_bench(args: argparse.Namespace) -> int:
    from course_lib import bench

    only = [g for item in args.only for g in item.replace(",", " ").split()] or None
    out = bench.run(_root(), only=only, output=args.output, threads=args.threads, quick=args.quick)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course", description="Diffusion from Scratch: the course's command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check this machine; each problem comes with its fix")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("setup", help="register this environment as the course's Jupyter kernel")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("lab", help="JupyterLab on your own copy of the notebooks")
    p.add_argument("--workspace", help=f"your working folder (default: {WORKSPACE}/ in the repo)")
    p.add_argument("lab_args", nargs=argparse.REMAINDER, help="passed on to JupyterLab")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("test", help="run the test suite")
    p.add_argument("--jobs", "-j", default="2", help="pytest-xdist workers (default 2)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed on to pytest")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/ with nbgrader")
    p.add_argument("names", nargs="*", help="assignments (default: all)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade", help="grade submissions in a sandbox", add_help=False)
    p.add_argument("grade_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("t2i", help="train or sample the text-to-image model", add_help=False)
    p.add_argument("t2i_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_t2i)

    p = sub.add_parser("bench", help="run benchmarks and write BENCHMARKS.md")
    p.add_argument("--only", action="append", default=[], help="benchmark group(s) to run")
    p.add_argument("--output", type=Path, help="results file (default: BENCHMARKS.md)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny budgets")
    p.set_defaults(func=cmd_bench)
    return parser


PASS_THROUGH = {"grade": "grade_args", "t2i": "t2i_args"}  # subcommands with parsers of their own


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASS_THROUGH:  # so `course grade --help` reaches the grader's parser
        args = argparse.Namespace(command=argv[0], func=globals()[f"cmd_{argv[0]}"])
        setattr(args, PASS_THROUGH[argv[0]], argv[1:])
    else:
        args = build_parser().parse_args(argv)
    for name in ("lab_args", "pytest_args"):
        rest = getattr(args, name, None)
        if rest and rest[0] == "--":
            setattr(args, name, rest[1:])
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"course {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
