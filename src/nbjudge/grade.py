"""The ``grade`` command: every submission of an assignment, sandboxed, in parallel, recorded serially.

Two phases per submission:

1. **execute and judge** (parallel): a worker process (:mod:`nbjudge.worker`) rebuilds the
   notebook around the instructor's cells and runs it: the student's cells in the sandboxed
   student kernel, the test cells in the sandboxed judge (:mod:`nbjudge.execute`). Workers never
   open the gradebook; ``--jobs`` of them run at once, each slot with its own user ids.
2. **record** (serial, trusted): in this process, one submission at a time, nbgrader's own
   preprocessors score the executed notebook into the gradebook (``IgnorePattern``,
   ``LimitOutput``, ``SaveAutoGrades``, ``AssignLatePenalties``, ``CheckCellMetadata``), the
   scoring policy is applied (:mod:`nbjudge.policy`), and the graded notebook is written to
   ``autograded/<student>/<assignment>/``.

Because only this process writes the gradebook, and each submission's scores depend only on
its own sandboxed run, the gradebook after ``--jobs 4`` is the same as after ``--jobs 1``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import policy, rubric
from .course import CourseError, course_id, db_url, ensure_assignment, environment, load_config, submissions
from .policy import FLAGGING, Incident
from .sanitize import sanitize_notebook


#: the largest executed notebook the recording step reads (outputs are capped long before this)
MAX_EXECUTED_BYTES = 256 * 2**20


class GradingError(CourseError):
    """``grade`` cannot start (no sandbox, no assignment, ...); the message says what to do."""


@dataclasses.dataclass
class Graded:
    """The outcome of one submission."""

    student: str
    score: float
    max_score: float
    incidents: list
    elapsed: float
    

def _linked_submissions(course_dir, name) -> list[str]:
    """Students whose ``submitted/<student>`` or ``submitted/<student>/<name>`` is a symbolic link."""
    root = Path(course_dir) / "submitted"
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith("."):
            continue
        if folder.is_symlink() or (folder.is_dir() and (folder / name).is_symlink()):
            found.append(folder.name)
    return found


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_timestamp(folder: Path):
    """(timestamp or None, incidents) from ``timestamp.txt`` as nbgrader reads it."""
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    if not path.is_file():
        return None, []
    text = path.read_text(errors="replace").strip()[:100]
    if not text:
        return None, [Incident("bad-timestamp", "timestamp.txt is empty: the submission was graded "
                               "as on time; check the submission time in the LMS")]
    try:
        return parse_utc(text), []
    except (ValueError, OverflowError) as exc:
        return None, [Incident("bad-timestamp", f"timestamp.txt holds {text!r}, which is not a "
                               f"date ({exc}); the submission was graded as on time: check the submission "
                               "time in the LMS")]


def _rmtree(path: Path):
    def unlock(func, p, _):
        os.chmod(os.path.dirname(p), 0o755)
        if os.path.exists(p) and not os.path.isdir(p):
            os.chmod(p, 0o644)
        func(p)
    if path.exists():
        for root, dirs, _ in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(path, onerror=unlock)


def _grade_rows(gb, name, student, notebook):
    nb = gb.find_submission_notebook(notebook, name, student)
    return nb, list(nb.grades)


def record(course_dir, name, student, result, error, spec, config, url) -> Graded:
    """Phase 2 for one submission: scores into the gradebook, graded notebook to ``autograded/``."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)

    course_dir = Path(course_dir)
    submitted = course_dir / "submitted" / student / name
    target = course_dir / "autograded" / student / name
    linked = submitted.is_symlink() or submitted.parent.is_symlink()  # never followed
    timestamp, found = (None, []) if linked else read_timestamp(submitted)
    all_incidents = list(found)
    if result is None:
        all_incidents.append(Incident("grader-error", f"the grader could not finish this submission "
                                      f"({error}); every question scores 0 until it is regraded: "
                                      f"nbjudge grade {name} --student {student}"))
        result = {"notebooks": {nb: {"status": "grader-error", "incidents": []} for nb in spec["notebooks"]},
                  "incidents": []}
    all_incidents += [Incident.from_dict(d) for d in result.get("incidents", [])]

    with Gradebook(url, course_id(config)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(name, student, timestamp=timestamp)

    _rmtree(target)
    target.mkdir(parents=True)
    from .worker import _regular_files
    graded_files = {f"{nb}.ipynb" for nb in spec["notebooks"]}
    for rel in _regular_files(submitted)[0] if submitted.is_dir() and not linked else []:
        if not rel.endswith(".ipynb"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(submitted / rel, target / rel)
    source = course_dir / "solutions" / name
    for rel in _regular_files(source)[0] if source.is_dir() else []:
        if not rel.endswith(".ipynb"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, target / rel)

    score = max_score = 0.0
    for nb_name, nb_spec in spec["notebooks"].items():
        entry = result["notebooks"].get(nb_name, {"status": "grader-error", "incidents": []})
        nb_incidents = [Incident.from_dict(d) for d in entry.get("incidents", [])]
        resources = {"nbgrader": {"student": student, "assignment": name, "notebook": nb_name, "db_url": url}}
        executed = Path(result.get("out_dir", "")) / f"{nb_name}.ipynb"
        if entry["status"] == "executed" and executed.is_file() and executed.stat().st_size > MAX_EXECUTED_BYTES:
            nb_incidents.append(Incident("malformed-output", f"the executed notebook is "
                                         f"{executed.stat().st_size // 2**20} MiB, above the {MAX_EXECUTED_BYTES // 2**20} "
                                         "MiB the grader reads; it scores 0", notebook=nb_name))
            entry = {**entry, "status": "too-large"}
        if entry["status"] == "executed" and executed.is_file():
            nb = nbformat.read(executed, as_version=4)
            for cell in nb.cells:
                cell.metadata.pop("nbjudge", None)
            source_nb = course_dir / "solutions" / name / f"{nb_name}.ipynb"
            if source_nb.is_file():  # the grader's rubrics, next to the answers they grade
                rubric.insert(nb, nbformat.read(source_nb, as_version=4))
            # the formgrader and the feedback render this notebook: nothing active may stay in it
            for finding in sanitize_notebook(nb):
                nb_incidents.append(Incident("unsafe-content", f"{finding}; removed before anyone views the "
                                             "notebook", notebook=nb_name))
            stderr_before = _stderr_cells(nb)
            nb, resources = IgnorePattern(config=config).preprocess(nb, resources)
            stderr_after = _stderr_cells(nb)
            for gid in sorted(stderr_before - stderr_after):
                nb_incidents.append(Incident("stderr-ignored", f"{gid} wrote a warning to stderr; it "
                                             "matched c.IgnorePattern and did not count as a failure",
                                             cell=gid, notebook=nb_name))
            for gid in sorted(stderr_after):
                nb_incidents.append(Incident("stderr-failure", f"{gid} wrote to stderr, which nbgrader "
                                             "counts as a failure of the test", cell=gid, notebook=nb_name))
            nb, resources = LimitOutput(config=config).preprocess(nb, resources)
            nb, resources = SaveAutoGrades(config=config).preprocess(nb, resources)
            with Gradebook(url) as gb:
                policy.apply(gb.find_submission_notebook(nb_name, name, student).grades,
                             nb_incidents + all_incidents, nb_name, nb_spec)
                gb.db.commit()
            nb, resources = AssignLatePenalties(config=config).preprocess(nb, resources)
            nb, resources = CheckCellMetadata(config=config).preprocess(nb, resources)
            nbformat.write(nb, target / f"{nb_name}.ipynb")
        else:
            with Gradebook(url) as gb:
                notebook, grades = _grade_rows(gb, name, student, nb_name)
                for grade in grades:
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
                gb.db.commit()
        with Gradebook(url) as gb:
            notebook, grades = _grade_rows(gb, name, student, nb_name)
            for grade in grades:  # no score may exceed its cell's points
                top = float(grade.max_score)
                if grade.auto_score is not None and not 0.0 <= grade.auto_score <= top:
                    nb_incidents.append(Incident("score-clamped", f"{grade.name} scored "
                                                 f"{grade.auto_score} outside [0, {top:g}]; set to "
                                                 f"{min(max(grade.auto_score, 0.0), top):g}", cell=grade.name,
                                                 notebook=nb_name))
                    grade.auto_score = min(max(grade.auto_score, 0.0), top)
            submission = gb.find_submission(name, student)
            if submission.total_seconds_late > 0:
                penalty = notebook.late_submission_penalty or 0.0
                nb_incidents.append(Incident("late", f"submitted {_duration(submission.total_seconds_late)} "
                                             f"after the due date; late penalty {penalty:g} point(s)",
                                             notebook=nb_name))
            notebook.flagged = any(i.severity in FLAGGING for i in nb_incidents + all_incidents)
            gb.db.commit()
            score += float(notebook.score) - float(notebook.late_submission_penalty or 0.0)
            max_score += float(notebook.max_score)
        all_incidents += nb_incidents
    for root, dirs, files in os.walk(target):
        for f in files:
            os.chmod(os.path.join(root, f), 0o444)
    policy.save(course_dir, name, student, all_incidents)
    return Graded(student, score, max_score, all_incidents, float(result.get("elapsed") or 0.0))


def _stderr_cells(nb) -> set:
    from nbgrader import utils as nbutils
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.cell_type == "code" and nbutils.is_grade(c) and not nbutils.is_solution(c)
            and any(o.output_type == "stream" and o.get("name") == "stderr" for o in c.outputs)}


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days {hours % 24} h"


class Worker:
    """A long-lived ``python -m nbjudge.worker --serve`` process for one parallel slot."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.proc = None

    def _start(self):
        import threading
        log = open(self.log_path, "ab")
        env = environment(dict(os.environ, PYTHONWARNINGS="ignore"))
        self.proc = subprocess.Popen([sys.executable, "-m", "nbjudge.worker", "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, env=env,
                                     start_new_session=True)
        log.close()
        self.lines: queue.Queue = queue.Queue()

        def pump(stream, lines):
            for line in stream:
                lines.put(line.strip())
            lines.put(None)
        threading.Thread(target=pump, args=(self.proc.stdout, self.lines), daemon=True).start()

    def _kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                pass
            self.proc.wait()
            self.proc = None

    def run(self, job, budget):
        """Grade one job; return (result or None, error message or None)."""
        job_path = Path(job["scratch"]) / "job.json"
        _write_private(job_path, json.dumps(job))
        started = time.monotonic()
        if self.proc is None or self.proc.poll() is not None:
            self._start()
            try:
                first = self.lines.get(timeout=300)
            except queue.Empty:
                first = None
            if first != "ready":
                self._kill()
                return None, f"the grading worker did not start (see {self.log_path})"
        self.proc.stdin.write(f"{job_path}\n")
        self.proc.stdin.flush()
        try:
            answer = self.lines.get(timeout=max(1.0, budget - (time.monotonic() - started)))
        except queue.Empty:
            answer = "timeout"
        if answer != "done":
            self._kill()
            if answer == "timeout":
                return None, f"grading this submission took longer than {budget:.0f} s; the worker was stopped"
            return None, f"the grading worker crashed (see {self.log_path})"
        result_path = Path(job["out_dir"]) / "result.json"
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            result["out_dir"] = job["out_dir"]
            return result, None
        error = Path(job["out_dir"]) / "error.txt"
        detail = error.read_text() if error.is_file() else ""
        last = [line for line in detail.strip().splitlines() if line.strip()][-1:] or ["no result"]
        return None, f"worker failed: {last[0][:300]}"

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except Exception:
                pass
        self._kill()


def grade(course_dir, name, *, jobs=None, sandbox=True, students=None, overrides=None, keep_scratch=False,
          log=print) -> list[Graded]:
    """Autograde every submission of ``name`` (or only ``students``) in ``course_dir``.

    Parameters
    ----------
    course_dir : path
        The nbgrader course folder (holds ``nbgrader_config.py``, ``solutions/``, ``submitted/``).
    name : str
        The assignment.
    jobs : int, optional
        Submissions executed at once (default: the number of CPU cores).
    sandbox : bool
        False runs student code WITHOUT isolation (``--no-sandbox``); the run is marked as such.
    students : list of str, optional
    overrides : dict, optional
        Extra configuration, e.g. ``{"Execute": {"timeout": 10}, "Sandbox": {"notebook_timeout": 60}}``.

    Returns
    -------
    list of Graded, in student order.
    """
    from .cells import allowed_modules, assignment_spec
    from .sandbox import (Sandbox, SandboxUnavailable, check_available, check_exposure, check_uids, package_view,
                          python_paths, student_kit)

    course_dir = Path(course_dir).resolve()
    if not (course_dir / "nbgrader_config.py").is_file():
        raise GradingError(f"{course_dir} is not a course folder: it has no nbgrader_config.py")
    config = load_config(course_dir)
    specific = dict(config.Sandbox.get("per_assignment", {}).get(name, {})) if "Sandbox" in config else {}
    overrides = {section: dict(values) for section, values in (overrides or {}).items()}
    if specific:  # the assignment's own limits, unless the command line overrides them
        overrides["Sandbox"] = {**specific, **overrides.get("Sandbox", {})}
    for section, values in overrides.items():
        for key, value in values.items():
            config[section][key] = value
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    jobs = jobs or os.cpu_count() or 1
    box = Sandbox(config=config)
    bwrap, ro_paths = None, python_paths() + list(box.ro_paths)
    secrets = [course_dir / p for p in ("gradebook.db", "solutions", "release", "source", "submitted", "autograded",
                                       "feedback", "reports")]
    uids = {}
    if sandbox and os.geteuid() == 0:
        uids = {slot: (box.uid_base + slot, box.uid_base + box.judge_uid_offset + slot) for slot in range(jobs)}
    try:
        if sandbox:
            bwrap = check_available(box)
            check_exposure(ro_paths, [str(s) for s in secrets])
            check_uids([u for pair in uids.values() for u in pair])
    except SandboxUnavailable as exc:
        raise GradingError(f"refusing to grade without the sandbox: {exc}") from exc
    if not sandbox:
        log("WARNING: --no-sandbox: student code runs WITHOUT isolation; it can read solutions/ and write "
            "gradebook.db. This run is marked as unsandboxed in the report.")
    url = db_url(course_dir, config)
    try:
        ensure_assignment(course_dir, name, url, log=log)
    except CourseError as exc:
        raise GradingError(str(exc)) from exc
    spec = assignment_spec(course_dir, name, url)
    everyone = submissions(course_dir, name)
    linked = _linked_submissions(course_dir, name)
    if students:
        linked = [s for s in linked if s in students]
        unknown = sorted(set(students) - set(everyone) - set(linked))
        if unknown:
            raise GradingError(f"no submission of {name} for {', '.join(unknown)} in {course_dir / 'submitted'}")
        everyone = [s for s in everyone if s in students and s not in linked]
    refused = {}
    for student in linked:  # recorded with an incident and 0 points, never followed
        outcome = refused[student] = record(course_dir, name, student, {"notebooks": {nb: {"status": "missing", "incidents": [
            Incident("symlink-dropped", f"submitted/{student}/{name} (or the student's folder) is a symbolic "
                     "link; it was not followed and nothing was graded", notebook=nb).to_dict()]}
            for nb in spec["notebooks"]}, "incidents": []}, None, spec, config, url)
        log(f"  {student:<20} {outcome.score:6.2f} / {outcome.max_score:g}   a symbolic link: not followed")
    if not everyone and not linked:
        raise GradingError(f"no submissions of {name}: expected folders submitted/<student>/{name}/ in {course_dir} "
                           f"(nbjudge collect ZIP puts them there)")
    run_started = time.time()
    isolation, cgroup_run = "not isolated (--no-sandbox)", None
    if sandbox:
        from . import cgroups
        support = cgroups.detect()
        isolation = support.summary
        if support.available:
            cgroups.cleanup_stale(support)
            try:
                cgroup_run = cgroups.Run.open(support, label="grade")
            except cgroups.CgroupError as exc:
                isolation = f"{cgroups.NOT_ISOLATED}: {exc}."
        if cgroup_run is None:
            log(f"WARNING: {isolation}")
    # The scratch folder holds the hidden tests (spec.json, executed notebooks): the grader's alone
    # (0700, files 0600). The sandboxes reach only the parts bound into them (stage, kit, view).
    scratch_root = Path(tempfile.mkdtemp(prefix="nbjudge-grade-"))
    os.chmod(scratch_root, 0o700)
    spec_path = scratch_root / "spec.json"
    _write_private(spec_path, json.dumps(spec))
    kit = student_kit(scratch_root / "kit")
    allowed = {nb: allowed_modules(course_dir, name, nb) for nb in spec["notebooks"]}
    overlays = {nb: package_view(scratch_root / "view" / nb, "nnlab", allowed[nb], name) for nb in spec["notebooks"]}
    slots: queue.Queue = queue.Queue()
    workers = [Worker(scratch_root / f"worker-{slot}.log") for slot in range(jobs)]
    for slot in range(jobs):
        slots.put(slot)
    per_notebook = int(box.notebook_timeout)
    budget = per_notebook * max(1, len(spec["notebooks"])) + 120

    def task(student):
        slot = slots.get()
        try:
            scratch = scratch_root / student
            scratch.mkdir(mode=0o700)
            job = {"course_dir": str(course_dir), "assignment": name, "student": student,
                   "spec_path": str(spec_path), "submission_dir": str(course_dir / "submitted" / student / name),
                   "source_dir": str(course_dir / "solutions" / name), "scratch": str(scratch),
                   "out_dir": str(scratch / "out"), "workdir": str(course_dir / "autograded" / student / name),
                   "uid": uids[slot][0] if uids else None, "judge_uid": uids[slot][1] if uids else None,
                   "ro_paths": ro_paths, "bwrap": bwrap, "no_sandbox": not sandbox, "overrides": overrides or {},
                   "kit": kit, "overlays": overlays, "allowed": allowed, "slot": slot,
                   "cgroup": cgroup_run.to_dict() if cgroup_run else None}
            return workers[slot].run(job, budget)
        finally:
            slots.put(slot)

    graded = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(task, s): s for s in everyone}
            for future in concurrent.futures.as_completed(futures):
                student = futures[future]
                try:
                    result, error = future.result()
                except Exception as exc:  # a bug in the grader: still record the submission
                    result, error = None, f"{type(exc).__name__}: {exc}"
                try:
                    outcome = record(course_dir, name, student, result, error, spec, config, url)
                except Exception as exc:
                    outcome = record(course_dir, name, student, None, f"recording failed: {exc}", spec, config,
                                     url)
                graded[student] = outcome
                worst = sorted({i.severity for i in outcome.incidents}, key=["info", "review", "integrity",
                                                                               "error"].index)
                log(f"  {student:<20} {outcome.score:6.2f} / {outcome.max_score:g}   {outcome.elapsed:6.1f} s   "
                    f"{len(outcome.incidents)} incident(s){' (' + ', '.join(worst) + ')' if worst else ''}")
    finally:
        for worker in workers:
            worker.close()
        if cgroup_run is not None:
            cgroup_run.close()
        if not keep_scratch:
            shutil.rmtree(scratch_root, ignore_errors=True)
    elapsed = time.time() - run_started
    run_info = {"assignment": name, "students": len(everyone), "jobs": jobs, "sandbox": bool(sandbox),
                "isolation": isolation, "isolated": cgroup_run is not None,
                "seconds": round(elapsed, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    folder = course_dir / "reports" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "last-grading-run.json").write_text(json.dumps(run_info, indent=1) + "\n")
    log(f"graded {len(everyone)} submission(s) of {name} in {elapsed:.1f} s with {jobs} job(s), "
        f"{'sandboxed (bubblewrap)' if sandbox else 'UNSANDBOXED'}")
    graded.update(refused)
    return [graded[s] for s in sorted(graded)]
