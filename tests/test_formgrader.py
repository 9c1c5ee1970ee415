"""A hostile submission in the instructor's and the student's browser: nothing of it runs.

nbgrader's formgrader renders a graded notebook on the Jupyter server's own origin, so a student's
script there acts with the instructor's session (one ``PUT /api/contents/...`` rewrites
``nbgrader_config.py``); feedback pages are nbconvert HTML as well. This test grades a scratch course of
the tiny fixture assignment (tests/hostile/tiny) with one honest student (ada) and one hostile student
(mallory) whose answers hold every kind of active content: ``<script>``, ``<img onerror>``, inline SVG
with ``onload`` and ``<script>``, an ``image/svg+xml`` output with script, ``application/javascript``,
``<iframe srcdoc>``, a ``javascript:`` link, and raw HTML (``<script>``, ``<img onerror>``) in the
written answer. Every payload sets a marker (``window.__pwned``), changes the title, opens a dialog and
writes ``pwned-<payload>.txt`` into the course through ``/api/contents`` with the page's XSRF token.

A real Jupyter server with nbgrader's formgrader serves the course; headless Chromium (as in
``test_site.py``) logs in with the token and opens ``/formgrader/submissions/<id>/`` for each student,
then the feedback pages (``feedback/<student>/tiny/assignment.html``, served by a local http.server).
Checked: the honest text is on the page, no marker, no dialog, no script/SVG/iframe/event handler/
``javascript:`` link in the notebook, no request to ``/api/contents`` (the hostile page makes no
request the honest page does not make) and no file written; the feedback page carries the CSP meta
and requests nothing but itself and ``data:`` URLs.

Controls (so that every check is known to fail on a live payload): the unsanitized graded notebook
(taken just before ``record`` sanitizes it) is filed as a third submission (trudy); on its formgrader
page every payload runs and writes its file; its feedback page runs nothing while the CSP meta is in
it (the CSP alone holds), and runs the payloads once the meta is taken out.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import http.server
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import nbformat
import pytest

from hostile import support

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
SERVER_START_SECONDS = 120   # a loaded 2-core machine imports jupyterlab + nbgrader slowly


# ----------------------------------------------------------------------------------------------
# the hostile submission

def payload_js(tag: str) -> str:
    """What a payload runs: a marker, a new title, a dialog, and a file written through the contents
    API with the page's XSRF token (the attack on the instructor). Only single quotes, no ``<``/``>``/
    ``&``, so it fits in any attribute, a ``javascript:`` URL and a ``<script>`` alike."""
    return ("(function(){var w=window.top;w.__pwned=(w.__pwned||[]).concat(['%(t)s']);"
            "w.document.title='PWNED %(t)s';var m=document.cookie.match(/_xsrf=([^;]+)/);"
            "fetch('/api/contents/pwned-%(t)s.txt',{method:'PUT',credentials:'same-origin',"
            "headers:{'Content-Type':'application/json','X-XSRFToken':m?decodeURIComponent(m[1]):''},"
            "body:JSON.stringify({type:'file',format:'text',content:'written by the %(t)s payload'})});"
            "alert('%(t)s');})()") % {"t": tag}


HTML_WORDS = "Ordinary words of an HTML output"
PLAIN_WORDS = "ordinary words of a text/plain output"
LINK_WORDS = "a javascript link"
MARKDOWN_WORDS = "Accuracy flatters a lazy classifier"
SVG = "http://www.w3.org/2000/svg"

#: payload name -> how it is put into the hostile answer (an HTML output unless said otherwise)
HTML_PAYLOADS = {
    "script": f"<p>{HTML_WORDS}</p><script>{payload_js('script')}</script>",
    "img-onerror": f'<img src=x onerror="{payload_js("img-onerror")}">',
    "svg-onload": f'<svg xmlns="{SVG}" width="10" height="10" onload="{payload_js("svg-onload")}"></svg>',
    "svg-script": f'<svg xmlns="{SVG}" width="10" height="10"><script>{payload_js("svg-script")}</script></svg>',
    "iframe-srcdoc": f'<iframe srcdoc="<script>{payload_js("iframe-srcdoc")}</script>"></iframe>',
    "link": f'<a href="javascript:{payload_js("link")}">{LINK_WORDS}</a>',
}
SVG_OUTPUT = (f'<svg xmlns="{SVG}" width="10" height="10" onload="{payload_js("svg-output")}">'
              f'<script>{payload_js("svg-output-script")}</script></svg>')

RELU_ANSWER = "\n".join(
    ["from IPython.display import HTML, SVG, Javascript, display"]
    + [f"display(HTML({html!r}))" for html in HTML_PAYLOADS.values()]
    + [f"display(SVG({SVG_OUTPUT!r}))", f"display(Javascript({payload_js('javascript')!r}))", "",
       "def relu(z):", "    return np.maximum(0.0, np.asarray(z, dtype=float))", "", repr(PLAIN_WORDS)])
MARKDOWN_ANSWER = (f"{MARKDOWN_WORDS}: always predicting the majority class scores high.\n\n"
                   f"<script>{payload_js('markdown-script')}</script>\n\n"
                   f'The minority class is missed. <img src=x onerror="{payload_js("markdown-img")}">\n')

#: payloads that run in nbgrader's formgrader page when nothing is sanitized (shown by the control).
#: An ``image/svg+xml`` output is not among them: nbconvert shows it as ``<img src="data:...">``.
LIVE_IN_FORMGRADER = {"script", "img-onerror", "svg-onload", "svg-script", "iframe-srcdoc", "link", "javascript",
                      "markdown-script", "markdown-img"}
#: ... and in a feedback page without its CSP: the same but ``application/javascript``, whose
#: template line ``var element = $(...)`` fails first (feedback pages load no jQuery)
LIVE_IN_FEEDBACK = LIVE_IN_FORMGRADER - {"javascript"}

HOSTILE, HONEST, CONTROL = "mallory", "ada", "trudy"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pwned_files(course: Path) -> list[str]:
    return sorted(p.name for p in course.glob("pwned*"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The graded course: ada honest, mallory hostile (sanitized), trudy the unsanitized control."""
    from nbgrader.api import Gradebook

    import nbjudge.grade
    from nbjudge import feedback

    if not support.env_ok():
        pytest.fail("bubblewrap (bwrap) is needed to grade in the sandbox: apt-get install bubblewrap")
    folder = support.make_course(tmp_path_factory.mktemp("formgrader") / "course")
    support.write(folder, HONEST, support.submission(folder))
    support.write(folder, HOSTILE, support.submission(folder, {"relu": RELU_ANSWER, "why_accuracy": MARKDOWN_ANSWER}))

    # the control: record() sanitizes the executed notebook in place; keep a copy from just before
    real = nbjudge.grade.sanitize_notebook
    unsanitized = []

    def spy(nb):
        if any("__pwned" in value for cell in nb.cells for out in cell.get("outputs", [])
               for value in out.get("data", {}).values() if isinstance(value, str)):
            unsanitized.append(copy.deepcopy(nb))
        return real(nb)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nbjudge.grade, "sanitize_notebook", spy)
        results, log = support.quiet_grade(folder, sandbox=True)
    assert len(unsanitized) == 1, "the hostile notebook never reached the sanitizer:\n" + "\n".join(log)
    feedback.generate(folder, "tiny", log=lambda *a: None)

    # trudy: a gradebook submission whose graded notebook is the unsanitized one
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gb:
        gb.update_or_create_student(CONTROL)
        gb.add_submission("tiny", CONTROL)
    target = folder / "autograded" / CONTROL / "tiny"
    target.mkdir(parents=True)
    nbformat.write(unsanitized[0], target / "assignment.ipynb")
    feedback.generate(folder, "tiny", students=[CONTROL], log=lambda *a: None)

    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gb:
        ids = {s: gb.find_submission_notebook("assignment", "tiny", s).id for s in (HONEST, HOSTILE, CONTROL)}
    return {"dir": folder, "results": {g.student: g for g in results}, "log": log, "ids": ids,
            "config_digest": _digest(folder / "nbgrader_config.py")}


