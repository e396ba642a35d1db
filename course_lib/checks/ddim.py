"""Notebook 04's checks as the notebook calls them (see :mod:`course_lib.exercises.ddim`)."""

from course_lib.exercises.ddim import EXERCISES

_by_name = {ex.name: ex for ex in EXERCISES}

check_ddim_step = _by_name["ddim_step"].check
check_ddim_eta_step = _by_name["ddim_eta_step"].check

use_ddim_step = _by_name["ddim_step"].use
use_ddim_eta_step = _by_name["ddim_eta_step"].use
