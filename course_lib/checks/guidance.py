"""Notebook 06's checks as the notebook calls them (see :mod:`course_lib.exercises.guidance`)."""

from course_lib.exercises.guidance import EXERCISES

_by_name = {ex.name: ex for ex in EXERCISES}

check_cfg_combine = _by_name["cfg_combine"].check
check_negative_prompt_combine = _by_name["negative_prompt_combine"].check

use_cfg_combine = _by_name["cfg_combine"].use
use_negative_prompt_combine = _by_name["negative_prompt_combine"].use
