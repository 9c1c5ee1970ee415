"""The built site in a real browser: every page of _build/html through headless Chromium.

Run after the book is built (``make test`` builds it first). For every page: HTTP 200, no
JavaScript console errors or failed requests, math typeset by MathJax (no raw ``$$`` or ``\\frac``
left in the text), every image loaded with a non-zero size, every internal link and anchor
resolving; the search page finds "backpropagation"; notebook pages carry launch and download
buttons. Screenshots of three pages go to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.slow


def site_pages():
    if not (SITE / "index.html").is_file():
        return []
    skip = {"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"}
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html") if not skip & set(p.parts))


PAGES = site_pages()


@pytest.fixture(scope="module")
def server():
    if not PAGES:
        pytest.fail(f"{SITE} has no built site: run `jupyter-book build .` (make book) first")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class PageVisit:
    """A page opened in a fresh tab, with every console error and failed request recorded."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))
        self.response = self.page.goto(url, wait_until="load", timeout=60_000)

    def wait_for_mathjax(self):
        self.page.wait_for_function(
            "() => !document.querySelector('.math') || (window.MathJax && MathJax.startup && MathJax.startup.document"
            " && MathJax.startup.promise)", timeout=30_000)
        self.page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")

    def close(self):
        self.page.close()


@functools.lru_cache(maxsize=None)
def ids_in(path: Path) -> frozenset:
    html = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', html))


@pytest.mark.parametrize("path", PAGES)
def test_page(server, browser, path):
    visit = PageVisit(browser, urljoin(server, path))
    try:
        assert visit.response is not None and visit.response.status == 200
        page = visit.page
        if path == "index.html":  # Jupyter Book's root is a redirect to the landing page
            page.wait_for_url("**/intro.html", timeout=30_000)
            page.wait_for_load_state("load")
        visit.wait_for_mathjax()
        n_math = page.evaluate("() => document.querySelectorAll('.math').length")
        n_typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        if n_math:
            assert n_typeset >= n_math, f"{n_math} math elements but only {n_typeset} typeset by MathJax"
        text = page.evaluate("""() => {
            const main = document.querySelector('article') || document.body;
            const clone = main.cloneNode(true);
            clone.querySelectorAll('pre, code, mjx-container, script, .highlight').forEach(e => e.remove());
            return clone.innerText; }""")
        for raw in ("$$", "\\frac", "\\begin{"):
            assert raw not in text, f"raw LaTeX {raw!r} left in the text of {path}"

        # images: force eager loading, then every one must have loaded with a real size
        page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=30_000)
        broken = page.evaluate("""() => Array.from(document.images)
            .filter(i => !(i.naturalWidth > 0 && i.naturalHeight > 0)).map(i => i.src)""")
        assert not broken, f"images that did not load: {broken}"

        # internal links and anchors
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        bad = []
        for href in hrefs:
            parts = urlsplit(href)
            if not href.startswith(server):
                continue
            target = SITE / unquote(parts.path[len(urlsplit(server).path):])
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                bad.append(f"{href} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_in(target):
                bad.append(f"{href} (no anchor #{parts.fragment})")
        assert not bad, "broken internal links:\n" + "\n".join(sorted(set(bad)))

        # notebook pages: launch and download buttons
        source = SITE / "_sources" / Path(path).with_suffix(".ipynb")
        if source.is_file():
            links = " ".join(hrefs) + " " + page.content()
            for needle in ("mybinder.org", "colab.research.google.com", "jupyterhub", ".ipynb"):
                assert needle in links, f"{path}: no {needle} link among the launch/download buttons"
            assert page.query_selector(".dropdown-launch-buttons"), f"{path}: no launch buttons"
            assert page.query_selector(".dropdown-download-buttons"), f"{path}: no download buttons"

        assert not visit.errors, f"errors while loading {path}:\n" + "\n".join(visit.errors)
    finally:
        visit.close()


def test_search_finds_backpropagation(server, browser):
    visit = PageVisit(browser, urljoin(server, "search.html?q=backpropagation"))
    try:
        visit.page.wait_for_selector("#search-results ul.search li", timeout=60_000)
        hits = visit.page.evaluate("() => document.querySelectorAll('#search-results ul.search li').length")
        assert hits >= 1
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_screenshots(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    wanted = ["intro.html", "search.html?q=backpropagation"] + \
        [p for p in PAGES if p.endswith("02_backprop/lecture.html")][:1]
    for path in wanted:
        visit = PageVisit(browser, urljoin(server, path))
        try:
            visit.wait_for_mathjax()
            name = re.sub(r"[^A-Za-z0-9]+", "_", path.split("?")[0]).strip("_")
            out = SHOTS / f"{name}.png"
            visit.page.screenshot(path=str(out), full_page=False)
            assert out.stat().st_size > 10_000, f"screenshot {out} looks empty"
        finally:
            visit.close()
    assert len(list(SHOTS.glob("*.png"))) >= 3
