"""Adversarial submissions of the demo assignment, and the score each one deserves.

Each attack starts from the correct solution notebook (full marks) and changes it; ``scores``
is what the principle gives: what the code computes on the hidden cases, nothing else. Attacks
that try to reach something (files, the network) are written so that the function returns a
wrong answer if the attempt succeeded: full marks prove the sandbox stopped it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FULL = {"test_softmax": 2.0, "test_noisy_mix": 2.0, "test_pairwise_sq_dists": 1.0}
ZERO = dict.fromkeys(FULL, 0.0)

Notebook = dict[str, Any]


@dataclass(frozen=True)
class Context:
    """What an attack may aim at: the host's paths and a loopback port someone listens on."""

    repo: Path
    course_dir: Path
    victim: str  # another student whose grade must not change
    port: int


@dataclass(frozen=True)
class Attack:
    name: str
    make: Callable[[Notebook, Context], Notebook | bytes]
    scores: dict[str, float] = field(default_factory=lambda: dict(FULL))
    flagged: tuple[str, ...] = ()


def meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def cell(nb: Notebook, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if meta(c).get("grade_id") == grade_id)


def source(c: dict) -> str:
    return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


def code_cell(text: str, metadata: dict | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": metadata or {},
        "outputs": [],
        "source": text,
    }


def solve(nb: Notebook, grade_id: str, text: str) -> Notebook:
    """The notebook with the solution cell ``grade_id`` replaced by ``text``."""
    nb = copy.deepcopy(nb)
    cell(nb, grade_id)["source"] = text
    return nb


def append(nb: Notebook, grade_id: str, text: str) -> Notebook:
    """The notebook with ``text`` added at the end of cell ``grade_id``."""
    nb = copy.deepcopy(nb)
    c = cell(nb, grade_id)
    c["source"] = source(c) + "\n" + text
    return nb


def insert_after(nb: Notebook, grade_id: str, new: dict) -> Notebook:
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb["cells"]) if meta(c).get("grade_id") == grade_id)
    nb["cells"].insert(index + 1, new)
    return nb


WRONG_SOFTMAX = "def softmax(logits):\n    return logits\n"
WRONG_MIX = "def noisy_mix(x0, noise, alpha_bar):\n    return x0 + noise\n"
WRONG_DISTS = "def pairwise_sq_dists(a, b):\n    return a @ b.T\n"
RIGHT_SOFTMAX = (
    "def softmax(logits):\n"
    "    e = (logits - logits.amax(dim=-1, keepdim=True)).exp()\n"
    "    return e / e.sum(dim=-1, keepdim=True)\n"
)


def guarded_softmax(attempt: str) -> str:
    """A correct softmax that turns wrong if ``attempt`` (code setting LEAK = True) succeeded."""
    return (
        "LEAK = False\n"
        f"{attempt}\n"
        "def softmax(logits):\n"
        "    if LEAK:\n"
        "        return logits\n"
        "    e = (logits - logits.amax(dim=-1, keepdim=True)).exp()\n"
        "    return e / e.sum(dim=-1, keepdim=True)\n"
    )


def try_each(paths: list[str], action: str) -> str:
    lines = [
        f"for _path in {paths!r}:",
        "    try:",
        f"        {action}",
        "        LEAK = True",
        "    except Exception:",
        "        pass",
    ]
    return "\n".join(lines)


def edited_test_cells(nb: Notebook, ctx: Context) -> Notebook:
    nb = solve(nb, "softmax", WRONG_SOFTMAX)
    for c in nb["cells"]:
        if meta(c).get("grade"):
            c["source"] = "pass  # all tests pass now"
    return nb


def deleted_test_cells(nb: Notebook, ctx: Context) -> Notebook:
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if not meta(c).get("grade")]
    return nb


def duplicated_cells_and_ids(nb: Notebook, ctx: Context) -> Notebook:
    test = copy.deepcopy(cell(nb, "test_softmax"))
    test["metadata"]["nbgrader"]["points"] = 50
    nb = insert_after(nb, "test_softmax", test)
    wrong = copy.deepcopy(cell(nb, "noisy_mix"))
    wrong["source"] = WRONG_MIX
    return insert_after(nb, "noisy_mix", wrong)  # runs after the right one, so it wins


def stripped_metadata(nb: Notebook, ctx: Context) -> Notebook:
    nb = copy.deepcopy(nb)
    for c in nb["cells"]:
        c["metadata"] = {}
    return nb


