"""Graded and feedback notebooks run no student content (nbjudge.sanitize).

A corpus of hostile payloads, one per place a student can put one (code outputs, markdown,
attachments, raw cells, metadata), each in a notebook beside honest answers: a PNG plot, a
LaTeX output, a markdown answer with **bold**, math and code, a pandas table. Every case asserts
that its payload is gone (or, where it must stay as text, stays escaped), that the honest cells
come through, and what the grader is told. The sanitized corpus is then rendered with nbconvert's
HTMLExporter (the formgrader and feedback pages extend its classic template): no script or
event-handler attribute beyond the template's own. Fast: no kernel, no browser.
"""
from __future__ import annotations

import base64
import copy
import io
import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from nbjudge.sanitize import CSP, add_csp, sanitize_file, sanitize_notebook


# -- honest content --------------------------------------------------------------------------------
def _figure_bytes(fmt: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1.5), dpi=40)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([0, 1, 2], [1, 0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()


PNG = base64.b64encode(_figure_bytes("png")).decode() + "\n"
JPEG = base64.b64encode(_figure_bytes("jpeg")).decode() + "\n"
LATEX = r"$\frac{\partial L}{\partial w} = x^\top \delta$"
ANSWER = ("My answer is **bold**, with $x^2 < y$ and `a < b` inline.\n\n"
          "```python\nif loss < best:\n    best = loss\n```\n\n"
          "| epoch | loss |\n|---|---|\n| 1 | 0.25 |\n\n"
          "See <b>Goodfellow</b> [chapter 6](https://www.deeplearningbook.org) and [above](#top).")
TABLE = ('<div>\n<style scoped>\n    .dataframe tbody tr th:only-of-type { vertical-align: middle; }\n</style>\n'
         '<table border="1" class="dataframe">\n<thead><tr style="text-align: right;"><th></th><th>loss</th></tr>'
         '</thead>\n<tbody><tr><th>0</th><td>0.25</td></tr></tbody>\n</table>\n</div>')


def honest_cells():
    plot = new_code_cell("plot()", execution_count=1, outputs=[
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure size 80x60>"},
                   metadata={"image/png": {"width": 80, "height": 60}})])
    photo = new_code_cell("show()", execution_count=2, outputs=[
        new_output("display_data", data={"image/jpeg": JPEG, "text/plain": "<IPython.core.display.Image>"})])
    latex = new_code_cell("grad()", execution_count=3, outputs=[
        new_output("execute_result", data={"text/latex": LATEX, "text/plain": "grad"}, execution_count=3)])
    table = new_code_cell("df", execution_count=4, outputs=[
        new_output("execute_result", data={"text/html": TABLE, "text/plain": "   loss\n0  0.25"}, execution_count=4)])
    printed = new_code_cell("fit()", execution_count=5, outputs=[
        new_output("stream", name="stdout", text="epoch 1 \x1b[32mloss 0.25\x1b[0m\r\nepoch 2\n"),
        new_output("stream", name="stderr", text="1/10 [==>....] \x08\x08\x08\r2/10 [====>..]\n")])
    answer = new_markdown_cell(ANSWER, metadata={"nbgrader": {"grade_id": "explain", "solution": True,
                                                              "grade": True, "points": 2}})
    return [plot, photo, latex, table, printed, answer]


def notebook(*cells, **metadata):
    nb = new_notebook(cells=honest_cells() + list(cells))
    nb.metadata.update(metadata)
    return nb


def display(data, metadata=None):
    return new_code_cell("show()", outputs=[new_output("display_data", data=data, metadata=metadata or {})])


def html_output(markup):
    return display({"text/html": markup, "text/plain": "<IPython.core.display.HTML object>"})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- the corpus: (case, the hostile cell and notebook metadata, gone, kept, finding) ----------------
#   gone:    strings the sanitized notebook must not contain
#   kept:    strings that must survive next to the payload
#   finding: regex one finding must match
CASES = {
    "html script": (html_output("<p>kept html</p><script>PAYLOAD('/api/contents')</script>"), {},
                    ["<script", "PAYLOAD"], ["<p>kept html</p>"], r"^cell 7 output: removed <script>$"),
    "html img onerror": (html_output('<img src=x onerror="PAYLOAD()"><b>kept html</b>'), {},
                         ["onerror", "PAYLOAD", "src="], ["<b>kept html</b>"], r"output: removed onerror attribute"),
    "html relative image": (html_output('<img src="/api/contents/nbgrader_config.py"><b>kept html</b>'), {},
                            ["/api/contents"], ["<b>kept html</b>"], r"output: removed relative URL"),
    "html svg onload": (html_output('<svg onload="PAYLOAD()"><circle r="5"/></svg><i>kept html</i>'), {},
                        ["<svg", "PAYLOAD", "circle"], ["<i>kept html</i>"], r"output: removed <svg>"),
    "html iframe": (html_output('<iframe src="/api/contents" srcdoc="<script>PAYLOAD()</script>"></iframe>'
                                '<p>kept html</p>'), {},
                    ["<iframe", "PAYLOAD", "/api/contents"], ["<p>kept html</p>"], r"output: removed <iframe>"),
    "html javascript: link": (html_output('<a href=" jav&#x09;ascript:PAYLOAD()">kept html</a>'), {},
                              ["script:", "PAYLOAD"], ["kept html</a>"], r"output: removed javascript: URL"),
    "html data:text/html link": (html_output(f'<a href="data:text/html;base64,{b64("<script>PAYLOAD()</script>")}">'
                                             'kept html</a>'), {},
                                 ["data:text/html", b64("<script>PAYLOAD()</script>")], ["kept html</a>"],
                                 r"output: removed data:text/html URL"),
    "html form": (html_output('<form action="/api/contents" method="post"><input name="path" value="x">'
                              '<button formaction="/api/contents">go</button></form><p>kept html</p>'), {},
                  ["<form", "<input", "<button", "/api/contents"], ["<p>kept html</p>"], r"output: removed <form>"),
    "html style loads a url": (html_output('<div style="background: url(/api/contents/x)">kept html</div>'), {},
                               ["/api/contents", "style="], ["kept html</div>"],
                               r"output: removed style attribute that loads a URL"),
    "application/javascript": (display({"application/javascript": "PAYLOAD()", "text/plain": "kept text"}), {},
                               ["application/javascript", "PAYLOAD"], ["kept text"],
                               r"output: removed application/javascript output"),
    "svg output": (display({"image/svg+xml": "<svg><script>PAYLOAD()</script></svg>", "text/plain": "kept text"}), {},
                   ["image/svg+xml", "PAYLOAD"], ["kept text"],
                   r"output: removed image/svg\+xml output \(SVG can carry script\)"),
    "widget": (display({"application/vnd.jupyter.widget-view+json": {"model_id": "PAYLOAD", "version_major": 2},
                        "text/plain": "kept text"}),
               {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"PAYLOAD": {}}}}},
               ["widget-view", "widget-state", "PAYLOAD"], ["kept text"],
               r"^notebook metadata: removed widget state"),
    "fake png output": (display({"image/png": b64("<html><script>PAYLOAD()</script></html>"), "text/plain": "kept text"}),
                        {}, [b64("<html><script>PAYLOAD()</script></html>")], ["kept text"],
                        r"output: removed image/png output that is not a real image/png image"),
    "output file names": (display({"image/png": PNG}, {"filenames": {"image/png": "/api/contents/PAYLOAD"},
                                                      "image/png": {"width": '1 onerror="PAYLOAD()"'}}), {},
                          ["PAYLOAD", "filenames"], [PNG], r"output: removed output file names"),
    "markdown output": (display({"text/markdown": "**kept md** <script>PAYLOAD()</script>", "text/plain": "md"}), {},
                        ["<script", "PAYLOAD"], ["**kept md**"], r"output: removed <script>"),
    "markdown script": (new_markdown_cell("**kept md** <script>PAYLOAD()</script> after"), {},
                        ["<script", "PAYLOAD"], ["**kept md**", "after"], r"^cell 7 markdown: removed <script>$"),
    "markdown onerror": (new_markdown_cell("**kept md** <img src=x onerror=PAYLOAD()>"), {},
                         ["onerror", "PAYLOAD", "<img"], ["**kept md**"], r"markdown: removed onerror attribute"),
    "markdown iframe": (new_markdown_cell("<iframe src=/api/contents>PAYLOAD</iframe>\n\n**kept md**"), {},
                        ["<iframe", "PAYLOAD", "/api/contents"], ["**kept md**"], r"markdown: removed <iframe>"),
    "markdown javascript: link": (new_markdown_cell("**kept md** [click here](javascript:PAYLOAD())"), {},
                                  ["javascript:", "PAYLOAD"], ["**kept md**", "[click here](#)"],
                                  r"markdown: removed javascript: link"),
    "markdown entity link": (new_markdown_cell("**kept md** [a](<jav&#97;script:PAYLOAD()>) [b](&#106;avascript:PAYLOAD())"),
                             {}, ["script:", "PAYLOAD"], ["**kept md**", "[a](#) [b](#)"],
                             r"markdown: removed javascript: link \(2 times\)"),
    "markdown reference link": (new_markdown_cell("**kept md** [click][x]\n\n[x]: javascript:PAYLOAD()"), {},
                                ["javascript:", "PAYLOAD"], ["**kept md**", "[x]: #"], r"markdown: removed javascript: link"),
    "markdown mermaid": (new_markdown_cell("**kept md**\n\n```mermaid\n<img src=x onerror=SHOWN()>\n```"), {},
                         ["mermaid"], ["**kept md**", "<img src=x onerror=SHOWN()>"],
                         r"markdown: mermaid block shown as code"),
    "markdown html block with math": (new_markdown_cell("<div>\n$<img src=x onerror=SHOWN()>$\n</div>"), {},
                                      [], ["<img src=x onerror=SHOWN()>"],
                                      r"markdown: shown as plain text: after cleaning, nbconvert still rendered"),
    "markdown script in math in html": (new_markdown_cell("<div>\n$<script>SHOWN()</script>$\n</div>"), {},
                                        [], ["<script>SHOWN()</script>"],
                                        r"markdown: shown as plain text: after cleaning, nbconvert still rendered <script>"),
    "svg attachment": (new_markdown_cell("**kept md** ![plot](attachment:plot.svg)", attachments={
                           "plot.svg": {"image/svg+xml": b64("<svg><script>PAYLOAD()</script></svg>")}}), {},
                       ["image/svg+xml", b64("<svg><script>PAYLOAD()</script></svg>"), "![plot]"],
                       ["**kept md**", "[plot](#)"], r"markdown: removed attachment 'plot.svg' \(image/svg\+xml\)"),
    "html attachment as png": (new_markdown_cell("**kept md** ![fake](attachment:fake.png) ![real](attachment:real.png)",
                                                 attachments={"fake.png": {"image/png": b64("<script>PAYLOAD()</script>")},
                                                              "real.png": {"image/png": PNG}}), {},
                               [b64("<script>PAYLOAD()</script>"), "attachment:fake.png"],
                               ["**kept md**", "![real](attachment:real.png)", PNG],
                               r"markdown: removed attachment 'fake.png': not a real image/png image"),
    "raw html cell": (new_raw_cell("<script>SHOWN()</script>", metadata={"raw_mimetype": "text/html",
                                                                          "format": "text/html"}), {},
                      ['"raw_mimetype": "text/html"', '"format"'], ["<script>SHOWN()</script>"],
                      r"^cell 7 raw: no longer pasted into the page as HTML$"),
    "error traceback": (new_code_cell("boom()", outputs=[new_output(
                            "error", ename="ValueError", evalue="<script>SHOWN()</script>",
                            traceback=["\x1b[31mValueError\x1b[0m: <script>SHOWN()</script>"])]), {},
                        [], ["<script>SHOWN()</script>", "\\u001b[31mValueError"], None),
    "terminal controls": (new_code_cell("p()", outputs=[new_output(
                              "stream", name="stdout",
                              text="kept \x1b[32mgreen\x1b[0m\x1b]8;;https://x.example\x07link\x1b]8;;\x07\x1b[2J\x00!\n")]),
                          {}, ["\\u001b]8", "\\u001b[2J", "\\u0000"], ["kept \\u001b[32mgreen\\u001b[0mlink!"],
                          r"output: removed 4 terminal control sequence\(s\)"),
    "trusted metadata": (new_code_cell("1", metadata={"trusted": True, "jupyter": {"widgets": {"PAYLOAD": 1}}}),
                         {"signature": "sha256:PAYLOAD", "trusted": True}, ["trusted", "PAYLOAD", "signature"], ['"1"'],
                         None),
    "hidden source": (new_code_cell("print('graded')", metadata={"transient": {"remove_source": True}}), {},
                      ["remove_source"], ["print('graded')"], r"removed transient.remove_source metadata"),
    "forged grade id": (new_markdown_cell("**kept md**", metadata={"nbgrader": {
                            "grade_id": '"><img src=x onerror=PAYLOAD()>', "solution": True, "grade": True}}), {},
                        ["PAYLOAD"], ["**kept md**"], r"^cell 7: removed nbgrader metadata with an invalid grade id$"),
    "deep html": (html_output("<div>" * 20_000 + "PAYLOAD" + "</div>" * 20_000), {},
                  ["PAYLOAD", "<div><div>"], ["<IPython.core.display.HTML object>"],
                  r"output: removed text/html output nested more than 512 elements deep"),
}


