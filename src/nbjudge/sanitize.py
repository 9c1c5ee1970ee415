"""Graded and feedback notebooks that run no student content in anyone's browser.

nbgrader's formgrader renders a graded notebook with nbconvert on the Jupyter server's own
origin, and feedback pages are nbconvert HTML too: a student's ``<script>``, ``onerror``
attribute, SVG, widget or ``javascript:`` link would run as the instructor (with the page's
session, a script can rewrite ``nbgrader_config.py`` through ``/api/contents``) or as the
student. :func:`sanitize_notebook` rewrites a notebook, in place, so that whatever nbconvert's
templates make of it is inert, and says what it removed:

=====================  ===================================================================
code outputs           kept: ``image/png`` and ``image/jpeg`` (only base64 of a real PNG or
                       JPEG, checked by its magic bytes), ``text/plain``, ``text/latex``,
                       ``text/html`` (cleaned by nh3, see :data:`ALLOWED_TAGS`),
                       ``text/markdown`` (as markdown cells). Every other MIME type goes:
                       ``application/javascript``, widget views, ``image/svg+xml`` (SVG can
                       carry script), vendor JSON renderers... Output metadata keeps only an
                       image's ``width``/``height``/``alt``/``unconfined``/``needs_background``
                       (``filenames`` would make nbconvert load a URL from the server).
stream and error       kept as text (nbconvert escapes them); ANSI colour codes stay, other
                       terminal control sequences and control characters go.
markdown cells         ordinary markdown is kept as written (``**bold**``, ``$x^2$``, code
                       fences, tables, ``<b>``); raw HTML tags in it are rewritten in a
                       canonical form with only the allowed tags and attributes; links keep
                       ``http``/``https``/``mailto``/``#`` targets (others become ``#``),
                       images keep valid attachments and ``data:image/png|jpeg`` (a remote
                       image becomes a link); ```` ```mermaid ```` blocks (nbconvert pastes
                       them unescaped) become plain code blocks. The result is then rendered
                       with nbconvert's own markdown renderer and the HTML checked; a cell
                       that still renders anything active is shown as a plain code block of
                       its original text instead.
attachments            only ``image/png``/``image/jpeg`` with valid magic bytes.
raw cells              the source is kept, but ``raw_mimetype`` ``""``/``text/html`` (which
                       nbconvert's HTML exporter pastes into the page) becomes
                       ``text/plain``, and ``format`` goes.
metadata               ``metadata.widgets`` (widget state: the page loads the widget manager
                       for it), ``signature`` and ``trusted``, ``jupyter.widgets``, a cell's
                       ``transient`` (``remove_source`` hides it from the instructor), and
                       ``nbgrader`` metadata whose ``grade_id`` is not ``[A-Za-z0-9_-]+``
                       (nbgrader's templates paste the id unescaped) go; nbgrader's
                       ``comment`` is cleaned as markdown.
=====================  ===================================================================

nbconvert loads MathJax with its ``Safe`` extension, so ``\\href{javascript:...}`` in math
makes no live link; math is left as written.

Feedback pages are static: :func:`add_csp` puts :data:`CSP` first in their ``<head>``, so no
script runs in them at all (nbconvert's own MathJax and require.js included; inline CSS still
applies).

Findings are one line each (``"cell 7 output: removed <script>"``, cells counted from 1 as they
appear on the page, with the cell's grade id when it has one); repeated findings are counted
(``"... (3 times)"``). Cosmetic removals (``style`` and ``class`` attributes, pandas' ``<style
scoped>``, unknown tags) are silent: only what could run, load a URL, or hide content is
reported.

A hostile size costs time in proportion to it: HTML nested deeper than :data:`MAX_HTML_DEPTH`
is dropped before it reaches nh3 (whose parser is quadratic in nesting depth); markdown longer
than :data:`MAX_MARKDOWN_CHARS`, or with more than :data:`MAX_UNCLOSED_MATH` unclosed math
delimiters (nbconvert's math rules rescan to the end for each), is shown as plain text without
being rendered; and no stdlib ``html.parser`` (quadratic on some inputs in Python 3.11) reads
student content: a small tokenizer following the browser's tag and attribute rules does.
"""
from __future__ import annotations

import base64
import binascii
import html
import os
import re
import stat
import tempfile
from pathlib import Path

import nbformat
import nh3

#: Content-Security-Policy for static pages (feedback): no script, no request, inline CSS only.
CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       "font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# frame-ancestors is ignored (and logged as an error by browsers) when delivered in <meta>;
# it only works as an HTTP header, so the <meta> that add_csp writes leaves it out.
_META_CSP = "; ".join(d for d in CSP.split("; ") if not d.startswith("frame-ancestors"))
_META = f'<meta http-equiv="Content-Security-Policy" content="{_META_CSP}">'

#: output MIME types that survive (everything else in an output bundle is removed)
KEPT_MIME_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg")
IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}

#: tags allowed in student HTML (outputs and markdown); their content survives the others too
ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "div",
    "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var"})
