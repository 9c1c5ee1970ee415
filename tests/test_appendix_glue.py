"""The reproductions appendix: every number it pastes must exist, checked without a build.

``appendix/reproductions.ipynb`` pastes the chapters' numbers with myst-nb's cross-notebook glue
role, ``{glue:text}`/chapters/NN_topic/lecture.ipynb::chNN_key:fmt```. In the book build a key
that the chapter does not glue is a Sphinx warning (an error under ``-W``). These tests catch the
same mistakes in a second: each reference names an existing lecture whose code glues the key
(literally, or through an f-string such as ``f"ch07_bs{bs}_test_acc"``), and has a format
specification that Python accepts.
"""
from __future__ import annotations

import re
import string
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
APPENDIX = ROOT / "appendix" / "reproductions.ipynb"
ROLE = re.compile(r"\{glue:text\}`([^`]*)`")
FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
GLUE_CALL = re.compile(r"""\bglue\(\s*(f?)(["'])(.+?)\2""")


def references(nb) -> list[str]:
    """The text of every {glue:text} role in the markdown cells, outside fenced code blocks."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += ROLE.findall(FENCE.sub("", cell.source))
    return found


def parse(text: str) -> tuple[str, str, str]:
    """Split ``doc::key:fmt`` exactly as myst-nb's PasteTextRole does: format after the last colon."""
    if "::" not in text:
        raise ValueError(f"{text!r} is not a cross-notebook reference: expected 'path.ipynb::key:format'")
    target, _, fmt = text.rpartition(":")
    doc, sep, key = target.partition("::")
    if not sep or not fmt or not key:
        raise ValueError(f"{text!r} has no format specification: without one, myst-nb splits the key "
                         "at its last colon; write e.g. '::key:.2%' or '::key:s'")
    return doc, key, fmt


def glued_keys(path: Path) -> tuple[set[str], list[re.Pattern]]:
    """Literal keys, and patterns for f-string keys, that the notebook's code cells glue."""
    literal, patterns = set(), []
    for cell in nbformat.read(str(path), as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for is_f, _, key in GLUE_CALL.findall(cell.source):
            if not is_f:
                literal.add(key)
                continue
            regex = "".join(re.escape(text) + (r"[^\s\"']+" if field is not None else "")
                            for text, field, _, _ in string.Formatter().parse(key))
            patterns.append(re.compile(regex))
    return literal, patterns


def is_glued(key: str, literal: set[str], patterns: list[re.Pattern]) -> bool:
    return key in literal or any(p.fullmatch(key) for p in patterns)


def sample_value(fmt: str):
    """A value of the type a format specification expects (its last character is the type)."""
    kind = fmt[-1]
    return "text" if kind == "s" else 12 if kind in "bcdoxX" else 0.5


APPENDIX_REFS = references(nbformat.read(str(APPENDIX), as_version=4)) if APPENDIX.is_file() else []


def test_appendix_pastes_numbers_from_every_source_chapter():
    assert APPENDIX.is_file(), "appendix/reproductions.ipynb is missing"
    chapters = {parse(ref)[0].split("/")[2] for ref in APPENDIX_REFS}
    expected = {"02_backprop", "03_softmax_cross_entropy", "04_initialization", "06_dropout_regularization",
                "07_training_with_keras", "08_convnets", "09_capstone"}
    assert expected <= chapters, f"no numbers pasted from {sorted(expected - chapters)}"


@pytest.mark.parametrize("ref", APPENDIX_REFS)
def test_reference_resolves(ref):
    doc, key, fmt = parse(ref)
    assert doc.startswith("/chapters/") and doc.endswith("/lecture.ipynb"), \
        f"{ref!r}: point at a lecture from the book root, /chapters/NN_topic/lecture.ipynb"
    path = ROOT / doc.lstrip("/")
    assert path.is_file(), f"{ref!r}: {path.relative_to(ROOT)} does not exist"
    chapter = path.parent.name[:2]
    assert key.startswith(f"ch{chapter}_"), f"{ref!r}: keys of chapter {chapter} start with ch{chapter}_"
    literal, patterns = glued_keys(path)
    assert is_glued(key, literal, patterns), f"{ref!r}: {path.relative_to(ROOT)} glues no key {key!r}"
    format(sample_value(fmt), fmt)  # raises ValueError on a malformed specification


# -- the checks above must be able to fail -------------------------------------------------------
def test_parse_rejects_references_without_a_format():
    assert parse("/chapters/x/lecture.ipynb::ch01_a:.2%") == ("/chapters/x/lecture.ipynb", "ch01_a", ".2%")
    with pytest.raises(ValueError, match="no format specification"):
        parse("/chapters/x/lecture.ipynb::ch01_a")
    with pytest.raises(ValueError, match="not a cross-notebook reference"):
        parse("ch01_a:.2f")


def test_glued_keys_finds_literal_and_templated_keys_only(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('glue("ch01_acc", float(acc), display=False)\n'
                                  'for bs in (32, 128):\n    glue(f"ch01_bs{bs}_acc", 0.5, display=False)'),
        nbformat.v4.new_markdown_cell('glue("ch01_in_markdown", 1)'),
    ])
    path = tmp_path / "lecture.ipynb"
    nbformat.write(nb, str(path))
    literal, patterns = glued_keys(path)
    assert is_glued("ch01_acc", literal, patterns)
    assert is_glued("ch01_bs128_acc", literal, patterns)
    assert not is_glued("ch01_bs128_loss", literal, patterns)
    assert not is_glued("ch01_in_markdown", literal, patterns)
    assert not is_glued("ch01_ac", literal, patterns)