def without_ids(cells):
    return [{key: value for key, value in cell.items() if key != "id"} for cell in cells]


def sanitized(case):
    cell, metadata, *_ = CASES[case]
    nb = notebook(copy.deepcopy(cell), **copy.deepcopy(metadata))
    findings = sanitize_notebook(nb)
    return nb, findings


@pytest.mark.parametrize("case", CASES)
def test_payload_is_gone_and_its_neighbours_stay(case):
    _, _, gone, kept, finding = CASES[case]
    nb, findings = sanitized(case)
    text = json.dumps(nb)
    for payload in gone:
        assert payload not in text, f"{payload!r} survived in {case}"
    for honest in kept:
        assert json.dumps(honest)[1:-1] in text or honest in text, f"{honest!r} was lost in {case}"
    if finding is None:
        assert findings == [], f"nothing was removed, yet: {findings}"
    else:
        assert any(re.search(finding, line) for line in findings), f"no finding like {finding!r} in {findings}"
    honest = new_notebook(cells=honest_cells())
    sanitize_notebook(honest)
    assert without_ids(nb.cells[:6]) == without_ids(honest.cells), "an honest cell changed next to the payload"


def test_honest_notebook_passes_untouched_but_for_cosmetics():
    nb = new_notebook(cells=honest_cells())
    before = copy.deepcopy(nb)
    assert sanitize_notebook(nb) == [], "an honest notebook must not produce incidents"
    for index in (0, 1, 2, 4, 5):
        assert nb.cells[index] == before.cells[index], f"honest cell {index + 1} changed"
    assert nb.cells[0].outputs[0].metadata == {"image/png": {"width": 80, "height": 60}}
    table = nb.cells[3].outputs[0].data["text/html"]
    assert "<table" in table and "<th>loss</th>" in table and "<td>0.25</td>" in table
    assert "<style" not in table and "class=" not in table, "pandas' styling is dropped, silently"


