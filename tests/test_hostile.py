"""Hostile submissions: grading finishes, and nobody gains or loses anything they should not.

One class of the tiny fixture assignment (tests/hostile/tiny: relu 1 point, accuracy 2 points,
a written answer 1 point; students may import nnlab.datasets only) is graded twice: first three
honest students (the baseline), then every hostile submission below in one parallel ``grade``
run. The cases cover every way a submission once forged a verdict from inside its own
interpreter (assert-rewriting AST transformers, forged execute replies, wrapped kernel handlers,
rebound names, ndarray subclasses, the hidden tests' values in globals(), the course package's
reference code, patched comparisons, hooks that record the tests' source): with the tests
running in the judge, each scores exactly what its own work deserves. For every case:

- the run finishes and the submission is recorded (gradebook row, graded folder, feedback);
- the honest students' grades and graded files are unchanged (database compared before/after);
- no score exceeds its maximum, and no wrong answer earns points;
- the case is surfaced in the report with a reason (its incident kinds, listed per case);
- nothing is lost: every submitted file is still there, byte for byte.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_notebook

from hostile import support

pytestmark = pytest.mark.slow

R_OK = "def relu(z):\n    return np.maximum(0.0, np.asarray(z, dtype=float))"
A_OK = ("def accuracy(y_true, y_pred):\n    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)\n"
        "    return float(np.mean(y_true == y_pred))")
R_BAD = "def relu(z):\n    return z"
A_BAD = "def accuracy(y_true, y_pred):\n    return 0.5"
DUE = "2026-03-01 12:00:00"

# Outputs whose HTML, SVG and JavaScript would run in the formgrader (as the instructor).
SCRIPTS = """from IPython.display import display, HTML, Javascript, SVG
display(HTML("<b>hi</b><script>fetch('/api/contents/nbgrader_config.py', {method: 'PUT'})</script>"))
display(HTML("<img src=x onerror=\\"document.title='pwned'\\">"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'><script>alert(2)</script></svg>"))
display(Javascript("alert(3)"))
"""
# An output nested 900 levels deep.
DEEP = """from IPython.display import display
_deep = 0
for _ in range(900):
    _deep = [_deep]
display({"application/json": {"deep": _deep}}, raw=True)
"""
# An AST transformer that turns every later `assert` into `pass`.
AST_PASS = """import ast
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(_NoAsserts())
"""
# A function that, when called, sends a forged "ok" execute_reply and "idle" status through the
# kernel's own session, for whatever request is running, and then returns the wrong answer.
FORGE = """def relu(z):
    kernel = get_ipython().kernel
    parent = kernel.get_parent("shell")
    kernel.session.send(kernel.shell_stream, "execute_reply",
                        {"status": "ok", "execution_count": 1, "user_expressions": {}},
                        parent=parent, ident=kernel._parent_ident["shell"])
    kernel.session.send(kernel.iopub_socket, "status", {"execution_state": "idle"}, parent=parent,
                        ident=kernel._topic("status"))
    return z
"""
# Every request to the kernel runs inside try/except: failing code "succeeds".
WRAP = """_kernel = get_ipython().kernel
_original = _kernel.shell_handlers["execute_request"]
async def _quiet(*args, **kwargs):
    try:
        return await _original(*args, **kwargs)
    except BaseException:
        return None
_kernel.shell_handlers["execute_request"] = _quiet
"""
# A fake numpy whose comparisons always agree.
FAKE_NP = """class _Agree:
    def __getattr__(self, name):
        return lambda *a, **k: True
class _FakeNumpy:
    testing = _Agree()
    def allclose(self, *a, **k):
        return True
    def __getattr__(self, name):
        import numpy
        return getattr(numpy, name)
np = _FakeNumpy()
"""
# An ndarray subclass whose NumPy functions all say "equal".
AGREEABLE = """import numpy
class Agreeable(numpy.ndarray):
    def __array_function__(self, func, types, args, kwargs):
        return True
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return True
def relu(z):
    return numpy.asarray(z, dtype=float).view(Agreeable)
"""
# Looks for the hidden tests' inputs and expected values among the notebook's names.
GLOBALS_PEEK = """def relu(z):
    for name, value in list(globals().items()):
        if name.startswith(("hidden", "_expected", "want")):
            return value
    import gc
    for obj in gc.get_objects():
        if isinstance(obj, dict) and "hidden_z" in obj:
            return obj.get("want", z)
    return z
"""
# The course package's reference code, by file path instead of import.
BY_PATH = """import importlib.util, glob
relu = None
for path in glob.glob("/**/nnlab/activations.py", recursive=True)[:1]:
    spec = importlib.util.spec_from_file_location("ref", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    relu = ref.relu
"""
# Patches the comparisons, and rewrites whatever integrity snapshot may exist through closures.
SNAPSHOT = """import sys, gc
np.allclose = np.testing.assert_allclose = lambda *a, **k: True
for obj in gc.get_objects():
    if callable(obj) and getattr(obj, "__name__", "") in ("integrity", "snapshot", "current"):
        for cell in (getattr(obj, "__closure__", None) or ()):
            try:
                if isinstance(cell.cell_contents, dict):
                    cell.cell_contents.clear()
            except ValueError:
                pass
"""
# Records the source of every later cell (tests included, if they ran here) ...
RECORDER = """import base64, zlib
_seen = []
get_ipython().events.register("pre_run_cell", lambda info: _seen.append(info.raw_cell))
"""
# ... and prints it, compressed and base64-encoded, from a later visible cell.
REPLAY = """
print("BLOB:" + base64.b64encode(zlib.compress("\\n".join(_seen).encode())).decode())
"""


@dataclasses.dataclass
class Case:
    """A hostile submission and what grading must make of it."""

    name: str
    relu: float              # expected autograded score of test_relu (1 point)
    accuracy: float          # expected autograded score of test_accuracy (2 points)
    kinds: tuple             # incident kinds the report must show (each one at least)
    flagged: bool = True     # flagged for review in the gradebook
    answers: dict = dataclasses.field(default_factory=dict)
    edit: object = None      # callable(nb) changing the notebook
    raw: bytes | None = None
    files: dict = dataclasses.field(default_factory=dict)
    notebook: bool = True    # write a notebook at all
    link: str | None = None  # "notebook" or "folder": a symbolic link to the course's solutions instead


def _test_cell(grade_id):
    def pick(nb):
        return support.cell_of(nb, grade_id)
    return pick


def _drop(nb):
    nb.cells.remove(support.cell_of(nb, "test_relu"))


def _big_stored_output(nb):
    cell = support.cell_of(nb, "relu")
    cell.outputs = [nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": "y" * 100_000_000})]
    cell.execution_count = 1


def _meta(**changes):
    def edit(nb):
        support.cell_of(nb, "test_relu").metadata["nbgrader"].update(changes)
    return edit


def _sneaky_grade_id(nb):
    """A cell whose grade_id would end a report row and start a heading of its own."""
    extra = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade_id": "bonus\r# Owned | <b>x</b>",
                                                                        "grade": True, "points": 5}})
    nb.cells.append(extra)


def _set(grade_id, key, value):
    def edit(nb):
        support.cell_of(nb, grade_id).metadata["nbgrader"][key] = value
    return edit


CASES = [
    Case("infinite_loop", 0, 2, ("timeout",), answers={"relu": R_OK + "\nwhile True:\n    pass"}),
    Case("os_exit", 0, 2, ("kernel-died",), answers={"relu": "import os\nos._exit(1)"}),
    Case("memory_bomb", 0, 2, ("memory-limit",), answers={
        "relu": "def relu(z):\n    hog = []\n    while True:\n        hog.append(bytearray(2**27))"}),
    Case("fork_bomb", 0, 2, ("process",), answers={"relu": "import os\nwhile True:\n    os.fork()"}),
    Case("network", 1, 2, ("network",), answers={
        "relu": "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.com/answers', timeout=3)\n"
                "except Exception:\n    pass\n" + R_OK}),
    Case("write_gradebook", 1, 2, ("file-access",), answers={"relu": "for path in ['../../../gradebook.db', "
         "GRADEBOOK]:\n    try:\n        open(path, 'w').write('owned')\n    except OSError:\n        pass\n" + R_OK}),
    Case("read_solution", 0, 2, ("file-access",), answers={"relu": "try:\n    SOLUTION = open(SOLUTION_PATH).read()\n"
         "except OSError:\n    SOLUTION = ''\n" + R_BAD}),
    Case("read_other_student", 1, 0, ("file-access",), answers={"accuracy": "for path in ['../../ada/tiny/assignment"
         ".ipynb', '../../../submitted/ada/tiny/assignment.ipynb', OTHER]:\n    try:\n        COPY = open(path).read()"
         "\n    except OSError:\n        pass\n" + A_BAD}),
    Case("edited_test", 0, 2, ("locked-cell-changed",), answers={"relu": R_BAD},
         edit=lambda nb: setattr(support.cell_of(nb, "test_relu"), "source", "pass  # all good")),
    Case("deleted_test", 0, 2, ("cell-missing",), answers={"relu": R_BAD}, edit=_drop),
    Case("stripped_metadata", 0, 2, ("cell-missing",), answers={"relu": R_BAD},
         edit=lambda nb: support.cell_of(nb, "test_relu").metadata.pop("nbgrader")),
    Case("renamed_grade_id", 0, 2, ("unknown-grade-id", "cell-missing"), answers={"relu": R_BAD},
         edit=_meta(grade_id="test_relu_mine")),
    Case("grade_false", 0, 2, ("locked-cell-changed",), answers={"relu": R_BAD}, edit=_meta(grade=False)),
    Case("points_changed", 1, 2, ("locked-cell-changed",), edit=_set("test_accuracy", "points", 200)),
    Case("eq_always_true", 0, 0, ("suspicious-code",), answers={
        "relu": "class Anything:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
                "def relu(z):\n    return Anything()",
        "accuracy": "def accuracy(y_true, y_pred):\n    return Anything()"}),
    Case("hide_showtraceback", 0, 0, ("suspicious-code",), answers={
        "relu": "get_ipython().showtraceback = lambda *a, **k: None\n" + R_BAD, "accuracy": A_BAD}),
    Case("hide_excepthook", 0, 2, ("suspicious-code",), answers={
        "relu": "import sys\nsys.excepthook = lambda *a: None\n" + R_BAD}),
    Case("patch_allclose", 0, 2, ("suspicious-code",), answers={
        "relu": "np.testing.assert_allclose = lambda *a, **k: None\nnp.allclose = lambda *a, **k: True\n" + R_BAD}),
    # -- verdicts forged from inside the student's interpreter: all neutralized by the judge --------
    Case("assert_to_pass", 0, 0, ("suspicious-code",), answers={"relu": AST_PASS + R_BAD, "accuracy": A_BAD}),
    Case("forged_reply", 0, 2, ("suspicious-code", "protocol"), answers={"relu": FORGE}),
    Case("wrapped_handler", 0, 0, ("suspicious-code",), answers={"relu": WRAP + R_BAD, "accuracy": A_BAD}),
    Case("rebound_np", 0, 0, ("suspicious-code",), answers={"relu": FAKE_NP + R_BAD, "accuracy": A_BAD}),
    Case("rebound_helper", 0, 2, ("suspicious-code",), answers={
        "relu": "def expect_close(*args, **kwargs):\n    return None\n\n" + R_BAD}),
    Case("array_function", 0, 2, ("suspicious-code",), answers={"relu": AGREEABLE}),
    Case("reads_globals", 0, 2, ("suspicious-code",), answers={"relu": GLOBALS_PEEK}),
    Case("reference_import", 0, 2, ("forbidden-import",), answers={
        "relu": "from nnlab.activations import relu"}),
    Case("reference_by_path", 0, 2, ("suspicious-code",), answers={"relu": BY_PATH}),
    Case("patch_and_snapshot", 0, 2, ("suspicious-code",), answers={"relu": SNAPSHOT + R_BAD}),
    Case("records_tests", 1, 2, ("suspicious-code",), answers={"relu": RECORDER + R_OK, "accuracy": A_OK + REPLAY}),
    # -- bad input: only the affected tests fail, with an incident saying which and why -------------
    Case("defines_nothing", 0, 2, ("undefined-name",), answers={"relu": "relu_typo = lambda z: z  # misnamed"},
         flagged=False),
    Case("unsupported_type", 0, 2, ("protocol",), answers={
        "relu": "def relu(z):\n    return (max(0.0, x) for x in z)"}),
    Case("hangs_in_call", 0, 2, ("call-timeout",), answers={"relu": "def relu(z):\n    while True:\n        pass"}),
    Case("floods_in_call", 1, 2, ("output-truncated",), flagged=False, answers={
        "relu": "def relu(z):\n    print('x' * 30_000_000)\n    return np.maximum(0.0, np.asarray(z, dtype=float))"}),
    Case("dies_in_call", 0, 2, ("kernel-died",), answers={"relu": "import os\ndef relu(z):\n    os._exit(3)"}),
    # -- the grader's own robustness ---------------------------------------------------------------
    Case("linked_notebook", 0, 0, ("symlink-dropped",), link="notebook"),
    Case("linked_folder", 0, 0, ("symlink-dropped",), link="folder"),
    Case("deep_output", 1, 2, ("malformed-output",), answers={"relu": DEEP + R_OK}),
    Case("sneaky_grade_id", 1, 2, ("unknown-grade-id",), edit=_sneaky_grade_id),
    # -- content that would run in the instructor's or the student's browser -----------------------
    Case("script_output", 1, 2, ("unsafe-content",), answers={"relu": SCRIPTS + R_OK}),
    Case("markdown_script", 1, 2, ("unsafe-content",), answers={
        "why_accuracy": "Accuracy hides the minority class.<script>fetch('/api/contents/x', {method: 'PUT'})</script>"
                        "<img src=x onerror=alert(1)>"}),
    Case("malformed_json", 0, 0, ("unreadable-notebook",), raw=b'{"cells": [ {"cell_type": "code", '),
    Case("missing_notebook", 0, 0, ("missing-notebook",), notebook=False, files={"notes.txt": "I forgot\n"}),
    Case("empty_folder", 0, 0, ("missing-notebook",), notebook=False),
    Case("extra_notebook", 1, 2, ("extra-notebook",), flagged=False,
         files={"scratch.ipynb": nbformat.writes(new_notebook())}),
    Case("garbage_timestamp", 1, 2, ("bad-timestamp",), files={"timestamp.txt": "sometime-ish %% o'clock"}),
    Case("late", 1, 2, ("late",), flagged=False, files={"timestamp.txt": "2026-03-03 12:30:00"}),
    # an honest function that warns: the warning, printed while the judge calls it, is dropped
    Case("warns_in_call", 1, 2, (), flagged=False, answers={
        "relu": "import warnings\ndef relu(z):\n    warnings.warn('relu: called on purpose')\n"
                "    return np.maximum(0.0, np.asarray(z, dtype=float))"}),
    Case("huge_runtime_output", 1, 2, ("output-truncated",), flagged=False,
         answers={"relu": R_OK + "\nprint('x' * 100_000_000)"}),
    Case("huge_stored_output", 1, 2, ("large-notebook",), flagged=False, edit=_big_stored_output),
]
HONEST = {"ada": {}, "ben": {"relu": R_BAD}, "cy": None}


def _write_case(course, case):
    if case.link == "notebook":
        folder = support.write(course, case.name)
        (folder / "assignment.ipynb").symlink_to(course / "solutions" / "tiny" / "assignment.ipynb")
        return
    if case.link == "folder":
        (course / "submitted" / case.name).mkdir(parents=True)
        (course / "submitted" / case.name / "tiny").symlink_to(course / "solutions" / "tiny")
        return
    if not case.notebook:
        support.write(course, case.name, files=case.files)
        return
    if case.raw is not None:
        support.write(course, case.name, raw=case.raw, files=case.files)
        return
    answers = {}
    for gid, text in case.answers.items():
        answers[gid] = (text.replace("GRADEBOOK", repr(str(course / "gradebook.db")))
                        .replace("SOLUTION_PATH", repr(str(course / "solutions" / "tiny" / "assignment.ipynb")))
                        .replace("OTHER", repr(str(course / "submitted" / "ada" / "tiny" / "assignment.ipynb"))))
    nb = support.submission(course, answers)
    if case.edit is not None:
        case.edit(nb)
    support.write(course, case.name, nb, files=case.files)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from nbgrader.api import Gradebook

    from nbjudge import feedback, report
    from nbjudge import policy as store

    course = support.make_course(tmp_path_factory.mktemp("hostile") / "course")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment("tiny", duedate=DUE)
    for student, answers in HONEST.items():
        nb = support.release(course) if answers is None else support.submission(course, answers)
        support.write(course, student, nb)
    support.quiet_grade(course)
    baseline = {k: v for k, v in support.scores(course).items() if k[0] in HONEST}
    baseline_totals = {k: v for k, v in support.totals(course).items() if k in HONEST}
    baseline_files = {s: support.tree_digest(course / "autograded" / s) for s in HONEST}
    for case in CASES:
        _write_case(course, case)
    submitted_before = support.tree_digest(course / "submitted")
    import glob
    import tempfile
    connections_before = set(glob.glob(str(Path(tempfile.gettempdir()) / "nbj-k*")))
    started = time.monotonic()
    results, log = support.quiet_grade(course, students=[c.name for c in CASES], jobs=2)
    seconds = time.monotonic() - started
    connections_left = set(glob.glob(str(Path(tempfile.gettempdir()) / "nbj-k*"))) - connections_before
    report.build(course, "tiny", log=lambda *a: None)
    feedback.generate(course, "tiny", log=lambda *a: None)
    return {"course": course, "baseline": baseline, "baseline_totals": baseline_totals,
            "baseline_files": baseline_files, "submitted_before": submitted_before, "results": results,
            "log": log, "seconds": seconds, "connections_left": connections_left, "scores": support.scores(course), "totals": support.totals(course),
            "incidents": store.load(course, "tiny")}


def test_run_finishes_and_records_every_submission(graded):
    course = graded["course"]
    names = [c.name for c in CASES]
    assert sorted(g.student for g in graded["results"]) == sorted(names)
    for name in names + list(HONEST):
        assert name in graded["totals"], f"{name} has no submission in the gradebook"
        assert (course / "feedback" / name / "tiny" / "assignment.html").is_file(), f"no feedback for {name}"
        assert (course / "autograded" / name / "tiny").is_dir()
    print(f"hostile run: {len(names)} submissions in {graded['seconds']:.1f} s (2 jobs; machine may be loaded)")


def test_no_kernel_connection_file_is_left_behind(graded):
    assert graded["connections_left"] == set(), "kernels' connection folders must be removed, also after crashes"


def test_other_students_are_unchanged(graded):
    after = {k: v for k, v in graded["scores"].items() if k[0] in HONEST}
    assert after == graded["baseline"], "an honest student's grades changed while hostile submissions were graded"
    assert {k: v for k, v in graded["totals"].items() if k in HONEST} == graded["baseline_totals"]
    for student, digest in graded["baseline_files"].items():
        assert support.tree_digest(graded["course"] / "autograded" / student) == digest
    assert graded["baseline_totals"] == {"ada": (3.0, 4.0, False), "ben": (2.0, 4.0, False),
                                         "cy": (0.0, 4.0, False)}


def test_no_score_exceeds_its_maximum(graded):
    for (student, cell), (auto, manual, _, top) in graded["scores"].items():
        assert auto is None or 0.0 <= auto <= top, f"{student}/{cell}: {auto} of {top}"
    for student, (total, top, _) in graded["totals"].items():
        assert total <= top, f"{student}: total {total} above {top}"


def test_nothing_submitted_is_lost_or_changed(graded):
    assert support.tree_digest(graded["course"] / "submitted") == graded["submitted_before"]


def test_no_hidden_test_text_in_any_feedback(graded):
    from nbjudge.cells import assignment_spec
    from nbjudge.feedback import find_leaks, hidden_secrets

    course = graded["course"]
    secrets = hidden_secrets(assignment_spec(course, "tiny", f"sqlite:///{course / 'gradebook.db'}"))
    assert len(secrets) >= 4
    assert find_leaks(course / "feedback", secrets) == {}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(graded, case):
    scores, course = graded["scores"], graded["course"]
    relu, acc = scores[(case.name, "test_relu")], scores[(case.name, "test_accuracy")]
    assert (relu[0], acc[0]) == (case.relu, case.accuracy), f"autograded scores {relu[0]}, {acc[0]}"
    kinds = {i.kind for i in graded["incidents"].get(case.name, [])}
    assert set(case.kinds) <= kinds, f"expected incidents {case.kinds}, got {sorted(kinds)}"
    if not case.kinds:  # an honest submission: nothing to report
        assert kinds == set() and graded["totals"][case.name][2] is False, kinds
        return
    assert graded["totals"][case.name][2] is case.flagged, f"flagged should be {case.flagged}"
    rows = list(csv.DictReader(open(course / "reports" / "tiny" / "incidents.csv")))
    mine = [r for r in rows if r["student"] == case.name]
    assert {r["kind"] for r in mine} >= set(case.kinds) and all(r["reason"] for r in mine), \
        "the case must be in the report with a reason"
    assert f"| {case.name} |" in (course / "reports" / "tiny" / "report.md").read_text()


def test_recorded_cells_hold_no_test_source(graded):
    """A hook that records every cell the kernel runs, printed from a later visible cell, sees no test
    source: tests run in the judge, and the judge's requests run silently (no pre_run_cell)."""
    import base64
    import zlib

    nb = nbformat.read(graded["course"] / "autograded" / "records_tests" / "tiny" / "assignment.ipynb", 4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    blob = printed.split("BLOB:", 1)[1].split()[0]
    seen = zlib.decompress(base64.b64decode(blob)).decode()
    source = support.source(graded["course"])
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code" and \
                not cell.metadata["nbgrader"].get("solution"):
            for line in cell.source.splitlines():
                if len(line.strip()) > 12 and "BEGIN" not in line and "END" not in line:
                    assert line.strip() not in seen, f"test source reached the student's kernel: {line!r}"


def test_verdicts_come_from_the_judge_not_the_kernel(graded):
    """Attacks on the student's interpreter change nothing: each scores what its work deserves and
    nothing needs a human to re-grade it (no withheld scores)."""
    for case in ("assert_to_pass", "forged_reply", "wrapped_handler", "rebound_np", "patch_allclose"):
        for cell in ("test_relu", "test_accuracy"):
            assert graded["scores"][(case, cell)][2] is False, f"{case}/{cell} should need no manual grading"
    messages = {i.message for i in graded["incidents"]["reference_import"]}
    assert any("nnlab.activations" in m and "allowed: nnlab.datasets" in m for m in messages), messages
    nb = nbformat.read(graded["course"] / "autograded" / "reference_import" / "tiny" / "assignment.ipynb", 4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert any(o.ename == "ImportError" and "not available in assignment tiny" in o.evalue for o in errors), \
        "importing a module the assignment does not allow must fail with an ImportError that names the rule"


def test_report_tables_cannot_be_broken(graded):
    report = (graded["course"] / "reports" / "tiny" / "report.md").read_text()
    assert not any(line.startswith("# Owned") for line in report.splitlines()), "a grade id started a heading"
    assert "<b>x</b>" not in report
    rows = list(csv.reader(open(graded["course"] / "reports" / "tiny" / "incidents.csv")))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_late_penalty_follows_the_course_policy(graded):
    # due 2026-03-01 12:00, handed in 2026-03-03 12:30: 3 started days after the 15-minute grace,
    # 10 % of the score per day
    total, top, _ = graded["totals"]["late"]
    assert total == pytest.approx(3.0 * (1 - 0.3)) and top == 4.0


def test_gradebook_is_intact_and_only_the_parent_wrote_it(graded):
    course = graded["course"]
    import sqlite3
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert b"owned" not in (course / "gradebook.db").read_bytes()
    log = json.dumps(graded["log"])
    assert "UNSANDBOXED" not in log
