"""Benchmark: grade a class of generated 02_backprop submissions end to end, sandbox on.

    .venv/bin/python benchmarks/grading.py                 # 100 submissions, --jobs 1 then --jobs <cores>
    .venv/bin/python benchmarks/grading.py --n 20 --jobs 2 --no-sequential
    .venv/bin/python benchmarks/grading.py --jobs 2 --no-sequential --baseline 506172c

``--baseline COMMIT`` first grades the same class with the grader of an earlier commit (its own
benchmarks/grading.py, run from a ``git archive`` of that commit with its ``src`` first on
PYTHONPATH), then with this one, and prints the ratio of the two wall times: both are measured in
the same run on the same machine. 506172c is the last commit before the judge, when test cells
still ran in the student's kernel.

The class is a fixed, seeded mix (see KINDS): correct solutions, partly wrong ones (one bug
each, in a different function), and broken ones (untouched release, syntax error, invalid JSON,
deleted test cell, os._exit, a monkeypatched np.allclose, a memory bomb). Each run grades the
same class in its own scratch course folder with ``nbjudge.grade.grade`` (what ``nbjudge grade``
runs); the script prints the wall time of each run, the
throughput, whether both runs produced identical gradebooks, and the score and incident counts.
Target: at most 4 minutes for 100 submissions on 2 idle cores with the sandbox on.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAME = "02_backprop"

#: kind -> share of the class (sums to 1)
KINDS = {
    "correct": 0.40,
    "wrong_sigmoid_prime": 0.08, "wrong_dense_bias": 0.08, "wrong_backprop_tanh": 0.07, "wrong_train_lr": 0.07,
    "release": 0.08, "syntax_error": 0.05, "invalid_json": 0.04, "deleted_test": 0.04,
    "os_exit": 0.03, "patched_allclose": 0.03, "memory_bomb": 0.03,
}
BUGS = {
    "wrong_sigmoid_prime": ("activation_derivatives", "    s = sigmoid(z)\n    return s * (1 - s)",
                            "    return z * (1 - z)"),
    "wrong_dense_bias": ("dense_backward", "db = dZ.sum(axis=0)", "db = dZ.mean(axis=0)"),
    "wrong_backprop_tanh": ("backprop", "dZ1 = dA1 * tanh_prime(Z1)", "dZ1 = dA1"),
    "wrong_train_lr": ("train", "params[k] -= learning_rate * grads[k]", "params[k] -= 1e-4 * grads[k]"),
}


def _answers(source_nb) -> dict:
    out = {}
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            out[meta["grade_id"]] = "\n".join(l for l in cell.source.split("\n")
                                              if "BEGIN SOLUTION" not in l and "END SOLUTION" not in l)
    return out


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def make_submission(kind, release_nb, answers):
    """(notebook or None, raw bytes or None) for one student of ``kind``."""
    if kind == "invalid_json":
        return None, b'{"cells": [{"cell_type": "code", "source": "def sigmoid_prime(z):'
    nb = copy.deepcopy(release_nb)
    if kind == "release":
        return nb, None
    fill = dict(answers)
    if kind in BUGS:
        gid, old, new = BUGS[kind]
        assert old in fill[gid], f"the solution of {gid} changed: update BUGS[{kind!r}]"
        fill[gid] = fill[gid].replace(old, new)
    elif kind == "syntax_error":
        fill["backprop"] = fill["backprop"].replace("return loss,", "return loss,, ")
    elif kind == "os_exit":
        fill["train"] = "import os\nos._exit(1)\n" + fill["train"]
    elif kind == "patched_allclose":
        fill["dense_backward"] = "np.allclose = lambda *a, **k: True\n" + fill["dense_backward"]
    elif kind == "memory_bomb":
        fill["dense_backward"] = fill["dense_backward"].replace(
            "    dW = X.T @ dZ", "    hog = [bytearray(2**28) for _ in range(64)]\n    dW = X.T @ dZ")
    for gid, text in fill.items():
        _cell(nb, gid).source = text
    if kind == "deleted_test":
        nb.cells.remove(_cell(nb, "test_dense_backward"))
        _cell(nb, "dense_backward").source = fill["dense_backward"].replace("db = dZ.sum(axis=0)", "db = 0 * dZ[0]")
    return nb, None


def build_class(n, seed):
    """Kinds of the n students, in a seeded order: exact shares (rounded), shuffled."""
    counts = {k: int(round(share * n)) for k, share in KINDS.items()}
    counts["correct"] += n - sum(counts.values())
    kinds = [k for k, c in counts.items() for _ in range(c)]
    np.random.default_rng(seed).shuffle(kinds)
    return kinds


def prepare(base: Path, n: int, seed: int) -> tuple[Path, list]:
    from nbjudge.course import ensure_assignment, quiet_nbgrader

    quiet_nbgrader()
    course = base / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copy2(ROOT / "solutions" / "_header.ipynb", course / "solutions" / "_header.ipynb")
    shutil.copytree(ROOT / "solutions" / NAME, course / "solutions" / NAME)
    ensure_assignment(course, NAME, f"sqlite:///{course / 'gradebook.db'}", log=lambda *a: None)
    release_nb = nbformat.read(course / "release" / NAME / "assignment.ipynb", as_version=4)
    answers = _answers(nbformat.read(course / "solutions" / NAME / "assignment.ipynb", as_version=4))
    kinds = build_class(n, seed)
    for i, kind in enumerate(kinds):
        folder = course / "submitted" / f"s{i:03d}-{kind}" / NAME
        folder.mkdir(parents=True)
        nb, raw = make_submission(kind, release_nb, answers)
        if nb is not None:
            nbformat.write(nb, folder / "assignment.ipynb")
        else:
            (folder / "assignment.ipynb").write_bytes(raw)
    return course, kinds


def gradebook_rows(course) -> dict:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(s.student.id, g.name): (g.auto_score, bool(g.needs_manual_grade))
                for s in gb.find_assignment(NAME).submissions for nb in s.notebooks for g in nb.grades}


def _cpu() -> float:
    """CPU seconds of this process and of all its finished descendants (workers, kernels)."""
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_run(template: Path, where: Path, jobs: int):
    from nbjudge.grade import grade
    course = where / "course"
    shutil.copytree(template, course, symlinks=True)
    started, cpu = time.monotonic(), _cpu()
    results = grade(course, NAME, jobs=jobs, log=lambda *a: None)
    # CPU of finished descendants only: kernels and judges are killed at the end, so this is a
    # lower bound
    cpu = _cpu() - cpu
    return time.monotonic() - started, cpu, results, gradebook_rows(course)


def baseline_run(commit: str, where: Path, args) -> float:
    """Wall seconds of the --jobs run of ``commit``'s own benchmark on the same class."""
    import re
    import subprocess
    import tarfile
    import io
    # inside the venv: the earlier grader's sandbox mounts the Python environment, and its kernel
    # launcher lives in its src/ (a folder under /tmp would be the sandbox's own empty /tmp)
    tree = Path(sys.prefix) / f"benchmark-baseline-{commit}"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(tree)
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    proc = subprocess.run([sys.executable, str(tree / "benchmarks" / "grading.py"), "--n", str(args.n), "--jobs",
                           str(args.jobs), "--no-sequential", "--seed", str(args.seed)], capture_output=True,
                          text=True, env=env, cwd=tree)
    shutil.rmtree(tree, ignore_errors=True)
    found = re.search(rf"--jobs {args.jobs}:\s+([\d.]+) s wall", proc.stdout)
    if "kernel-start-failed" in proc.stdout:
        raise RuntimeError(f"the baseline's kernels did not start:\n{proc.stdout[-2000:]}")
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"the baseline benchmark of {commit} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    print(f"baseline {commit}: " + "; ".join(line.strip() for line in proc.stdout.splitlines()
                                              if line.startswith(("--jobs", "mean score", "incidents"))))
    return float(found.group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="submissions (default 100)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel run's --jobs (default: cores)")
    parser.add_argument("--no-sequential", action="store_true", help="skip the --jobs 1 run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", metavar="COMMIT", help="also grade the class with this commit's grader first")
    args = parser.parse_args(argv)
    if not (ROOT / "solutions" / NAME / "assignment.ipynb").is_file():
        print(f"error: {NAME} does not exist yet", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="nbjudge-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        template, kinds = prepare(tmp / "template", args.n, args.seed)
        print(f"{args.n} submissions of {NAME} ({', '.join(f'{k} {c}' for k, c in collections.Counter(kinds).items())})")
        print(f"prepared in {time.monotonic() - t0:.1f} s; {os.cpu_count()} cores, load average {load:.1f} "
              "at start (timings are inflated when the machine is shared)")
        before = baseline_run(args.baseline, tmp, args) if args.baseline else None
        runs = {}
        for jobs in ([] if args.no_sequential else [1]) + [args.jobs]:
            seconds, cpu, results, rows = timed_run(template, tmp / f"jobs{jobs}", jobs)
            runs[jobs] = (seconds, results, rows)
            print(f"--jobs {jobs}: {seconds:7.1f} s wall, {cpu:7.1f} CPU s ({seconds / args.n:.2f} s wall and "
                  f"{cpu / args.n:.2f} CPU s per submission; load average now {os.getloadavg()[0]:.1f})")
            runs[jobs] += (cpu,)
        seconds, results, rows, cpu = runs[args.jobs]
        if len(runs) == 2:
            same = runs[1][2] == rows
            print(f"speed-up {runs[1][0] / seconds:.2f}x; gradebooks identical: {'yes' if same else 'NO'}")
        by_kind = collections.defaultdict(list)
        for g in results:
            by_kind[g.student.split("-", 1)[1]].append(g.score)
        print("mean score by kind (max %g):" % results[0].max_score)
        for kind in KINDS:
            if by_kind.get(kind):
                print(f"  {kind:<22} {np.mean(by_kind[kind]):5.2f}  (n={len(by_kind[kind])})")
        counts = collections.Counter(i.kind for g in results for i in g.incidents)
        print("incidents: " + json.dumps(dict(sorted(counts.items()))))
        if before is not None:
            print(f"this grader / {args.baseline}: {seconds / before:.2f} x the wall time (--jobs {args.jobs}; target "
                  f"<= 1.2); judge's cost {(seconds - before) / args.n * args.jobs:+.2f} s of a slot per submission")
        print(f"target: <= 240 s for 100 submissions on 2 idle cores -> "
              f"{'met' if seconds * 100 / args.n <= 240 else 'NOT met'} here ({seconds * 100 / args.n:.0f} s per 100 "
              f"measured; {cpu * 100 / args.n / 2:.0f} s per 100 if the {cpu:.0f} CPU s spread over 2 idle cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
