"""Scratch nbgrader courses and fake submissions for the grading tests.

``tests/hostile/tiny/assignment.ipynb`` is a deliberately tiny assignment (numpy only, two
autograded questions worth 1 and 2 points with visible and hidden tests, one written answer
worth 1 point), so that a whole class of hostile submissions grades in about a minute.
"""
from __future__ import annotations

import copy
import hashlib
import os
import shutil
import warnings
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).resolve().parent / "tiny" / "assignment.ipynb"
#: short limits so that hostile cases cost seconds, not minutes
FAST = {"Execute": {"timeout": 10}, "Sandbox": {"notebook_timeout": 180}}


def grading_environment():
    from nbjudge.course import quiet_nbgrader
    quiet_nbgrader()
    warnings.filterwarnings("ignore", module="nbgrader")


def make_course(base, name="tiny", source=TINY) -> Path:
    """A course folder in ``base`` with the repository's nbgrader config and one assignment."""
    from nbjudge.course import ensure_assignment

    grading_environment()
    course = Path(base)
    (course / "solutions" / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copy2(ROOT / "solutions" / "_header.ipynb", course / "solutions" / "_header.ipynb")
    source = Path(source)
    if source.is_dir():
        shutil.copytree(source, course / "solutions" / name, dirs_exist_ok=True)
    else:
        shutil.copy2(source, course / "solutions" / name / "assignment.ipynb")
    ensure_assignment(course, name, f"sqlite:///{course / 'gradebook.db'}", log=lambda *a: None)
    return course


def release(course, name="tiny"):
    return nbformat.read(Path(course) / "release" / name / "assignment.ipynb", as_version=4)


def source(course, name="tiny"):
    return nbformat.read(Path(course) / "solutions" / name / "assignment.ipynb", as_version=4)


def cell_of(nb, grade_id):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


def answer_sources(src_nb) -> dict:
    """grade_id -> the source's solution (``### BEGIN/END SOLUTION`` markers removed)."""
    out = {}
    for cell in src_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [l for l in cell.source.split("\n") if "BEGIN SOLUTION" not in l and "END SOLUTION" not in l]
            out[meta["grade_id"]] = "\n".join(lines)
    return out


def submission(course, answers=None, name="tiny", solved=True):
    """The release with answers filled in: the solution's (``solved``) overridden by ``answers``."""
    nb = copy.deepcopy(release(course, name))
    fill = answer_sources(source(course, name)) if solved else {}
    fill.update(answers or {})
    for gid, text in fill.items():
        cell_of(nb, gid).source = text
    return nb


def write(course, student, nb=None, name="tiny", raw=None, files=None) -> Path:
    """Put a submission in ``submitted/<student>/<name>/``: a notebook, raw bytes, extra files."""
    folder = Path(course) / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    if nb is not None:
        nbformat.write(nb, folder / "assignment.ipynb")
    if raw is not None:
        (folder / "assignment.ipynb").write_bytes(raw)
    for rel, content in (files or {}).items():
        (folder / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def scores(course, name="tiny") -> dict:
    """``{(student, grade_id): (auto_score, manual_score, needs_manual_grade, max_score)}`` from the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(name).submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[(sub.student.id, g.name)] = (g.auto_score, g.manual_score, bool(g.needs_manual_grade),
                                                     float(g.max_score))
    return out


def totals(course, name="tiny") -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}") as gb:
        return {s.student.id: (float(s.score) - float(s.late_submission_penalty or 0), float(s.max_score),
                               bool(any(nb.flagged for nb in s.notebooks)))
                for s in gb.find_assignment(name).submissions}


def tree_digest(folder) -> dict:
    """relative path -> sha256 of every file under ``folder`` (to prove nothing changed)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def quiet_grade(course, name="tiny", **kwargs):
    from nbjudge.grade import grade

    lines = []
    kwargs.setdefault("overrides", FAST)
    results = grade(course, name, log=lines.append, **kwargs)
    return results, lines


def env_ok() -> bool:
    return os.path.exists("/usr/bin/bwrap") or shutil.which("bwrap") is not None
