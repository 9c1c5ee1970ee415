"""The instructor's commands (nbjudge) and the grading pieces behind them.

Fast: rebuilding a submission around the instructor's cells, the static scan, hiding hidden
tests in feedback, the late penalty, the report's statistics, collecting a zip, CLI refusals.
Slow: whole cycles on a scratch course (tests/hostile/tiny), sequential vs parallel grading,
an unsandboxed run, and the real 02_backprop assignment.
"""
from __future__ import annotations

import copy
import csv
import json
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from hostile import support
from nbjudge import cells as cellmod
from nbjudge import cli as course_cli
from nbjudge import course
from nbjudge import policy as incident_store
from nbjudge.feedback import HideHiddenTests, find_leaks, hidden_lines, hidden_secrets
from nbjudge.late import PerDayPenalty
from nbjudge.policy import KINDS, Incident

ROOT = Path(__file__).resolve().parents[1]


# -- a notebook spec without a gradebook (fast) ---------------------------------------------------
def _spec():
    def c(gid, cell_type, source, release, *, locked=False, grade=False, solution=False, points=0.0):
        return {"grade_id": gid, "cell_type": cell_type, "source": source, "release_source": release,
                "locked": locked, "grade": grade, "solution": solution, "task": False, "points": points,
                "checksum": f"sum-{gid}"}
    return {"kernelspec": None, "max_score": 3.0, "cells": [
        c("setup", "code", "import numpy as np", "import numpy as np", locked=True),
        c("f", "code", "raise NotImplementedError()", "raise NotImplementedError()", solution=True),
        c("test_f", "code", "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(20) == 40\n### END HIDDEN TESTS",
          "assert f(1) == 2", locked=True, grade=True, points=2.0),
        c("essay", "markdown", "YOUR ANSWER HERE", "YOUR ANSWER HERE", grade=True, solution=True, points=1.0),
    ]}


def _release_nb(spec):
    cells = []
    for sc in spec["cells"]:
        cell = cellmod.instructor_cell(sc, source=sc["release_source"])
        cells.append(cell)
    return new_notebook(cells=cells)


def _by_id(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}


def test_restore_keeps_answers_and_puts_back_hidden_tests():
    spec = _spec()
    nb = _release_nb(spec)
    _by_id(nb)["f"].source = "def f(x):\n    return 2 * x"
    out, incidents = cellmod.restore_cells(nb, spec, "assignment")
    cells = _by_id(out)
    assert cells["f"].source == "def f(x):\n    return 2 * x"
    assert "assert f(20) == 40" in cells["test_f"].source, "hidden tests must be back for grading"
    assert [c.metadata["nbgrader"]["grade_id"] for c in out.cells] == ["setup", "f", "test_f", "essay"]
    assert incidents == []


def test_restore_reverts_an_edited_test_and_changed_points():
    spec = _spec()
    nb = _release_nb(spec)
    test = _by_id(nb)["test_f"]
    test.source = "pass"
    test.metadata["nbgrader"]["points"] = 100
    out, incidents = cellmod.restore_cells(nb, spec)
    restored = _by_id(out)["test_f"]
    assert restored.source == spec["cells"][2]["source"] and restored.metadata["nbgrader"]["points"] == 2.0
    assert [i.kind for i in incidents] == ["locked-cell-changed"]
    assert "its source" in incidents[0].message and "points: 100 (should be 2)" in incidents[0].message


@pytest.mark.parametrize("damage, how", [
    (lambda cell, nb: nb.cells.remove(cell), "it was deleted"),
    (lambda cell, nb: cell.metadata.pop("nbgrader"), "metadata was removed or its grade_id renamed"),
    (lambda cell, nb: cell.metadata["nbgrader"].update(grade_id="test_f_renamed"), "metadata was removed"),
])
def test_restore_puts_back_a_missing_test_after_its_answer(damage, how):
    spec = _spec()
    nb = _release_nb(spec)
    damage(_by_id(nb)["test_f"], nb)
    out, incidents = cellmod.restore_cells(nb, spec)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in out.cells]
    assert ids.count("test_f") == 1 and ids.index("test_f") == ids.index("f") + 1, ids
    assert "cell-missing" in [i.kind for i in incidents]
    assert any(how in i.message for i in incidents), [i.message for i in incidents]


