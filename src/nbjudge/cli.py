"""``nbjudge``: the instructor's commands, one per step of an assignment's cycle.

Run from the course repository (every command but ``release`` takes ``--course-dir``, default:
the repository root)::

    nbjudge release NAME | --all      student version of solutions/NAME into chapters/NAME (nbjudge.release)
    nbjudge collect ZIP               an LMS download into submitted/<student>/NAME/ (nbjudge.collect)
    nbjudge grade NAME [--jobs N]     autograde: student kernel and judge in the sandbox (nbjudge.grade)
    nbjudge feedback NAME             feedback HTML without hidden tests (nbjudge.feedback)
    nbjudge export [--to FILE]        all grades as CSV (nbgrader export)
    nbjudge report NAME               statistics, histogram, manual queue, incidents (nbjudge.report)

``python -m nbjudge`` is the same command.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .course import CourseError, assignments, course_folder, find_root, nbgrader, quiet_nbgrader


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbjudge", description=__doc__.split("\n\n")[0])
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
    return parser


def _run(args) -> int:
    if args.command == "release":
        from .release import release
        root = find_root(args.root)
        names = assignments(root) if args.all else args.names
        if not names:
            raise CourseError("name an assignment or pass --all")
        for name in names:
            print(f"released {release(name, root).relative_to(root)}")
        return 0
    quiet_nbgrader()
    course_dir = course_folder(args.course_dir)
    if args.command == "collect":
        from .collect import collect
        collect(course_dir, args.zip, args.assignment, allow_new=args.add_students, keep_latest=args.keep_latest)
    elif args.command == "grade":
        from .grade import grade
        overrides = {}
        if args.cell_timeout:
            overrides["Execute"] = {"timeout": args.cell_timeout}
        if args.notebook_timeout:
            overrides["Sandbox"] = {"notebook_timeout": args.notebook_timeout}
        results = grade(course_dir, args.name, jobs=args.jobs, sandbox=not args.no_sandbox,
                        students=args.student, overrides=overrides)
        failed = sorted(g.student for g in results if any(i.kind == "grader-error" for i in g.incidents))
        if failed:  # recorded with an incident each; the rest of the run is complete
            print(f"warning: the grader failed on {len(failed)} submission(s): {', '.join(failed)}; they score 0 "
                  "for now (see the report); regrade them with --student", file=sys.stderr)
    elif args.command == "feedback":
        from .feedback import generate
        generate(course_dir, args.name, students=args.student)
    elif args.command == "export":
        target = Path(args.to)
        target = target if target.is_absolute() else course_dir / target
        nbgrader(["export", "--to", str(target)], cwd=course_dir)
        print(f"grades: {target}")
    elif args.command == "report":
        from .report import build
        build(course_dir, args.name, out=args.out)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (CourseError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
