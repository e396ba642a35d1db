"""One sandboxed run of the harness: the operating system's own isolation, through well-kept tools.

* **bubblewrap** (``bwrap``): new mount, PID, IPC, UTS and network namespaces. The sandbox sees
  read-only system folders, the Python install, the virtual environment and the installed
  ``course_lib``; a private ``/tmp``; and one read-write folder holding this submission only.
  The repository (``solutions/``), the course directory (gradebook, instructor configuration,
  other submissions) and home folders do not exist inside. No network: only a loopback
  interface of its own.
* **a separate uid** (``setpriv``, when the grader runs as root): the code runs as an unprivileged
  uid of its own per parallel job, with no capabilities and ``no_new_privs``.
* **rlimits** (``prlimit``): CPU seconds, address space, file size, processes and open files;
  a wall-clock backstop kills the whole PID namespace.

Where a mechanism is missing (no bubblewrap, not root, not Linux), :func:`protections` says so
and the grader prints which protection is off instead of failing or pretending.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import course_lib

UID_BASE = 61000  # the grader runs the submission in worker slot k as uid UID_BASE + k


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission (defaults suit ``quick`` mode notebooks)."""

    wall_seconds: float = 120.0
    cpu_seconds: int = 100
    memory_bytes: int = 6 * 1024**3  # address space: importing torch alone maps about 3.2 GB
    file_bytes: int = 64 * 1024**2
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 64 * 1024
    tmp_bytes: int = 256 * 1024**2  # the sandbox's private /tmp (a tmpfs, so memory)
    cell_seconds: float = 30.0
    exercise_seconds: float = 20.0


@dataclass
class Protections:
    """Which isolation mechanisms this machine offers the grader."""

    bubblewrap: str | None
    separate_uid: bool
    rlimits: bool
    notes: list[str] = field(default_factory=list)

    @property
    def off(self) -> list[str]:
        """Human-readable names of the protections that are off."""
        missing = []
        if not self.bubblewrap:
            missing.append(
                "filesystem and network isolation (install bubblewrap: apt-get install bubblewrap)"
            )
        if not self.separate_uid:
            missing.append(
                "separate uid and process limit (run the grader as root to drop each submission "
                "to a uid of its own; the process limit counts per uid)"
            )
        if not self.rlimits:
            missing.append("resource limits (prlimit from util-linux not found)")
        return missing

    def describe(self) -> str:
        on = ["namespaces (bubblewrap)"] if self.bubblewrap else []
        on += ["separate uid"] if self.separate_uid else []
        on += (
            ["rlimits (prlimit)", "wall-clock backstop"]
            if self.rlimits
            else ["wall-clock backstop"]
        )
        text = "protections on: " + ", ".join(on)
        if self.off:
            text += "; OFF: " + "; ".join(self.off)
        return text


