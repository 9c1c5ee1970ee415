"""Course administration on top of nbgrader: releases, and trusted grading of submissions.

One command per step of an assignment's cycle (run from the course repository; every command
but ``release`` takes ``--course-dir``, default: the repository root):

``release NAME`` (or ``--all``)
    Generate the student version of ``solutions/NAME/assignment.ipynb`` with nbgrader in a
    scratch course folder and copy it to ``chapters/NAME/`` (``make release``). Only the
    assignment files are written there, so the chapter's ``lecture.ipynb`` is never touched.
``collect ZIP [--assignment NAME]``
    An LMS download into ``submitted/<student>/NAME/`` via nbgrader's zip collection, refusing
    unknown students, unmatched file names and duplicates (:mod:`nnlab.grading.collect`).
``grade NAME [--jobs N] [--student ID ...] [--no-sandbox]``
    Autograde in the bubblewrap sandbox, several submissions at once (:mod:`nnlab.grading.pipeline`).
``feedback NAME``
    Feedback HTML without hidden tests (:mod:`nnlab.grading.feedback`).
``export [--to FILE]``
    All grades as CSV (``nbgrader export``).
``report NAME``
    Per-question statistics, histogram of totals, manual-grading queue, incidents
    (:mod:`nnlab.grading.report`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ASSIGNMENT = "assignment.ipynb"
PROTECTED = ("lecture.ipynb",)


class CourseError(RuntimeError):
    """A course command could not do what was asked; the message says why and what to do."""


def find_root(start=None) -> Path:
    """The course root: the nearest folder upwards holding ``nbgrader_config.py`` and ``solutions/``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "solutions").is_dir():
            return folder
    raise CourseError(f"no course root found at or above {here}: expected a folder with "
                      "nbgrader_config.py and solutions/ (run this from the course repository)")


def assignments(root) -> list[str]:
    """Names of all assignments: folders ``solutions/NAME/`` holding ``assignment.ipynb``."""
    root = Path(root)
    return sorted(p.parent.name for p in (root / "solutions").glob(f"*/{ASSIGNMENT}"))


def check_assignment(root, name) -> Path:
    root = Path(root)
    source = root / "solutions" / name / ASSIGNMENT
    if not source.is_file():
        known = ", ".join(assignments(root)) or "none"
        raise CourseError(f"unknown assignment {name!r}: {source} does not exist (known: {known})")
    return source


