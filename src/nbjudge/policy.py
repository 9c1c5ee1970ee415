"""The scoring policy: every kind of incident the grader records, its severity, and what that does to a score.

An incident is anything unusual the grader met in a submission, with a reason an instructor can
act on. Its *kind* decides its severity (:data:`KINDS`), and the severity decides what grading
does (:data:`EFFECTS`); nothing else in the grader decides either. A reader asking "why did
this submission get 0?" finds the answer in the submission's incidents, their kinds here, and
the failed test cells' messages in the graded notebook.

======================  ===================================================================
``info``                recorded and reported; nothing else
``review``              the notebook is *flagged* in the gradebook for a human look; the
                        autograded scores stand
``integrity``           the autograded scores cannot be trusted: every autograded test cell
                        of the notebook is set to 0 and marked as needing manual grading
``error``               the grader could not run (part of) the submission; the cells that did
                        not run score 0 and the notebook is flagged
======================  ===================================================================

Verdicts themselves never depend on an incident found *inside* the student's kernel (an audit
event is a hint for a human): a test passes or fails in the judge (:mod:`nbjudge.judge`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

SEVERITIES = ("info", "review", "integrity", "error")
EFFECTS = {
    "info": "none",
    "review": "flag the notebook for a human look",
    "integrity": "set every autograded test of the notebook to 0 and mark it for manual grading",
    "error": "flag the notebook; cells that did not run score 0",
}
#: severities that flag the submitted notebook in nbgrader's gradebook (formgrader shows the flag)
FLAGGING = ("review", "integrity", "error")
#: severities that withhold the notebook's autograded scores
WITHHOLDING = ("integrity",)

#: kind -> (severity, what it means)
KINDS = {
    # information
    "late": ("info", "submitted after the due date (the late penalty applies)"),
    "stderr-ignored": ("info", "a test wrote a warning to stderr that c.IgnorePattern covers"),
    "stderr-failure": ("info", "a test wrote to stderr, which nbgrader counts as a failure"),
    "extra-notebook": ("info", "a notebook that is not part of the assignment (kept, not graded)"),
    "large-notebook": ("info", "a notebook submitted with large stored outputs (cleared before grading)"),
    "output-truncated": ("info", "a cell printed more than c.Sandbox.max_output_bytes"),
    "undefined-name": ("info", "a test used a name the submission does not define"),
    # for a human look; the scores stand
    "bad-timestamp": ("review", "timestamp.txt is not a date; graded as on time"),
    "file-dropped": ("review", "a submitted file was not given to the kernel (too large)"),
    "symlink-dropped": ("review", "a symbolic link or special file in the submission (never followed)"),
    "suspicious-code": ("review", "the static scan of the student's code found something to look at"),
    "answer-metadata-changed": ("review", "an answer cell's nbgrader metadata was edited (restored)"),
    "cell-missing": ("review", "a cell of the assignment was deleted or lost its metadata (put back)"),
    "duplicate-grade-id": ("review", "a cell repeats another's grade_id (graded as an ordinary cell)"),
    "locked-cell-changed": ("review", "a locked cell was edited (the instructor's version was graded)"),
    "stray-nbgrader-metadata": ("review", "a cell with nbgrader metadata but no grade_id"),
    "unknown-grade-id": ("review", "a cell with a grade_id the assignment does not have"),
    "file-access": ("review", "the kernel tried to open a file outside its folder (audit hint)"),
    "network": ("review", "the kernel tried to use the network (audit hint)"),
    "process": ("review", "the kernel started a process (audit hint)"),
    "signal": ("review", "the kernel sent a signal (audit hint)"),
    "audit": ("review", "another audited event (audit hint)"),
    "protocol": ("review", "the student's kernel answered the judge with something that may not cross; "
                           "the test that asked failed"),
    "forbidden-import": ("review", "the submission imported a module the assignment does not allow"),
    "unsafe-content": ("review", "an output or markdown cell held active content (script, event handler, SVG, "
                                 "widget, javascript: link); it was removed before anyone viewed the notebook"),
    # scores withheld
    "score-clamped": ("integrity", "a score outside [0, points] was recorded"),
    # the grader could not run (part of) the submission
    "grader-error": ("error", "the grader failed on this submission; regrade it"),
    "unreadable-notebook": ("error", "the notebook is not valid JSON or not a notebook"),
    "missing-notebook": ("error", "the submission lacks a notebook of the assignment"),
    "timeout": ("error", "a cell ran longer than c.Execute.timeout"),
    "call-timeout": ("error", "the student's code did not answer the judge within the cell's time limit"),
    "notebook-timeout": ("error", "the notebook's time budget ran out"),
    "kernel-died": ("error", "the student's kernel died (os._exit, a crash, a resource limit)"),
    "kernel-start-failed": ("error", "the student's kernel could not start"),
    "judge-error": ("error", "the judge process failed while running a test"),
    "malformed-output": ("error", "the kernel sent an output the grader cannot read or keep (nested too deep, ...)"),
    "memory-limit": ("error", "a cell ran out of memory"),
    "process-limit": ("error", "a cell hit the process limit"),
    "file-size-limit": ("error", "a cell wrote a file above the size limit"),
    "replay-failed": ("error", "replaying cells after a kernel restart failed"),
    "restarts-exhausted": ("error", "the kernel had to be restarted too often; later cells did not run"),
}


@dataclasses.dataclass(frozen=True)
class Incident:
    """One thing the grader noticed about one submission.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`; it decides :attr:`severity`.
    message : str
        The reason, in words an instructor can act on.
    cell : str, optional
        The ``grade_id`` (or ``"cell 7"``) the incident is about.
    notebook : str, optional
        The notebook name without ``.ipynb``.
    """

    kind: str
    message: str
    cell: str | None = None
    notebook: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}: add it to nbjudge.policy.KINDS")

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "severity": self.severity}

    @classmethod
    def from_dict(cls, data: dict) -> "Incident":
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


def apply(grades, incidents, notebook, notebook_spec) -> bool:
    """Apply the policy to one graded notebook's gradebook rows; True if its scores were withheld.

    ``grades`` are nbgrader's ``Grade`` rows of the notebook; ``incidents`` everything recorded
    for the submission. An incident of a :data:`WITHHOLDING` severity about this notebook (or
    the whole submission) sets every autograded test cell to 0 and marks it for manual grading.
    """
    if not any(i.severity in WITHHOLDING and i.notebook in (None, notebook) for i in incidents):
        return False
    tests = {c["grade_id"] for c in notebook_spec["cells"] if c["grade"] and not c["solution"]}
    for grade in grades:
        if grade.name in tests:
            grade.auto_score = 0.0
            grade.needs_manual_grade = True
    return True


def incidents_dir(course_dir, assignment) -> Path:
    """Where the incidents of ``assignment`` are kept: ``reports/<assignment>/incidents/``."""
    return Path(course_dir) / "reports" / assignment / "incidents"


def save(course_dir, assignment, student, incidents) -> Path:
    """Write the incidents of one graded submission (replacing those of an earlier run)."""
    folder = incidents_dir(course_dir, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{student}.json"
    path.write_text(json.dumps([i.to_dict() for i in incidents], indent=1) + "\n")
    return path


def load(course_dir, assignment) -> dict[str, list[Incident]]:
    """All recorded incidents of an assignment: ``{student: [Incident, ...]}``."""
    folder = incidents_dir(course_dir, assignment)
    result = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        result[path.stem] = [Incident.from_dict(d) for d in json.loads(path.read_text())]
    return result
