"""Notebook 02's checks as the notebook calls them (see :mod:`course_lib.exercises.ddpm`)."""

from course_lib.exercises.ddpm import EXERCISES

_by_name = {ex.name: ex for ex in EXERCISES}

check_q_sample = _by_name["q_sample"].check
check_ddpm_loss = _by_name["ddpm_loss"].check
check_ddpm_step = _by_name["ddpm_step"].check

use_q_sample = _by_name["q_sample"].use
use_ddpm_loss = _by_name["ddpm_loss"].use
use_ddpm_step = _by_name["ddpm_step"].use
