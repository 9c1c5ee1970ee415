"""Package-level promises: light import, clean committed notebooks."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_nnlab_does_not_load_tensorflow_or_matplotlib():
    code = ("import sys, nnlab; heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'torch') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_committed_notebooks_carry_no_outputs():
    files = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    assert files, "no notebooks tracked"
    dirty = []
    for name in files:
        nb = json.loads((ROOT / name).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                dirty.append(name)
                break
    assert not dirty, f"strip outputs (jupyter nbconvert --clear-output --inplace): {dirty}"


def test_every_lecture_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in sorted(ROOT.glob("chapters/*/*.ipynb")):
        entry = nb.relative_to(ROOT).with_suffix("").as_posix()
        assert entry in toc, f"{entry} missing from _toc.yml"


def test_every_chapter_notebook_starts_with_the_colab_setup_cell():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import colab_cell
    finally:
        sys.path.pop(0)
    import nbformat
    missing = [p.relative_to(ROOT).as_posix() for p in colab_cell.notebooks()
               if not colab_cell.has_setup_cell(nbformat.read(str(p), as_version=4))]
    assert not missing, f"run `python tools/colab_cell.py` then `make release`: {missing}"
    assert "github.com" in colab_cell.cell_source()  # installs from the repository in _config.yml
