"""A submission rebuilt around the instructor's cells, and a static scan of the student's code.

nbgrader's own ``OverwriteCells`` restores edited test cells but keeps cells whose metadata was
stripped or renamed as ordinary cells, and it drops the tests of a deleted cell (or, with
``add_missing_cells``, can fail on them). :func:`restore_cells` instead makes the notebook that
is executed contain every cell of the assignment exactly once:

- every *locked* cell (setup, tests, read-only text) is the instructor's version from the
  gradebook, hidden tests included, whatever the student did to it;
- every *answer* cell (``solution: true``) keeps the student's source, with the instructor's
  metadata (points, grade flags, checksum);
- cells the student added stay where they are, as ordinary cells;
- a cell that is missing (deleted, metadata stripped, ``grade_id`` renamed) is put back, with
  the release's content for answers (so an answer that was deleted scores 0), after the
  nearest preceding assignment cell.

Every difference becomes an :class:`~nbjudge.policy.Incident`.
"""
from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from .policy import Incident
from .source import assigned, bound_names, python_source

SPEC_KEYS = ("grade_id", "cell_type", "source", "release_source", "locked", "grade", "solution", "task",
             "points", "checksum")


# ---------------------------------------------------------------------------------------------
# The assignment as the grader needs it
# ---------------------------------------------------------------------------------------------
def assignment_spec(course_dir, assignment, db_url) -> dict:
    """Everything a worker needs about ``assignment``, read once from the gradebook and release.

    Returns
    -------
    dict
        ``{"assignment": name, "notebooks": {notebook: {"kernelspec": ..., "cells": [cell, ...]}}}``,
        where each cell is a dict with :data:`SPEC_KEYS`, in the release's order. ``source`` is the
        gradebook's (hidden tests included), ``release_source`` what students received.
    """
    from nbgrader.api import Gradebook

    course_dir = Path(course_dir)
    notebooks = {}
    with Gradebook(db_url) as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            release = course_dir / "release" / assignment / f"{notebook.name}.ipynb"
            if not release.is_file():
                raise FileNotFoundError(f"{release} is missing: run `nbgrader generate_assignment {assignment}` "
                                        "(nbjudge grade does it when the gradebook lacks it)")
            released = nbformat.read(release, as_version=4)
            order = [c.metadata["nbgrader"]["grade_id"] for c in released.cells
                     if "grade_id" in c.metadata.get("nbgrader", {})]
            release_source = {c.metadata["nbgrader"]["grade_id"]: c.source for c in released.cells
                              if "grade_id" in c.metadata.get("nbgrader", {})}
            source_cells = {c.name: c for c in notebook.source_cells}
            grade_cells = {c.name: c.max_score for c in notebook.grade_cells}
            solution_ids = {c.name for c in notebook.solution_cells}
            task_cells = {c.name: c.max_score for c in notebook.task_cells}
            cells = []
            for gid in order:
                sc = source_cells[gid]
                grade = gid in grade_cells
                cells.append({
                    "grade_id": gid, "cell_type": sc.cell_type, "source": sc.source,
                    "release_source": release_source[gid], "locked": bool(sc.locked), "grade": grade,
                    "solution": gid in solution_ids, "task": gid in task_cells,
                    "points": float(grade_cells.get(gid, task_cells.get(gid, 0.0))), "checksum": sc.checksum,
                })
            missing = set(source_cells) - set(order)
            if missing:
                raise ValueError(f"release/{assignment}/{notebook.name}.ipynb lacks cells {sorted(missing)} that "
                                 "the gradebook has: regenerate it with `nbgrader generate_assignment --force`")
            kernelspec = json.loads(notebook.kernelspec) if notebook.kernelspec else None
            notebooks[notebook.name] = {"kernelspec": kernelspec, "cells": cells,
                                        "max_score": float(sum(c["points"] for c in cells if c["grade"]))}
    return {"assignment": assignment, "notebooks": notebooks}


