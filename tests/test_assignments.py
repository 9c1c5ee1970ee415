"""Every assignment, end to end through real nbgrader.

For each ``solutions/NAME/assignment.ipynb``:

- structure: points on every graded cell, unique ids, a manually graded answer, hidden tests,
  and the ``Total: N points`` stated to students equals the points in the metadata;
- ``nbgrader validate`` passes on the source, ``nbgrader validate --invert`` on the release;
- drift: regenerating the release reproduces ``chapters/NAME/assignment.ipynb`` exactly;
- the nnlab modules it allows while graded (``nbjudge.allowed_modules`` in its metadata) are
  closed under nnlab's own imports and stated to students in the release's introduction;
- round trip in a scratch course, through the course's grader (``nbjudge grade``: student
  kernel and judge in the sandbox, two jobs): submit (a) the solution, (b) the untouched release,
  (c) one deliberately wrong function (tests/roundtrip/NAME.json), grade, give feedback, export,
  and check the exact automatic scores: full marks without a single incident, zero, and exactly
  the points of the tests the wrong answer must fail; feedback pages exist for all three and hold
  no hidden-test text.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import warnings

import pytest

import assignment_tools as at
from nbjudge import course

ROOT = at.ROOT
NAMES = course.assignments(ROOT)
STUDENTS = ("solution", "release", "wrong")


def _sources():
    return {name: at.read(ROOT / "solutions" / name / "assignment.ipynb") for name in NAMES}


# -- structure (fast) ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_assignment_structure(name):
    nb = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    cells = at.graded_cells(nb)
    ids = [at.nbgrader_meta(c).get("grade_id") for c in nb.cells if at.nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade_id in {name}: {ids}"
    assert all(pts > 0 for _, pts, _ in cells), f"graded cells without points: {cells}"
    assert any(kind == "auto" for *_, kind in cells), "no autograded test cell"
    assert any(kind == "manual" for *_, kind in cells), "no manually graded written answer"
    total = sum(pts for _, pts, _ in cells)
    assert at.stated_total(nb) == total, (
        f"first markdown cell states Total: {at.stated_total(nb)} points, metadata sums to {total}")
    text = "\n".join(c.source for c in nb.cells)
    assert "### BEGIN HIDDEN TESTS" in text, "no hidden tests"
    for cell in nb.cells:
        meta = at.nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source, f"solution cell {meta['grade_id']} has no markers"
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None


@pytest.mark.parametrize("name", NAMES)
def test_roundtrip_spec_names_real_cells(name):
    nb = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    spec = at.load_spec(name)
    solution_ids = {at.nbgrader_meta(c)["grade_id"] for c in nb.cells if at.nbgrader_meta(c).get("solution")}
    assert spec["wrong"]["cell"] in solution_ids
    assert spec["fails"] and set(spec["fails"]) <= set(at.auto_points(nb)), spec["fails"]
    assert set(spec["fails"]) != set(at.auto_points(nb)), "the wrong answer should not fail every test"


def test_chapters_and_solutions_match_one_to_one():
    chapters = {p.name for p in (ROOT / "chapters").iterdir() if p.is_dir()}
    assert chapters, "no chapters"
    for name in NAMES:
        assert name in chapters, f"solutions/{name} has no chapters/{name}"
        assert (ROOT / "chapters" / name / "assignment.ipynb").is_file(), f"chapters/{name}: run make release"
    for name in chapters:
        assert (ROOT / "chapters" / name / "lecture.ipynb").is_file(), f"chapters/{name} has no lecture"
        assert name in NAMES, f"chapters/{name} has no nbgrader source in solutions/{name}"


# -- nbgrader (slow) ----------------------------------------------------------------------------
def _validate(path, *extra):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_validate_source_passes(name):
    out = _validate(ROOT / "solutions" / name / "assignment.ipynb")
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_validate_release_fails_every_test(name):
    out = _validate(ROOT / "chapters" / name / "assignment.ipynb", "--invert")
    assert "Success! The notebook does not pass any tests." in out, out[-3000:]


def _nnlab_imports() -> dict:
    """module -> the nnlab modules it imports (read from src/nnlab, nothing imported)."""
    import ast
    graph = {}
    for path in (ROOT / "src" / "nnlab").glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        graph[path.stem] = {m for m in found if not m.startswith("_")}
    return graph


@pytest.mark.parametrize("name", NAMES)
def test_allowed_modules_are_declared_closed_and_stated(name):
    import re
    nb = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    allowed = nb.metadata.get("nbjudge", {}).get("allowed_modules")
    assert isinstance(allowed, list), f"{name}: declare metadata nbjudge.allowed_modules"
    graph = _nnlab_imports()
    assert set(allowed) <= set(graph), f"unknown modules {set(allowed) - set(graph)}"
    for module in allowed:
        missing = graph[module] - set(allowed)
        assert not missing, f"{name}: nnlab.{module} imports {sorted(missing)}, which are not allowed"
    release = at.read(ROOT / "chapters" / name / "assignment.ipynb")
    intro = next(c.source for c in release.cells if c.cell_type == "markdown" and "Total:" in c.source)
    stated = re.search(r"\*\*Imports from `nnlab`\.\*\*([^\n]*)", intro)
    assert stated, f"{name}: the release's introduction must say which nnlab modules are allowed"
    assert sorted(re.findall(r"`nnlab\.(\w+)`", stated.group(1))) == sorted(allowed)
    assert release.metadata.get("nbjudge", {}).get("allowed_modules") == allowed


@pytest.fixture(scope="module")
def generate(tmp_path_factory):
    """Generate an assignment in a scratch course (once per assignment); return the course dir."""
    done = {}

    def _generate(name):
        if name not in done:
            base = tmp_path_factory.mktemp(f"course-{name}")
            course.make_course_dir(ROOT, base, [name])
            course.generate(base, name)
            done[name] = base
        return done[name]

    return _generate


def _canonical(nb):
    return json.dumps(nb, sort_keys=True, indent=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_release_has_not_drifted(generate, name):
    fresh = at.read(generate(name) / "release" / name / "assignment.ipynb")
    committed = at.read(ROOT / "chapters" / name / "assignment.ipynb")
    assert _canonical(fresh) == _canonical(committed), (
        f"chapters/{name}/assignment.ipynb differs from what solutions/{name} generates: run `make release`")
    assert "### BEGIN SOLUTION" not in _canonical(committed)
    assert "### BEGIN HIDDEN TESTS" not in _canonical(committed)


def _gradebook_scores(course_dir, name):
    """student -> {grade_id: auto_score} for the autograded test cells, read from gradebook.db."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        from nbgrader.api import Gradebook
    scores = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            nb = gb.find_submission_notebook("assignment", name, student)
            scores[student] = {g.name: g.auto_score for g in nb.grades if g.cell.cell_type == "code"}
    return scores


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_grading_round_trip(generate, tmp_path, name):
    from nbjudge import feedback
    from nbjudge.cells import assignment_spec
    from nbjudge.grade import grade

    source = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    spec = at.load_spec(name)
    points = at.auto_points(source)

    course_dir = tmp_path / "course"
    shutil.copytree(generate(name), course_dir)
    release = at.read(course_dir / "release" / name / "assignment.ipynb")
    submissions = {
        "solution": at.fill_solutions(release, source),
        "release": release,
        "wrong": at.fill_solutions(release, source, {spec["wrong"]["cell"]: spec["wrong"]["source"]}),
    }
    for student, nb in submissions.items():
        folder = course_dir / "submitted" / student / name
        folder.mkdir(parents=True)
        at.nbformat.write(nb, str(folder / "assignment.ipynb"))
        (folder / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")

    course.quiet_nbgrader()
    results = {g.student: g for g in grade(course_dir, name, jobs=2, log=lambda *a: None)}
    scores = _gradebook_scores(course_dir, name)

    assert set(scores["solution"]) == set(points)
    assert scores["solution"] == points, "the solution must get full marks on every autograded test"
    assert results["solution"].incidents == [], [i.message for i in results["solution"].incidents]
    assert scores["release"] == dict.fromkeys(points, 0.0), "the untouched release must get 0 everywhere"
    expected_wrong = {gid: (0.0 if gid in spec["fails"] else pts) for gid, pts in points.items()}
    assert scores["wrong"] == expected_wrong, f"wrong answer: {spec['why']}"

    # Feedback for everyone, without hidden tests.
    feedback.generate(course_dir, name, log=lambda *a: None)
    secrets = feedback.hidden_secrets(assignment_spec(course_dir, name, f"sqlite:///{course_dir / 'gradebook.db'}"))
    for student in STUDENTS:
        assert feedback.student_leaks(course_dir, name, student, secrets) == {}, student
        assert (course_dir / "feedback" / student / name / "assignment.html").is_file()

    # The exported CSV carries the same totals (manual answers are not graded yet: 0).
    course.nbgrader(["export", "--to", str(course_dir / "grades.csv")], cwd=course_dir)
    with open(course_dir / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == name}
    assert float(rows["solution"]["raw_score"]) == sum(points.values())
    assert float(rows["release"]["raw_score"]) == 0.0
    assert float(rows["wrong"]["raw_score"]) == sum(expected_wrong.values())
    assert float(rows["solution"]["max_score"]) == at.stated_total(source)
