"""What runs inside the sandbox: the learner's cells, then their functions on hidden inputs.

Run as ``python -I -m course_lib.grading.harness WORKDIR READY_FD``. It is untrusted from the
moment the first cell runs: everything it writes is parsed by the trusted side as plain data,
and nothing it could forge is an expected value (those never enter the sandbox).

1. ``WORKDIR/program.json`` lists the cells to run (the learner's, and the course's locked cells
   taken from the source) and the exercises to grade.
2. The cells run in order in an in-process IPython shell (magics and ``get_ipython()`` work,
   without a kernel or its sockets); a cell that raises, overruns its time or kills its process
   is reported and the next one runs (see :func:`run_cells`).
3. Only then does the harness say ``ready`` on ``READY_FD`` and read the hidden inputs from
   stdin, so the cells cannot see them.
4. Each exercise runs in a forked child with its own time limit: the child calls the learner's
   function on every hidden input and writes ``WORKDIR/out/<name>.bin`` (see
   :mod:`course_lib.grading.values`). A profile hook records any call of the exercise's reference
   while the learner's function runs, whatever name it was reached by.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any


class CellTimeout(Exception):
    """A cell ran past its time limit."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise CellTimeout("this cell ran past its time limit")


def run_cell(shell: Any, cell: dict[str, str], timeout: float) -> None:
    """Run one cell; an exception (or a time-out) is printed and ends the cell, nothing more."""
    me = os.getpid()
    print(f"--- {cell['label']}", flush=True)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        shell.run_cell(cell["source"], store_history=False)
    except BaseException as err:  # a cell that escapes IPython's own handler
        print(f"cell stopped: {type(err).__name__}", flush=True)
    finally:
        if os.getpid() != me:  # a process the learner forked: it must not run the harness
            os._exit(0)
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_cells(cells: list[dict[str, str]], timeout: float) -> dict[str, Any]:
    """Run the cells in one IPython namespace, surviving any cell that kills its process.

    Before each cell the current process forks: the child runs the cell and, once it is done,
    tells its parent and carries on with the next cell, while the parent exits. If the child dies
    inside the cell (``os._exit``, a signal, the memory limit) or hangs past the cell's time, the
    parent, which still holds the state from before that cell, skips it and carries on. So a
    crash costs the one cell it happened in, as a restarted kernel would, and nothing else.
    Returns (in the one process that ran them all) the namespace after the last cell.
    """
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="NoColor")
    shell.InteractiveTB.set_mode(mode="Minimal")  # the log is for the instructor; keep it cheap
    index = 0
    while index < len(cells):
        done_r, done_w = os.pipe()
        pid = fork_with_retry()
        if pid == 0:
            os.close(done_r)
            run_cell(shell, cells[index], timeout)
            os.write(done_w, b"ok")
            os.close(done_w)
            index += 1
            continue
        os.close(done_w)
        if _wait_for_cell(pid, done_r, timeout + 5.0):
            os._exit(0)  # the child carries on from here
        print(f"--- {cells[index]['label']} stopped its process; skipped", flush=True)
        index += 1
    return shell.user_ns


