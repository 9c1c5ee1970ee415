"""Course administration on top of nbgrader: generating student releases.

``python -m nnlab.course release NAME`` (or ``--all``; ``make release`` runs that) generates
the student version of ``solutions/NAME/assignment.ipynb`` with nbgrader in a scratch course
folder and copies it to ``chapters/NAME/``. Only the assignment files are written there, so the
chapter's ``lecture.ipynb`` is never touched.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnlab.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_release = sub.add_parser("release", help="generate student versions into chapters/")
    p_release.add_argument("names", nargs="*", help="assignment names, e.g. 02_backprop")
    p_release.add_argument("--all", action="store_true", help="every assignment under solutions/")
    p_release.add_argument("--root", help="course root (default: found from the current folder)")
    args = parser.parse_args(argv)
    try:
        root = find_root(args.root)
        if args.command == "release":
            names = assignments(root) if args.all else args.names
            if not names:
                parser.error("name an assignment or pass --all")
            for name in names:
                print(f"released {release(name, root).relative_to(root)}")
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
