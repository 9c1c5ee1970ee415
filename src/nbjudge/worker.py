"""Grade submissions one at a time, in a child process of ``grade`` (:mod:`nbjudge.grade`).

``python -m nbjudge.worker JOB.json`` grades one submission; ``--serve`` reads one
``JOB.json`` path per line from stdin and answers ``done`` on stdout after each, so the
pipeline keeps ``--jobs`` workers alive and pays the import of nbgrader (seconds) once per
worker, not once per submission. A worker
never touches the gradebook: it gets everything it needs in ``JOB.json`` (the assignment's
cells, read once by the parent), and writes ``result.json`` and the executed notebooks to its
output folder. The parent then records the grades, one submission at a time.

Steps, per notebook of the assignment:

1. read the submitted file (missing, unreadable JSON or a broken notebook is an incident, not a
   crash); clear its stored outputs;
2. rebuild it around the instructor's cells (:func:`~nbjudge.cells.restore_cells`) and
   scan the student's code (:func:`~nbjudge.cells.scan_notebook`);
3. validate nbgrader's metadata, then execute it: the student's cells in the sandboxed student
   kernel, the test cells in the judge (:class:`~nbjudge.execute.SandboxedExecute`).

The kernel's working folder holds the submission's files (regular files only: symbolic links
are dropped, so a submission cannot point at files of the grader) with the assignment's own
data files from ``solutions/<assignment>/`` copied over them, as nbgrader does.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

MAX_NOTEBOOK_BYTES = 512 * 2**20
MAX_STAGE_BYTES = 256 * 2**20


def _regular_files(folder: Path):
    """Relative paths of regular files under ``folder`` (symlinks and specials skipped)."""
    found, skipped = [], []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in list(dirs):
            if os.path.islink(os.path.join(root, name)):
                skipped.append(os.path.relpath(os.path.join(root, name), folder))
                dirs.remove(name)
            elif name in (".ipynb_checkpoints", "__pycache__"):
                dirs.remove(name)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                skipped.append(os.path.relpath(path, folder))
            else:
                found.append(os.path.relpath(path, folder))
    return sorted(found), sorted(skipped)


def stage_files(submission: Path, source: Path, stage: Path, graded_notebooks):
    """Copy the files the kernel may see into ``stage``; return incidents about dropped files."""
    from .policy import Incident

    incidents, total = [], 0
    stage.mkdir(parents=True, exist_ok=True)
    files, skipped = _regular_files(submission) if submission.is_dir() else ([], [])
    for rel in skipped:
        incidents.append(Incident("symlink-dropped", f"{rel} is a symbolic link or special file; "
                                  "it was not given to the kernel"))
    for rel in files:
        size = (submission / rel).stat().st_size
        if rel in graded_notebooks or rel == "timestamp.txt":
            continue
        if total + size > MAX_STAGE_BYTES:
            incidents.append(Incident("file-dropped", f"{rel} ({size} bytes) was not given to the "
                                      f"kernel: the submission's files exceed {MAX_STAGE_BYTES // 2**20} MiB"))
            continue
        total += size
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(submission / rel, stage / rel)
    if source.is_dir():
        for rel in _regular_files(source)[0]:
            if not rel.endswith(".ipynb"):
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / rel, stage / rel)
    for root, dirs, names in os.walk(stage):
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644)
    return incidents


def read_submission(path: Path, notebook):
    """Parse a submitted notebook; return ``(nb, incidents)`` with ``nb`` None if unusable."""
    import nbformat

    from .policy import Incident

    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return None, [Incident("unreadable-notebook", f"{path.name} is {size / 2**20:.0f} MiB, above the "
                               f"{MAX_NOTEBOOK_BYTES // 2**20} MiB the grader reads", notebook=notebook)]
    try:
        nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
        for cell in nb.cells:
            if cell.get("cell_type") not in ("code", "markdown", "raw") or not isinstance(cell.get("source"), str):
                raise ValueError(f"a cell of type {cell.get('cell_type')!r} is malformed")
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = nbformat.NotebookNode()
    except Exception as exc:  # JSON errors, nbformat errors, bad encodings
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, [Incident("unreadable-notebook", f"{path.name} is not a readable notebook "
                               f"({type(exc).__name__}: {reason}); nothing in it could be graded",
                               notebook=notebook)]
    incidents = []
    if size > 20 * 2**20:
        incidents.append(Incident("large-notebook", f"{path.name} was {size / 2**20:.0f} MiB as submitted "
                                  "(stored outputs); outputs are cleared before grading", notebook=notebook))
    return nb, incidents


def run(job: dict) -> dict:
    """Grade the submission described by ``job``; return the result (also written to disk)."""
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import ClearOutput

    from .cells import restore_cells, scan_notebook
    from .course import load_config
    from .execute import SandboxedExecute
    from .policy import Incident
    from .sandbox import Sandbox

    started = time.monotonic()
    out = Path(job["out_dir"])
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.umask(0o077)  # executed notebooks hold the hidden tests: the grader's alone
    config = load_config(job["course_dir"])
    for section, values in job.get("overrides", {}).items():
        for key, value in values.items():
            config[section][key] = value
    spec = json.loads(Path(job["spec_path"]).read_text())
    submission, scratch = Path(job["submission_dir"]), Path(job["scratch"])
    graded = {f"{name}.ipynb" for name in spec["notebooks"]}
    result = {"student": job["student"], "notebooks": {}, "incidents": []}
    incidents = stage_files(submission, Path(job["source_dir"]), scratch / "stage", graded)
    # the judge's working folder: the assignment's own files only, nothing the student sent
    stage_files(Path(os.devnull), Path(job["source_dir"]), scratch / "judge-stage", graded)
    present = {p.name for p in submission.glob("*.ipynb")} if submission.is_dir() else set()
    for extra in sorted(present - graded):
        incidents.append(Incident("extra-notebook", f"{extra} is not part of the assignment; it was "
                                  "kept but not graded"))
    sandbox = Sandbox(config=config)
    if job.get("no_sandbox"):
        sandbox.enabled = False
    for name, nb_spec in spec["notebooks"].items():
        path = submission / f"{name}.ipynb"
        entry = {"status": "missing", "incidents": []}
        result["notebooks"][name] = entry
        if path.is_symlink():
            entry["incidents"].append(Incident(
                "symlink-dropped", f"{name}.ipynb is a symbolic link (to {os.readlink(path)!r}); it was not "
                "followed, and the notebook scores 0", notebook=name).to_dict())
            continue
        if not path.is_file():
            files = sorted(p.name for p in submission.iterdir()) if submission.is_dir() else []
            entry["incidents"].append(Incident(
                "missing-notebook", f"no {name}.ipynb in the submission "
                f"(it holds: {', '.join(files) if files else 'nothing'}); it scores 0", notebook=name).to_dict())
            continue
        nb, found = read_submission(path, name)
        entry["incidents"].extend(i.to_dict() for i in found)
        if nb is None:
            entry["status"] = "unreadable"
            continue
        nb, _ = ClearOutput().preprocess(nb, {})
        nb, found = restore_cells(nb, nb_spec, notebook=name)
        found += scan_notebook(nb, notebook=name, allowed=job.get("allowed", {}).get(name))
        entry["incidents"].extend(i.to_dict() for i in found)
        if nb_spec.get("kernelspec"):
            nb.metadata["kernelspec"] = nb_spec["kernelspec"]
        MetadataValidator().validate_nb(nb)
        executor = SandboxedExecute(config=config, sandbox=sandbox)
        executor.grading = {"workdir": job["workdir"], "stage": str(scratch / "stage"), "scratch": str(scratch),
                            "judge_stage": str(scratch / "judge-stage"),
                            "uid": job.get("uid"), "judge_uid": job.get("judge_uid"), "ro_paths": job["ro_paths"],
                            "bwrap": job.get("bwrap"), "kit": job["kit"],
                            "overlays": [tuple(o) for o in job.get("overlays", {}).get(name, [])],
                            "cgroup": job.get("cgroup"), "box_prefix": f"s{job.get('slot', 0)}-{os.getpid()}",
                            "host_cwd": str(scratch), "watch": [job["course_dir"]],
                            "stage_bytes": sum(p.stat().st_size for p in (scratch / "stage").rglob("*") if p.is_file())}
        resources = {"nbgrader": {"notebook": name, "assignment": spec["assignment"], "student": job["student"]},
                     "metadata": {"path": str(scratch)}}
        nb, resources = executor.preprocess(nb, resources)
        entry["incidents"].extend(i.to_dict() for i in executor.incidents)
        entry["cell_status"] = {str(k): v for k, v in sorted(executor.cell_status.items()) if k < len(nb.cells)}
        entry["elapsed"] = resources.get("nbjudge", {}).get("elapsed")
        nbformat.write(nb, out / f"{name}.ipynb")
        entry["status"] = "executed"
    result["incidents"] = [i.to_dict() for i in incidents]
    result["elapsed"] = round(time.monotonic() - started, 3)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def run_file(job_path) -> bool:
    """Run the job in ``job_path``; on failure write ``error.txt`` next to the result. True if it worked."""
    job = json.loads(Path(job_path).read_text())
    try:
        run(job)
        return True
    except Exception:
        Path(job["out_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(job["out_dir"]) / "error.txt").write_text(traceback.format_exc())
        return False


def serve(stdin=sys.stdin, stdout=sys.stdout) -> int:
    """Answer ``done`` to every job path read from ``stdin`` until it closes."""
    import warnings
    warnings.filterwarnings("ignore")
    from . import execute  # noqa: F401  (import nbgrader and nbclient before the first job)
    stdout.write("ready\n")
    stdout.flush()
    for line in stdin:
        if line.strip():
            run_file(line.strip())
            stdout.write("done\n")
            stdout.flush()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    if len(argv) != 1:
        print("usage: python -m nbjudge.worker JOB.json | --serve", file=sys.stderr)
        return 2
    return 0 if run_file(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
