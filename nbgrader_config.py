"""nbgrader configuration of the course (nbgrader 0.9).

Layout: the nbgrader *source* of every assignment is ``solutions/<chapter>/assignment.ipynb``
(solutions and hidden tests); ``python -m nnlab.course release <chapter>`` (``make release``)
generates the student version and copies it to ``chapters/<chapter>/assignment.ipynb``.
Instructors run the other nbgrader steps (collect, autograde, formgrader, feedback, export)
from this folder; ``submitted/``, ``autograded/``, ``feedback/`` and ``gradebook.db`` are
git-ignored.
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "dnn-backprop-to-keras"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "release"

# Every generated student notebook starts with this notice (drift is checked by a test).
c.IncludeHeaderFooter.header = os.path.join("solutions", "_header.ipynb")

# What students see in place of the solutions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding: per-cell timeout (seconds); a cell running longer scores 0.
c.Execute.timeout = 120

# A test cell that writes anything to stderr scores 0 in nbgrader. TensorFlow's start-up log
# lines and Python warnings are not failures: drop those stream outputs before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|"
    r"[IWE]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]|\w*Warning: )"
)

# Keep the autograder quiet about the environment it runs in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
