"""Put the Colab setup cell first in every chapter notebook: ``python tools/colab_cell.py``.

The cell installs ``nnlab`` from the course repository when the notebook runs on Google Colab
(Colab already has NumPy, scikit-learn, TensorFlow and Keras) and does nothing anywhere else, so
the book, nbval and nbgrader run it harmlessly. The repository comes from ``_config.yml``.
Idempotent: an existing setup cell is replaced, never duplicated. ``--check`` only reports
(tests/test_package.py uses the same function). Student releases get the cell through their
nbgrader source, so run ``make release`` afterwards.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARKER = "# Google Colab only:"


def repository_url() -> str:
    config = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", config, flags=re.M)
    if not match:
        raise SystemExit("_config.yml has no repository: url:")
    return match.group(1)


def cell_source() -> str:
    return (f"{MARKER} install the course package there (no effect anywhere else).\n"
            "import sys\n\n"
            'if "google.colab" in sys.modules:\n'
            f'    %pip install --quiet "nnlab @ git+{repository_url()}"')


def notebooks():
    return sorted([*ROOT.glob("chapters/*/lecture.ipynb"), *ROOT.glob("solutions/*/assignment.ipynb")])


def has_setup_cell(nb) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return bool(code) and code[0].source == cell_source()


def add_setup_cell(nb) -> None:
    """Insert the setup cell into ``nb``, replacing an outdated one."""
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.startswith(MARKER))]
    cell = nbformat.v4.new_code_cell(cell_source())
    # after the title (and, in assignments, the instructions), before the first code cell
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, cell)


def main(argv) -> int:
    check = "--check" in argv
    missing = []
    for path in notebooks():
        nb = nbformat.read(str(path), as_version=4)
        if not has_setup_cell(nb):
            missing.append(path.relative_to(ROOT))
            if not check:
                add_setup_cell(nb)
                nbformat.write(nb, str(path))
    for path in missing:
        print(("missing: " if check else "updated: ") + str(path))
    return 1 if check and missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