def nbgrader(args, cwd, *, timeout=None, env=None) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader ARGS`` in ``cwd``; raise :class:`CourseError` with its log on failure."""
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # nbgrader runs the `alembic` command of its environment: put this interpreter's bin first.
    run_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), run_env.get("PATH", "")])
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=run_env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise CourseError(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return proc


def make_course_dir(root, dest, names) -> Path:
    """Lay out a scratch nbgrader course folder in ``dest`` holding the sources of ``names``."""
    root, dest = Path(root), Path(dest)
    (dest / "solutions").mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copy2(root / "solutions" / "_header.ipynb", dest / "solutions" / "_header.ipynb")
    for name in names:
        check_assignment(root, name)
        shutil.copytree(root / "solutions" / name, dest / "solutions" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"), dirs_exist_ok=True)
    return dest


def generate(root, course_dir, name) -> Path:
    """``nbgrader generate_assignment NAME`` in a course folder; return the release folder."""
    nbgrader(["generate_assignment", name, "--force"], cwd=course_dir)
    out = Path(course_dir) / "release" / name
    if not (out / ASSIGNMENT).is_file():
        raise CourseError(f"nbgrader produced no {ASSIGNMENT} in {out}")
    return out


def release(name, root=None) -> Path:
    """Regenerate ``chapters/NAME/assignment.ipynb`` (and any other assignment files) from
    ``solutions/NAME/``. Returns the path of the written notebook."""
    root = find_root(root)
    check_assignment(root, name)
    with tempfile.TemporaryDirectory(prefix="nnlab-release-") as tmp:
        course = make_course_dir(root, tmp, [name])
        out = generate(root, course, name)
        target = root / "chapters" / name
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(out.rglob("*")):
            rel = path.relative_to(out)
            if rel.name in PROTECTED:
                raise CourseError(f"solutions/{name}/ must not contain {rel}: it would overwrite the lecture")
            if path.is_file():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / rel)
    return target / ASSIGNMENT


def _course_dir(args) -> Path:
    """The grading course folder: ``--course-dir`` or the repository root."""
    if getattr(args, "course_dir", None):
        path = Path(args.course_dir).resolve()
        if not (path / "nbgrader_config.py").is_file():
            raise CourseError(f"{path} is not a course folder: it has no nbgrader_config.py")
        return path
    return find_root(None)


def _grading_environment() -> None:
    """nbgrader runs ``alembic`` from PATH and warns about SQLAlchemy; set both up once."""
    import warnings
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from sqlalchemy.exc import SADeprecationWarning, SAWarning
        warnings.filterwarnings("ignore", category=SADeprecationWarning)
        # nbgrader's add_submission triggers "Object ... not in session" warnings (harmless)
        warnings.filterwarnings("ignore", category=SAWarning, message=".*not in session.*")
    except ImportError:
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnlab.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_release = sub.add_parser("release", help="generate student versions into chapters/")
    p_release.add_argument("names", nargs="*", help="assignment names, e.g. 02_backprop")
    p_release.add_argument("--all", action="store_true", help="every assignment under solutions/")
    p_release.add_argument("--root", help="course root (default: found from the current folder)")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", help="the nbgrader course folder (default: the repository root)")
    p_collect = sub.add_parser("collect", parents=[common], help="LMS zip download into submitted/")
    p_collect.add_argument("zip", help="the archive downloaded from the LMS")
    p_collect.add_argument("--assignment", help="assignment name (default: the archive's name, e.g. 02_backprop.zip)")
    p_collect.add_argument("--add-students", action="store_true",
                           help="add students missing from the gradebook instead of refusing")
    p_collect.add_argument("--keep-latest", action="store_true",
                           help="for duplicate files with timestamps, keep the newest (nbgrader's rule)")
    p_grade = sub.add_parser("grade", parents=[common], help="autograde in the sandbox, in parallel")
    p_grade.add_argument("name")
    p_grade.add_argument("--jobs", "-j", type=int, default=None,
                         help=f"submissions graded at once (default: the number of cores, {os.cpu_count()})")
    p_grade.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p_grade.add_argument("--no-sandbox", action="store_true",
                         help="run student code WITHOUT isolation (only where bubblewrap cannot run)")
    p_grade.add_argument("--cell-timeout", type=int, help="seconds per cell (default: c.Execute.timeout)")
    p_grade.add_argument("--notebook-timeout", type=int,
                         help="seconds per notebook (default: c.Sandbox.notebook_timeout)")
    p_feedback = sub.add_parser("feedback", parents=[common], help="feedback HTML without hidden tests")
    p_feedback.add_argument("name")
    p_feedback.add_argument("--student", action="append", help="only this student (repeatable)")
    p_export = sub.add_parser("export", parents=[common], help="all grades as CSV (nbgrader export)")
    p_export.add_argument("--to", default="grades.csv", help="the CSV file (default: grades.csv in the course folder)")
    p_report = sub.add_parser("report", parents=[common], help="statistics, histogram, manual queue, incidents")
    p_report.add_argument("name")
    p_report.add_argument("--out", help="folder for the report (default: reports/NAME/ in the course folder)")
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            root = find_root(args.root)
            names = assignments(root) if args.all else args.names
            if not names:
                parser.error("name an assignment or pass --all")
            for name in names:
                print(f"released {release(name, root).relative_to(root)}")
            return 0
        _grading_environment()
        from .grading.collect import CollectError
        from .grading.pipeline import GradingError
        course_dir = _course_dir(args)
        try:
            if args.command == "collect":
                from .grading.collect import collect
                collect(course_dir, args.zip, args.assignment, allow_new=args.add_students,
                        keep_latest=args.keep_latest)
            elif args.command == "grade":
                from .grading.pipeline import grade
                overrides = {}
                if args.cell_timeout:
                    overrides["Execute"] = {"timeout": args.cell_timeout}
                if args.notebook_timeout:
                    overrides["Sandbox"] = {"notebook_timeout": args.notebook_timeout}
                results = grade(course_dir, args.name, jobs=args.jobs, sandbox=not args.no_sandbox,
                                students=args.student, overrides=overrides)
                if any(i.kind == "grader-error" for g in results for i in g.incidents):
                    print("error: the grader failed on some submissions (see above); regrade them with --student",
                          file=sys.stderr)
                    return 1
            elif args.command == "feedback":
                from .grading.feedback import generate as feedback
                feedback(course_dir, args.name, students=args.student)
            elif args.command == "export":
                target = Path(args.to)
                target = target if target.is_absolute() else course_dir / target
                nbgrader(["export", "--to", str(target)], cwd=course_dir)
                print(f"grades: {target}")
            elif args.command == "report":
                from .grading.report import build
                build(course_dir, args.name, out=args.out)
        except (GradingError, CollectError, ValueError) as exc:
            raise CourseError(str(exc)) from exc
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