def test_hostile_submission_is_recorded_with_unsafe_content(course):
    results = course["results"]
    kinds = {i.kind for i in results[HOSTILE].incidents}
    assert "unsafe-content" in kinds, f"mallory's incidents: {sorted(kinds)}\n" + "\n".join(course["log"])
    assert "unsafe-content" not in {i.kind for i in results[HONEST].incidents}
    findings = "\n".join(i.message for i in results[HOSTILE].incidents if i.kind == "unsafe-content")
    for what in ("script", "onerror", "svg", "javascript", "iframe"):
        assert what in findings.lower(), f"no unsafe-content finding mentions {what!r}:\n{findings}"
    assert "why_accuracy" in findings, f"the markdown answer's <script> was not reported:\n{findings}"
    print("unsafe-content findings:\n" + findings)
    # the hostile student's own work still counts: relu correct, accuracy the solution's
    assert results[HOSTILE].score >= 3, (results[HOSTILE].score, course["log"])


# ----------------------------------------------------------------------------------------------
# the Jupyter server with nbgrader's formgrader

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter(course, tmp_path_factory):
    """A real ``jupyter server`` rooted at the course folder (nbgrader's server extensions enabled in
    the venv); yields its origin and token; stops it and its children at the end, failed or not."""
    folder = course["dir"]
    scratch = tmp_path_factory.mktemp("jupyter")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
               PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={folder}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log_path = scratch / "server.log"
    with open(log_path, "wb") as log:
        # the formgrader takes the course (nbgrader_config.py, gradebook.db) from its working folder
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    origin = f"http://127.0.0.1:{port}"

    def tail():
        return log_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter server exited with {proc.returncode}:\n{tail()}")
            try:
                with urllib.request.urlopen(f"{origin}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter server did not answer within {SERVER_START_SECONDS} s:\n{tail()}")
            time.sleep(0.25)
        yield {"origin": origin, "token": token, "log": tail}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)   # the server's own process group (start_new_session)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


