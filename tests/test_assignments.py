"""Every assignment, end to end through real nbgrader.

For each ``solutions/NAME/assignment.ipynb``:

- structure: points on every graded cell, unique ids, a manually graded answer, hidden tests,
  and the ``Total: N points`` stated to students equals the points in the metadata;
- ``nbgrader validate`` passes on the source, ``nbgrader validate --invert`` on the release;
- drift: regenerating the release reproduces ``chapters/NAME/assignment.ipynb`` exactly;
- the nnlab modules it allows while graded (``nbjudge.allowed_modules`` in its metadata) are
  closed under nnlab's own imports and stated to students in the release's introduction;
- every manually graded answer has a rubric (criteria with points adding up to the answer's) that
  the release does not carry;
- tests/roundtrip/NAME.json lists several typical mistakes, each charged only inside its own
  question, at least half of them (over the course) caught by a visible test, and correct
  alternatives written differently from the solution (one with a fancy-index assignment, which the
  static scan must not flag);
- round trip in a scratch course, through the course's grader (``nbjudge grade``: student
  kernel and judge in the sandbox, two jobs): submit the solution, the untouched release, the
  alternatives and each mistake, grade, give feedback, export, and check the exact automatic
  scores: full marks without a single incident for the solution and the alternatives, zero for
  the release, and for each mistake exactly the points of the tests it must fail, failing a
  visible line exactly when the spec says so; feedback pages exist for everyone and hold no
  hidden-test text.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import warnings

import pytest

import assignment_tools as at
from nbjudge import course

ROOT = at.ROOT
NAMES = course.assignments(ROOT)
#: assignments whose tests/roundtrip spec still lists one mistake and no alternative, and whose
#: written answers have no rubric yet (issue "Fair grades and feedback that teaches"): the strict
#: tests below are expected to fail for them, and an assignment leaves this set once they pass
PENDING = set(NAMES) - {"01_neurons", "02_backprop", "04_initialization", "05_batch_norm", "06_dropout_regularization", "08_convnets", "03_softmax_cross_entropy", "07_training_with_keras"}


def _pending(names):
    """``names`` as parameters, the pending ones marked as strict expected failures."""
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="spec and rubric not written yet"))
            if n in PENDING else n for n in names]


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


@pytest.mark.parametrize("name", _pending(NAMES))
def test_roundtrip_spec_is_charged_where_made(name):
    nb = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    spec = at.load_spec(name)
    solution_ids = {at.nbgrader_meta(c)["grade_id"] for c in nb.cells if at.nbgrader_meta(c).get("solution")
                    and c.cell_type == "code"}
    tests = at.auto_points(nb)
    question = at.questions(nb)
    mistakes = spec["mistakes"]
    assert len(mistakes) >= 3, f"{name}: list several typical mistakes (found {len(mistakes)})"
    names = [m["name"] for m in mistakes]
    assert len(names) == len(set(names)), f"{name}: duplicate mistake names {names}"
    for m in mistakes:
        assert m["cell"] in solution_ids, f"{name}/{m['name']}: {m['cell']!r} is not a solution code cell"
        assert m["fails"] and set(m["fails"]) <= set(tests), f"{name}/{m['name']}: fails {m['fails']}"
        elsewhere = [t for t in m["fails"] if question[t] != question[m["cell"]]]
        assert not elsewhere, (f"{name}/{m['name']}: a mistake in {m['cell']!r} (question {question[m['cell']]!r}) "
                               f"is charged in other questions: {elsewhere}")
    cells = [a["cell"] for a in spec["alternatives"]]
    assert cells, f"{name}: list correct alternatives to the solution"
    assert len(cells) == len(set(cells)) and set(cells) <= solution_ids, f"{name}: alternatives {cells}"
    assert any(at.fancy_index_assignments(a["source"]) for a in spec["alternatives"]), (
        f"{name}: one alternative must assign through a fancy index (as in onehot[np.arange(n), y] = 1)")


def test_half_of_the_typical_mistakes_fail_a_visible_test():
    mistakes = [m for name in NAMES for m in at.load_spec(name)["mistakes"]]
    visible = sum(m["visible"] for m in mistakes)
    assert 2 * visible >= len(mistakes), f"only {visible} of {len(mistakes)} mistakes fail a visible test"


@pytest.mark.parametrize("name", NAMES)
def test_static_scan_accepts_honest_code(name):
    """Solutions and correct alternatives (fancy-index assignments included) raise no incident."""
    from nbjudge.cells import scan_source
    nb = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    sources = {f"solution {at.nbgrader_meta(c).get('grade_id')}": c.source for c in nb.cells
               if c.cell_type == "code" and not at.nbgrader_meta(c).get("grade")}
    sources.update({f"alternative {a['cell']}": a["source"] for a in at.load_spec(name)["alternatives"]})
    sources.update({f"mistake {m['name']}": m["source"] for m in at.load_spec(name)["mistakes"]})
    flagged = {where: found for where, src in sources.items() if (found := scan_source(src))}
    assert flagged == {}, flagged


RUBRIC_LINE = re.compile(r"^\s*-\s*\[(\d+(?:\.\d+)?)\]\s+\S", re.M)


@pytest.mark.parametrize("name", _pending(NAMES))
def test_every_written_answer_has_a_rubric_the_release_hides(name):
    nb = at.read(ROOT / "solutions" / name / "assignment.ipynb")
    cells = nb.cells
    manual = [(i, c) for i, c in enumerate(cells) if at.nbgrader_meta(c).get("grade")
              and (at.nbgrader_meta(c).get("solution") or c.cell_type == "markdown")]
    assert manual, name
    for i, cell in manual:
        gid, points = at.nbgrader_meta(cell)["grade_id"], float(at.nbgrader_meta(cell)["points"])
        rubric = cells[i + 1] if i + 1 < len(cells) else None
        assert rubric is not None and rubric.metadata.get("nbjudge", {}).get("rubric") == gid, (
            f"{name}: the cell after {gid!r} must be its rubric (metadata nbjudge.rubric = {gid!r})")
        criteria = [float(p) for p in RUBRIC_LINE.findall(rubric.source)]
        assert len(criteria) >= 2, f"{name}/{gid}: a rubric lists criteria as '- [points] criterion'"
        assert sum(criteria) == points, f"{name}/{gid}: rubric points {criteria} add up to {sum(criteria)}, not {points}"
    release = at.read(ROOT / "chapters" / name / "assignment.ipynb")
    assert not [c for c in release.cells if "rubric" in c.metadata.get("nbjudge", {})], f"{name}: rubric in release"
    release_text = "\n".join(c.source for c in release.cells)
    for i, _ in manual:
        assert cells[i + 1].source.strip() not in release_text


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


def _gradebook_scores(course_dir, name, students):
    """student -> {grade_id: auto_score} for the autograded test cells, read from gradebook.db."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        from nbgrader.api import Gradebook
    scores = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        for student in students:
            nb = gb.find_submission_notebook("assignment", name, student)
            scores[student] = {g.name: g.auto_score for g in nb.grades if g.cell.cell_type == "code"}
    return scores


