"""The instructor's grader: isolated, resource-limited runs of each submission; scores in nbgrader.

``course grade ASSIGNMENT`` (see :mod:`course_lib.grading.cli`) grades every submission;
:class:`~course_lib.grading.grader.Grader` is the same from Python. The sandbox's protections and
their fallbacks are in :mod:`course_lib.grading.sandbox`.
"""