def test_findings_are_counted_and_name_the_grade_id():
    cell = html_output("<script>a()</script><script>b()</script><img src=x onerror=c()>")
    cell.metadata["nbgrader"] = {"grade_id": "relu_plot", "solution": True}
    findings = sanitize_notebook(notebook(cell))
    assert findings == ["cell 7 (relu_plot) output: removed <script> (2 times)",
                        "cell 7 (relu_plot) output: removed relative URL (a request to the server)",
                        "cell 7 (relu_plot) output: removed onerror attribute"]


def test_links_and_images_allowed_in_html_output():
    cell = html_output(f'<a href="https://example.org/x">web</a> <a href="mailto:ta@example.org">mail</a> '
                       f'<img src="data:image/png;base64,{PNG.strip()}" alt="plot" width="80">')
    nb = notebook(cell)
    assert sanitize_notebook(nb) == []
    markup = nb.cells[6].outputs[0].data["text/html"]
    assert '<a href="https://example.org/x" rel="noopener noreferrer">web</a>' in markup
    assert 'href="mailto:ta@example.org"' in markup
    assert f'src="data:image/png;base64,{PNG.strip()}"' in markup and 'alt="plot"' in markup


def test_a_markdown_answer_keeps_its_markdown_and_ordinary_html():
    source = ("# Answer\n\n**bold** _it_ $\\sum_i x_i$ and $$a<b$$\n\n- [ ] a task\n\n"
              "<b>b</b> <i>i</i> <sub>2</sub> <br> <table><tr><td colspan=\"2\">cell</td></tr></table>\n\n"
              "```\n<script>shown()</script>\n```\n\nA `<script>` tag, x < y and <https://example.org>.")
    nb = notebook(new_markdown_cell(source))
    assert sanitize_notebook(nb) == []
    assert nb.cells[6].source == source