def _failed_visibly(graded_nb, source_nb, failed) -> bool:
    """Whether one of the ``failed`` test cells raised on a line the student's release shows."""
    sources = {at.nbgrader_meta(c).get("grade_id"): c.source for c in source_nb.cells}
    for cell in graded_nb.cells:
        gid = at.nbgrader_meta(cell).get("grade_id")
        if gid in failed:
            line = at.failing_line(cell)
            assert line, f"{gid}: lost its points without an error the judge located"
            if not any(line in r for r in at.hidden_line_ranges(sources[gid])):
                return True
    return False


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
        "alternative": at.fill_solutions(release, source, {a["cell"]: a["source"] for a in spec["alternatives"]}),
    }
    mistakes = {f"mistake-{m['name']}": m for m in spec["mistakes"]}
    for student, m in mistakes.items():
        submissions[student] = at.fill_solutions(release, source, {m["cell"]: m["source"]})
    for student, nb in submissions.items():
        folder = course_dir / "submitted" / student / name
        folder.mkdir(parents=True)
        at.nbformat.write(nb, str(folder / "assignment.ipynb"))
        (folder / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")

    course.quiet_nbgrader()
    results = {g.student: g for g in grade(course_dir, name, jobs=2, log=lambda *a: None)}
    scores = _gradebook_scores(course_dir, name, submissions)

    assert set(scores["solution"]) == set(points)
    for student in ("solution", "alternative", *mistakes):
        assert results[student].incidents == [], (student, [i.message for i in results[student].incidents])
    assert scores["solution"] == points, "the solution must get full marks on every autograded test"
    assert scores["alternative"] == points, [a["why"] for a in spec["alternatives"]]
    assert scores["release"] == dict.fromkeys(points, 0.0), "the untouched release must get 0 everywhere"
    problems = []
    for student, m in mistakes.items():
        expected = {gid: (0.0 if gid in m["fails"] else pts) for gid, pts in points.items()}
        if scores[student] != expected:
            lost = sorted(g for g in points if scores[student][g] != points[g])
            problems.append(f"{m['name']}: lost {lost}, expected {sorted(m['fails'])} ({m['why']})")
            continue
        graded = at.read(course_dir / "autograded" / student / name / "assignment.ipynb")
        visible = _failed_visibly(graded, source, set(m["fails"]))
        if visible != m["visible"]:
            problems.append(f"{m['name']}: {'fails' if visible else 'passes'} the visible tests, "
                            f"the spec says visible={m['visible']}")
    assert not problems, "\n".join(problems)

    # Feedback for everyone, without hidden tests.
    feedback.generate(course_dir, name, log=lambda *a: None)
    secrets = feedback.hidden_secrets(assignment_spec(course_dir, name, f"sqlite:///{course_dir / 'gradebook.db'}"))
    for student in submissions:
        assert feedback.student_leaks(course_dir, name, student, secrets) == {}, student
        assert (course_dir / "feedback" / student / name / "assignment.html").is_file()

    # The exported CSV carries the same totals (manual answers are not graded yet: 0).
    course.nbgrader(["export", "--to", str(course_dir / "grades.csv")], cwd=course_dir)
    with open(course_dir / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == name}
    for student in submissions:
        assert float(rows[student]["raw_score"]) == sum(scores[student].values()), student
    assert float(rows["solution"]["raw_score"]) == sum(points.values())
    assert float(rows["solution"]["max_score"]) == at.stated_total(source)
