"""Reading a cell's source without running it: IPython syntax as Python, and the names a cell binds.

Shared by the static scan (:mod:`nbjudge.cells`) and the judge (:mod:`nbjudge.judge`); standard
library and IPython only.
"""
from __future__ import annotations

import ast


def python_source(source: str) -> str:
    """Cell source as plain Python, as a kernel would run it (IPython magics and ``!`` translated)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def assigned(targets):
    """What an assignment stores into: names and attributes, looking through tuples and through
    the *container* of an item assignment (``np.__dict__["x"] = ...``), never into an index
    (``onehot[np.arange(n), y] = 1`` assigns into ``onehot``)."""
    for target in targets:
        while isinstance(target, (ast.Subscript, ast.Starred)):
            target = target.value
        if isinstance(target, (ast.Tuple, ast.List)):
            yield from assigned(target.elts)
        elif isinstance(target, (ast.Name, ast.Attribute)):
            yield target


def bound_names(source: str) -> set:
    """Names a cell binds at its top level (definitions, assignments, imports)."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in assigned(targets) if isinstance(t, ast.Name))
    return names