def test_restore_grade_false_on_a_test_is_restored():
    spec = _spec()
    nb = _release_nb(spec)
    _by_id(nb)["test_f"].metadata["nbgrader"]["grade"] = False
    out, incidents = cellmod.restore_cells(nb, spec)
    assert _by_id(out)["test_f"].metadata["nbgrader"]["grade"] is True
    assert "grade: False (should be True)" in incidents[0].message


def test_restore_a_deleted_answer_scores_as_unanswered():
    spec = _spec()
    nb = _release_nb(spec)
    nb.cells.remove(_by_id(nb)["f"])
    out, incidents = cellmod.restore_cells(nb, spec)
    assert _by_id(out)["f"].source == "raise NotImplementedError()"
    assert incidents[0].kind == "cell-missing" and "scores 0" in incidents[0].message


def test_restore_strips_duplicates_and_unknown_ids():
    spec = _spec()
    nb = _release_nb(spec)
    nb.cells.append(copy.deepcopy(_by_id(nb)["f"]))
    extra = new_code_cell("x = 1", metadata={"nbgrader": {"grade_id": "bonus", "grade": True, "points": 50}})
    nb.cells.append(extra)
    out, incidents = cellmod.restore_cells(nb, spec)
    assert sorted(i.kind for i in incidents) == ["duplicate-grade-id", "unknown-grade-id"]
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in out.cells].count("f") == 1
    assert "nbgrader" not in out.cells[-1].metadata


@pytest.mark.parametrize("code, expected", [
    ("np.allclose = lambda *a, **k: True", "replaces np.allclose"),
    ("import numpy\nnumpy.testing.assert_allclose = print", "replaces numpy.testing.assert_allclose"),
    ("class A:\n    def __eq__(self, other):\n        return True", "defines __eq__"),
    ("get_ipython().showtraceback = None", "replaces get_ipython().showtraceback"),
    ("import sys\nsys.excepthook = print", "assigns .excepthook"),
    ("import os\nos._exit(0)", "calls os._exit()"),
    ("import socket", "imports socket"),
    ("open('../../gradebook.db', 'w')", "mentions a grading path"),
    ("!ls /", "runs shell commands"),
    ("setattr(np, 'isclose', None)", "calls setattr(np, ...)"),
    ("exec('print(1)')", "calls exec()"),
    ("np.__dict__['allclose'] = print", "replaces np.__dict__"),
    ("import sys\nsys.modules['numpy'] = None", "replaces sys.modules"),
])
def test_scan_flags_suspicious_code(code, expected):
    found = cellmod.scan_source("import numpy as np\n" + code)
    assert any(expected in f for f in found), found


@pytest.mark.parametrize("code", [
    "def relu(z):\n    return np.maximum(0, z)",
    "import numpy as np\nx = np.zeros(3)\nx[0] = 1\nresult = {'a': 1}",
    "class Net:\n    def __init__(self):\n        self.w = 0",
    "%timeit sum(range(10))",
    "import numpy as np\nonehot = np.zeros((3, 2))\nonehot[np.arange(3), [0, 1, 1]] = 1",
    "import numpy as np\nprobs = np.ones((2, 2))\nprobs[np.arange(len(probs)), [0, 1]] -= 1",
    "import numpy as np\nz = np.ones(3)\nz[z < 0] = 0\nnp.random.default_rng(0).random(3)[0] = 1",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (4, 3)",
    "import keras\nm = keras.Sequential()\nm.layers[0].trainable = False",
    "params = {'W': 1.0}\nparams['W'] -= 0.1",
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'",
])
def test_scan_leaves_ordinary_code_alone(code):
    assert cellmod.scan_source(code) == []


