"""Re-read pages that paste glue values from other notebooks whenever one of those notebooks is re-read.

myst-nb resolves ``{glue:text}`/path/nb.ipynb::key:fmt``` references at write time from the other
notebook's ``.glue.json``, but Sphinx only rewrites pages it re-reads: without this hook, an
incremental build after a chapter changes keeps the chapter's old numbers on the pasting page.
"""
import re
from pathlib import Path

REFERENCE = re.compile(r"\{glue(?::\w+)?\}`([^`]+?)\.ipynb::")


def pasting_pages(app, env, added, changed, removed):
    updated = set(added) | set(changed)
    if not updated:
        return []
    pages = []
    for docname in env.found_docs - updated:
        path = Path(env.doc2path(docname))
        if path.suffix != ".ipynb":
            continue
        text = path.read_text(encoding="utf-8")
        for target in REFERENCE.findall(text):
            ref = target.lstrip("/") if target.startswith("/") else \
                (Path(docname).parent / target).as_posix()
            if Path(ref).as_posix() in updated:
                pages.append(docname)
                break
    return pages


def setup(app):
    app.connect("env-get-outdated", pasting_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