def test_markdown_tags_are_rewritten_canonically():
    nb = notebook(new_markdown_cell('<a href="https://e.org" onclick="x()" class="btn score">link</a> '
                                    '<p title="t" style="position:fixed">p</p> <font color=red>f</font>'))
    findings = sanitize_notebook(nb)
    assert nb.cells[6].source == ('<a href="https://e.org" rel="noopener noreferrer">link</a> '
                                  '<p title="t">p</p> f')
    assert findings == ["cell 7 markdown: removed onclick attribute"]


def test_remote_markdown_image_becomes_a_link():
    nb = notebook(new_markdown_cell("![plot](https://tracker.example/p.png)"))
    assert sanitize_notebook(nb) == ["cell 7 markdown: removed remote image (kept as a link)"]
    assert nb.cells[6].source == "[plot](https://tracker.example/p.png)"


def test_raw_cell_without_mimetype_is_no_longer_html():
    nb = notebook(new_raw_cell("plain notes, no markup"))
    assert sanitize_notebook(nb) == []
    assert nb.cells[6].metadata.raw_mimetype == "text/plain", "'' is rendered as HTML by nbconvert"
    assert nb.cells[6].source == "plain notes, no markup"


def test_not_a_v4_notebook_is_refused():
    with pytest.raises(ValueError, match=r"expected an nbformat 4 notebook, got nbformat 3"):
        sanitize_notebook({"nbformat": 3, "worksheets": []})


