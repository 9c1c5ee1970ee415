"""The nbgrader plumbing, defined once: the course folder, its configuration, its gradebook, nbgrader itself.

Every other module asks this one where the course is (:func:`find_root`), what
``nbgrader_config.py`` says (:func:`load_config`), where the gradebook lives (:func:`db_url`),
and runs nbgrader through :func:`nbgrader`, with this interpreter's ``bin`` first on ``PATH``
(nbgrader runs the ``alembic`` command it finds there).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

ASSIGNMENT = "assignment.ipynb"


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


def course_folder(path=None) -> Path:
    """``path`` if it is a course folder (holds ``nbgrader_config.py``), else the repository root."""
    if path:
        folder = Path(path).resolve()
        if not (folder / "nbgrader_config.py").is_file():
            raise CourseError(f"{folder} is not a course folder: it has no nbgrader_config.py")
        return folder
    return find_root(None)


def assignments(root) -> list[str]:
    """Names of all assignments: folders ``solutions/NAME/`` holding ``assignment.ipynb``."""
    return sorted(p.parent.name for p in (Path(root) / "solutions").glob(f"*/{ASSIGNMENT}"))


def check_assignment(root, name) -> Path:
    """The source notebook of ``name``; :class:`CourseError` naming the known ones if there is none."""
    source = Path(root) / "solutions" / name / ASSIGNMENT
    if not source.is_file():
        known = ", ".join(assignments(root)) or "none"
        raise CourseError(f"unknown assignment {name!r}: {source} does not exist (known: {known})")
    return source


def environment(base=None) -> dict:
    """The environment for nbgrader: this interpreter's ``bin`` first on PATH, TensorFlow quiet."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def quiet_nbgrader() -> None:
    """Set up this process for nbgrader: PATH as :func:`environment`, and SQLAlchemy's warnings off.

    nbgrader 0.9 uses SQLAlchemy APIs that 2.x deprecates (``SADeprecationWarning``), and its
    ``add_submission`` warns "Object ... not in session"; both are harmless and only these two
    are filtered.
    """
    os.environ.update(environment())
    try:
        from sqlalchemy.exc import SADeprecationWarning, SAWarning
    except ImportError:
        return
    warnings.filterwarnings("ignore", category=SADeprecationWarning)
    warnings.filterwarnings("ignore", category=SAWarning, message=".*not in session.*")


def nbgrader(args, cwd, *, timeout=None) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader ARGS`` in ``cwd``; raise :class:`CourseError` with its log on failure."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=environment())
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise CourseError(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return proc


def load_config(course_dir):
    """The course's ``nbgrader_config.py`` as a traitlets ``Config`` (empty if there is none)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(course_dir) / "nbgrader_config.py"
    if not path.is_file():
        return Config()
    cwd = os.getcwd()
    os.chdir(course_dir)
    try:
        return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    finally:
        os.chdir(cwd)


def db_url(course_dir, config) -> str:
    """The gradebook URL nbgrader uses for ``course_dir`` (``c.CourseDirectory.db_url`` or the default)."""
    url = config.CourseDirectory.get("db_url") if "CourseDirectory" in config else None
    return url or f"sqlite:///{Path(course_dir) / 'gradebook.db'}"


def course_id(config) -> str:
    return (config.CourseDirectory.get("course_id") if "CourseDirectory" in config else None) or "default_course"


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


def generate(course_dir, name) -> Path:
    """``nbgrader generate_assignment NAME`` in a course folder, rubrics removed; return the release folder."""
    import nbformat

    from . import rubric

    nbgrader(["generate_assignment", name, "--force"], cwd=course_dir)
    out = Path(course_dir) / "release" / name
    if not (out / ASSIGNMENT).is_file():
        raise CourseError(f"nbgrader produced no {ASSIGNMENT} in {out}")
    for path in out.glob("*.ipynb"):  # rubrics are for graders only
        nb = nbformat.read(path, as_version=4)
        if rubric.strip(nb):
            nbformat.write(nb, path)
    return out


def ensure_assignment(course_dir, name, url, log=print) -> None:
    """Make sure the gradebook knows ``name`` and ``release/<name>/`` exists (generate them if not)."""
    from nbgrader.api import Gradebook, MissingEntry

    course_dir = Path(course_dir)
    source = course_dir / "solutions" / name
    if not any(source.glob("*.ipynb")):
        raise CourseError(f"unknown assignment {name!r}: no notebook in {source}")
    with Gradebook(url) as gb:
        try:
            known = [nb.name for nb in gb.find_assignment(name).notebooks]
        except MissingEntry:
            known = []
    release = course_dir / "release" / name
    if known and all((release / f"{nb}.ipynb").is_file() for nb in known):
        return
    log(f"the gradebook has no release of {name} yet: running nbgrader generate_assignment {name}")
    generate(course_dir, name)


def submissions(course_dir, name) -> list[str]:
    """Student ids with a folder ``submitted/<student>/<name>/`` (symlinked folders are ignored)."""
    root = Path(course_dir) / "submitted"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and (p / name).is_dir() and not (p / name).is_symlink()
                  and not p.name.startswith("."))