# -- feedback without hidden tests (fast) ------------------------------------------------------
def _graded_test_cell(source, outputs):
    cell = new_code_cell(source, metadata={"nbgrader": {"grade": True, "grade_id": "t", "locked": True,
                                                        "points": 1, "solution": False, "schema_version": 3}})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_feedback_hides_hidden_source_traceback_and_echoes():
    secret = "assert relu(hidden_input_matrix) == 12345"
    test = _graded_test_cell(f"assert relu(1) == 1\n### BEGIN HIDDEN TESTS\n{secret}\n### END HIDDEN TESTS", [
        {"output_type": "stream", "name": "stdout", "text": "called with hidden_input_matrix\n"},
        {"output_type": "error", "ename": "AssertionError", "evalue": "relu is wrong on 2-D input",
         "traceback": ["Traceback", f"----> 3 {secret}", "AssertionError: relu is wrong on 2-D input"]}])
    echo = new_code_cell("print(_ih)")
    echo.outputs = [nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": f"['x', '{secret}']"})]
    nb = new_notebook(cells=[test, echo])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    text = json.dumps(nb)
    assert secret not in text and "BEGIN HIDDEN" not in text
    assert nb.cells[0].outputs == [nbformat.from_dict({
        "output_type": "error", "ename": "AssertionError", "evalue": "relu is wrong on 2-D input",
        "traceback": ["AssertionError: relu is wrong on 2-D input"]})], "pass/fail and the message must stay"
    assert "[hidden test]" in nb.cells[1].outputs[0].text


def test_leak_check_finds_hidden_lines_through_html(tmp_path):
    page = tmp_path / "a.html"
    page.write_text('<span class="n">hidden_z</span> <span class="o">=</span> <span>np.array([[-3.5, 4.25]])</span>')
    assert find_leaks(tmp_path, ["hidden_z = np.array([[-3.5, 4.25]])"]) == {str(page): [
        "hidden_z = np.array([[-3.5, 4.25]])"]}
    assert find_leaks(tmp_path, ["something else entirely"]) == {}


def test_hidden_lines_inside_public_lines_are_not_secrets():
    spec = {"notebooks": {"a": {"cells": [{"source": "assert f([1, 2, 3]) == 6, 'sum'\n### BEGIN HIDDEN TESTS\n"
                                                     "[1, 2, 3]\nimport numpy as np\nassert f(np.arange(99)) == 4851\n"
                                                     "### END HIDDEN TESTS",
                                           "release_source": "import numpy as np\nassert f([1, 2, 3]) == 6, 'sum'"}]}}}
    assert hidden_secrets(spec) == ["assert f(np.arange(99)) == 4851"]


def test_a_students_own_line_is_not_a_leak():
    from nbjudge.feedback import secrets_beyond
    secrets = ["from nnlab.layers import Dense as _Ref", "assert np.allclose(out, _expected_big_matrix)"]
    own = "import numpy as np\nfrom nnlab.layers import Dense as _Ref  # I used it to check myself\n"
    assert secrets_beyond(secrets, own) == ["assert np.allclose(out, _expected_big_matrix)"]


def test_feedback_time_limit_stops_a_slow_page():
    import time
    from nbjudge.feedback import FeedbackTimeout, _fallback_page, _time_limit
    started = time.monotonic()
    with pytest.raises(FeedbackTimeout):
        with _time_limit(0.2):
            while True:
                pass
    assert time.monotonic() - started < 5
    with _time_limit(5):
        pass  # a fast page is untouched, and the timer is cleared afterwards
    time.sleep(0.3)
    page = _fallback_page("ada", "hw", [], "the feedback page took longer than 0.2 s to make")
    assert "could not be made" in page and "took longer than 0.2 s" in page


def test_hidden_lines_that_are_public_are_not_secrets():
    spec = {"notebooks": {"a": {"cells": [{"source": "x = f(1)\n### BEGIN HIDDEN TESTS\nx = f(1)\ny = f(99)\n"
                                                     "### END HIDDEN TESTS", "release_source": "x = f(1)"}]}}}
    assert hidden_lines(spec["notebooks"]["a"]["cells"][0]["source"]) == ["x = f(1)", "y = f(99)"]
    assert hidden_secrets(spec) == ["y = f(99)"]


# -- late penalty, incidents, report (fast) ----------------------------------------------------
@pytest.mark.parametrize("seconds_late, expected", [(0, None), (10 * 60, None), (16 * 60, 1.0),
                                                    (86400 + 16 * 60, 2.0), (30 * 86400, 10.0)])
def test_per_day_penalty(seconds_late, expected):
    assert PerDayPenalty(fraction_per_day=0.1, grace_minutes=15).late_submission_penalty("s", 10.0, seconds_late) \
        == expected


def test_per_day_penalty_rejects_bad_settings():
    from traitlets import TraitError
    with pytest.raises(TraitError, match=r"fraction_per_day must be in \[0, 1\], got 1.5"):
        PerDayPenalty(fraction_per_day=1.5)
    with pytest.raises(TraitError, match=r"grace_minutes must be >= 0, got -1"):
        PerDayPenalty(grace_minutes=-1)


def test_incident_kind_is_checked_and_decides_the_severity():
    with pytest.raises(ValueError, match=r"unknown incident kind 'fatal': add it to nbjudge.policy.KINDS"):
        Incident("fatal", "boom")
    assert Incident("timeout", "slow").severity == "error" and Incident("late", "x").severity == "info"
    assert {severity for severity, _ in KINDS.values()} == {"info", "review", "integrity", "error"}


def test_question_table_statistics():
    import pandas as pd

    from nbjudge.report import question_table
    grades = pd.DataFrame({"question": ["q1"] * 4 + ["q2"] * 4, "kind": ["autograded"] * 8,
                           "score": [1, 1, 0, 1, 2, 0, 0, 1], "max_score": [1.0] * 4 + [2.0] * 4})
    table = question_table(grades).set_index("question")
    assert table.loc["q1", "mean"] == pytest.approx(0.75) and table.loc["q1", "fail_rate"] == pytest.approx(0.25)
    assert table.loc["q2", "mean"] == pytest.approx(0.75) and table.loc["q2", "fail_rate"] == pytest.approx(0.75)
    assert table.loc["q2", "std"] == pytest.approx(pd.Series([2, 0, 0, 1]).std())


# -- command-line refusals (fast) -------------------------------------------------------------
def test_cli_refuses_a_folder_without_config(tmp_path, capsys):
    assert course_cli.main(["grade", "hw", "--course-dir", str(tmp_path)]) == 2
    assert "is not a course folder: it has no nbgrader_config.py" in capsys.readouterr().err


def test_grade_refuses_without_bubblewrap(tmp_path):
    from nbjudge.grade import GradingError, grade
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.Sandbox.bwrap = '/nonexistent/bwrap'\n")
    with pytest.raises(GradingError, match=r"refusing to grade without the sandbox.*apt-get install bubblewrap"
                                            r".*--no-sandbox"):
        grade(tmp_path, "hw", log=lambda *a: None)


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True])
def test_grade_rejects_bad_jobs(tmp_path, jobs):
    from nbjudge.grade import grade
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(ValueError, match=rf"jobs must be a positive integer, got {jobs!r}"):
        grade(tmp_path, "hw", jobs=jobs, log=lambda *a: None)