# ----------------------------------------------------------------------------------------------
# the browser

def _offline(context, *origins):
    """Requests to anything but ``origins`` (here only nbconvert's MathJax from its CDN) fail at once
    instead of waiting for a network this machine does not have; the pages' request logs still see them."""
    def route(r):
        if r.request.url.startswith(origins):
            r.continue_()
        else:
            r.abort()
    context.route("**/*", route)


@pytest.fixture(scope="module")
def instructor(browser, jupyter):
    """A browser context logged in to the Jupyter server through its login form, with the token."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    _offline(context, jupyter["origin"] + "/")
    page = context.new_page()
    page.goto(f"{jupyter['origin']}/login?next={quote('/formgrader/gradebook/tiny/assignment')}",
              wait_until="load", timeout=60_000)
    page.fill("input[name=password]", jupyter["token"])
    with page.expect_navigation(wait_until="load", timeout=60_000):
        page.press("input[name=password]", "Enter")
    assert "/formgrader/gradebook/tiny/assignment" in page.url, f"login failed: {page.url}\n{jupyter['log']()}"
    assert any(c["name"].startswith("username-") for c in context.cookies()), "no login cookie after the token login"
    page.close()
    yield context
    context.close()


#: what the page holds of student content that could run; ``root`` is the notebook's container
STATE_JS = """(root) => {
    const box = document.querySelector(root) || document.body;
    const all = Array.from(box.querySelectorAll('*'));
    return {
        pwned: window.__pwned || [],
        title: document.title,
        scripts: box.querySelectorAll('script').length,
        svg: box.querySelectorAll('svg').length,
        iframes: box.querySelectorAll('iframe, frame, object, embed').length,
        handlers: all.flatMap(e => Array.from(e.attributes).filter(a => /^on/i.test(a.name))
                                         .map(a => e.tagName.toLowerCase() + '[' + a.name + ']')),
        js_links: all.filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src') || ''))
                     .map(e => e.outerHTML.slice(0, 80)),
        text: box.innerText,
    };
}"""


class View:
    """A page opened in a fresh tab, with every request and dialog recorded from the first byte."""

    def __init__(self, context, url, root="#notebook-container"):
        self.root, self.url = root, url
        self.page = context.new_page()
        self.requests, self.dialogs = [], []
        self.blocked = []   # loads the browser refused itself (CSP): they never leave it
        self.page.on("request", lambda r: self.requests.append((r.method, r.url)))
        self.page.on("requestfailed", lambda r: r.failure == "csp" and self.blocked.append((r.method, r.url)))

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()
        self.page.on("dialog", dialog)
        self.response = self.page.goto(url, wait_until="load", timeout=60_000)
        # "load" waits for every image (onerror fired) and iframe (srcdoc ran); then no request for 500 ms
        self.page.wait_for_load_state("networkidle", timeout=60_000)

    def state(self):
        return self.page.evaluate(STATE_JS, self.root)

    def click_link(self):
        """Click the student's "javascript:" link, whatever the sanitizer made of it."""
        link = self.page.get_by_text(LINK_WORDS, exact=True)
        assert link.count() == 1, f"the link {LINK_WORDS!r} is not on the page"
        href = link.get_attribute("href")
        link.click()
        self.page.wait_for_load_state("load")
        return href

    def close(self):
        self.page.close()