def allowed_modules(course_dir, assignment, notebook):
    """The teaching-package modules students of ``assignment`` may import while graded, or None (all).

    Declared in the source notebook's metadata: ``{"nbjudge": {"allowed_modules": ["datasets", ...]}}``.
    """
    path = Path(course_dir) / "solutions" / assignment / f"{notebook}.ipynb"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text()).get("metadata", {}).get("nbjudge", {})
    allowed = meta.get("allowed_modules") if isinstance(meta, dict) else None
    if allowed is None:
        return None
    if not isinstance(allowed, list) or not all(isinstance(m, str) and m.isidentifier() for m in allowed):
        raise ValueError(f"{path}: metadata nbjudge.allowed_modules must be a list of module names such as "
                         f"[\"datasets\", \"activations\"], got {allowed!r}")
    return allowed


def _nbgrader_meta(spec_cell) -> dict:
    meta = {"grade": spec_cell["grade"], "grade_id": spec_cell["grade_id"], "locked": spec_cell["locked"],
            "schema_version": 3, "solution": spec_cell["solution"], "task": spec_cell["task"],
            "checksum": spec_cell["checksum"]}
    if spec_cell["grade"] or spec_cell["task"]:
        meta["points"] = spec_cell["points"]
    return meta


def instructor_cell(spec_cell, source=None):
    """A fresh cell from the assignment: the gradebook's source unless ``source`` is given."""
    text = spec_cell["source"] if source is None else source
    maker = new_code_cell if spec_cell["cell_type"] == "code" else new_markdown_cell
    cell = maker(source=text)
    cell.metadata["nbgrader"] = _nbgrader_meta(spec_cell)
    if spec_cell["locked"]:
        cell.metadata["deletable"] = False
        cell.metadata["editable"] = False
    return cell


def _describe(spec_cell) -> str:
    if spec_cell["grade"] and not spec_cell["solution"]:
        return f"test cell {spec_cell['grade_id']!r} ({spec_cell['points']:g} points)"
    if spec_cell["solution"]:
        return f"answer cell {spec_cell['grade_id']!r}"
    return f"locked cell {spec_cell['grade_id']!r}"


def _meta_changes(cell, spec_cell) -> list[str]:
    meta = cell.metadata.get("nbgrader", {})
    changes = []
    if cell.cell_type != spec_cell["cell_type"]:
        changes.append(f"cell type {cell.cell_type} (should be {spec_cell['cell_type']})")
    for key in ("grade", "solution", "locked"):
        if bool(meta.get(key, False)) != spec_cell[key]:
            changes.append(f"{key}: {meta.get(key)!r} (should be {spec_cell[key]!r})")
    if spec_cell["grade"]:
        try:
            points = float(meta.get("points"))
        except (TypeError, ValueError):
            points = None
        if points != spec_cell["points"]:
            changes.append(f"points: {meta.get('points')!r} (should be {spec_cell['points']:g})")
    return changes