#: attributes allowed per tag ("*": on every allowed tag); a's href and img's src are checked
#: further: http/https/mailto and in-page (#) links, data:image/png|jpeg images, no other URL
ALLOWED_ATTRIBUTES = {
    "*": {"title"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"}, "colgroup": {"span"}, "ol": {"start"}, "table": {"border"}}
LINK_SCHEMES = ("http", "https", "mailto")
#: removed together with everything inside them
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "template", "noscript", "iframe", "noembed", "noframes", "xmp", "object",
    "applet", "svg", "math", "textarea", "select", "title"})
#: tags whose removal is reported: they run script, load or submit URLs, or change the page
ACTIVE_TAGS = frozenset({
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input", "button",
    "select", "textarea", "link", "meta", "base", "svg", "math", "template", "portal", "video",
    "audio", "source", "track", "param", "isindex", "keygen", "image"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link",
                   "meta", "param", "source", "track", "wbr", "image", "isindex", "frame"})
_RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript",
                       "textarea", "title", "plaintext"})
_URL_ATTRIBUTES = frozenset({
    "href", "src", "action", "formaction", "srcset", "xlink:href", "background", "poster", "data",
    "ping", "lowsrc", "dynsrc", "longdesc", "codebase", "archive", "srcdoc", "manifest", "icon"})
_GRADE_ID = re.compile(r"[A-Za-z0-9_-]+")
_CSS_LOADS = re.compile(r"(?i)(url|image|image-set|expression)\s*\(|@import|\\")

MAX_HTML_DEPTH = 512           # Chromium's parser flattens deeper trees anyway
MAX_MARKDOWN_CHARS = 50_000    # the course's longest markdown cell has 3,400
MAX_UNCLOSED_MATH = 200        # nbconvert's math patterns rescan to the end for each unclosed one


# ----------------------------------------------------------------------------------------------
# findings

class _Findings:
    """Findings in order of first appearance, identical ones counted."""

    def __init__(self):
        self._counts: dict[str, int] = {}

    def add(self, where: str, what: str) -> None:
        key = f"{where}: {what}"
        self._counts[key] = self._counts.get(key, 0) + 1

    def lines(self) -> list[str]:
        return [key if n == 1 else f"{key} ({n} times)" for key, n in self._counts.items()]


def _name(text) -> str:
    """A student-chosen name (MIME type, tag, attribute) made safe to quote in a report."""
    return re.sub(r"[^A-Za-z0-9+./:_-]", "?", str(text))[:60] or "?"


# ----------------------------------------------------------------------------------------------
# URLs and images

def _clean_url(value: str) -> str:
    """The URL a browser sees: tabs and newlines removed, C0 controls and spaces stripped."""
    return re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(0x21))))


def _scheme(url: str) -> str | None:
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", url)
    return match.group(1).lower() if match else None


def _is_image(mime: str, data: str) -> bool:
    """Whether ``data`` is base64 (whitespace allowed) of a real ``mime`` image (magic bytes)."""
    compact = re.sub(r"\s+", "", data)
    if not re.fullmatch(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", compact):
        return False
    try:
        raw = base64.b64decode(compact[:64], validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(IMAGE_MAGIC[mime])


def _data_image(url: str) -> bool:
    match = re.fullmatch(r"data:(image/(?:png|jpeg));base64,([A-Za-z0-9+/=\s]*)", url, re.I)
    return bool(match) and _is_image(match.group(1).lower(), match.group(2))


def _link_ok(url: str) -> bool:
    return _scheme(url) in LINK_SCHEMES


def _url_problem(tag: str, attribute: str, value: str) -> str | None:
    """Why a URL attribute is removed (None: it stays)."""
    url = _clean_url(value)
    scheme = _scheme(url)
    if tag == "a" and attribute == "href" and (_link_ok(url) or url.startswith("#")):
        return None
    if tag == "img" and attribute == "src" and _data_image(url):
        return None
    if scheme == "data":
        kind = _name(url[5:].split(",", 1)[0].split(";", 1)[0].lower()) or "?"
        if kind in IMAGE_MAGIC:
            return f"data:{kind} URL that is not a real image"
        return f"data:{kind} URL"
    if scheme is None:
        return "relative URL (a request to the server)" if url else None
    if tag == "img":
        return f"{scheme}: image source"
    return f"{scheme}: URL"


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """nh3's per-attribute hook: the URL policy nh3's scheme list cannot express."""
    if attribute in ("href", "src"):
        return value if _url_problem(tag, attribute, value) is None else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS), clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    attribute_filter=_attribute_filter, url_schemes={"http", "https", "mailto", "data"},
    url_relative=lambda url: url if url.startswith("#") else None,   # in-page links only
    strip_comments=True, link_rel="noopener noreferrer")


# ----------------------------------------------------------------------------------------------
# a linear HTML tokenizer (the browser's tag and attribute rules), to describe and to check HTML