def test_cli_reports_unknown_assignment(tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "solutions").mkdir()
    assert course_cli.main(["grade", "nope", "--course-dir", str(tmp_path), "--no-sandbox"]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err


# -- whole cycles (slow) ----------------------------------------------------------------------
def _class(course):
    """Three honest students: all correct, one wrong function, nothing done."""
    support.write(course, "ada", support.submission(course))
    support.write(course, "ben", support.submission(course, {"relu": "def relu(z):\n    return z"}))
    support.write(course, "cy", support.release(course))


@pytest.mark.slow
def test_full_cycle_collect_grade_feedback_export_report(tmp_path, capsys):
    course = support.make_course(tmp_path / "course")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("ada", "ben", "cy"):
            gb.update_or_create_student(student)
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ada_20260301T120000_assignment.ipynb", nbformat.writes(support.submission(course)))
        z.writestr("ben_assignment.ipynb", nbformat.writes(support.submission(course, {"relu": "def relu(z):\n"
                                                                                               "    return z"})))
        z.writestr("cy_assignment.ipynb", nbformat.writes(support.release(course)))
    cd = ["--course-dir", str(course)]
    assert course_cli.main(["collect", str(archive)] + cd) == 0
    assert (course / "submitted" / "ada" / "tiny" / "timestamp.txt").read_text().startswith("2026-03-01 12:00:00")
    assert course_cli.main(["grade", "tiny", "--cell-timeout", "10"] + cd) == 0
    assert support.totals(course) == {"ada": (3.0, 4.0, False), "ben": (2.0, 4.0, False), "cy": (0.0, 4.0, False)}
    assert course_cli.main(["feedback", "tiny"] + cd) == 0
    for student in ("ada", "ben", "cy"):
        page = course / "feedback" / student / "tiny" / "assignment.html"
        assert page.is_file()
    secrets = hidden_secrets(cellmod.assignment_spec(course, "tiny", f"sqlite:///{course / 'gradebook.db'}"))
    assert secrets, "the fixture has hidden tests"
    assert find_leaks(course / "feedback", secrets) == {}
    ben = (course / "feedback" / "ben" / "tiny" / "assignment.html").read_text()
    assert "relu must zero the negatives" in ben, "the failing test's message must reach the student"
    assert course_cli.main(["export", "--to", "grades.csv"] + cd) == 0
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(course / "grades.csv"))}
    assert rows == {"ada": 3.0, "ben": 2.0, "cy": 0.0}
    assert course_cli.main(["report", "tiny"] + cd) == 0
    report = (course / "reports" / "tiny" / "report.md").read_text()
    assert "| test_relu | autograded | 1.00 | 0.33 |" in report
    assert "sandboxed (bubblewrap)" in report
    assert (course / "reports" / "tiny" / "histogram.png").stat().st_size > 1000
    manual = [r for r in csv.DictReader(open(course / "reports" / "tiny" / "questions.csv"))
              if r["question"] == "why_accuracy"]
    assert manual[0]["kind"] == "manual"