# -- rendering ---------------------------------------------------------------------------------------
class _Tags(HTMLParser):
    """Tags and attributes of a (sanitized, so trusted) rendered page."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self._script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.handlers += [(tag, name) for name, _ in attrs if re.fullmatch(r"on\w+", name)]
        if tag == "script":
            self._script = [dict(attrs).get("src") or dict(attrs).get("type") or ""]

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script).strip())
            self._script = None


def rendered(nb):
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    parser = _Tags()
    parser.feed(page)
    return page, parser


def corpus():
    nb = notebook()
    for cell, metadata, *_ in CASES.values():
        nb.cells.append(copy.deepcopy(cell))
        nb.metadata.update(copy.deepcopy(metadata))
    return nb


def test_rendered_corpus_runs_nothing_of_the_student():
    template_page, template = rendered(new_notebook())
    nb = corpus()
    sanitize_notebook(nb)
    page, tags = rendered(nb)
    assert "PAYLOAD" not in page
    assert tags.handlers == template.handlers == [], "no event-handler attribute in the page"
    assert sorted(tags.scripts) == sorted(template.scripts), "only the template's own scripts"
    assert not re.search(r"<(iframe|object|embed|form|svg|input|base|meta http-equiv)\b", page, re.I)
    assert not re.search(r"\s(href|src)\s*=\s*[\"']?\s*(javascript|data:text)", page, re.I)
    assert "&lt;script&gt;SHOWN()&lt;/script&gt;" in page, "the traceback stays, escaped"
    assert "<strong>bold</strong>" in page and "<b>Goodfellow</b>" in page
    assert f'src="data:image/png;base64,{PNG}' in page and "<td>0.25</td>" in page
    assert LATEX in page


def test_unsanitized_corpus_would_have_run_the_payloads():
    """The rendering check can fail: on the raw corpus it sees the student's scripts and handlers."""
    _, template = rendered(new_notebook())
    page, tags = rendered(corpus())
    assert tags.handlers, "the raw corpus has onerror/onload attributes"
    assert len(tags.scripts) > len(template.scripts)
    assert 'href="javascript:PAYLOAD()' in page


