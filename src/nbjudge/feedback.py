"""Feedback for students that never shows a hidden test.

nbgrader builds feedback from the *autograded* notebook, whose test cells hold the hidden tests
(restored from the gradebook for grading), so plain ``nbgrader generate_feedback`` shows them.
:class:`HideHiddenTests` (registered in ``c.GenerateFeedback.preprocessors`` by the course's
``nbgrader_config.py``, so the formgrader's feedback button uses it too) changes the feedback
copy only:

- the ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region is removed from every cell;
- a test cell that had hidden tests shows only whether it passed and, if not, the error's
  name and message (``AssertionError: relu fails on a 2-D input``): no traceback (it quotes the
  failing line) and none of the cell's printed output (it may echo test inputs);
- any hidden-test line that appears in any output of any cell (a submission that prints what
  its functions were called with) is replaced by ``[hidden test]``.

:func:`generate` runs nbgrader's ``GenerateFeedback`` with this preprocessor, writes a short
page for students whose notebook could not be graded, and then checks every feedback file for
hidden-test text (:func:`find_leaks`); a file that leaks is deleted and the command fails.
"""
from __future__ import annotations

import contextlib
import html
import re
import signal
import threading
from pathlib import Path

from nbformat import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .sanitize import add_csp

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
MIN_LINE = 12  # shorter hidden lines ("]", "x = 1") are too generic to redact or search for


def hidden_lines(source: str) -> list[str]:
    """The stripped lines inside hidden-test regions of a cell's source."""
    lines, inside = [], False
    for line in source.split("\n"):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def strip_hidden(source: str) -> str:
    kept, inside = [], False
    for line in source.split("\n"):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept).rstrip()


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests, their tracebacks and echoes from a feedback notebook."""

    replacement = Unicode("[hidden test]", help="What replaces hidden-test text found in outputs.").tag(config=True)

    def preprocess(self, nb, resources):
        secret = []
        for cell in nb.cells:
            secret += [line for line in hidden_lines(cell.source) if len(line) >= MIN_LINE]
        self._secret = sorted(set(secret), key=len, reverse=True)
        return super().preprocess(nb, resources)

    def _redact(self, text):
        for line in self._secret:
            if line in text:
                text = text.replace(line, self.replacement)
        return text

    def preprocess_cell(self, cell, resources, index):
        had_hidden = BEGIN in cell.source
        if had_hidden:
            cell.source = strip_hidden(cell.source) + "\n# (hidden tests are not shown)"
        if cell.cell_type != "code":
            return cell, resources
        if had_hidden and nbutils.is_grade(cell):
            errors = [o for o in cell.outputs if o.output_type == "error"]
            stderr = any(o.output_type == "stream" and o.get("name") == "stderr" for o in cell.outputs)
            if errors:
                e = errors[0]
                summary = f"{e.ename}: {e.evalue}" if e.evalue else e.ename
                cell.outputs = [NotebookNode(output_type="error", ename=e.ename, evalue=self._redact(e.evalue),
                                             traceback=[self._redact(summary)])]
            elif stderr:
                cell.outputs = [NotebookNode(output_type="stream", name="stderr",
                                             text="The test wrote to stderr, which counts as a failure.\n")]
            else:
                cell.outputs = []
            return cell, resources
        for output in cell.outputs:
            if "text" in output and isinstance(output.text, str):
                output.text = self._redact(output.text)
            if output.output_type == "error":
                output.evalue = self._redact(output.evalue)
                output.traceback = [self._redact(line) for line in output.traceback]
            for key, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and not key.startswith("image/"):
                    output.data[key] = self._redact(value)
        return cell, resources


def _visible_text(path: Path) -> str:
    """Text of a feedback HTML file as a student sees it (tags removed, entities decoded)."""
    raw = path.read_text(errors="replace")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def find_leaks(feedback_dir, secrets) -> dict[str, list[str]]:
    """Hidden-test lines found in feedback files: ``{file: [line, ...]}`` (empty if none).

    Both the raw file and its visible text (tags removed, HTML entities decoded) are searched,
    because syntax highlighting splits a line of code into many tags.
    """
    leaks = {}
    secrets = [s for s in secrets if len(s) >= MIN_LINE]
    for path in sorted(Path(feedback_dir).rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_text(errors="replace")
        visible = _visible_text(path) if path.suffix in (".html", ".htm") else raw
        squeezed = re.sub(r"\s+", "", visible)
        found = [s for s in secrets if s in raw or s in visible or re.sub(r"\s+", "", s) in squeezed]
        if found:
            leaks[str(path)] = found
    return leaks


def hidden_secrets(spec) -> list[str]:
    """Every hidden-test line of an assignment (from :func:`nbjudge.cells.assignment_spec`)
    that students cannot see anyway (lines that also occur in the release are not secret)."""
    lines, public = set(), []
    for nb in spec["notebooks"].values():
        for cell in nb["cells"]:
            lines.update(hidden_lines(cell["source"]))
            public.append(cell["release_source"])
            public.append(strip_hidden(cell["source"]))
    # a hidden line that stands inside a public one (a literal repeated from a visible test, an
    # import) is public too: the visible test shows it on every page
    text = "\n".join(public)
    squeezed = re.sub(r"\s+", "", text)
    return sorted(line for line in lines if line not in text and re.sub(r"\s+", "", line) not in squeezed)


PREPROCESSORS = ["nbgrader.preprocessors.GetGrades", "nbjudge.feedback.HideHiddenTests",
                 "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]


class FeedbackTimeout(Exception):
    """Making one student's feedback took longer than the limit."""


