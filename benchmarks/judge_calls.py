"""Benchmark: what a call from the judge into the student's kernel costs.

    .venv/bin/python benchmarks/judge_calls.py            # 2000 calls in one test cell

Grades, in the sandbox, one submission of an assignment whose test checks a student's function
by centred differences (two calls per coordinate): once with ``--calls`` calls and once with 2,
and prints both wall times and the cost per call (the difference divided by the extra calls),
measured in the same run. Numbers depend on the machine; the point is the order of magnitude
(about a millisecond, so thousands of calls cost seconds).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _cell(source, gid, **meta):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": gid, "schema_version": 3, "task": False, **meta}
    return cell


def assignment(calls: int):
    n = calls // 2
    return new_notebook(cells=[
        new_markdown_cell("# Judge calls (benchmark)\n\nTotal: 2 points"),
        _cell("import numpy as np", "setup", grade=False, solution=False, locked=True),
        _cell("def loss(w):\n    ### BEGIN SOLUTION\n    return float(np.sum(w ** 2))\n    ### END SOLUTION",
              "loss", grade=False, solution=True, locked=False),
        _cell(f"w = np.linspace(-1, 1, {n})\nh = 1e-6\n"
              "grad = np.array([(loss(w + h * e) - loss(w - h * e)) / (2 * h) for e in np.eye(len(w))])\n"
              "assert np.allclose(grad, 2 * w, atol=1e-4), 'the gradient check fails'",
              "test_many", grade=True, solution=False, locked=True, points=1),
        _cell("assert abs(loss(np.ones(3)) - 3.0) < 1e-12, 'loss(1, 1, 1) should be 3'",
              "test_one", grade=True, solution=False, locked=True, points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    from hostile import support
    from nbjudge.grade import grade

    times = {}
    for calls in (2, args.calls):
        with tempfile.TemporaryDirectory(prefix="nbjudge-calls-") as tmp:
            source = Path(tmp) / "source.ipynb"
            nbformat.write(assignment(calls), source)
            course = support.make_course(Path(tmp) / "course", "calls", source)
            support.write(course, "solved", support.submission(course, name="calls"), name="calls")
            started = time.monotonic()
            results = grade(course, "calls", jobs=1, log=lambda *a: None)
            times[calls] = time.monotonic() - started
            print(f"{calls:6d} calls: graded in {times[calls]:.2f} s, {results[0].score:g} / "
                  f"{results[0].max_score:g} points, {len(results[0].incidents)} incident(s)")
    extra = args.calls - 2
    print(f"cost per call from the judge into the student's kernel: {(times[args.calls] - times[2]) / extra * 1e3:.2f} ms "
          f"({extra} extra calls, {times[args.calls] - times[2]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
