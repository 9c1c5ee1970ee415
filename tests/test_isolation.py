"""One submission cannot slow down or starve another: each sandbox runs in its own cgroup.

An honest solution is graded beside a submission that starts sixteen spinning processes, each in a
session of its own, and keeps them spinning for longer than the honest notebook takes; both run
at once (``--jobs 2``) with the course's own time limits. With a cgroup per sandbox the spinners
share one CPU share, and the honest student keeps every point: on a NumPy assignment and on a
Keras one. Where this machine has no usable cgroups the test says so and skips (the report then
says that CPU and memory were not isolated, which tests/test_course.py checks).
"""
from __future__ import annotations

import pytest

import assignment_tools as at
from hostile import support
from nbjudge import cgroups
from nbjudge.course import assignments

pytestmark = pytest.mark.slow
ROOT = support.ROOT

SPINNERS = """import os, time
for _ in range(16):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
time.sleep(SECONDS)
"""


@pytest.mark.parametrize("name, answer, seconds", [("02_backprop", "activation_derivatives", 30),
                                                   ("07_training_with_keras", "build_classifier", 60)])
def test_an_honest_submission_keeps_its_points_beside_spinning_processes(tmp_path, name, answer, seconds):
    support_ = cgroups.detect()
    if not support_.available:
        pytest.skip(f"no cgroups here: {support_.reason}")
    assert name in assignments(ROOT)
    course = support.make_course(tmp_path / "course", name, ROOT / "solutions" / name)
    release, source = support.release(course, name), support.source(course, name)
    solved = at.fill_solutions(release, source)
    support.write(course, "honest", solved, name=name)
    noisy = at.fill_solutions(release, source)
    cell = support.cell_of(noisy, answer)
    cell.source = SPINNERS.replace("SECONDS", str(seconds)) + "\n" + cell.source
    support.write(course, "spinner", noisy, name=name)
    results, log = support.quiet_grade(course, name, jobs=2, overrides={})  # the course's own limits
    rows = support.scores(course, name)
    for gid, points in at.auto_points(source).items():
        assert rows[("honest", gid)][0] == points, f"the honest student lost points on {gid}: {rows[('honest', gid)]}"
    honest = next(g for g in results if g.student == "honest")
    assert not [i for i in honest.incidents if i.severity == "error"], honest.incidents
    report_run = (course / "reports" / name / "last-grading-run.json").read_text()
    assert '"isolated": true' in report_run, report_run
