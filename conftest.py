"""Collection rules shared by every pytest run of the course.

- Student releases (``chapters/*/assignment.ipynb``) are not executed by nbval: their stubs
  raise ``NotImplementedError`` by design. They are checked by ``nbgrader validate --invert``
  and the grading round trip instead (tests/test_assignments.py).
- Notebook items (nbval) are marked ``slow`` so ``pytest -m "not slow"`` runs the unit tests only.
"""
from pathlib import Path

import pytest


def pytest_ignore_collect(collection_path: Path, config):
    if collection_path.suffix == ".ipynb":
        if collection_path.name == "assignment.ipynb" and collection_path.parent.parent.name == "chapters":
            return True
        if ".ipynb_checkpoints" in collection_path.parts or collection_path.name.startswith("_"):
            return True
        if "tests" in collection_path.parts:  # fixture notebooks of the grading tests
            return True
    if collection_path.name in {".venv", "_build"}:
        return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
