"""Serve MathJax from the built site instead of a CDN.

The book's math is typeset by MathJax 3. Sphinx loads it from a CDN by default, which fails on
machines without internet (CI here, a laptop on a train, a classroom behind a firewall). This
extension copies MathJax 3's ``es5`` bundle from the Python package ``django-static-mathjax``
(pinned in requirements.txt; despite the name it is plain MathJax with no Django dependency)
into ``_static/mathjax`` and points ``mathjax_path`` at it. Without that package the CDN stays.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path


def _bundle() -> Path | None:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        es5 = Path(location) / "static" / "mathjax" / "es5"
        if (es5 / "tex-chtml.js").is_file():
            return es5
    return None


def _use_local_copy(app, config):
    es5 = _bundle()
    if es5 is None or app.builder is None or app.builder.format != "html":
        return
    config.mathjax_path = "mathjax/tex-chtml.js"


def _copy_bundle(app, exception):
    es5 = _bundle()
    if exception is None and es5 is not None and app.builder.format == "html":
        shutil.copytree(es5, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def setup(app):
    app.connect("builder-inited", lambda app: _use_local_copy(app, app.config))
    app.connect("build-finished", _copy_bundle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