# -- Content-Security-Policy --------------------------------------------------------------------------
def _head_children(page):
    class Head(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.children = False, []

        def handle_starttag(self, tag, attrs):
            if tag == "head":
                self.inside = True
            elif self.inside:
                self.children.append((tag, dict(attrs)))

        def handle_endtag(self, tag):
            self.inside = self.inside and tag != "head"

    parser = Head()
    parser.feed(page)
    return parser.children


def test_csp_forbids_scripts_and_requests():
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'none'" and directives["default-src"] == "'none'"
    assert directives["img-src"] == "data:" and directives["style-src"] == "'unsafe-inline'"
    assert directives["base-uri"] == directives["form-action"] == "'none'"


def test_add_csp_puts_the_policy_first_in_the_feedback_head():
    nb = notebook()
    sanitize_notebook(nb)
    page, _ = rendered(nb)
    secured = add_csp(page)
    tag, attrs = _head_children(secured)[0]
    assert tag == "meta" and attrs["http-equiv"] == "Content-Security-Policy"
    assert "script-src 'none'" in attrs["content"] and "style-src 'unsafe-inline'" in attrs["content"]
    assert "frame-ancestors" not in attrs["content"], "ignored (and logged as an error) in a <meta>"
    assert secured.count("<style") == page.count("<style") > 0, "the inline CSS stays"
    assert add_csp(secured) == secured, "adding it twice changes nothing"


@pytest.mark.parametrize("page, before", [
    ("<html><body><p>x</p></body></html>", "<html>"),
    ("<!DOCTYPE html>\n<p>x</p>", "<!DOCTYPE html>"),
    ("<p>x</p>", ""),
])
def test_add_csp_creates_a_head(page, before):
    secured = add_csp(page)
    assert secured.startswith(before + '<head><meta http-equiv="Content-Security-Policy"')
    assert secured.endswith(page[len(before):])


def test_add_csp_ignores_a_head_inside_a_comment():
    page = "<!DOCTYPE html><html><!-- <head> --><head><title>t</title></head><body></body></html>"
    secured = add_csp(page)
    assert "<!-- <head> -->" in secured
    assert secured.index("<head><meta http-equiv") == page.index("<head><title>")


# -- files --------------------------------------------------------------------------------------------
def test_sanitize_file_rewrites_a_hostile_notebook_keeping_its_mode(tmp_path):
    path = tmp_path / "assignment.ipynb"
    nbformat.write(notebook(copy.deepcopy(CASES["html script"][0])), path)
    path.chmod(0o640)
    findings = sanitize_file(path)
    assert findings == ["cell 7 output: removed <script>"]
    assert "PAYLOAD" not in path.read_text() and oct(path.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in tmp_path.iterdir()] == ["assignment.ipynb"], "no temporary file left"
    assert sanitize_file(path) == []


def test_sanitize_file_leaves_a_clean_file_alone(tmp_path):
    path = tmp_path / "clean.ipynb"
    nb = new_notebook(cells=[new_markdown_cell("**bold**"), new_code_cell("1 + 1")])
    path.write_text(json.dumps(nb, indent=4))             # not nbformat's own layout
    before = path.read_bytes()
    assert sanitize_file(path) == []
    assert path.read_bytes() == before


def test_sanitize_file_refuses_a_symlink(tmp_path):
    target = tmp_path / "target.ipynb"
    nbformat.write(notebook(), target)
    (tmp_path / "link.ipynb").symlink_to(target)
    with pytest.raises(ValueError, match=r"refusing to sanitize a symbolic link: .*link\.ipynb"):
        sanitize_file(tmp_path / "link.ipynb")


# -- cost -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", ["<!--", "</", "<a", "<a b=\"", "<div>", "<ul><li>", "<b><div></b>", "`", "$",
                                  "[", "](", "](<", "[x](", "<script>", "\\\\(", "\\begin{x}", "<a href=x "])
