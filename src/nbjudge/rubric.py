"""Rubrics for the written answers: in the source notebook, out of the release, in front of the grader.

A rubric is the markdown cell right after a manually graded answer in ``solutions/NAME/``, with
metadata ``{"nbjudge": {"rubric": "<grade_id of the answer>"}}`` and criteria written as
``- [points] criterion``. nbgrader knows nothing of it: :func:`strip` removes it from the student
release, and :func:`insert` puts it back after the student's answer in the graded notebook, which
the formgrader shows to whoever grades by hand (and the feedback to the student afterwards).
"""
from __future__ import annotations

import copy


def answer_of(cell) -> str | None:
    """The grade_id whose rubric ``cell`` is, or None."""
    value = (cell.get("metadata", {}).get("nbjudge") or {}).get("rubric")
    return value if isinstance(value, str) else None


def strip(nb) -> int:
    """Remove every rubric cell from ``nb`` in place; return how many were removed."""
    before = len(nb.cells)
    nb.cells = [c for c in nb.cells if answer_of(c) is None]
    return before - len(nb.cells)


def insert(nb, source_nb) -> None:
    """Put each rubric of ``source_nb`` after the cell with the same grade_id in ``nb`` (a graded
    submission; its own cells carry no nbjudge metadata any more). An answer the student deleted
    gets its rubric at the end, so the grader still sees it."""
    rubrics = {answer_of(c): c for c in source_nb.cells if answer_of(c)}
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in rubrics:
            cells.append(copy.deepcopy(rubrics.pop(gid)))
    cells.extend(copy.deepcopy(c) for c in rubrics.values())
    nb.cells = cells
