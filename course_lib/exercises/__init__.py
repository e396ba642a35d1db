"""Where each assignment registers its exercises.

An assignment ``NN_name`` (or ``name``) lists its exercises in the module
``course_lib.exercises.<name>`` as ``EXERCISES: list[Exercise]``; an assignment without such a
module (``00_setup``) has nothing to grade. References live where the library keeps the idea
(``course_lib.diffusion.q_sample``); small ones that are only exercises live in the module itself.
"""

from __future__ import annotations

import importlib
import re

from course_lib.checks.exercise import Exercise


def module_name(assignment: str) -> str:
    """``"02_ddpm"`` -> ``"course_lib.exercises.ddpm"``."""
    return f"{__name__}.{re.sub(r'^[0-9]+_', '', assignment)}"


def exercises(assignment: str) -> list[Exercise]:
    """The exercises of ``assignment`` in notebook order (empty if it has none)."""
    name = module_name(assignment)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            return []
        raise
    return list(module.EXERCISES)


def by_name(assignment: str) -> dict[str, Exercise]:
    """The exercises of ``assignment`` keyed by the function the learner writes."""
    return {ex.name: ex for ex in exercises(assignment)}
