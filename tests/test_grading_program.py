"""Which code the sandbox runs: the learner's answers and the course's locked cells, no tests."""

from __future__ import annotations

import json

import pytest

from course_lib.grading.program import (
    SourceCell,
    UnreadableNotebook,
    build_program,
    read_submission,
)

SOURCE = [
    SourceCell("setup", "locked", "import torch"),
    SourceCell("f", "solution", "def f(x):\n    raise NotImplementedError()"),
    SourceCell("test_f", "test", "check_f(f)", points=2),
    SourceCell("use_f", "locked", "print(f(1))"),
]


def code(text, grade_id=None, **flags):
    meta = {"nbgrader": {"grade_id": grade_id, **flags}} if grade_id else {}
    return {"cell_type": "code", "metadata": meta, "source": text, "outputs": []}


def run_order(program):
    return [(c.origin, c.source) for c in program]


def test_the_learners_answer_replaces_the_stub_and_locked_cells_come_from_the_source():
    submitted = [
        code("import os", "setup"),
        code("def f(x): return x", "f", solution=True),
        code("pass", "test_f"),
    ]
    assert run_order(build_program(SOURCE, submitted)) == [
        ("course", "import torch"),
        ("student", "def f(x): return x"),
        ("course", "print(f(1))"),
    ]


def test_test_cells_never_run_whatever_the_submission_says():
    submitted = [code("def f(x): return x", "f"), code("f = None", "test_f", grade=True)]
    assert ("student", "f = None") not in run_order(build_program(SOURCE, submitted))


def test_a_deleted_locked_cell_still_runs():
    program = build_program(SOURCE, [code("def f(x): return x", "f")])
    assert ("course", "import torch") in run_order(program)


def test_a_cell_stripped_of_metadata_is_the_learners_code_in_place():
    submitted = [code("import torch"), code("def f(x): return x"), code("check_f(f)")]
    order = run_order(build_program(SOURCE, submitted))
    assert ("student", "def f(x): return x") in order


def test_duplicated_answer_cells_all_run_in_order():
    submitted = [code("def f(x): return 1", "f"), code("def f(x): return 2", "f")]
    answers = [
        src for origin, src in run_order(build_program(SOURCE, submitted)) if origin == "student"
    ]
    assert answers == ["def f(x): return 1", "def f(x): return 2"]


def test_a_cell_the_learner_added_runs_after_the_cell_before_it():
    submitted = [code("def f(x): return x", "f"), code("helper = 1"), code("print(f(1))", "use_f")]
    order = run_order(build_program(SOURCE, submitted))
    assert (
        order.index(("student", "helper = 1")) == order.index(("student", "def f(x): return x")) + 1
    )


def test_malformed_metadata_is_treated_as_none():
    weird = {
        "cell_type": "code",
        "metadata": {"nbgrader": "points: 1000"},
        "source": ["def f(x):", " return x"],
    }
    order = run_order(build_program(SOURCE, [weird]))
    assert ("student", "def f(x): return x") in order


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{ not json", "not valid JSON"),
        (b'{"cells": "none"}', "not a notebook"),
        (b'{"cells": [], "x": "\xff"}', "not valid UTF-8"),
    ],
)
def test_an_unreadable_submission_says_why(tmp_path, content, reason):
    path = tmp_path / "demo.ipynb"
    path.write_bytes(content)
    with pytest.raises(UnreadableNotebook, match=reason):
        read_submission(path)


def test_a_missing_notebook_is_unreadable(tmp_path):
    with pytest.raises(UnreadableNotebook, match="missing"):
        read_submission(tmp_path / "demo.ipynb")


def test_only_code_cells_are_read(tmp_path):
    path = tmp_path / "demo.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "x"}, code("1")]}))
    assert [c["source"] for c in read_submission(path)] == ["1"]
