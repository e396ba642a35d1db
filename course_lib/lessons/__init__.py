"""Small helpers that belong to one notebook's story, not to the diffusion core.

* :mod:`course_lib.lessons.ddpm`: training from the learner's own ``q_sample`` and loss, reverse
  sampling with the learner's step, and the spread measure of the no-noise collapse (notebook 02).
* :mod:`course_lib.lessons.digits`: the digits UNet of notebooks 02-04, its training and its
  shipped weights (``data/digits_unet``).
* :mod:`course_lib.lessons.vector_fields`: paths over time for the SDE picture, and how much
  samples copy the training set (notebook 03).
* :mod:`course_lib.lessons.ddim`: quality against steps for DDPM, DDIM and the ODE solver, slerp,
  DDIM inversion (notebook 04).
"""