def restore_cells(nb, notebook_spec, notebook=None):
    """Rebuild ``nb`` around the assignment's cells (see the module docstring).

    Parameters
    ----------
    nb : NotebookNode
        The submitted notebook (outputs already cleared).
    notebook_spec : dict
        ``assignment_spec(...)["notebooks"][name]``.

    Returns
    -------
    nb : NotebookNode
        The notebook to execute. Each cell's ``metadata["nbjudge"]["origin"]`` says where it came
        from: ``"instructor"``, ``"answer"`` (a student's answer) or ``"student"`` (a cell the
        student added).
    incidents : list of Incident
    """
    spec_cells = notebook_spec["cells"]
    by_id = {c["grade_id"]: c for c in spec_cells}
    order = {c["grade_id"]: i for i, c in enumerate(spec_cells)}
    incidents, seen, out = [], set(), []

    def note(kind, message, cell=None):
        incidents.append(Incident(kind, message, cell=cell, notebook=notebook))

    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if not isinstance(gid, str) or gid not in by_id or gid in seen:
            if isinstance(gid, str) and gid in seen:
                note("duplicate-grade-id", f"cell {index} repeats grade_id {gid!r}; the copy is "
                     "graded as an ordinary cell", cell=gid)
            elif isinstance(gid, str):
                note("unknown-grade-id", f"cell {index} has grade_id {gid!r}, which the assignment "
                     "does not have (renamed?); it runs as an ordinary cell and earns nothing", cell=gid)
            elif meta:
                note("stray-nbgrader-metadata", f"cell {index} has nbgrader metadata without a "
                     "grade_id; it runs as an ordinary cell")
            cell = copy.deepcopy(cell)
            cell.metadata.pop("nbgrader", None)
            cell.metadata["nbjudge"] = {"origin": "student"}
            out.append(cell)
            continue
        seen.add(gid)
        spec_cell = by_id[gid]
        changes = _meta_changes(cell, spec_cell)
        if spec_cell["locked"]:
            if cell.source != spec_cell["release_source"]:
                changes.insert(0, "its source")
            if changes:
                note("locked-cell-changed", f"the submission changed {', '.join(changes)} of "
                     f"{_describe(spec_cell)}; the instructor's version was graded", cell=gid)
            new = instructor_cell(spec_cell)
        else:
            if changes:
                note("answer-metadata-changed", f"the submission changed {', '.join(changes)} of "
                     f"{_describe(spec_cell)}; the assignment's metadata was restored", cell=gid)
            new = instructor_cell(spec_cell, source=cell.source)
        new.metadata["nbjudge"] = {"origin": "instructor" if spec_cell["locked"] else "answer"}
        out.append(new)

    student_sources = {c.source.strip() for c in out if c.metadata["nbjudge"]["origin"] == "student"}
    for spec_cell in spec_cells:
        gid = spec_cell["grade_id"]
        if gid in seen:
            continue
        stripped = spec_cell["release_source"].strip() in student_sources and spec_cell["release_source"].strip()
        how = ("its nbgrader metadata was removed or its grade_id renamed" if stripped
               else "it was deleted")
        what = ("the instructor's version was put back" if spec_cell["locked"]
                else "the unanswered release version was put back, so it scores 0")
        note("cell-missing", f"{_describe(spec_cell)} is missing from the submission ({how}); {what}",
             cell=gid)
        new = instructor_cell(spec_cell, source=None if spec_cell["locked"] else spec_cell["release_source"])
        new.metadata["nbjudge"] = {"origin": "instructor"}
        # after the nearest preceding assignment cell that is present
        position = 0
        for i, cell in enumerate(out):
            other = cell.metadata.get("nbgrader", {}).get("grade_id")
            if other in order and order[other] < order[gid]:
                position = i + 1
        out.insert(position, new)
        seen.add(gid)
    nb.cells = out
    return nb, incidents