def _wait_for_cell(pid: int, done_r: int, timeout: float) -> bool:
    """True once the child says its cell is done; False if it died or overran (it is killed)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([done_r], [], [], 0.05)
            if ready:
                return os.read(done_r, 2) == b"ok"  # b"" if it died inside the cell
            if os.waitpid(pid, os.WNOHANG)[0]:
                ready, _, _ = select.select([done_r], [], [], 0)
                return bool(ready) and os.read(done_r, 2) == b"ok"
    finally:
        os.close(done_r)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def kill_strays(alone: bool, keep: set[int]) -> None:
    """Kill every process of ours the learner left behind (a fork bomb, a background loop).

    ``alone`` says this uid or PID namespace holds this submission only, so every process of our
    uid that we can see (but those in ``keep`` and ourselves) is the learner's.
    """
    if alone:
        me, uid = os.getpid(), os.getuid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in keep or int(entry.name) == me:
                continue
            try:
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue
    reap()


def reap() -> None:
    """Collect the learner's finished child processes, so they stop counting against the limit."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def fork_with_retry(seconds: float = 3.0) -> int:
    """``os.fork``, retried while the process limit is reached (a fork bomb winding down)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return os.fork()
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            reap()
            time.sleep(0.05)


def resolve(dotted: str) -> Any:
    """``"pkg.module:qual.name"`` -> the object."""
    module_name, _, qualname = dotted.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def grade_exercise(
    fn: Any, reference_codes: set[Any], cases: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Call ``fn`` on every case; record outputs, exception types and any call of the reference."""
    from course_lib.grading.values import encode

    called = []

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code in reference_codes:
            called.append(True)

    tensors: dict[str, Any] = {}
    results = []
    for i, inputs in enumerate(cases):
        sys.setprofile(profile)
        threading.setprofile(profile)
        try:
            out = fn(**copy.deepcopy(inputs))
        except BaseException as err:
            results.append({"error": type(err).__name__[:100]})
            continue
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        try:
            results.append({"value": encode(out, tensors, f"c{i}")})
        except Exception as err:
            results.append({"error": f"unreadable result ({type(err).__name__})"})
    return {"cases": results, "reference_called": bool(called)}, tensors


def run_exercise(
    name: str, fn: Any, reference_codes: set[Any], cases: list, out_dir: Path, timeout: float
) -> None:
    """Grade one exercise in a forked child, killing it after ``timeout`` seconds."""
    from course_lib.grading.values import dump

    pid = fork_with_retry()
    if pid == 0:
        try:
            tree, tensors = grade_exercise(fn, reference_codes, cases)
            blob = dump(tree, tensors)
            tmp = out_dir / f"{name}.tmp"
            tmp.write_bytes(blob)
            tmp.rename(out_dir / f"{name}.bin")
        finally:
            os._exit(0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            if not (out_dir / f"{name}.bin").exists():
                (out_dir / f"{name}.crashed").write_text("")
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    (out_dir / f"{name}.timeout").write_text("")


def main(argv: list[str]) -> int:
    """Set up, then hand over to the chain of cell runners and wait for the last one to finish.

    This first process stays alive until grading is over (the sandbox ends with it); the work
    happens in its descendants, so that a cell that kills its process cannot end the run.
    """
    work = Path(argv[0])
    program = json.loads((work / "program.json").read_text())
    import torch

    torch.set_num_threads(1)
    references = {
        ex["name"]: {getattr(resolve(r), "__code__", None) for r in ex["references"]} - {None}
        for ex in program["exercises"]
    }
    supervisor = os.getpid()
    finished_r, finished_w = os.pipe()
    if fork_with_retry() != 0:
        os.close(finished_w)
        with os.fdopen(finished_r, "rb") as finished:
            finished.read(8)  # "finished", or nothing once every runner is gone
        return 0
    os.close(finished_r)
    namespace = run_cells(program["cells"], program["cell_timeout"])
    kill_strays(program["isolated"], keep={supervisor})
    grade_all(work, program, namespace, references, int(argv[1]), supervisor)
    os.write(finished_w, b"finished")
    os._exit(0)


def grade_all(
    work: Path,
    program: dict[str, Any],
    namespace: dict[str, Any],
    references: dict[str, Any],
    ready_fd: int,
    supervisor: int,
) -> None:
    """Say ready, read the hidden inputs, and grade each exercise in its own child."""
    from course_lib.grading.values import decode, read_blob

    with os.fdopen(ready_fd, "w") as ready:
        ready.write("ready\n")
    tree, tensors = read_blob(sys.stdin.buffer)
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    for ex in program["exercises"]:
        name = ex["name"]
        fn = namespace.get(name)
        if fn is None:
            (out_dir / f"{name}.missing").write_text("")
            continue
        cases = [decode(c, tensors) for c in tree[name]]
        run_exercise(name, fn, references[name], cases, out_dir, program["exercise_timeout"])
        kill_strays(program["isolated"], keep={supervisor})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
