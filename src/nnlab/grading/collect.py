"""``collect ZIP``: an LMS download into ``submitted/<student>/<assignment>/``, via nbgrader's zip_collect.

nbgrader's ``ZipCollectApp`` extracts the archive and maps every file name to a student with
``c.FileNameCollectorPlugin.named_regexp`` (the course's pattern is in ``nbgrader_config.py``),
but it only *warns* about a file it cannot match (and then drops it), accepts students who are
not on the roster, and stops half-way on a duplicate without timestamps. :func:`collect`
checks the archive first and refuses, with the list of offending files, when

- a notebook's name does not match the pattern (it would be silently lost);
- a student id is not in the gradebook (a typo, or a student not on the roster): import the
  roster with ``nbgrader db student import students.csv`` or pass ``--add-students``;
- the same student submitted the same file twice (pass ``--keep-latest`` to let nbgrader keep
  the newer one when both have timestamps);
- a timestamp in a file name is not a date;
- a path in the archive is absolute or climbs out with ``..``.

Only then does it run ``nbgrader zip_collect``, and it verifies that every file arrived.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

VALID_EXT = (".ipynb",)


class CollectError(RuntimeError):
    """The archive cannot be collected as it is; the message lists what to fix."""


def _regexp(config) -> str:
    pattern = (config.FileNameCollectorPlugin.get("named_regexp") if "FileNameCollectorPlugin" in config else "")
    if not pattern:
        raise CollectError("nbgrader_config.py sets no c.FileNameCollectorPlugin.named_regexp: zip_collect cannot "
                           "tell whose file is whose")
    if "(?P<student_id>" not in pattern or "(?P<file_id>" not in pattern:
        raise CollectError(f"c.FileNameCollectorPlugin.named_regexp must have the groups student_id and file_id, "
                           f"got {pattern!r}")
    return pattern


def plan(zip_path, pattern, known_students, release_notebooks, *, allow_new=False, keep_latest=False):
    """Check an archive; return ``{student: {file_id: (member, timestamp)}}`` or raise CollectError."""
    from nbgrader.utils import parse_utc

    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CollectError(f"{zip_path} is not a readable zip archive: {exc}") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
    unsafe = [m.filename for m in members if m.filename.startswith("/") or ".." in Path(m.filename).parts]
    if unsafe:
        raise CollectError(f"the archive has unsafe paths (absolute or with ..): {', '.join(unsafe)}")
    problems, skipped, result, dupes = [], [], {}, []
    for member in members:
        name = member.filename
        if not name.endswith(VALID_EXT):
            skipped.append(name)
            continue
        # nbgrader matches the pattern against the extracted file's absolute path
        fake = f"/course/downloaded/assignment/extracted/{zip_path.stem}/{name}"
        match = re.match(pattern, fake)
        if not match or not match.groupdict().get("student_id") or not match.groupdict().get("file_id"):
            problems.append(f"{name}: the name does not match the pattern {pattern!r}")
            continue
        info = match.groupdict()
        student, file_id = info["student_id"], info["file_id"]
        stamp = info.get("timestamp")
        if stamp:
            try:
                stamp = parse_utc(stamp)
            except (ValueError, OverflowError):
                problems.append(f"{name}: timestamp {info['timestamp']!r} is not a date")
                continue
        if student not in known_students and not allow_new:
            problems.append(f"{name}: unknown student {student!r} (not in the gradebook)")
            continue
        entry = result.setdefault(student, {})
        if file_id in entry:
            dupes.append((student, file_id, entry[file_id], (name, stamp)))
            if keep_latest and stamp and entry[file_id][1] and stamp >= entry[file_id][1]:
                entry[file_id] = (name, stamp)
            continue
        entry[file_id] = (name, stamp)
    for student, file_id, first, second in dupes:
        if not (keep_latest and first[1] and second[1]):
            problems.append(f"duplicate submission of {file_id} by {student}: {first[0]} and {second[0]}"
                            + ("" if keep_latest else " (pass --keep-latest to keep the newer one)")
                            + (" -- no timestamps to compare" if keep_latest else ""))
    if problems:
        hint = ""
        if any("unknown student" in p for p in problems):
            hint = ("\nimport the roster with `nbgrader db student import students.csv` (columns id, first_name, "
                    "last_name, email) or pass --add-students")
        raise CollectError(f"{len(problems)} problem(s) in {zip_path.name}; nothing was collected:\n  "
                           + "\n  ".join(problems) + hint)
    if not result:
        raise CollectError(f"{zip_path.name} holds no notebooks ({len(skipped)} other file(s))")
    return result, skipped


def collect(course_dir, zip_path, assignment=None, *, allow_new=False, keep_latest=False, log=print):
    """Check ``zip_path`` and run ``nbgrader zip_collect`` on it; return the students collected."""
    from nbgrader.api import Gradebook

    from ..course import CourseError, nbgrader
    from .pipeline import db_url_for, ensure_assignment
    from .worker import load_config

    course_dir, zip_path = Path(course_dir).resolve(), Path(zip_path).resolve()
    if not zip_path.is_file():
        raise CollectError(f"{zip_path} does not exist")
    known_assignments = sorted(p.name for p in (course_dir / "solutions").iterdir() if p.is_dir()) \
        if (course_dir / "solutions").is_dir() else []
    if assignment is None:
        if zip_path.stem not in known_assignments:
            raise CollectError(f"which assignment is {zip_path.name}? pass --assignment NAME "
                               f"(known: {', '.join(known_assignments) or 'none'})")
        assignment = zip_path.stem
    if assignment not in known_assignments:
        raise CollectError(f"unknown assignment {assignment!r} (known: {', '.join(known_assignments) or 'none'})")
    config = load_config(course_dir)
    db_url = db_url_for(course_dir, config)
    ensure_assignment(course_dir, assignment, db_url, log=log)
    with Gradebook(db_url) as gb:
        known = {s.id for s in gb.students}
    release = {p.name for p in (course_dir / "release" / assignment).glob("*.ipynb")}
    wanted, skipped = plan(zip_path, _regexp(config), known, release, allow_new=allow_new, keep_latest=keep_latest)
    for name in skipped:
        log(f"  not a notebook, not collected: {name}")
    for student, files in sorted(wanted.items()):
        for file_id in files:
            if file_id not in release:
                log(f"  note: {student} submitted {file_id}, which is not a notebook of the assignment "
                    "(kept, graded as an extra notebook)")
    replaced = [s for s in wanted if (course_dir / "submitted" / s / assignment).exists()]
    if replaced:
        log(f"  replacing earlier submissions of: {', '.join(sorted(replaced))}")
    if allow_new:
        with Gradebook(db_url) as gb:
            for student in sorted(set(wanted) - known):
                gb.update_or_create_student(student)
                log(f"  added student {student} to the gradebook")
    downloaded = course_dir / "downloaded" / assignment
    shutil.rmtree(downloaded, ignore_errors=True)
    (downloaded / "archive").mkdir(parents=True)
    shutil.copy2(zip_path, downloaded / "archive" / zip_path.name)
    try:
        nbgrader(["zip_collect", assignment, "--force"], cwd=course_dir)
    except CourseError as exc:
        raise CollectError(str(exc)) from exc
    missing = [f"{s}/{f}" for s, files in wanted.items() for f in files
               if not (course_dir / "submitted" / s / assignment / f).is_file()]
    if missing:
        raise CollectError(f"nbgrader zip_collect did not deliver: {', '.join(missing)}")
    log(f"collected {sum(len(f) for f in wanted.values())} file(s) of {len(wanted)} student(s) into "
        f"{course_dir / 'submitted'}/<student>/{assignment}/")
    return sorted(wanted)
