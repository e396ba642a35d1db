"""Execute a notebook top to bottom on a fresh kernel, in a given mode (tests and benchmarks)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class NotebookFailed(RuntimeError):
    """A cell raised: the message names the notebook, the cell and the error."""


def execute(
    path: Path,
    mode: str = "quick",
    workdir: Path | None = None,
    timeout: int = 900,
    kernel_name: str = "python3",
) -> tuple[Any, float]:
    """Run every cell of the notebook at ``path`` with ``COURSE_MODE=mode``.

    ``kernel_name="python3"`` is this interpreter (the one ``make setup`` registers for the
    course). Returns the executed notebook and the seconds it took; raises
    :class:`NotebookFailed` on the first error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from course_lib.config import validate_mode

    notebook = nbformat.read(path, as_version=4)
    saved = {"COURSE_MODE": os.environ.get("COURSE_MODE")}
    os.environ["COURSE_MODE"] = validate_mode(mode)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=timeout,
        resources={"metadata": {"path": str(workdir or path.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        raise NotebookFailed(f"{path.name} failed in {mode} mode:\n{err}") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook, time.perf_counter() - start