#: seconds one student's feedback may take (c.Feedback.timeout)
FEEDBACK_TIMEOUT = 120.0


@contextlib.contextmanager
def _time_limit(seconds):
    """Raise :class:`FeedbackTimeout` in this (main) thread after ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise FeedbackTimeout()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def secrets_beyond(secrets, own: str) -> list[str]:
    """The hidden-test lines that do not stand in ``own`` (a student's own code, where such a line is
    theirs: an ``import numpy as np`` they wrote too is no leak)."""
    squeezed = re.sub(r"\s+", "", own)
    return [s for s in secrets if s not in own and re.sub(r"\s+", "", s) not in squeezed]


def student_leaks(course_dir, name, student, secrets) -> dict[str, list[str]]:
    """:func:`find_leaks` in one student's feedback, for the hidden lines that are not the student's own."""
    course_dir = Path(course_dir)
    mine = secrets_beyond(secrets, _own_text(course_dir / "autograded" / student / name))
    return find_leaks(course_dir / "feedback" / student / name, mine)


def _own_text(folder: Path) -> str:
    """The source of the student's own cells (answers and added cells) in their graded notebooks."""
    import nbformat
    parts = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") or not meta.get("locked"):
                parts.append(cell.source)
    return "\n".join(parts)


def _fallback_page(student, name, found, problem=None) -> str:
    reasons = ([f"<li>{html.escape(problem)}</li>"] if problem else []) + \
        [f"<li>{html.escape(i.message)}</li>" for i in found if i.severity == "error"]
    reasons = "".join(reasons) or "<li>the notebook could not be graded</li>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(name)}: feedback</title></head>"
            f"<body><h1>{html.escape(name)}: feedback for {html.escape(student)}</h1>"
            + (f"<p>Your feedback page could not be made:</p><ul>{reasons}</ul><p>Your grade is in the "
               "gradebook; ask the instructor for the details.</p></body></html>\n" if problem else
               f"<p>Your submission could not be graded automatically:</p><ul>{reasons}</ul>"
               "<p>Your score for this assignment is 0 until this is resolved. Contact the instructor, "
               "and keep your notebook.</p></body></html>\n"))


def generate(course_dir, name, *, students=None, log=print) -> list[Path]:
    """Feedback HTML for every graded submission of ``name``; returns the files written."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from . import policy as store
    from .cells import assignment_spec
    from .course import db_url, load_config, submissions
    from .grade import GradingError

    course_dir = Path(course_dir).resolve()
    config = load_config(course_dir)
    config.GenerateFeedback.preprocessors = PREPROCESSORS
    config.GenerateFeedback.force = True
    spec = assignment_spec(course_dir, name, db_url(course_dir, config))
    graded = sorted(p.parent.name for p in (course_dir / "autograded").glob(f"*/{name}") if p.is_dir())
    wanted = list(students or sorted(set(submissions(course_dir, name)) | set(graded)))
    missing = sorted(set(wanted) - set(graded))
    if missing:
        raise GradingError(f"not graded yet: {', '.join(missing)}; run `nbjudge grade {name}` first")
    if not wanted:
        raise GradingError(f"nothing to give feedback on: no graded submissions of {name}")
    written = []
    recorded = store.load(course_dir, name)
    limit = float(config.Feedback.get("timeout", FEEDBACK_TIMEOUT)) if "Feedback" in config else FEEDBACK_TIMEOUT
    for student in wanted:
        out = course_dir / "feedback" / student / name
        has_notebooks = any((course_dir / "autograded" / student / name).glob("*.ipynb"))
        problem = None
        if has_notebooks:
            coursedir = CourseDirectory(config=config)
            coursedir.root = str(course_dir)
            coursedir.assignment_id = name
            coursedir.student_id = student
            converter = GenerateFeedback(coursedir=coursedir, config=config)
            try:
                with _time_limit(limit):
                    converter.start()
            except FeedbackTimeout:
                problem = f"the feedback page took longer than {limit:g} s to make (c.Feedback.timeout)"
                log(f"  {student}: {problem}; a short page says so")
        for nb_name in spec["notebooks"]:
            page = out / f"{nb_name}.html"
            if problem or not page.is_file():
                out.mkdir(parents=True, exist_ok=True)
                page.write_text(_fallback_page(student, name, recorded.get(student, []), problem))
            written.append(page)
    for page in written:  # no script runs in a feedback page, whatever it holds
        if page.is_file():
            page.write_text(add_csp(page.read_text(errors="replace")))
    secrets = hidden_secrets(spec)
    leaks = {}
    for student in wanted:
        # a hidden-test line that also stands in the student's own code is theirs, not a leak
        leaks.update(student_leaks(course_dir, name, student, secrets))
    if leaks:
        for path in leaks:
            Path(path).unlink()
        detail = "; ".join(f"{p}: {lines[0]!r}" for p, lines in leaks.items())
        raise GradingError(f"hidden-test text reached {len(leaks)} feedback file(s), which were deleted: {detail}")
    log(f"feedback for {len(wanted)} student(s) in {course_dir / 'feedback'} (checked: no hidden-test text)")
    return written