def _runs_script(href) -> bool:
    return bool(href) and re.sub(r"[\x00-\x20]", "", href).lower().startswith("javascript:")


def _normalized(requests, ids):
    out = set()
    for method, url in requests:
        for sid in ids.values():
            url = url.replace(sid, "{submission}")
        out.add((method, url))
    return out


def _api_contents(requests):
    return [(m, u) for m, u in requests if urlsplit(u).path.startswith("/api/contents")]


def _submission_url(jupyter, course, student):
    return f"{jupyter['origin']}/formgrader/submissions/{course['ids'][student]}/"


def test_formgrader_runs_no_payload_of_a_hostile_submission(course, jupyter, instructor):
    folder = course["dir"]
    for name in _pwned_files(folder):    # left by the control if it ran first
        (folder / name).unlink()
    honest = View(instructor, _submission_url(jupyter, course, HONEST))
    try:
        assert honest.response.status == 200, jupyter["log"]()
        assert MARKDOWN_WORDS not in honest.state()["text"]
        # the grader sees the rubric of the written answer (kept out of the student's release)
        assert "Rubric (1 point)" in honest.state()["text"], "the formgrader page shows no rubric"
        assert "names the majority class" in honest.state()["text"]
    finally:
        honest.close()

    view = View(instructor, _submission_url(jupyter, course, HOSTILE))
    try:
        assert view.response.status == 200, jupyter["log"]()
        # the notebook rendered: nbgrader's panels and the honest text around the payloads
        view.page.wait_for_selector(".nbgrader_cell", timeout=30_000)
        text = view.state()["text"]
        for words in (MARKDOWN_WORDS, "The minority class is missed", HTML_WORDS, PLAIN_WORDS, LINK_WORDS):
            assert words in text, f"{words!r} is not visible on the formgrader page"
        assert view.page.get_by_text(MARKDOWN_WORDS).first.is_visible()
        href = view.click_link()
        SHOTS.mkdir(parents=True, exist_ok=True)
        view.page.screenshot(path=str(SHOTS / "formgrader_hostile_submission.png"), full_page=True)

        state = view.state()
        assert state["pwned"] == [], f"payloads ran in the formgrader: {state['pwned']}"
        assert not state["title"].startswith("PWNED"), state["title"]
        assert view.dialogs == [], f"dialogs opened: {view.dialogs}"
        assert not _runs_script(href), f"the link kept its javascript: URL: {href[:60]!r}..."
        assert state["scripts"] == 0, f"{state['scripts']} <script> element(s) in the rendered notebook"
        assert state["svg"] == 0 and state["iframes"] == 0, state
        assert state["handlers"] == [], f"event-handler attributes in the notebook: {state['handlers']}"
        assert state["js_links"] == [], f"javascript: URLs in the notebook: {state['js_links']}"

        assert _api_contents(view.requests) == [], f"requests to the contents API: {_api_contents(view.requests)}"
        writes = [(m, u) for m, u in view.requests if m in ("PUT", "POST", "PATCH", "DELETE")]
        assert writes == [], f"the hostile page sent {writes}"
        extra = _normalized(view.requests, course["ids"]) - _normalized(honest.requests, course["ids"])
        assert not extra, f"requests the honest student's page does not make: {sorted(extra)}"
        assert _pwned_files(folder) == [], f"files written into the course: {_pwned_files(folder)}"
        print("formgrader requests (hostile page):", *sorted(_normalized(view.requests, course["ids"])), sep="\n  ")
        assert _digest(folder / "nbgrader_config.py") == course["config_digest"]
    finally:
        view.close()


