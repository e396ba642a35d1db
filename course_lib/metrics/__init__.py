"""Every measure the course reports, defined once.

* :mod:`course_lib.metrics.toy`: 2D sample quality (sliced Wasserstein-2, precision and
  coverage errors against a dense reference).
* :mod:`course_lib.metrics.images`: prompt adherence, diversity, clean background and the
  Fréchet distance in the judge's features.
"""
