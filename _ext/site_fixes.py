"""Two fixes for JavaScript errors the book's theme stack (sphinx-book-theme 1.1 on
pydata-sphinx-theme 0.15) prints in every browser console. The site test fails on console
errors, so both are fixed here rather than ignored.

1. sphinx-thebe registers its inline configuration script twice, so the second copy throws
   ``Identifier 'THEBE_JS_URL' has already been declared``: drop exact duplicate scripts.
2. On a first visit (empty localStorage) the theme's inline head script sets the colour mode
   to ``""`` and pydata-sphinx-theme logs ``Got invalid theme mode: . Resetting to auto.``:
   default the mode to ``auto`` before the theme reads it.
"""
from __future__ import annotations

MODE_DEFAULT = (
    'if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }'
)


def _script_key(js):
    # an inline script is registered with filename None by one extension and "" by another
    filename = getattr(js, "filename", str(js)) or ""
    return (filename, tuple(sorted(getattr(js, "attributes", {}).items())))


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.add_js_file(None, body=MODE_DEFAULT, priority=1)
    app.connect("html-page-context", _dedupe_scripts, priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