def test_control_unsanitized_notebook_runs_every_payload_in_the_formgrader(course, jupyter, instructor):
    """The same page for the notebook as it was before sanitizing: the checks above see each payload."""
    folder = course["dir"]
    view = View(instructor, _submission_url(jupyter, course, CONTROL))
    try:
        assert view.response.status == 200, jupyter["log"]()
        view.click_link()
        expected = sorted(LIVE_IN_FORMGRADER)
        view.page.wait_for_function("(want) => want.every(t => (window.__pwned || []).includes(t))",
                                    arg=expected, timeout=30_000)
        view.page.wait_for_load_state("networkidle", timeout=60_000)
        state = view.state()
        assert set(state["pwned"]) == LIVE_IN_FORMGRADER, state["pwned"]
        assert state["title"].startswith("PWNED") and len(view.dialogs) >= len(LIVE_IN_FORMGRADER)
        assert state["scripts"] > 0 and state["svg"] > 0 and state["iframes"] > 0
        assert {"img[onerror]", "svg[onload]"} <= set(state["handlers"]), state["handlers"]
        assert state["js_links"], "the control lost its javascript: link"
        puts = [u for m, u in _api_contents(view.requests) if m == "PUT"]
        assert len(puts) >= len(LIVE_IN_FORMGRADER), puts
        # the instructor's session did write into the course folder: the attack works unsanitized
        assert _pwned_files(folder) == sorted(f"pwned-{t}.txt" for t in LIVE_IN_FORMGRADER), _pwned_files(folder)
    finally:
        view.close()
        for name in _pwned_files(folder):
            (folder / name).unlink()


# ----------------------------------------------------------------------------------------------
# the feedback pages

class LoggingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the feedback folder and notes every request it answers (the server's side of the story)."""
    seen: list

    def log_request(self, code="-", size="-"):
        self.seen.append(f"{self.command} {self.path}")

    def log_message(self, *args):
        pass


class FeedbackServer:
    def __init__(self, folder):
        self.seen = []
        handler = type("Handler", (LoggingHandler,), {"seen": self.seen})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(handler, directory=str(folder)))
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def feedback_server(course):
    server = FeedbackServer(course["dir"] / "feedback")
    yield server
    server.close()


@pytest.fixture
def student_browser(browser, feedback_server):
    feedback_server.seen.clear()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    _offline(context, feedback_server.origin + "/")
    yield context
    context.close()


