"""Notebook 03's checks (see :mod:`course_lib.exercises.vector_fields`)."""

from course_lib.exercises.vector_fields import EXERCISES

_by_name = {ex.name: ex for ex in EXERCISES}

check_tweedie_x0 = _by_name["tweedie_x0"].check
check_score = _by_name["score"].check
check_ideal_denoiser = _by_name["ideal_denoiser"].check

use_tweedie_x0 = _by_name["tweedie_x0"].use
use_score = _by_name["score"].use
use_ideal_denoiser = _by_name["ideal_denoiser"].use