def inflated_points(nb: Notebook, ctx: Context) -> Notebook:
    nb = solve(nb, "softmax", WRONG_SOFTMAX)
    for c in nb["cells"]:
        if meta(c).get("grade"):
            c["metadata"]["nbgrader"]["points"] = 1000
    return nb


def input_transformer(nb: Notebook, ctx: Context) -> Notebook:
    return solve(
        nb,
        "pairwise_sq_dists",
        WRONG_DISTS + "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n",
    )


def custom_exception_handler(nb: Notebook, ctx: Context) -> Notebook:
    handler = "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n"
    return solve(nb, "softmax", handler + "def softmax(logits):\n    raise ValueError('nope')\n")


def always_equal_object(nb: Notebook, ctx: Context) -> Notebook:
    code = (
        "class Anything:\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "    shape = property(lambda self: None)\n"
        "def softmax(logits):\n    return Anything()\n"
    )
    return solve(nb, "softmax", code)


def tensor_subclass(nb: Notebook, ctx: Context) -> Notebook:
    code = (
        "class Agreeable(torch.Tensor):\n"
        "    def __eq__(self, other): return True\n"
        "def noisy_mix(x0, noise, alpha_bar):\n"
        "    return torch.zeros_like(x0).as_subclass(Agreeable)\n"
    )
    return solve(nb, "noisy_mix", code)


def wrong_dtype(nb: Notebook, ctx: Context) -> Notebook:
    return solve(
        nb, "softmax", RIGHT_SOFTMAX.replace("return e /", "return (e / ").rstrip() + ").double()\n"
    )


def wrong_shape(nb: Notebook, ctx: Context) -> Notebook:
    return solve(
        nb,
        "pairwise_sq_dists",
        "def pairwise_sq_dists(a, b):\n    return ((b[:, None] - a[None]) ** 2).sum(-1)\n",
    )


def wrong_device(nb: Notebook, ctx: Context) -> Notebook:
    code = RIGHT_SOFTMAX.replace("def softmax", "def _right").rstrip() + "\n"
    code += "def softmax(logits):\n    return _right(logits).to('meta')\n"
    return solve(nb, "softmax", code)


def monkeypatched_comparisons(nb: Notebook, ctx: Context) -> Notebook:
    patch = (
        "import numpy, numpy.testing\n"
        "torch.allclose = lambda *a, **k: True\n"
        "torch.equal = lambda *a, **k: True\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "numpy.allclose = lambda *a, **k: True\n"
    )
    return solve(nb, "noisy_mix", patch + WRONG_MIX)


def monkeypatched_builtins(nb: Notebook, ctx: Context) -> Notebook:
    patch = (
        "import builtins\n"
        "builtins.all = lambda *a: True\n"
        "builtins.any = lambda *a: False\n"
        "builtins.abs = lambda x: 0\n"
    )
    return solve(nb, "softmax", patch + WRONG_SOFTMAX)


def infinite_loop(nb: Notebook, ctx: Context) -> Notebook:
    return solve(nb, "softmax", "def softmax(logits):\n    while True:\n        pass\n")


def long_sleep(nb: Notebook, ctx: Context) -> Notebook:
    return solve(
        nb,
        "noisy_mix",
        "import time\ndef noisy_mix(x0, noise, alpha_bar):\n    time.sleep(10**6)\n",
    )


def infinite_loop_at_top_level(nb: Notebook, ctx: Context) -> Notebook:
    return insert_after(nb, "pairwise_sq_dists", code_cell("while True:\n    pass\n"))


def huge_allocation(nb: Notebook, ctx: Context) -> Notebook:
    grab = (
        "try:\n    hog = torch.ones(4 * 1024**3, dtype=torch.uint8)\n"
        "except Exception:\n    hog = None\n"
        "try:\n    hog2 = bytearray(8 * 1024**3)\nexcept MemoryError:\n    hog2 = None\n"
    )
    code = grab + "def softmax(logits):\n    return torch.ones(64 * 1024**3, dtype=torch.uint8)\n"
    return solve(nb, "softmax", code)


def fork_bomb(nb: Notebook, ctx: Context) -> Notebook:
    bomb = "import os\nfor _ in range(100000):\n    os.fork()\n"
    return insert_after(nb, "pairwise_sq_dists", code_cell(bomb))


