"""Reading nbgrader assignment notebooks and building test submissions from them.

Shared by the round-trip test (test_assignments.py) and anything else that needs to fake a
student: a *solution* submission is the student release with every solution cell filled in
from the nbgrader source (matched by ``grade_id``), exactly what a student who solved
everything would hand in.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def graded_cells(nb):
    """(grade_id, points, kind) of every graded cell; kind 'auto' (test cell) or 'manual'."""
    out = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            kind = "manual" if meta.get("solution") or cell.cell_type == "markdown" else "auto"
            out.append((meta["grade_id"], float(meta.get("points", 0)), kind))
    return out


def auto_points(nb) -> dict[str, float]:
    """grade_id -> points of every autograded test cell."""
    return {gid: pts for gid, pts, kind in graded_cells(nb) if kind == "auto"}


def stated_total(nb) -> float | None:
    """The ``Total: N points`` the notebook's first markdown cell promises students."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"Total:\s*\**\s*(\d+(?:\.\d+)?)\s*points", cell.source)
            if m:
                return float(m.group(1))
            return None
    return None


def fill_solutions(release_nb, source_nb, replacements=None):
    """The release with solution cells taken from the source (or from ``replacements``,
    a dict grade_id -> new source)."""
    replacements = replacements or {}
    source_cells = {nbgrader_meta(c).get("grade_id"): c for c in source_nb.cells if nbgrader_meta(c).get("solution")}
    nb = copy.deepcopy(release_nb)
    filled = set()
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if meta.get("solution"):
            if gid in replacements:
                cell.source = replacements[gid]
            elif gid in source_cells:
                cell.source = source_cells[gid].source
            filled.add(gid)
    unknown = set(replacements) - filled
    if unknown:
        raise KeyError(f"no solution cell with grade_id {sorted(unknown)} in the release")
    return nb


SPEC_KEYS = {"mistakes", "alternatives"}
MISTAKE_KEYS = {"name", "cell", "source", "fails", "visible", "why"}
ALTERNATIVE_KEYS = {"cell", "source", "why"}


def load_spec(name) -> dict:
    """tests/roundtrip/NAME.json: typical mistakes and correct alternatives for one assignment.

    ``mistakes``: each replaces one solution cell (``cell``, a grade_id) with ``source``, must lose
    exactly the test cells in ``fails`` (all of them in the question the cell belongs to) and,
    if ``visible`` is true, already fail the part of a test the student sees. ``alternatives``:
    correct answers written differently from the solution, which must keep full marks with no
    incident; they are graded together as one submission, so each names a different cell.
    """
    path = ROOT / "tests" / "roundtrip" / f"{name}.json"
    spec = json.loads(path.read_text())
    problems = []
    if set(spec) != SPEC_KEYS:
        problems.append(f"keys must be {sorted(SPEC_KEYS)}, found {sorted(spec)}")
    for i, mistake in enumerate(spec.get("mistakes", [])):
        if set(mistake) != MISTAKE_KEYS:
            problems.append(f"mistakes[{i}]: keys must be {sorted(MISTAKE_KEYS)}, found {sorted(mistake)}")
    for i, alt in enumerate(spec.get("alternatives", [])):
        if set(alt) != ALTERNATIVE_KEYS:
            problems.append(f"alternatives[{i}]: keys must be {sorted(ALTERNATIVE_KEYS)}, found {sorted(alt)}")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return spec


def questions(nb) -> dict[str, str]:
    """grade_id -> the question (the text of its ``## N. Title`` heading) of every nbgrader cell.

    A question runs from one level-2 heading to the next; its solution cells and the tests that
    check them live inside it, which is what "a mistake is charged where it is made" refers to.
    """
    out, current = {}, None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.match(r"##\s+(.+)", cell.source.lstrip())
            if m and not cell.source.lstrip().startswith("###"):
                current = m.group(1).strip()
        gid = nbgrader_meta(cell).get("grade_id")
        if gid:
            out[gid] = current
    return out


def fancy_index_assignments(source: str) -> list[str]:
    """The statements of ``source`` that assign into an array through an index array or tuple,
    such as ``onehot[np.arange(n), y] = 1`` or ``probs[rows, y] -= 1``."""
    import ast
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AugAssign) else [])
        for target in targets:
            if isinstance(target, ast.Subscript) and _is_fancy(target.slice):
                found.append(ast.get_source_segment(source, node))
    return found


def _is_fancy(index) -> bool:
    """An index of arrays rather than of positions: a call, a comparison, or a tuple holding one
    of those or a name (``[np.arange(n), y]``, ``[x < 0]``, ``[rows, labels]``)."""
    import ast
    arrays = (ast.Call, ast.Compare, ast.List)
    if isinstance(index, ast.Tuple):
        return any(isinstance(e, arrays + (ast.Name, ast.Attribute, ast.Subscript)) for e in index.elts)
    return isinstance(index, arrays)


def hidden_line_ranges(test_source: str) -> list[range]:
    """1-based line ranges of the hidden blocks of an nbgrader test cell."""
    ranges, start = [], None
    for number, line in enumerate(test_source.splitlines(), 1):
        if "### BEGIN HIDDEN TESTS" in line:
            start = number
        elif "### END HIDDEN TESTS" in line and start is not None:
            ranges.append(range(start, number + 1))
            start = None
    return ranges


def failing_line(graded_cell) -> int | None:
    """The line of a graded test cell (as restored from the source) where its error was raised,
    read from the judge's traceback (``Cell <grade_id>, line N``); None if the cell passed."""
    for output in graded_cell.get("outputs", []):
        if output.get("output_type") == "error":
            for entry in output.get("traceback", []):
                m = re.match(r"Cell <[^>]*>, line (\d+)", entry)
                if m:
                    return int(m.group(1))
            return 0
    return None
