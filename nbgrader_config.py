"""nbgrader configuration of the course (nbgrader 0.9).

Layout: the nbgrader *source* of every assignment is ``solutions/<chapter>/assignment.ipynb``
(solutions and hidden tests); ``nbjudge release <chapter>`` (``make release``)
generates the student version and copies it to ``chapters/<chapter>/assignment.ipynb``.
Instructors grade from this folder with ``nbjudge collect|grade|feedback|export|report``
(the grader, package ``src/nbjudge``; see teaching.md): ``grade`` runs every submission's cells in
a bubblewrap sandbox with the limits below, and its test cells in a separate sandboxed judge. ``submitted/``, ``autograded/``, ``feedback/`` and ``gradebook.db`` are git-ignored.
Plain ``nbgrader autograde`` (and the formgrader's autograde button) still works, but runs
student code UNSANDBOXED and the tests in the student's own kernel.
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

# Output kept per test cell in the graded notebook (lines; nbgrader's LimitOutput). The sandboxed
# grader also caps every cell's output at c.Sandbox.max_output_bytes while it runs.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# The grading sandbox (nbjudge.sandbox): what one submission's kernel may use.
c.Sandbox.memory_mb = 2048          # address space (RLIMIT_AS); raise for TensorFlow assignments
c.Sandbox.max_processes = 128       # processes + threads (RLIMIT_NPROC): stops fork bombs
c.Sandbox.max_file_mb = 64          # largest file a kernel may write
c.Sandbox.cpu_seconds = 600         # CPU seconds per kernel process
c.Sandbox.tmp_mb = 256              # its private /tmp and working folder (in memory)
c.Sandbox.notebook_timeout = 900    # wall-clock seconds for a whole notebook (c.Execute.timeout per cell)
c.Sandbox.max_output_bytes = 1_000_000
c.Sandbox.max_restarts = 3          # kernel restarts after a crash or a timeout, per notebook
c.Sandbox.ro_paths = []             # extra read-only data folders (Fashion-MNIST is under /usr already)
# TensorFlow reserves more address space than 2 GiB and starts a thread pool per core.
_keras = {"memory_mb": 4096, "max_processes": 512}
c.Sandbox.per_assignment = {name: dict(_keras) for name in
                            ("04_initialization", "07_training_with_keras", "08_convnets", "09_capstone")}

# Feedback never shows hidden tests: their source, tracebacks and echoes are removed.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbjudge.feedback.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Late submissions: set the due date with
#   nbgrader db assignment add 02_backprop --duedate="2026-03-01 23:59:00 Europe/Berlin"
# A submission's time comes from its timestamp.txt (written by `collect` from the file name).
c.AssignLatePenalties.plugin_class = "nbjudge.late.PerDayPenalty"
c.PerDayPenalty.fraction_per_day = 0.1   # 10 % of the notebook's score per started day late
c.PerDayPenalty.grace_minutes = 15

# LMS downloads (`nbjudge collect 02_backprop.zip`, .zip or .tar.gz): one file per student and
# notebook, named <student_id>_<YYYYMMDDTHHMMSS>_<notebook>.ipynb, the timestamp optional,
# e.g. "jdoe_20260301T235500_assignment.ipynb". nbjudge extracts the archive itself and matches
# each member's full path; it refuses nested archives, links, special files, unsafe paths, and
# anything above these sizes (MiB, uncompressed) before writing a single file.
c.FileNameCollectorPlugin.named_regexp = (
    r".*/(?P<student_id>[A-Za-z0-9][A-Za-z0-9.-]*)_(?:(?P<timestamp>\d{8}T\d{6}Z?)_)?(?P<file_id>[^/_][^/]*\.ipynb)$"
)
c.FileNameCollectorPlugin.valid_ext = [".ipynb"]
c.Collect.max_file_mb = 25
c.Collect.max_total_mb = 1024
c.Collect.max_members = 10000

# Keep the autograder quiet about the environment it runs in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