def exit_inside_function(nb: Notebook, ctx: Context) -> Notebook:
    return solve(
        nb, "noisy_mix", "import os\ndef noisy_mix(x0, noise, alpha_bar):\n    os._exit(0)\n"
    )


def exit_at_top_level(nb: Notebook, ctx: Context) -> Notebook:
    return insert_after(nb, "pairwise_sq_dists", code_cell("import os\nos._exit(0)\n"))


def killed_kernel(nb: Notebook, ctx: Context) -> Notebook:
    return insert_after(
        nb,
        "pairwise_sq_dists",
        code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
    )


def kill_every_process(nb: Notebook, ctx: Context) -> Notebook:
    return insert_after(nb, "softmax", code_cell("import os\nos.kill(-1, 9)\n"))


def huge_output(nb: Notebook, ctx: Context) -> Notebook:
    return insert_after(
        nb,
        "softmax",
        code_cell("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)\n"),
    )


def write_outside(nb: Notebook, ctx: Context) -> Notebook:
    targets = [
        str(ctx.repo / "solutions" / "demo" / "pwned.txt"),
        str(ctx.repo / "pwned.txt"),
        str(ctx.course_dir / "pwned.txt"),
        str(ctx.course_dir / "submitted" / ctx.victim / "demo" / "demo.ipynb"),
        "/root/pwned.txt",
        "/usr/pwned.txt",
    ]
    attempt = try_each(targets, "open(_path, 'a').write('pwned')")
    return solve(nb, "softmax", guarded_softmax(attempt))


def read_solutions(nb: Notebook, ctx: Context) -> Notebook:
    paths = [
        str(ctx.repo / "solutions" / "demo" / "demo.ipynb"),
        str(ctx.course_dir / "submitted" / ctx.victim / "demo" / "demo.ipynb"),
    ]
    return solve(nb, "softmax", guarded_softmax(try_each(paths, "open(_path).read()")))


def read_instructor_config(nb: Notebook, ctx: Context) -> Notebook:
    paths = [
        str(ctx.course_dir / "grader_secret.json"),
        str(ctx.repo / "nbgrader_config.py"),
        "/root/.jupyter/nbgrader_config.py",
    ]
    return solve(nb, "softmax", guarded_softmax(try_each(paths, "open(_path).read()")))


def read_gradebook(nb: Notebook, ctx: Context) -> Notebook:
    paths = [str(ctx.course_dir / "gradebook.db")]
    return solve(nb, "softmax", guarded_softmax(try_each(paths, "open(_path, 'rb').read()")))


def network_connection(nb: Notebook, ctx: Context) -> Notebook:
    attempt = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {ctx.port}), timeout=2).sendall(b'pwned')\n"
        "    LEAK = True\n"
        "except OSError:\n"
        "    pass\n"
    )
    return solve(nb, "softmax", guarded_softmax(attempt))


def read_hidden_inputs_early(nb: Notebook, ctx: Context) -> Notebook:
    attempt = (
        "import os, select\n"
        "if select.select([0], [], [], 1.0)[0] and os.read(0, 1):\n"
        "    LEAK = True\n"
    )
    return solve(nb, "softmax", guarded_softmax(attempt))


def fill_the_temporary_disk(nb: Notebook, ctx: Context) -> Notebook:
    attempt = (
        "try:\n"
        "    for _i in range(10):\n"
        "        with open(f'/tmp/fill{_i}', 'wb') as _f:\n"
        "            _f.write(b'0' * 60_000_000)\n"
        "    LEAK = True\n"
        "except OSError:\n"
        "    pass\n"
    )
    return solve(nb, "softmax", guarded_softmax(attempt))


def reference_called_directly(nb: Notebook, ctx: Context) -> Notebook:
    code = (
        "from course_lib.exercises.demo import softmax as _ref\n"
        "def softmax(logits):\n    return _ref(logits)\n"
    )
    return solve(nb, "softmax", code)


def reference_through_getattr(nb: Notebook, ctx: Context) -> Notebook:
    code = (
        "import importlib\n"
        "_m = importlib.import_module('course_lib.' + 'exer' + 'cises.demo')\n"
        "noisy_mix = getattr(_m, 'noisy' + '_mix')\n"
    )
    return solve(nb, "noisy_mix", code)


def reference_through_the_fallback(nb: Notebook, ctx: Context) -> Notebook:
    return solve(
        nb, "pairwise_sq_dists", "pairwise_sq_dists = use_pairwise_sq_dists(lambda a, b: a)\n"
    )


