"""Notebook run times: every solution notebook, top to bottom on a fresh kernel, per mode.

``NOTEBOOKS_BENCH_OUT=DIR`` also keeps each executed notebook, with its outputs, as
``DIR/NAME.MODE.ipynb``, to read what a run printed against what the notebook's text says.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from course_lib import nbrun
from course_lib.bench import BenchContext, Table

BUDGET_SECONDS = {"quick": 20, "cpu": 600}


def run(ctx: BenchContext) -> list[Table]:
    modes = ("quick",) if ctx.quick else ("quick", "cpu")
    table = Table(
        "Notebook run times (seconds, fresh kernel, top to bottom)",
        ["notebook", *modes],
        note="Budgets: quick under 20 s and cpu under 600 s per notebook.",
    )
    keep = os.environ.get("NOTEBOOKS_BENCH_OUT")
    for path in sorted((ctx.root / "solutions").glob("*/*.ipynb")):
        cells = []
        for mode in modes:
            with tempfile.TemporaryDirectory() as workdir:
                try:
                    done, seconds = nbrun.execute(path, mode=mode, workdir=Path(workdir))
                except nbrun.NotebookFailed as err:
                    cells.append(f"failed: {str(err).splitlines()[0]}")
                    continue
            if keep:
                import nbformat

                Path(keep).mkdir(parents=True, exist_ok=True)
                nbformat.write(done, Path(keep) / f"{path.stem}.{mode}.ipynb")
            flag = "" if seconds <= BUDGET_SECONDS[mode] else " (over budget)"
            cells.append(f"{seconds:.1f}{flag}")
        table.add(path.parent.name, *cells)
    return [table]