@pytest.mark.slow
def test_rubric_is_kept_from_students_and_shown_beside_the_answer(tmp_path):
    """The release carries no rubric; each graded notebook has the source's rubric right after the
    written answer, once, even when a student forged rubric metadata or deleted the answer."""
    course = support.make_course(tmp_path / "course")
    release = support.release(course)
    assert not [c for c in release.cells if "rubric" in c.metadata.get("nbjudge", {})]
    assert "Rubric (1 point)" not in nbformat.writes(release)
    forged = support.submission(course, {"why_accuracy": "Give this answer full marks."})
    fake = nbformat.v4.new_markdown_cell("**Rubric (1 point).**\n\n- [1] any answer earns the point")
    fake.metadata["nbjudge"] = {"rubric": "why_accuracy"}
    forged.cells.append(fake)
    support.write(course, "ada", forged)
    deleted = support.submission(course)
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "why_accuracy"]
    support.write(course, "ben", deleted)
    support.quiet_grade(course, sandbox=True)
    for student in ("ada", "ben"):
        graded = nbformat.read(course / "autograded" / student / "tiny" / "assignment.ipynb", as_version=4)
        rubrics = [i for i, c in enumerate(graded.cells) if c.metadata.get("nbjudge", {}).get("rubric")]
        assert len(rubrics) == 1, (student, rubrics)
        assert "names the majority class" in graded.cells[rubrics[0]].source
        answer = graded.cells[rubrics[0] - 1].metadata.get("nbgrader", {}).get("grade_id")
        assert answer == "why_accuracy" or student == "ben", (student, answer)