def test_hostile_sizes_cost_linear_time(unit):
    """A pathological pattern (quadratic for html.parser, html5ever or nbconvert's math rules) as a
    200 kB output and a 50 kB markdown cell takes seconds, not minutes."""
    text = unit * (200_000 // len(unit))
    nb = new_notebook(cells=[html_output(text), new_markdown_cell(text[:50_000])])
    start = time.perf_counter()
    sanitize_notebook(nb)
    assert time.perf_counter() - start < 5


def test_module_does_not_import_nbgrader():
    code = "import sys, nbjudge.sanitize; print('nbgrader' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.stdout.strip() == "False"


# -- random markup -------------------------------------------------------------------------------------
FRAGMENTS = ["<", ">", "/", "!", "-", "<!--", "-->", "=", '"', "'", " ", "\n", "\n\n", "img", "svg", "script", "onerror",
             "src", "<img", "<svg", "</", "<!", "<script>", "</script>", "<style>", "<textarea>", "&quot;", "&#62;", "&#106;",
             "\t", "`", "```", "```mermaid\n", "~~~", "<a ", "href=", "javascript:", "jav&#x61;script:", "data:text/html,",
             "onclick=x()", "<b>", "<iframe", "<div>", "</div>", "$", "$$", "\\\\(", "\\\\)", "\\begin{x}", "\\end{x}", "[", "]",
             "](", ")", "![", "]: ", "<http://x>", "<javascript:x>", "*", "> ", "- ", "    ", "|", "#", "<math>", "<td>", "\\"]


def test_random_markup_never_renders_anything_active():
    """Random soups of markup fragments, as markdown cells and as HTML outputs, sanitized and rendered
    by nbconvert, then parsed as a browser would (html5lib, vendored by nbconvert's bleach): no
    active element, event handler or script URL in any cell."""
    html5lib = pytest.importorskip("bleach._vendor.html5lib")
    rng = __import__("random").Random(20240611)
    soups = ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40))) for _ in range(400)]
    nb = new_notebook(cells=[new_markdown_cell(soup) for soup in soups] + [html_output(soup) for soup in soups])
    sanitize_notebook(nb)
    page, _ = rendered(nb)
    tree = html5lib.parse(page, treebuilder="etree", namespaceHTMLElements=False)
    container = tree.find(".//*[@id='notebook-container']")
    found = []
    for element in container.iter():
        tag = element.tag.split("}")[-1].lower() if isinstance(element.tag, str) else ""
        attrs = {str(key).split("}")[-1].lower(): value for key, value in element.attrib.items()}
        if tag in {"script", "iframe", "object", "embed", "form", "svg", "math", "style", "link", "meta", "base"}:
            found.append(tag)
        found += [name for name in attrs if name.startswith("on")]
        for name in ("href", "src", "action", "formaction", "srcdoc"):
            url = re.sub(r"[\t\n\r]", "", attrs.get(name, "")).strip().lower()
            if url and not url.startswith(("http:", "https:", "mailto:", "#", "data:image/png;base64,")):
                found.append(f"{name}={url[:30]}")
    assert found == []
