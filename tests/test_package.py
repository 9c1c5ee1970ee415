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


def _imports(package: str) -> dict:
    """module -> the modules it imports, read from the source (nothing is imported)."""
    import ast
    graph = {}
    for path in (ROOT / "src" / package).glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    found.update([f"{package}.{node.module}"] if node.module else
                                 [f"{package}.{a.name}" for a in node.names])
                else:
                    found.add(node.module)
        graph[f"{package}.{path.stem}"] = found
    return graph


def test_the_teaching_package_and_the_grader_never_import_each_other():
    for module, found in _imports("nnlab").items():
        assert not any(m.split(".")[0] in ("nbjudge", "nbgrader", "nbclient", "jupyter_client") for m in found), \
            f"{module} imports the grader's world: {sorted(found)}"
    for module, found in _imports("nbjudge").items():
        assert not any(m.split(".")[0] == "nnlab" for m in found), f"{module} imports nnlab: {sorted(found)}"


def test_the_grader_has_no_import_cycles():
    graph = {m: {d for d in deps if d in _imports("nbjudge")} for m, deps in _imports("nbjudge").items()}
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(module):] + [module])}")
        if module in done:
            return
        path.append(module)
        for dep in graph[module]:
            visit(dep)
        path.pop()
        done.add(module)
    for module in graph:
        visit(module)
    assert "nbjudge.course" in graph and len(graph) >= 10


def test_importing_the_grader_loads_nothing_of_nbgrader():
    code = "import sys, nbjudge; print([m for m in ('nbgrader', 'nnlab', 'tensorflow') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
