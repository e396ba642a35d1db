"""Notebook 01's checks, as the notebook calls them (see :mod:`course_lib.exercises.clip`)."""

from course_lib.exercises.clip import EXERCISES

_by_name = {ex.name: ex for ex in EXERCISES}

check_clip_loss = _by_name["clip_loss"].check
check_zero_shot_classify = _by_name["zero_shot_classify"].check
check_retrieve = _by_name["retrieve"].check

use_clip_loss = _by_name["clip_loss"].use
use_zero_shot_classify = _by_name["zero_shot_classify"].use
use_retrieve = _by_name["retrieve"].use
