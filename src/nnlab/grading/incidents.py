"""Incidents: everything unusual the grader met in a submission, with a reason.

Every incident has a severity that decides what grading does with it:

======================  ===================================================================
``info``                recorded and reported; nothing else (a late submission, a warning on
                        stderr that was ignored, an extra notebook that is not graded)
``review``              the notebook is *flagged* in the gradebook for a human look; the
                        autograded scores stand (an edited test cell that was restored, an
                        attempt to read a file outside the sandbox, suspicious code)
``integrity``           the autograded scores cannot be trusted (a checking function was
                        monkeypatched, errors were hidden): every autograded test cell of the
                        notebook is set to 0 and marked as needing manual grading
``error``               the grader could not run (part of) the submission (a timeout, the
                        kernel died, the notebook is not valid JSON); the cells that did not
                        run score 0 and the notebook is flagged
======================  ===================================================================
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

SEVERITIES = ("info", "review", "integrity", "error")
#: severities that flag the submitted notebook in nbgrader's gradebook (formgrader shows the flag)
FLAGGING = ("review", "integrity", "error")


@dataclasses.dataclass(frozen=True)
class Incident:
    """One thing the grader noticed about one submission.

    Parameters
    ----------
    kind : str
        A stable short name, e.g. ``"timeout"`` or ``"test-cell-edited"`` (used by tests and
        the report's counts).
    severity : str
        One of :data:`SEVERITIES`.
    message : str
        The reason, in words an instructor can act on.
    cell : str, optional
        The ``grade_id`` (or ``"cell 7"``) the incident is about.
    notebook : str, optional
        The notebook name without ``.ipynb``.
    """

    kind: str
    severity: str
    message: str
    cell: str | None = None
    notebook: str | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Incident":
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


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
