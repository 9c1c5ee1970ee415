"""Every qualitative result claim listed in ``tools/claims.py`` is backed by a cell above it.

The lectures are read, not executed, so this runs in well under a second. Executing them (the book
build, nbval) is what makes the backing asserts and glued numbers meaningful.
"""
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("claims", ROOT / "tools" / "claims.py")
claims = importlib.util.module_from_spec(_spec)
sys.modules["claims"] = claims  # dataclasses look the module up by name
_spec.loader.exec_module(claims)


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: f"{c.chapter}:{c.text[:40]}")
def test_claim_is_backed_by_a_cell_above_it(claim):
    problems = claims.check_claim(claim, claims.lecture_cells(claim.chapter))
    assert not problems, "\n".join(problems)


def test_every_lecture_with_result_claims_is_listed():
    chapters = {claim.chapter for claim in claims.CLAIMS}
    lectures = {path.parent.name for path in (ROOT / "chapters").glob("*/lecture.ipynb")}
    assert chapters <= lectures, f"claims name chapters that do not exist: {sorted(chapters - lectures)}"
    assert lectures <= chapters, f"no claims listed for {sorted(lectures - chapters)}"


# -- the check must be able to fail --------------------------------------------------------------
def _cells(*cells):
    return [dict(cell) for cell in nbformat.v4.new_notebook(cells=list(cells)).cells]


CODE = nbformat.v4.new_code_cell('gap = 0.1\nassert gap < 0.2, "small gap"\nglue("ch07_gap", gap, display=False)\n'
                                 'for bs in (32, 512):\n    glue(f"ch07_bs{bs}_acc", 0.5, display=False)')
CLAIM_TEXT = nbformat.v4.new_markdown_cell("The gap is   small,\nas the folds disagree.")


def test_backed_claim_passes():
    claim = claims.Claim("07_x", "The gap is small, as the folds", glue=("ch07_gap", "ch07_bs512_acc"),
                         asserts=("gap < 0.2",))
    assert claims.check_claim(claim, _cells(CODE, CLAIM_TEXT)) == []


def test_edited_claim_text_is_reported():
    claim = claims.Claim("07_x", "The gap is tiny", asserts=("gap < 0.2",))
    assert "claim not found" in claims.check_claim(claim, _cells(CODE, CLAIM_TEXT))[0]


def test_missing_glue_key_and_missing_assert_are_reported():
    claim = claims.Claim("07_x", "The gap is small", glue=("ch07_bs128_loss",), asserts=("gap < 0.01",))
    problems = claims.check_claim(claim, _cells(CODE, CLAIM_TEXT))
    assert len(problems) == 2
    assert "glue key 'ch07_bs128_loss'" in problems[0] and "assert containing 'gap < 0.01'" in problems[1]


def test_backing_below_the_claim_does_not_count():
    claim = claims.Claim("07_x", "The gap is small", glue=("ch07_gap",), asserts=("gap < 0.2",))
    assert len(claims.check_claim(claim, _cells(CLAIM_TEXT, CODE))) == 2


def test_text_outside_an_assert_does_not_count():
    code = nbformat.v4.new_code_cell('print("gap < 0.2")')
    claim = claims.Claim("07_x", "The gap is small", asserts=("gap < 0.2",))
    assert len(claims.check_claim(claim, _cells(code, CLAIM_TEXT))) == 1


def test_claim_without_backing_is_reported():
    claim = claims.Claim("07_x", "The gap is small")
    assert "lists no backing" in claims.check_claim(claim, _cells(CODE, CLAIM_TEXT))[0]
