"""Every measure the course reports, defined once.

* :mod:`course_lib.metrics.toy`: 2D sample quality (sliced Wasserstein-2, precision and
  coverage errors against a dense reference).
* :mod:`course_lib.metrics.images`: prompt adherence, diversity, clean background and the
  Fréchet distance in the judge's features.
"""

from course_lib.metrics.images import adherence, clean_background, diversity, frechet_distance
from course_lib.metrics.toy import coverage_error, precision_error, sliced_wasserstein, toy_metrics

__all__ = [
    "adherence",
    "clean_background",
    "coverage_error",
    "diversity",
    "frechet_distance",
    "precision_error",
    "sliced_wasserstein",
    "toy_metrics",
]