CSP_META = re.compile(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", re.I)


def _feedback_view(context, server, student, page="assignment.html"):
    return View(context, f"{server.origin}/{student}/tiny/{page}")


def _sent(view):
    """Requests that left the browser for anything but the page itself and data: URLs (Playwright
    also reports the loads a CSP refused, with failure "csp"; those never reach the network)."""
    return [(m, u) for m, u in view.requests
            if u != view.url and not u.startswith("data:") and (m, u) not in view.blocked]


def test_feedback_page_runs_no_payload_and_requests_nothing(course, feedback_server, student_browser):
    view = _feedback_view(student_browser, feedback_server, HOSTILE)
    try:
        assert view.response.status == 200
        first = view.page.evaluate("() => document.head.firstElementChild && document.head.firstElementChild.outerHTML")
        assert first and CSP_META.match(first), f"the first element of <head> is not the CSP meta: {first!r}"
        csp = view.page.get_attribute("meta[http-equiv='Content-Security-Policy']", "content")
        assert "script-src 'none'" in csp and "default-src 'none'" in csp, csp
        text = view.state()["text"]
        for words in (MARKDOWN_WORDS, HTML_WORDS, PLAIN_WORDS, LINK_WORDS):
            assert words in text, f"{words!r} is not visible on the feedback page"
        href = view.click_link()
        SHOTS.mkdir(parents=True, exist_ok=True)
        view.page.screenshot(path=str(SHOTS / "feedback_hostile_submission.png"), full_page=True)
        state = view.state()
        assert state["pwned"] == [] and not state["title"].startswith("PWNED"), state["pwned"]
        assert view.dialogs == [], view.dialogs
        assert not _runs_script(href), f"the link kept its javascript: URL: {href[:60]!r}..."
        assert state["svg"] == 0 and state["iframes"] == 0, state
        assert state["handlers"] == [] and state["js_links"] == [], state
        assert _sent(view) == [], f"the feedback page requested {_sent(view)}"
        assert feedback_server.seen == [f"GET /{HOSTILE}/tiny/assignment.html"], feedback_server.seen
        refused = sorted({u for m, u in view.blocked})
        print(f"feedback page: the CSP refused {len(refused)} load(s): {refused}")
    finally:
        view.close()


def test_feedback_csp_alone_stops_an_unsanitized_notebook(course, feedback_server, student_browser):
    """trudy's feedback page is made from the unsanitized notebook: only its CSP stands in the way."""
    view = _feedback_view(student_browser, feedback_server, CONTROL)
    try:
        assert view.response.status == 200
        view.click_link()
        state = view.state()
        assert state["scripts"] > 0 and state["handlers"], "the control page holds no active content"
        assert state["pwned"] == [] and view.dialogs == [], f"ran despite the CSP: {state['pwned']} {view.dialogs}"
        assert _sent(view) == [], f"requests despite the CSP: {_sent(view)}"
        assert feedback_server.seen == [f"GET /{CONTROL}/tiny/assignment.html"], feedback_server.seen
    finally:
        view.close()


def test_control_feedback_without_csp_runs_the_payloads(course, feedback_server, student_browser):
    page = course["dir"] / "feedback" / CONTROL / "tiny" / "assignment.html"
    stripped, n = CSP_META.subn("", page.read_text())
    assert n == 1
    (page.parent / "no-csp.html").write_text(stripped)
    view = _feedback_view(student_browser, feedback_server, CONTROL, "no-csp.html")
    try:
        view.click_link()
        view.page.wait_for_function("(want) => want.every(t => (window.__pwned || []).includes(t))",
                                    arg=sorted(LIVE_IN_FEEDBACK), timeout=30_000)
        state = view.state()
        assert set(state["pwned"]) == LIVE_IN_FEEDBACK, state["pwned"]
        view.page.wait_for_load_state("networkidle", timeout=60_000)
        assert view.dialogs and _sent(view), "the checks of the feedback test would not see a payload"
        assert any(line.startswith("PUT /api/contents/pwned-") for line in feedback_server.seen), feedback_server.seen
    finally:
        view.close()