def hidden_inputs_in_errors(nb: Notebook, ctx: Context) -> Notebook:
    code = (
        "def softmax(logits):\n"
        "    print('LEAK' + 'ED', logits.tolist())\n"
        "    raise ValueError(repr(logits.tolist()))\n"
    )
    return solve(nb, "softmax", code)


def invalid_json(nb: Notebook, ctx: Context) -> bytes:
    return json.dumps(nb).encode()[:-40] + b"{ not json"


def another_assignments_notebook(nb: Notebook, ctx: Context) -> bytes:
    return (ctx.repo / "solutions" / "00_setup" / "00_setup.ipynb").read_bytes()


def empty_notebook(nb: Notebook, ctx: Context) -> Notebook:
    return {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def non_utf8_bytes(nb: Notebook, ctx: Context) -> bytes:
    return json.dumps(nb).encode().replace(b"def softmax", b"def soft\xff\xfemax", 1)


ATTACKS = [
    Attack("edited_test_cells", edited_test_cells, {**FULL, "test_softmax": 0.0}),
    Attack("deleted_test_cells", deleted_test_cells),
    Attack("duplicated_cells_and_ids", duplicated_cells_and_ids, {**FULL, "test_noisy_mix": 0.0}),
    Attack("stripped_metadata", stripped_metadata),
    Attack("inflated_points", inflated_points, {**FULL, "test_softmax": 0.0}),
    Attack("input_transformer", input_transformer, {**FULL, "test_pairwise_sq_dists": 0.0}),
    Attack("custom_exception_handler", custom_exception_handler, {**FULL, "test_softmax": 0.0}),
    Attack("always_equal_object", always_equal_object, {**FULL, "test_softmax": 0.0}),
    Attack("tensor_subclass", tensor_subclass, {**FULL, "test_noisy_mix": 0.0}),
    Attack("wrong_dtype", wrong_dtype, {**FULL, "test_softmax": 0.0}),
    Attack("wrong_shape", wrong_shape, {**FULL, "test_pairwise_sq_dists": 0.0}),
    Attack("wrong_device", wrong_device, {**FULL, "test_softmax": 0.0}),
    Attack("monkeypatched_comparisons", monkeypatched_comparisons, {**FULL, "test_noisy_mix": 0.0}),
    Attack("monkeypatched_builtins", monkeypatched_builtins, {**FULL, "test_softmax": 0.0}),
    Attack("infinite_loop", infinite_loop, {**FULL, "test_softmax": 0.0}),
    Attack("long_sleep", long_sleep, {**FULL, "test_noisy_mix": 0.0}),
    Attack("infinite_loop_at_top_level", infinite_loop_at_top_level),
    Attack("huge_allocation", huge_allocation, {**FULL, "test_softmax": 0.0}),
    Attack("fork_bomb", fork_bomb),
    Attack("exit_inside_function", exit_inside_function, {**FULL, "test_noisy_mix": 0.0}),
    Attack("exit_at_top_level", exit_at_top_level),
    Attack("killed_kernel", killed_kernel),
    Attack("kill_every_process", kill_every_process, ZERO),
    Attack("huge_output", huge_output),
    Attack("write_outside", write_outside),
    Attack("read_solutions", read_solutions),
    Attack("read_instructor_config", read_instructor_config),
    Attack("read_gradebook", read_gradebook),
    Attack("network_connection", network_connection),
    Attack("read_hidden_inputs_early", read_hidden_inputs_early),
    Attack("fill_the_temporary_disk", fill_the_temporary_disk),
    Attack(
        "reference_called_directly",
        reference_called_directly,
        {**FULL, "test_softmax": 0.0},
        ("softmax",),
    ),
    Attack(
        "reference_through_getattr",
        reference_through_getattr,
        {**FULL, "test_noisy_mix": 0.0},
        ("noisy_mix",),
    ),
    Attack(
        "reference_through_the_fallback",
        reference_through_the_fallback,
        {**FULL, "test_pairwise_sq_dists": 0.0},
        ("pairwise_sq_dists",),
    ),
    Attack("hidden_inputs_in_errors", hidden_inputs_in_errors, {**FULL, "test_softmax": 0.0}),
    Attack("invalid_json", invalid_json, ZERO),
    Attack("another_assignments_notebook", another_assignments_notebook, ZERO),
    Attack("empty_notebook", empty_notebook, ZERO),
    Attack("non_utf8_bytes", non_utf8_bytes, ZERO),
]