# ---------------------------------------------------------------------------------------------
# Static scan of the student's code
# ---------------------------------------------------------------------------------------------
#: attribute or name -> why it is suspicious in a submission (flags for review, no penalty)
SUSPICIOUS_NAMES = {
    "showtraceback": "replaces IPython's error display", "_showtraceback": "replaces IPython's error display",
    "excepthook": "replaces the exception hook", "set_custom_exc": "installs a handler that swallows errors",
    "CustomTB": "replaces IPython's error display", "run_cell": "wraps IPython's cell execution",
    "run_code": "wraps IPython's cell execution", "do_execute": "wraps the kernel's execution",
    "displayhook": "replaces the display hook", "_exit": "ends the process (os._exit)",
    "settrace": "installs a tracer", "setprofile": "installs a profiler", "addaudithook": "adds an audit hook",
    "_getframe": "inspects the caller's frames", "currentframe": "inspects the caller's frames",
    "stack": None, "get_referrers": "searches the interpreter's objects", "get_objects": None,
    "fork": "creates processes", "system": "runs shell commands", "popen": "runs shell commands",
    "kill": "sends signals", "__builtins__": "modifies the builtins",
    "_nbjudge_bridge": "touches the judge's bridge",
}
SUSPICIOUS_MODULES = {
    "ctypes": "loads C code", "socket": "opens network connections", "urllib": "opens network connections",
    "http": "opens network connections", "requests": "opens network connections",
    "subprocess": "runs other programs", "multiprocessing": "creates processes", "signal": "handles signals",
    "importlib": "imports by name", "builtins": "modifies the builtins", "gc": "searches the interpreter's objects",
    "inspect": "inspects the caller's frames", "nbgrader": "imports the grader", "pty": "runs other programs",
    "_posixsubprocess": "starts processes past the audit hook", "posix": "calls the operating system directly",
    "nbjudge": "imports the grader", "_nbjudge_protocol": "touches the judge's protocol",
    "shutil": None,
}
#: attributes through which code reaches into IPython or the kernel that runs it
INTERPRETER_HOOKS = {
    "ast_transformers": "rewrites later cells before they run", "input_transformers_cleanup": "rewrites later cells",
    "input_transformers_post": "rewrites later cells", "shell_handlers": "wraps the kernel's message handlers",
    "control_handlers": "wraps the kernel's message handlers", "session": "sends messages as the kernel",
    "iopub_socket": "sends messages as the kernel", "events": "hooks into cell execution",
    "pre_run_cell": "hooks into cell execution", "post_run_cell": "hooks into cell execution",
    "user_ns": "reads or rewrites the notebook's namespace", "shell_streams": "wraps the kernel's message handlers",
}
PATCHABLE_MODULES = {"numpy", "np", "math", "builtins", "sys", "nnlab", "IPython", "os", "random", "unittest",
                     "pytest", "testing"}
#: containers whose items are a module's names: storing into them replaces a name
NAMESPACES = {"__dict__", "modules"}
PATH_WORDS = re.compile(r"gradebook\.db|solutions/|/release/|\.\./|autograded/|submitted/|/root/|/home/")


