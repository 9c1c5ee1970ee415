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


def load_spec(name) -> dict:
    """tests/roundtrip/NAME.json: the deliberately wrong answer and the tests it must fail."""
    path = ROOT / "tests" / "roundtrip" / f"{name}.json"
    spec = json.loads(path.read_text())
    missing = {"wrong", "fails", "why"} - set(spec)
    if missing:
        raise ValueError(f"{path}: missing keys {sorted(missing)}")
    return spec
