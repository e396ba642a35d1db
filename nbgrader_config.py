"""nbgrader's configuration for the course repository.

solutions/<assignment>/ is nbgrader's source folder (instructor notebooks with solutions and
check cells); notebooks/<assignment>/ is the release that learners get. Instructor state
(submissions, gradebook.db, feedback) lives in a separate course directory: see README.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "diffusion-from-scratch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
