"""From a submitted notebook to the program the sandbox runs: the learner's code, the course's.

The submission is read as untrusted JSON. Its cells are matched to the source notebook by
nbgrader ``grade_id``:

* a cell claiming the id of one of the source's **solution** cells runs as the learner wrote it
  (every cell claiming that id, in order, so duplicates behave as they would in Jupyter);
* a cell claiming the id of a **locked** source cell is replaced by the source's version;
* a cell claiming the id of a **test** cell is dropped: checks run in the trusted grader, not here;
* any other code cell (added by the learner, or stripped of its metadata) is the learner's code
  and runs after the last source cell seen before it.

The source's locked cells always run, in the source's order, whether or not the submission kept
them. So tampering with test cells, locked cells, points or ids changes nothing, and a correct
solution whose metadata was stripped still defines its function and earns its points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_NOTEBOOK_BYTES = 20 * 1024**2


class UnreadableNotebook(ValueError):
    """The submitted file is not a notebook we can read (its message is safe to show)."""


@dataclass(frozen=True)
class SourceCell:
    """A code cell of the source notebook, as the grader sees it."""

    grade_id: str
    kind: str  # "solution", "test" or "locked"
    source: str  # the released (student) version of the cell
    points: float = 0.0


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    """A cell's nbgrader metadata, or ``{}`` if it is missing or malformed."""
    if not isinstance(cell, dict):
        return {}
    meta = cell.get("metadata")
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (nbformat allows a string or a list of strings)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def source_cells(released: dict[str, Any]) -> list[SourceCell]:
    """The released notebook's code cells, classified by their nbgrader metadata."""
    cells = []
    for index, cell in enumerate(released["cells"]):
        if cell.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id") or f"cell-{index}"  # notebooks with exercises always set it
        if meta.get("solution"):
            kind = "solution"
        elif meta.get("grade"):
            kind = "test"
        else:
            kind = "locked"
        cells.append(
            SourceCell(grade_id, kind, cell_source(cell), float(meta.get("points", 0) or 0))
        )
    return cells


def read_submission(path: Path) -> list[dict[str, Any]]:
    """The code cells of a submitted notebook, or :class:`UnreadableNotebook` saying why not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise UnreadableNotebook(
            f"the notebook {path.name} is missing from the submission"
        ) from err
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise UnreadableNotebook(
            f"the notebook is {len(data)} bytes, over the {MAX_NOTEBOOK_BYTES}-byte limit"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableNotebook(f"the notebook is not valid UTF-8 (byte {err.start})") from err
    try:
        nb = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise UnreadableNotebook(
            "the notebook is not valid JSON (was it edited outside Jupyter?)"
        ) from err
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UnreadableNotebook("the file is JSON but not a notebook (no list of cells)")
    return [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"]


@dataclass(frozen=True)
class ProgramCell:
    """A cell the sandbox runs: its code, who wrote it, and a label for the log."""

    source: str
    origin: str  # "student" or "course"
    label: str
    anchor: str  # the source grade_id it belongs to ("" before the first one)


def build_program(source: list[SourceCell], submitted: list[dict[str, Any]]) -> list[ProgramCell]:
    """The cells to run, in order: see the module docstring for the rules."""
    by_id = {cell.grade_id: cell for cell in source}
    answers: dict[str, list[ProgramCell]] = {}
    extras: dict[str, list[ProgramCell]] = {}
    anchor = ""
    for index, cell in enumerate(submitted):
        grade_id = nbgrader_meta(cell).get("grade_id")
        known = by_id.get(grade_id) if isinstance(grade_id, str) else None
        text = cell_source(cell)
        if known is not None:
            anchor = known.grade_id
            if known.kind == "solution":
                answers.setdefault(anchor, []).append(
                    ProgramCell(text, "student", f"your cell {index} ({anchor})", anchor)
                )
            continue
        extras.setdefault(anchor, []).append(
            ProgramCell(text, "student", f"your cell {index}", anchor)
        )
    program = list(extras.get("", []))
    for cell in source:
        if cell.kind == "solution":
            program += answers.get(cell.grade_id, [])
        elif cell.kind == "locked":
            program.append(
                ProgramCell(cell.source, "course", f"course cell {cell.grade_id}", cell.grade_id)
            )
        program += extras.get(cell.grade_id, [])
    return program


def answer_text(program: list[ProgramCell], grade_id: str) -> str:
    """The learner's code of a solution cell (their answers and the cells they added after it)."""
    return "\n\n".join(c.source for c in program if c.anchor == grade_id and c.origin == "student")