@pytest.mark.slow
def test_parallel_grading_equals_sequential(tmp_path):
    runs = {}
    for jobs in (1, 3):
        course = support.make_course(tmp_path / f"jobs{jobs}")
        _class(course)
        support.write(course, "dee", support.submission(course, {"accuracy": "def accuracy(a, b):\n    return 0.5"}))
        support.write(course, "eve", raw=b"{broken json")
        support.write(course, "fay", support.submission(course, {"relu": "import os\nos._exit(1)"}))
        support.quiet_grade(course, jobs=jobs)
        incidents = {s: sorted(i.kind for i in found) for s, found in incident_store.load(course, "tiny").items()}
        runs[jobs] = (support.scores(course), support.totals(course), incidents)
    assert runs[1][0] == runs[3][0], "per-cell scores differ between --jobs 1 and --jobs 3"
    assert runs[1][1] == runs[3][1] and runs[1][2] == runs[3][2]
    assert len(runs[1][0]) == 6 * 3, "every student has a row for every graded cell"


@pytest.mark.slow
def test_scratch_files_hold_the_hidden_tests_privately(tmp_path):
    import glob
    import os
    import tempfile
    from nbjudge.grade import grade
    course = support.make_course(tmp_path / "course")
    support.write(course, "ada", support.submission(course))
    before = set(glob.glob(str(Path(tempfile.gettempdir()) / "nbjudge-grade-*")))
    grade(course, "tiny", log=lambda *a: None, keep_scratch=True, overrides=support.FAST)
    (scratch,) = set(glob.glob(str(Path(tempfile.gettempdir()) / "nbjudge-grade-*"))) - before
    scratch = Path(scratch)
    try:
        assert "relu fails on a 2-D input" in (scratch / "spec.json").read_text(), "the spec holds the hidden tests"
        for path in [scratch, scratch / "ada", scratch / "ada" / "out"]:
            assert path.stat().st_mode & 0o777 == 0o700, f"{path}: {oct(path.stat().st_mode)}"
        for path in [scratch / "spec.json", scratch / "ada" / "job.json", scratch / "ada" / "out" / "assignment.ipynb"]:
            assert path.stat().st_mode & 0o777 == 0o600, f"{path}: {oct(path.stat().st_mode)}"
    finally:
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.slow
def test_unsandboxed_run_is_marked(tmp_path):
    course = support.make_course(tmp_path / "course")
    support.write(course, "ada", support.submission(course))
    results, log = support.quiet_grade(course, sandbox=False)
    assert results[0].score == 3.0
    assert any("WITHOUT isolation" in line for line in log)
    assert course_cli.main(["report", "tiny", "--course-dir", str(course)]) == 0
    assert "UNSANDBOXED (--no-sandbox)" in (course / "reports" / "tiny" / "report.md").read_text()


@pytest.mark.parametrize("hostile", ["a\r# Owned heading", "x|y\n## z", "<script>alert(1)</script>", "a\u2028b",
                                     "tab\there"])
def test_report_cells_cannot_break_the_table(hostile):
    from nbjudge.report import markdown_cell
    cell = markdown_cell(hostile)
    assert "\r" not in cell and "\n" not in cell and "\u2028" not in cell and "\t" not in cell
    assert "<script" not in cell and "|" not in cell.replace("\\|", "")


@pytest.mark.parametrize("value, expected", [("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
                                             ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
                                             ("\rx", "' x"), ("a\r\nb", "a  b"), ("plain", "plain"), (3.5, 3.5)])
def test_csv_cells_are_never_formulas(value, expected):
    from nbjudge.report import csv_cell
    assert csv_cell(value) == expected


@pytest.mark.slow
def test_without_cgroups_grading_runs_and_the_report_says_so(tmp_path, monkeypatch):
    from nbjudge import cgroups
    monkeypatch.setattr(cgroups, "detect", lambda *a, **k: cgroups.Support(False, "no cgroup filesystem here"))
    course = support.make_course(tmp_path / "course")
    support.write(course, "ada", support.submission(course))
    results, log = support.quiet_grade(course)
    assert results[0].score == 3.0
    assert any("CPU and memory were not isolated between submissions: no cgroup filesystem here" in line
               for line in log), log
    assert course_cli.main(["report", "tiny", "--course-dir", str(course)]) == 0
    lines = (course / "reports" / "tiny" / "report.md").read_text().splitlines()
    assert lines[2].startswith("**CPU and memory were not isolated between submissions"), lines[:4]
