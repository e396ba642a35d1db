"""What the learner gets back: the autograded notebook and its HTML feedback.

Both are built from the released notebook (so locked and test cells come from the source, with
their nbgrader metadata, and formgrader and ``nbgrader generate_feedback`` keep working), with the
learner's code in the solution cells and one line per exercise in its test cell. Nothing here
mentions a hidden input, an expected value or a traceback from a hidden case.
"""

from __future__ import annotations

import copy
import html
import os
from pathlib import Path
from typing import Any

import nbformat

from course_lib.grading.program import ProgramCell, answer_text, nbgrader_meta


def autograded_notebook(
    released: dict[str, Any],
    program: list[ProgramCell] | None,
    lines: dict[str, list[str]],
    note: str,
) -> nbformat.NotebookNode:
    """The released notebook with the learner's answers and the grader's lines filled in."""
    nb = nbformat.from_dict(copy.deepcopy(released))
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if meta.get("solution") and cell.cell_type == "code" and program is not None:
            cell.source = answer_text(program, grade_id)
        if grade_id in lines:
            text = "\n".join(lines[grade_id]) + "\n"
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if note:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Grader:** {note}"))
    return nb


def feedback_html(nb: nbformat.NotebookNode, title: str, summary: list[str]) -> str:
    """The autograded notebook as HTML, with the per-exercise summary on top."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    top = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    banner = f'<div id="grader-summary"><h2>{html.escape(title)}</h2><ul>{top}</ul></div>'
    return body.replace("<body>", "<body>\n" + banner, 1)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` so that a reader (or a killed grader) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