def protections() -> Protections:
    """Probe this machine: is bubblewrap usable, can we switch uid, is prlimit there?"""
    notes: list[str] = []
    bwrap = shutil.which("bwrap")
    if bwrap and sys.platform.startswith("linux"):
        probe = subprocess.run(
            [bwrap, *_namespace_flags(), "--ro-bind", "/", "/", "--", "true"],
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            notes.append(
                f"bubblewrap is installed but cannot create namespaces: {probe.stderr.strip()}"
            )
            bwrap = None
    else:
        bwrap = None
    separate_uid = (
        hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("setpriv") is not None
    )
    if separate_uid:  # the uid must reach this Python and course_lib (a 0700 checkout hides them)
        probe = subprocess.run(
            [*setpriv_args(UID_BASE), sys.executable, "-I", "-c", "import course_lib.grading"],
            capture_output=True,
            text=True,
            cwd="/",
        )
        if probe.returncode != 0:
            said = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
            notes.append(
                f"a separate uid cannot run {sys.executable} with course_lib ({said}): make the "
                "checkout and every folder above it readable by other users (chmod o+rx)"
            )
            separate_uid = False
    rlimits = shutil.which("prlimit") is not None
    return Protections(bubblewrap=bwrap, separate_uid=separate_uid, rlimits=rlimits, notes=notes)


def _namespace_flags() -> list[str]:
    flags = [
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if os.geteuid() != 0:
        flags.insert(0, "--unshare-user")
    return flags


def _readonly_paths() -> list[Path]:
    """What the harness needs: the Python install, the venv, course_lib and its shipped data.

    In a clone, course_lib and ``data/`` are folders of the repository: they are mounted alone,
    so the rest of the repository (``solutions/``) does not exist in the sandbox.
    """
    from course_lib.paths import data_dir

    paths = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(os.path.realpath(sys.executable)).parent,
        Path(course_lib.__file__).resolve().parent,
    }
    if data_dir().is_dir():
        paths.add(data_dir().resolve())
    paths = {p for p in paths if not str(p).startswith("/usr/")}
    # a folder inside another one already mounted needs no mount of its own
    return sorted(p for p in paths if not any(q != p and q in p.parents for q in paths))


def _mkdirs(path: Path, made: set[Path]) -> list[str]:
    args = []
    for parent in reversed(path.parents):
        if parent != Path("/") and parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_args(bwrap: str, work: Path, tmp_bytes: int = Limits.tmp_bytes) -> list[str]:
    """The bubblewrap command line confining the harness to ``work`` (mounted at /submission)."""
    args = [bwrap, *_namespace_flags(), "--die-with-parent", "--new-session"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives"):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # The private /tmp comes first: a checkout or venv that lives under /tmp on the host (a CI
    # clone, say) is then mounted on top of it instead of being hidden by it.
    args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/tmp")}
    for path in _readonly_paths():
        args += _mkdirs(path, made)
        args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--bind", str(work), "/submission", "--chdir", "/submission"]
    return args


def environment() -> dict[str, str]:
    """The harness's whole environment: quick mode, CPU only, one thread, nothing inherited."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/submission",
        "USER": "student",
        "LANG": "C.UTF-8",
        "COURSE_MODE": "quick",
        "COURSE_DEVICE": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/mpl",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


@dataclass
class RunResult:
    """How the sandboxed run ended."""

    returncode: int | None
    timed_out: bool
    seconds: float
    output: str
    output_bytes: int


def setpriv_args(uid: int) -> list[str]:
    """The command prefix that runs what follows as ``uid``, with no groups or capabilities."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def build_command(
    work: Path, uid: int | None, limits: Limits, prot: Protections, ready_fd: int
) -> tuple[list[str], Path]:
    """The full command line and the path of the work folder as the harness sees it."""
    python = [sys.executable, "-I", "-m", "course_lib.grading.harness"]
    cmd: list[str] = []
    if prot.rlimits:
        cmd += [
            "prlimit",
            f"--cpu={limits.cpu_seconds}",
            f"--as={limits.memory_bytes}",
            f"--fsize={limits.file_bytes}",
            f"--nofile={limits.open_files}",
            "--core=0",
        ]
        # RLIMIT_NPROC counts every process of the uid: only meaningful for a uid of our own
        cmd += [f"--nproc={limits.processes}", "--"] if uid is not None else ["--"]
    inner = Path("/submission") if prot.bubblewrap else work
    if prot.bubblewrap:
        cmd += [*bwrap_args(prot.bubblewrap, work, limits.tmp_bytes), "--clearenv"]
        for key, value in environment().items():
            cmd += ["--setenv", key, value]
        cmd += ["--"]
    if uid is not None:
        cmd += setpriv_args(uid)
    return cmd + python + [str(inner), str(ready_fd)], inner


def run(work: Path, inputs: bytes, uid: int | None, limits: Limits, prot: Protections) -> RunResult:
    """Run the harness on ``work``, feed ``inputs`` once it is ready, enforce the wall clock."""
    ready_r, ready_w = os.pipe()
    cmd, _ = build_command(work, uid, limits, prot, ready_w)
    env = (
        environment() if not prot.bubblewrap else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    )
    if not prot.bubblewrap:
        env["HOME"] = str(work)
        env["MPLCONFIGDIR"] = str(work / ".mpl")
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=work,
        pass_fds=(ready_w,),
        start_new_session=True,
    )
    os.close(ready_w)
    kept = bytearray()
    total = [0]

    def drain() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):
            total[0] += len(chunk)
            if len(kept) < limits.output_bytes:
                kept.extend(chunk[: limits.output_bytes - len(kept)])

    def feed() -> None:
        assert proc.stdin is not None
        with os.fdopen(ready_r, "rb") as ready:
            line = ready.readline()
        try:
            if line.startswith(b"ready"):
                proc.stdin.write(inputs)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    threads = [
        threading.Thread(target=drain, daemon=True),
        threading.Thread(target=feed, daemon=True),
    ]
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        proc.wait()
    threads[0].join(timeout=5)
    text = kept.decode("utf-8", errors="replace")
    if total[0] > limits.output_bytes:
        text += f"\n[output truncated: {total[0]} bytes in all]"
    return RunResult(proc.returncode, timed_out, time.monotonic() - start, text, total[0])


def _kill(proc: subprocess.Popen) -> None:
    """Kill the whole process group (bubblewrap's PID namespace dies with its first process)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