def scan_source(source: str) -> list[str]:
    """Reasons why a piece of student code deserves a human look (empty for ordinary code).

    A static scan on the trusted side: it cannot be fooled by the running code, only by
    obfuscation (``exec`` and ``eval`` are themselves reported).
    """
    found = []

    def add(text):
        if text not in found:
            found.append(text)

    code = python_source(source)
    if "get_ipython().system(" in code or "get_ipython().getoutput(" in code:
        add("runs shell commands (`!` or %%bash)")
    try:
        tree = ast.parse(code)
    except SyntaxError:
        if PATH_WORDS.search(source):
            add(f"mentions a grading path ({PATH_WORDS.search(source).group(0)!r})")
        return found
    imported_modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported_modules[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported_modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if SUSPICIOUS_MODULES.get(top):
                    add(f"imports {name} ({SUSPICIOUS_MODULES[top]})")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("__eq__", "__ne__"):
            add(f"defines {node.name} (an answer that compares equal to anything passes naive tests)")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
                "__array_function__", "__array_ufunc__", "__array__"):
            add(f"defines {node.name} (an object that answers NumPy's functions itself)")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            # an item stored into a library's data (os.environ, plt.rcParams) is ordinary code;
            # an item stored into a namespace (np.__dict__, sys.modules) replaces a name
            targets = [t for t in targets if not (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute)
                                                  and t.value.attr not in NAMESPACES)]
            for sub in assigned(targets):
                if isinstance(sub, ast.Name) and sub.id in ("__eq__", "__ne__"):
                    add(f"assigns {sub.id} (an answer that compares equal to anything passes naive tests)")
                if isinstance(sub, ast.Name) and sub.id in PATCHABLE_MODULES:
                    add(f"rebinds {sub.id} (a module the tests use)")
                if isinstance(sub, ast.Attribute):
                    base = sub.value
                    while isinstance(base, (ast.Attribute, ast.Subscript)):
                        base = base.value
                    root = base.id if isinstance(base, ast.Name) else None
                    module = imported_modules.get(root, root) if root else None
                    if module and (module.split(".")[0] in PATCHABLE_MODULES or root in PATCHABLE_MODULES):
                        add(f"replaces {ast.unparse(sub)} (monkeypatching a library the tests use)")
                    elif isinstance(base, ast.Call) and ast.unparse(base.func) == "get_ipython":
                        add(f"replaces {ast.unparse(sub)} (changes IPython itself)")
                    if SUSPICIOUS_NAMES.get(sub.attr):
                        add(f"assigns .{sub.attr} ({SUSPICIOUS_NAMES[sub.attr]})")
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func in ("setattr", "delattr") and node.args:
                target = ast.unparse(node.args[0])
                root = target.split(".")[0].split("(")[0]
                if imported_modules.get(root, root).split(".")[0] in PATCHABLE_MODULES or "get_ipython" in target:
                    add(f"calls {func}({target}, ...) (monkeypatching)")
            if func in ("exec", "eval", "compile", "__import__"):
                add(f"calls {func}() (code that cannot be read before it runs)")
            if func in ("globals", "vars", "locals") and (func == "globals" or not node.args):
                add(f"calls {func}() (reads the notebook's namespace)")
            last = func.rsplit(".", 1)[-1]
            if SUSPICIOUS_NAMES.get(last) and "." in func:
                add(f"calls {func}() ({SUSPICIOUS_NAMES[last]})")
        elif isinstance(node, ast.Attribute) and node.attr in INTERPRETER_HOOKS:
            add(f"uses .{node.attr} ({INTERPRETER_HOOKS[node.attr]})")
        elif isinstance(node, ast.Attribute) and SUSPICIOUS_NAMES.get(node.attr) and node.attr.startswith("_"):
            add(f"uses .{node.attr} ({SUSPICIOUS_NAMES[node.attr]})")
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "_nbjudge_bridge"):
            add(f"uses {node.id} ({SUSPICIOUS_NAMES[node.id]})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = PATH_WORDS.search(node.value)
            if match:
                add(f"mentions a grading path ({match.group(0)!r})")
    return found


def _imported_modules(source: str) -> set:
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def scan_notebook(nb, notebook=None, allowed=None, package="nnlab") -> list[Incident]:
    """Scan the student's own code (answers and added cells) of a restored notebook.

    Besides :func:`scan_source`, it reports a student cell that rebinds a name the assignment's
    own cells define (the tests use the assignment's version), and imports of ``package``
    modules that ``allowed`` does not list (None: all allowed).
    """
    incidents = []
    instructor = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbjudge", {}).get("origin") == "instructor":
            nbmeta = cell.metadata.get("nbgrader", {})
            if not (nbmeta.get("grade") and not nbmeta.get("solution")):
                instructor |= bound_names(cell.source)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.metadata.get("nbjudge", {}).get("origin") == "instructor":
            continue
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
        reasons = scan_source(cell.source)
        for name in sorted(bound_names(cell.source) & instructor):
            reasons.append(f"redefines {name}, which the assignment's own cells define (tests use the "
                           "assignment's version)")
        for reason in reasons:
            incidents.append(Incident("suspicious-code", f"{where}: {reason}", cell=where, notebook=notebook))
        if allowed is not None:
            bad = sorted({parts[1] for parts in (m.split(".") for m in _imported_modules(cell.source))
                          if parts[0] == package and len(parts) > 1 and not parts[1].startswith("_")
                          and parts[1] not in allowed})
            if bad:
                incidents.append(Incident(
                    "forbidden-import", f"{where}: imports {', '.join(f'{package}.{m}' for m in bad)}, which this "
                    f"assignment does not allow (allowed: {', '.join(f'{package}.{m}' for m in allowed) or 'none'})",
                    cell=where, notebook=notebook))
    return incidents