_WS = "\t\n\f\r "
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_ATTR_NAME = re.compile(r"[^\t\n\f\r />=]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_SPACE = re.compile(r"[\t\n\f\r /]*")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _tag(text: str, i: int):
    """Parse the tag whose name starts at ``i``; return (name, attrs, end) or None at EOF."""
    name = _TAG_NAME.match(text, i).group()
    i += len(name)
    attrs = []
    while True:
        i = _SPACE.match(text, i).end()
        if i >= len(text):
            return None                      # EOF inside a tag: browsers drop it
        if text[i] == ">":
            return name.lower(), attrs, i + 1
        start = i
        i = _ATTR_NAME.match(text, i + 1).end()   # a leading "=" belongs to the name
        attribute = text[start:i].lower()
        i = _skip_ws(text, i)
        value = ""
        if i < len(text) and text[i] == "=":
            i = _skip_ws(text, i + 1)
            if i < len(text) and text[i] in "\"'":
                close = text.find(text[i], i + 1)
                if close < 0:
                    return None
                value, i = text[i + 1:close], close + 1
            else:
                value = _UNQUOTED.match(text, i).group()
                i += len(value)
        attrs.append((attribute, html.unescape(value)))


_COMMENT_ABRUPT, _COMMENT_END = re.compile(r"-?>"), re.compile(r"--!?>")


def _ascii_letter(char: str) -> bool:
    return len(char) == 1 and char.isascii() and char.isalpha()


_RAW_CLOSE = {name: re.compile(rf"</{name}(?=[\t\n\f\r />]|$)", re.I) for name in _RAW_TEXT}


def _tokens(text: str):
    """Yield ("start", name, attrs), ("end", name) and ("raw", name, content) events."""
    no_close: set[str] = set()
    i = 0
    while True:
        i = text.find("<", i)
        if i < 0 or i + 1 >= len(text):
            return
        nxt = text[i + 1]
        if text.startswith("<!--", i):       # "<!-->" and "<!--->" are whole comments too
            close = _COMMENT_ABRUPT.match(text, i + 4) or _COMMENT_END.search(text, i + 4)
            i = close.end() if close else len(text)
        elif nxt in "!?" or (nxt == "/" and not _ascii_letter(text[i + 2:i + 3])):
            close = text.find(">", i + 2)        # bogus comment
            i = len(text) if close < 0 else close + 1
        elif nxt == "/" or _ascii_letter(nxt):
            end_tag = nxt == "/"
            parsed = _tag(text, i + 2 if end_tag else i + 1)
            if parsed is None:
                return
            name, attrs, i = parsed
            if end_tag:
                yield ("end", name)
                continue
            yield ("start", name, attrs)
            if name in _RAW_TEXT:
                if name == "plaintext" or name in no_close:
                    yield ("raw", name, text[i:])
                    return
                close = _RAW_CLOSE[name].search(text, i)
                if close is None:
                    no_close.add(name)
                    yield ("raw", name, text[i:])
                    return
                yield ("raw", name, text[i:close.start()])
                i = close.start()
        else:
            i += 1


def _depth(text: str, limit: int) -> int:
    """Nesting depth of ``text`` as a browser's parser would at least see it, counted up to
    ``limit + 1`` (so that counting stays linear in the size of ``text``)."""
    implied = {"p", "li", "td", "th", "tr", "dt", "dd", "option", "thead", "tbody", "tfoot"}
    stack: list[str] = []
    deepest = 0
    for event in _tokens(text):
        if event[0] == "start":
            name = event[1]
            if name in _VOID:
                continue
            if name in implied and stack and stack[-1] == name:
                stack.pop()
            stack.append(name)
            deepest = max(deepest, len(stack))
            if deepest > limit:
                return deepest
        elif event[0] == "end" and event[1] in stack:
            while stack[-1] != event[1] and stack[-1] in implied:
                stack.pop()
            if stack[-1] == event[1]:
                stack.pop()
    return deepest


def _describe_tag(name: str, attrs) -> list[str]:
    """What the sanitizer reports about one start tag it cleans (cosmetic removals are silent)."""
    found = []
    if name in ACTIVE_TAGS:
        found.append(f"removed <{_name(name)}>")
    for attribute, value in attrs:
        problem = None
        if attribute.startswith("on"):
            problem = f"{_name(attribute)} attribute"
        elif attribute == "style" and _CSS_LOADS.search(value):
            problem = "style attribute that loads a URL"
        elif name in ACTIVE_TAGS or attribute not in _URL_ATTRIBUTES or not value.strip():
            pass                             # the element goes anyway, or nothing to load
        elif attribute in ALLOWED_ATTRIBUTES.get(name, ()):
            problem = _url_problem(name, attribute, value)      # a href, img src
        elif attribute not in ("href", "src"):
            problem = f"{_name(attribute)} attribute"            # srcset, action, background...
        elif _scheme(_clean_url(value)) not in (*LINK_SCHEMES, None):
            problem = _url_problem(name, attribute, value)      # <area href="javascript:...">
        if problem:
            found.append(f"removed {problem}")
    return found


def _describe(text: str) -> list[str]:
    found = []
    for event in _tokens(text):
        if event[0] == "start":
            found += _describe_tag(event[1], event[2])
        elif event[0] == "raw" and event[1] == "style" and _CSS_LOADS.search(event[2]):
            found.append("removed <style> that loads a URL")
    return found


def _unsafe(text: str) -> list[str]:
    """What in rendered HTML could run script or load a URL (empty: nothing). Looser than the
    allowlist (nbconvert's own markup has classes, ids, anchors and task-list checkboxes)."""
    problems = []
    for event in _tokens(text):
        if event[0] != "start":
            continue
        name, attrs = event[1], event[2]
        if name == "input" and dict(attrs).get("type") == "checkbox" and \
                {a for a, _ in attrs} <= {"class", "type", "disabled", "checked"}:
            continue                         # mistune's task-list item
        if name in ACTIVE_TAGS or name == "style":
            problems.append(f"<{_name(name)}>")
        for attribute, value in attrs:
            url = _clean_url(value)
            if attribute.startswith("on"):
                problems.append(f"{_name(attribute)} attribute")
            elif attribute == "style" and _CSS_LOADS.search(value):
                problems.append("style attribute that loads a URL")
            elif attribute == "href" and not (_link_ok(url) or url.startswith("#") or not url):
                problems.append(f"link to {_name(url[:20])}")
            elif attribute == "src" and not (_data_image(url) or url.startswith("attachment:")):
                problems.append(f"image source {_name(url[:20])}")
            elif attribute in _URL_ATTRIBUTES - {"href", "src"}:
                problems.append(f"{_name(attribute)} attribute")
    return problems


# ----------------------------------------------------------------------------------------------
# text/html outputs

def _clean_html(text: str, where: str, found: _Findings) -> str | None:
    if _depth(text, MAX_HTML_DEPTH) > MAX_HTML_DEPTH:
        found.add(where, f"removed text/html output nested more than {MAX_HTML_DEPTH} elements deep")
        return None
    for what in _describe(text):
        found.add(where, what)
    cleaned = _CLEANER.clean(text)
    if _unsafe(cleaned):                     # nh3 and this module disagree: keep nothing
        found.add(where, "removed text/html output the sanitizer could not make safe")
        return None
    return cleaned


# ----------------------------------------------------------------------------------------------
# terminal text (streams, errors, text/plain)

_TERMINAL = re.compile(
    r"(\x1b\[[0-9;]*m)"                      # SGR (colours): kept, nbconvert renders them
    r"|\x1b\[[0-?]*[ -/]*[@-~]"              # other CSI sequences (cursor, erase...)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"   # OSC (titles, hyperlinks)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"        # DCS, SOS, PM, APC strings
    r"|\x1b.?"                               # any other escape
    r"|[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f-\x9f]")  # controls but \b \t \n \r


def _clean_terminal(text, where: str, found: _Findings) -> str:
    text = "".join(text) if isinstance(text, list) else str(text)
    removed = 0

    def keep_colours(match):
        nonlocal removed
        if match.group(1):
            return match.group(1)
        removed += 1
        return ""

    text = _TERMINAL.sub(keep_colours, text)
    if removed:
        found.add(where, f"removed {removed} terminal control sequence(s)")
    return text


# ----------------------------------------------------------------------------------------------
# markdown

_FENCE = re.compile(r"([ \t>]*)(`{3,}|~{3,})(.*)")
_MD_TOKEN = re.compile(
    r"(?P<texmath>\\\\[(\[]|\\begin\{[a-z]*\*?\})"
    r"|(?P<esc>\\[\\`$\[\]])"
    r"|(?P<ticks>`+)"
    r"|(?P<dollars>\$\$?)"
    r"|(?P<lt><)"
    r"|(?P<bang>!\[)"
    r"|(?P<open>\[)"
    r"|(?P<dest>\]\()"
    r"|(?P<close>\])")
_MD_ATTR = r"""\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_MD_OPEN = re.compile(rf"<([A-Za-z][A-Za-z0-9-]*)((?:{_MD_ATTR})*)\s*/?>")
_MD_ATTRS = re.compile(r"""([A-Za-z_:][A-Za-z0-9_.:-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
_MD_CLOSE = re.compile(r"</([A-Za-z][A-Za-z0-9-]*)\s*>")
_MD_AUTOLINK = re.compile(r"<(?:https?://|mailto:)[^\s<>]*>", re.I)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_REF_DEF = re.compile(r"^([ \t>]*\[(?:[^\]\\\n]|\\.)+\]:[ \t]*)(<[^>\n]*>|\S+)(?=[ \t]*(?:$|[\"'(]))", re.M)
_DEST_END = re.compile(r"""\s*(?:"[^"]*"|'[^']*'|\([^()]*\))?\s*\)""")


def _md_unescape(dest: str) -> str:
    if dest.startswith("<") and dest.endswith(">"):
        dest = dest[1:-1]
    return _clean_url(html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", dest)))


def _md_dest_problem(dest: str, image: bool, attachments) -> str | None:
    """Why a markdown link or image destination is replaced (None: it stays)."""
    url = _md_unescape(dest)
    scheme = _scheme(url)
    if image:
        if url.startswith("attachment:"):
            return None if url[len("attachment:"):] in attachments else "image of a missing attachment"
        if _data_image(url):
            return None
        if scheme in ("http", "https"):
            return "remote image (kept as a link)"
        return _url_problem("img", "src", url) or "image without a source"
    if not url or url.startswith("#") or _link_ok(url):
        return None
    return "relative link" if scheme is None else f"{scheme}: link"


_DEST_SPACE, _ANGLE_END = re.compile(r"[ \t]*\n?[ \t]*"), re.compile(r"[<>\n]")


def _md_destination(text: str, i: int) -> tuple[int, int]:
    """Span of the link destination that starts at or after ``i`` (just after ``](``).

    The scan stops at the first ``[``, ``]`` or ``<`` as well, so the scans of successive ``](``
    never overlap (linear time); a destination this misreads is caught by the render check."""
    start = _DEST_SPACE.match(text, i).end()
    if text.startswith("<", start):
        close = _ANGLE_END.search(text, start + 1)
        if close and close.group() == ">":
            return start, close.end()
    depth, j = 0, start
    while j < len(text) and text[j] not in " \t\n[]<":
        if text[j] == "\\":
            j += 1
        elif text[j] == "(":
            depth += 1
        elif text[j] == ")":
            if depth == 0:
                break
            depth -= 1
        j += 1
    return start, min(j, len(text))


_MD_DROP_CLOSE = {name: re.compile(rf"</{name}", re.I) for name in DROPPED_WITH_CONTENT}


def _md_tag(text: str, i: int, no_close: set, attachments, whats: list):
    """Rewrite the HTML at ``text[i] == "<"``: return (replacement, end)."""
    auto = _MD_AUTOLINK.match(text, i)
    if auto:
        return auto.group(), auto.end()
    if text.startswith("<!--", i) and "-->" not in no_close:
        close = text.find("-->", i + 4)
        if close >= 0:
            return "", close + 3
        no_close.add("-->")
    closing = _MD_CLOSE.match(text, i)
    if closing:
        name = closing.group(1).lower()
        return (f"</{name}>" if name in ALLOWED_TAGS and name not in _VOID else ""), closing.end()
    opening = _MD_OPEN.match(text, i)
    if not opening:
        # not a tag this parser understands: escaped, so no browser can read one there
        return ("&lt;" if text[i + 1:i + 2].isalpha() or text[i + 1:i + 2] in ("/", "!", "?") else "<"), i + 1
    name = opening.group(1).lower()
    attrs = [(m.group(1).lower(), html.unescape(next((g for g in m.groups()[1:] if g is not None), "")))
             for m in _MD_ATTRS.finditer(opening.group(2))]
    whats += _describe_tag(name, attrs)
    end = opening.end()
    if name in DROPPED_WITH_CONTENT:
        close = None if f"</{name}" in no_close else _MD_DROP_CLOSE[name].search(text, end)
        if close is None:
            no_close.add(f"</{name}")
            return "", end
        if name == "style" and _CSS_LOADS.search(text, end, close.start()):
            whats.append("removed <style> that loads a URL")
        after = text.find(">", close.end())
        return "", (len(text) if after < 0 else after + 1)
    if name not in ALLOWED_TAGS:
        return "", end
    kept = []
    for attribute, value in attrs:
        if attribute not in ALLOWED_ATTRIBUTES.get(name, set()) | ALLOWED_ATTRIBUTES["*"]:
            continue
        if attribute in ("href", "src"):
            value = _clean_url(value)
            ok = (_url_problem(name, attribute, value) is None or
                  (attribute == "src" and value.startswith("attachment:")
                   and value[len("attachment:"):] in attachments))
            if not ok:
                continue
        kept.append(f' {attribute}="{html.escape(value, quote=True)}"')
    if name == "img" and not any(k.startswith(" src=") for k in kept):
        return "", end                       # an image without an acceptable source
    if name == "a":
        kept.append(' rel="noopener noreferrer"')
    return f"<{name}{''.join(kept)}>", end


def _md_text(text: str, attachments, whats: list, unclosed: list) -> str:
    """Rewrite one stretch of markdown outside code fences."""
    def ref_def(match):
        problem = _md_dest_problem(match.group(2), False, attachments)
        if problem is None:
            return match.group()
        whats.append(f"removed {problem}")
        return match.group(1) + "#"
    text = _REF_DEF.sub(ref_def, text)

    out: list[str] = []
    brackets: list[tuple[bool, int]] = []     # (is an image, index of its "![" in out)
    no_close: set = set()                      # closers known to be absent from here on
    pos = 0
    while True:
        match = _MD_TOKEN.search(text, pos)
        if not match:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:match.start()])
        kind, token, pos = match.lastgroup, match.group(), match.end()
        closer = None
        if kind == "ticks":
            closer = _closing_ticks(text, pos, token, no_close)
        elif kind == "dollars":
            closer = _closing(text, pos, token, no_close, token == "$")
        elif kind == "texmath":
            end = {"\\\\(": "\\\\)", "\\\\[": "\\\\]"}.get(token, token.replace("\\begin", "\\end"))
            closer = _closing(text, pos, end, no_close, False)
        if kind in ("ticks", "dollars", "texmath"):
            if closer is None:
                if kind != "ticks":
                    unclosed[0] += 1
                out.append(token)
            else:                              # code span or math: nbconvert escapes it
                out.append(text[match.start():closer])
                pos = closer
        elif kind == "lt":
            replacement, pos = _md_tag(text, match.start(), no_close, attachments, whats)
            out.append(replacement)
        elif kind in ("bang", "open"):
            brackets.append((kind == "bang", len(out)))
            out.append(token)
        elif kind == "close":
            if brackets:
                brackets.pop()
            out.append(token)
        elif kind == "dest":
            image, index = brackets.pop() if brackets else (False, -1)
            start, end = _md_destination(text, pos)
            if not _DEST_END.match(text, end):   # "f[i](x + 1)": not a link, left as text
                out.append(token)
                continue
            problem = _md_dest_problem(text[start:end], image, attachments)
            out.append(token + text[pos:start])
            if problem is None:
                out.append(text[start:end])
            else:
                whats.append(f"removed {problem}")
                if image and index >= 0:
                    out[index] = "["           # the image becomes a link
                remote = image and problem.startswith("remote image")
                out.append(text[start:end] if remote else "#")
            pos = end
        else:
            out.append(token)


def _closing_ticks(text: str, pos: int, ticks: str, no_close: set) -> int | None:
    """End of the code span opened by ``ticks`` (same-length run, same paragraph)."""
    key = "`" * len(ticks)
    if key in no_close:
        return None
    j = pos
    while True:
        j = text.find(ticks, j)
        if j < 0:
            no_close.add(key)
            return None
        run_end = j
        while run_end < len(text) and text[run_end] == "`":
            run_end += 1
        if run_end - j == len(ticks) and text[j - 1] != "`":
            break
        j = run_end
    if _BLANK_LINE.search(text, pos, j):
        return None
    return run_end


def _closing(text: str, pos: int, end: str, no_close: set, inline: bool) -> int | None:
    """End of math opened just before ``pos`` and closed by ``end`` (unescaped)."""
    if end in no_close:
        return None
    j = pos
    while True:
        j = text.find(end, j)
        if j < 0:
            no_close.add(end)
            return None
        if text[j - 1] != "\\" and not (inline and (j == pos or text[j - 1] == "$")):
            break
        j += 1
    if inline and _BLANK_LINE.search(text, pos, j):
        return None
    return j + len(end)


def _rewrite_markdown(source: str, attachments, whats: list, unclosed: list) -> str:
    """Markdown with its raw HTML canonical and its link targets checked; fences untouched."""
    out, text, fence = [], [], None
    for line in source.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if fence is None:
            match = _FENCE.fullmatch(body)
            if match and not (match.group(2)[0] == "`" and "`" in match.group(3)):
                out.append(_md_text("".join(text), attachments, whats, unclosed))
                text, fence = [], match.group(2)
                if match.group(3).strip().lower().startswith("mermaid"):
                    whats.append("mermaid block shown as code (nbconvert renders it unescaped)")
                    line = match.group(1) + match.group(2) + line[len(body):]
                out.append(line)
            else:
                text.append(line)
        else:
            out.append(line)
            stripped = body.lstrip(" \t>").rstrip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
    out.append(_md_text("".join(text), attachments, whats, unclosed))
    return "".join(out)


def _as_code_block(source: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{source}\n{fence}"


def _render_markdown(source: str, attachments) -> str:
    """The HTML nbconvert's templates (and so formgrader and feedback) make of ``source``."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    renderer = IPythonRenderer(escape=False, attachments=dict(attachments))
    return MarkdownWithMath(renderer=renderer).render(source)


def _markdown_problems(source: str, attachments) -> list[str]:
    try:
        rendered = _render_markdown(source, attachments)
    except Exception as error:               # nbconvert would fail on the page too
        return [f"nbconvert cannot render it ({type(error).__name__})"]
    return _unsafe(rendered)


def _clean_markdown(source, attachments, where: str, found: _Findings) -> str:
    source = "".join(source) if isinstance(source, list) else str(source)
    whats: list[str] = []
    unclosed = [0]
    cleaned = None
    if len(source) > MAX_MARKDOWN_CHARS:
        whats.append(f"longer than {MAX_MARKDOWN_CHARS} characters: shown as plain text")
    else:
        cleaned = _rewrite_markdown(source, attachments, whats, unclosed)
        if unclosed[0] > MAX_UNCLOSED_MATH:
            whats.append(f"more than {MAX_UNCLOSED_MATH} unclosed math delimiters: shown as plain text")
            cleaned = None
    if cleaned is not None:
        problems = _markdown_problems(cleaned, attachments)
        if problems:
            whats.append(f"shown as plain text: after cleaning, nbconvert still rendered {problems[0]}")
            cleaned = None
    if cleaned is None:
        cleaned = _as_code_block(source)
        if _markdown_problems(cleaned, attachments):
            whats.append("removed: it cannot be shown safely even as plain text")
            cleaned = "*[removed by the grader's sanitizer]*"
    for what in whats:
        found.add(where, what)
    return cleaned


# ----------------------------------------------------------------------------------------------
# cells

def _clean_attachments(cell, where: str, found: _Findings) -> dict:
    attachments = cell.get("attachments")
    if not isinstance(attachments, dict):
        if attachments is not None:
            cell.pop("attachments")
        return {}
    kept = {}
    for name, bundle in attachments.items():
        images = {}
        for mime, data in (bundle.items() if isinstance(bundle, dict) else ()):
            data = "".join(data) if isinstance(data, list) else data
            if mime in IMAGE_MAGIC and isinstance(data, str) and _is_image(mime, data):
                images[mime] = data
            elif mime in IMAGE_MAGIC:
                found.add(where, f"removed attachment {_name(name)!r}: not a real {mime} image")
            else:
                found.add(where, f"removed attachment {_name(name)!r} ({_name(mime)})")
        if images:
            kept[name] = images
    if kept:
        cell["attachments"] = nbformat.from_dict(kept)
    else:
        cell.pop("attachments")
    return kept


def _clean_bundle(data, where: str, found: _Findings) -> dict:
    kept = {}
    for mime, value in (data.items() if isinstance(data, dict) else ()):
        if mime not in KEPT_MIME_TYPES:
            why = {"image/svg+xml": " (SVG can carry script)"}.get(mime, "")
            found.add(where, f"removed {_name(mime)} output{why}")
            continue
        value = "".join(value) if isinstance(value, list) else value
        if not isinstance(value, str):
            found.add(where, f"removed {mime} output that is not text")
        elif mime in IMAGE_MAGIC:
            if _is_image(mime, value):
                kept[mime] = value
            else:
                found.add(where, f"removed {mime} output that is not a real {mime} image")
        elif mime == "text/html":
            cleaned = _clean_html(value, where, found)
            if cleaned is not None:
                kept[mime] = cleaned
        elif mime == "text/markdown":
            kept[mime] = _clean_markdown(value, {}, where, found)
        elif mime == "text/plain":
            kept[mime] = _clean_terminal(value, where, found)
        else:
            kept[mime] = value                 # text/latex: escaped by nbconvert
    if data and not kept:
        kept["text/plain"] = "[output removed by the grader's sanitizer]"
    return kept


def _clean_output_metadata(metadata, data, where: str, found: _Findings) -> dict:
    def valid(key, value):
        if key in ("width", "height"):
            return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000
        if key == "unconfined":
            return isinstance(value, bool)
        if key == "needs_background":
            return value in ("light", "dark")
        return key == "alt" and isinstance(value, str)

    metadata = metadata if isinstance(metadata, dict) else {}
    if "filenames" in metadata:
        found.add(where, "removed output file names (nbconvert would load them from the server)")
    kept = {key: value for key, value in metadata.items() if valid(key, value)}
    for mime in IMAGE_MAGIC:
        if mime in data and isinstance(metadata.get(mime), dict):
            sub = {key: value for key, value in metadata[mime].items() if valid(key, value)}
            if sub:
                kept[mime] = sub
    return kept


def _clean_outputs(cell, where: str, found: _Findings) -> None:
    kept = []
    at = f"{where} output"
    for output in cell.get("outputs") or []:
        kind = output.get("output_type")
        if kind == "stream":
            output["name"] = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
            output["text"] = _clean_terminal(output.get("text", ""), at, found)
        elif kind == "error":
            output["ename"] = _clean_terminal(output.get("ename", ""), at, found)
            output["evalue"] = _clean_terminal(output.get("evalue", ""), at, found)
            traceback = output.get("traceback")
            output["traceback"] = [_clean_terminal(line, at, found)
                                   for line in (traceback if isinstance(traceback, list) else [])]
        elif kind in ("display_data", "execute_result"):
            data = _clean_bundle(output.get("data", {}), at, found)
            output["data"] = nbformat.from_dict(data)
            output["metadata"] = nbformat.from_dict(
                _clean_output_metadata(output.get("metadata", {}), data, at, found))
            output.pop("transient", None)
        else:
            found.add(at, f"removed output of unknown type {_name(kind)!r}")
            continue
        kept.append(output)
    cell["outputs"] = kept
    count = cell.get("execution_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        found.add(where, "removed an execution count that is not a number")
        cell["execution_count"] = None


def _clean_cell_metadata(cell, where: str, found: _Findings) -> None:
    metadata = cell.get("metadata")
    if not isinstance(metadata, dict):
        cell["metadata"] = nbformat.from_dict({})
        return
    metadata.pop("trusted", None)
    if isinstance(metadata.get("jupyter"), dict):
        metadata["jupyter"].pop("widgets", None)
    transient = metadata.pop("transient", None)
    if isinstance(transient, dict) and transient.get("remove_source"):
        found.add(where, "removed transient.remove_source metadata (it hides the cell)")
    grading = metadata.get("nbgrader")
    if grading is None:
        return
    if not isinstance(grading, dict) or ("grade_id" in grading and not (
            isinstance(grading["grade_id"], str) and _GRADE_ID.fullmatch(grading["grade_id"]))):
        metadata.pop("nbgrader")
        found.add(where, "removed nbgrader metadata with an invalid grade id")
    elif isinstance(grading.get("comment"), (str, list)):
        grading["comment"] = _clean_markdown(grading["comment"], {}, f"{where} nbgrader comment", found)


def _cell_label(index: int, cell) -> str:
    grading = (cell.get("metadata") or {}).get("nbgrader")
    grade_id = grading.get("grade_id") if isinstance(grading, dict) else None
    if isinstance(grade_id, str) and _GRADE_ID.fullmatch(grade_id):
        return f"cell {index} ({grade_id})"
    return f"cell {index}"


def sanitize_notebook(nb) -> list[str]:
    """Make an nbformat 4 notebook inert in every nbconvert view, in place.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A version 4 notebook (``nbformat.read(path, as_version=4)``); changed in place.

    Returns
    -------
    list of str
        One finding per kind of thing removed and place, in notebook order, e.g.
        ``"cell 7 output: removed <script>"`` or ``"cell 3 (explain) markdown: removed onerror
        attribute"``; empty for a notebook with nothing active in it.

    Raises
    ------
    ValueError
        If ``nb`` is not an nbformat 4 notebook.
    """
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        version = nb.get("nbformat") if isinstance(nb, dict) else type(nb).__name__
        raise ValueError(f"expected an nbformat 4 notebook, got nbformat {version!r}")
    found = _Findings()
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = nbformat.from_dict({})
    metadata = nb["metadata"]
    if metadata.pop("widgets", None) is not None:
        found.add("notebook metadata", "removed widget state (the page would load the widget manager)")
    if isinstance(metadata.get("jupyter"), dict) and metadata["jupyter"].pop("widgets", None) is not None:
        found.add("notebook metadata", "removed widget state (the page would load the widget manager)")
    metadata.pop("signature", None)
    metadata.pop("trusted", None)

    for index, cell in enumerate(nb["cells"], start=1):
        where = _cell_label(index, cell)
        _clean_cell_metadata(cell, where, found)
        kind = cell.get("cell_type")
        attachments = _clean_attachments(cell, f"{where} {kind if kind in ('markdown', 'raw') else 'attachments'}",
                                         found)
        if kind == "code":
            _clean_outputs(cell, where, found)
        elif kind == "markdown":
            cell["source"] = _clean_markdown(cell.get("source", ""), attachments, f"{where} markdown", found)
        elif kind == "raw":
            source = cell.get("source", "")
            cell["source"] = source = "".join(source) if isinstance(source, list) else str(source)
            mimetype = cell["metadata"].get("raw_mimetype", "")
            cell["metadata"].pop("format", None)
            if not isinstance(mimetype, str) or mimetype.lower() in ("", "text/html"):
                cell["metadata"]["raw_mimetype"] = "text/plain"
                if mimetype or re.search(r"<[A-Za-z!/?]", source):
                    found.add(f"{where} raw", "no longer pasted into the page as HTML")
        else:
            source = cell.get("source", "")
            nb["cells"][index - 1] = nbformat.v4.new_raw_cell(
                "".join(source) if isinstance(source, list) else str(source),
                metadata={"raw_mimetype": "text/plain"})
            found.add(where, f"unknown cell type {_name(kind)!r} turned into a raw cell")
    return found.lines()


def sanitize_file(path) -> list[str]:
    """Sanitize the notebook file at ``path`` (see :func:`sanitize_notebook`) and return its findings.

    The file is rewritten, atomically and with its permissions, only if anything changed.
    A symbolic link is refused rather than followed.
    """
    path = Path(path)
    info = os.stat(path, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        raise ValueError(f"refusing to sanitize a symbolic link: {path}")
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    findings = sanitize_notebook(nb)
    after = nbformat.writes(nb)
    if after != before:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(after)
            os.chmod(temporary, stat.S_IMODE(info.st_mode))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return findings


def add_csp(page: str) -> str:
    """``page`` with a Content-Security-Policy ``<meta>`` (:data:`CSP`) as the first element of
    its ``<head>``; a ``<head>`` is created if the page has none. Already there: unchanged."""
    # search a copy with comments blanked out, so a "<head>" inside a comment is not taken
    blank = re.sub(r"<!--.*?(?:-->|\Z)", lambda m: " " * len(m.group()), page, flags=re.S)
    body = re.search(r"<body[\s>/]", blank, re.I)
    limit = body.start() if body else len(blank)
    head = re.compile(r"<head(?:[\t\n\f\r /][^>]*)?>", re.I).search(blank, 0, limit)
    if head:
        if page.startswith(_META, head.end()):
            return page
        return page[:head.end()] + _META + page[head.end():]
    root = re.compile(r"<html(?:[\t\n\f\r /][^>]*)?>", re.I).search(blank, 0, limit)
    if root:
        at = root.end()
    else:
        doctype = re.compile(r"\s*(?:<!doctype[^>]*>)?", re.I).match(blank)
        at = doctype.end()
    return page[:at] + "<head>" + _META + "</head>" + page[at:]
