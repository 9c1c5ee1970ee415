"""The lectures' qualitative result claims and the cells that back them.

A sentence such as "the diagonal cells are much closer to each other than the cells of any one row" is true
only for the numbers a run produced. Every such sentence listed in ``CLAIMS`` must be backed by a code cell
*above* it in the same lecture: a ``glue`` of the named key, or an ``assert`` statement containing the named
text, so that a run which no longer supports the sentence fails the build instead of printing it.

The check reads the notebooks only (nothing is executed). It fails when a listed claim is no longer in its
lecture (the sentence was edited: update the list), or when one of its backings is missing or sits below it.

    python tools/claims.py          # table of claims and their backings; exit status 1 on a problem

``tests/test_book_claims.py`` runs the same check.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Claim:
    """One sentence of a lecture and what backs it.

    chapter : folder name under ``chapters/``, e.g. ``"07_training_with_keras"``
    text : a piece of the sentence as it appears in a markdown cell (whitespace is normalized)
    glue : keys that a code cell above the sentence must glue
    asserts : pieces of text that an ``assert`` statement in a code cell above the sentence must contain
    """

    chapter: str
    text: str
    glue: tuple[str, ...] = ()
    asserts: tuple[str, ...] = ()


CLAIMS = [
    # 01 neurons
    Claim("01_neurons", "random lines separate AND and OR perfectly", asserts=('best["AND"] == 1.0',)),
    Claim("01_neurons", "The ten sigmoids of this untrained network sum to",
          glue=("ch01_sigmoid_sum_10",), asserts=("abs(sigmoid_sum - 1) > 0.1",)),
    Claim("01_neurons", "Too small a learning rate** (top rows)",
          asserts=("solved[0].mean() < solved.mean(axis=1).max()",)),
    Claim("01_neurons", "most runs ({glue:text}`ch01_xor_grid_half_h2:.0%` of them) end at accuracy 0.5",
          glue=("ch01_xor_grid_half_h2",), asserts=("stuck_half_h2 > 0.5",)),
    Claim("01_neurons", "gradient descent finds a solution from many more starting points",
          asserts=("solved_fraction[4] > solved_fraction[2]",)),
    # 02 backprop
    Claim("02_backprop", "The two runs behave alike",
          asserts=('abs(nnlab_test["accuracy"] - keras_test["accuracy"]) < 0.03',)),
    Claim("02_backprop", "per gradient step they make about the same progress",
          glue=("ch02_004_update_ratio",), asserts=("0.5 < full[updates_column] / mini[updates_column] < 2",)),
    Claim("02_backprop", "one step *raises* the loss",
          glue=("ch02_slip_sign_loss_change",), asserts=('< 0 < slips.loc["delta_L = t - y"',)),
    Claim("02_backprop", "Leaving out the output layer passes the gradient check",
          asserts=('slips.loc["update l = L-1, ..., 1 only", "gradient check: max rel. error"] < TOL',)),
    Claim("02_backprop", "Printed as source 004 printed it, the loss is 0.0",
          glue=("ch02_004_long_test_loss",), asserts=('round(long_test["loss"], 3) == 0.0 < long_test["loss"]',)),
    # 03 softmax and cross-entropy
    Claim("03_softmax_cross_entropy", "The printed expression has the wrong sign wherever $y = 1$",
          asserts=("err_source > 0.5",)),
    Claim("03_softmax_cross_entropy", "Only the step check names the culprit",
          asserts=('typo_table.loc["with the typo", "arrays that never changed"] == "hidden_weights"',)),
    Claim("03_softmax_cross_entropy", "the signature of a factor 2", asserts=("abs(err_notes - 1 / 3) < 1e-6",)),
    Claim("03_softmax_cross_entropy", "The cell above asserts at least 97 %", asserts=("nnlab_test_acc >= 0.97",)),
    Claim("03_softmax_cross_entropy", "so the from-scratch network is as good as the library ones",
          glue=("ch03_misclassified_spread",), asserts=("misclassified_spread <= 10",)),
    Claim("03_softmax_cross_entropy", "Label 0 is the minority class of",
          asserts=("mean_radius[y_bc_all == 0].mean() > mean_radius[y_bc_all == 1].mean()",)),
    # 04 initialization
    Claim("04_initialization", "Without dropout the units stay exactly equal",
          asserts=('dropout_table.loc["dropout 0", "spread, Adam, 30 epochs"] == 0.0',)),
    Claim("04_initialization", "With dropout 0.1 the units already differ after 304 SGD steps",
          asserts=('"spread, SGD, 304 steps"] > 0).all()',)),
    Claim("04_initialization", "the default slope depends on *which* Keras object you use",
          asserts=('abs(slopes["keras.layers.LeakyReLU() (layer)"] + 0.3) < 1e-6',)),
    # 05 batch normalization
    Claim("05_batch_norm", "With $\\epsilon = 0$ the cosine with $\\hat z$ is zero too",
          glue=("ch05_cos_eps0_max",), asserts=('ortho.loc["epsilon = 0", "cosine(dL/dz, z_hat)"].abs().max() < 1e-10',)),
    Claim("05_batch_norm", "Accuracy drops as the rate approaches 10, but even there the network learns",
          asserts=('TRAINS < sweep.loc[10.0, "with BN"] < sweep["with BN"].max()',)),
    Claim("05_batch_norm", "covariate shift did not undo the benefit", asserts=("noisy_val > 0.5 > plain_val_01",)),
    # 06 dropout and regularization
    Claim("06_dropout_regularization", "The first step of the pattern is the same: 2 units underfit",
          asserts=('> 2 * pg_table.loc["3 units", "test loss"]',)),
    Claim("06_dropout_regularization", "The penalties are what raise the test loss",
          asserts=('pg_table.loc["4 units", "test loss"] < min(',
                   'pg_table.loc["4 units, L1 0.003", "test loss"] < pg_table.loc["4 units, L2 0.003", "test loss"]')),
    Claim("06_dropout_regularization", "L2, which shrinks every weight, gives the least confident fit",
          asserts=('idxmax() == "4 units, L2 0.003"',)),
    Claim("06_dropout_regularization", "**Gaussian dropout drops nothing.**",
          glue=("ch06_gauss_share_zero",), asserts=("np.mean(keras_gauss == 0) == 0.0",)),
    Claim("06_dropout_regularization", "tasks 7 and 8 trained on 48,000 of the 60,000 training images",
          asserts=("steps_per_epoch[48_000] == 1500",)),
    Claim("06_dropout_regularization", "The second-order term is a fair description of the effect of the noise only",
          asserts=('abs(tikhonov.loc[3.0, "ratio"] - 1) > abs(tikhonov.loc[1.0, "ratio"] - 1)',)),
    Claim("06_dropout_regularization", "As $\\sigma$ shrinks, the two trainings give ever closer models",
          glue=("ch06_equiv_diff_s002",), asserts=('equiv["noise vs penalty"].is_monotonic_increasing',)),
    Claim("06_dropout_regularization", "For small $\\sigma$ it also falls faster than the effect of the noise itself",
          glue=("ch06_equiv_rel_s002",), asserts=("rel[0.02] < rel[0.05] < rel[0.1] and rel[0.02] < 0.01",)),
    Claim("06_dropout_regularization", "the relative difference is a little smaller than at 0.1",
          asserts=("rel[0.2] < rel[0.1] and rel[0.3] < rel[0.1]",)),
    Claim("06_dropout_regularization", "the penalty still gets most of the effect right",
          glue=("ch06_equiv_rel_s05",), asserts=("(rel[[0.3, 0.5]] < 0.5).all()",)),
    Claim("06_dropout_regularization", "At $\\sigma = 0.7$ it breaks: trained with the penalty, the weights run off",
          glue=("ch06_equiv_wpen_s07",), asserts=("runs_off == [0.7, 1.0]",)),
    Claim("06_dropout_regularization", "the noise-trained unit answers by flattening its boundary",
          glue=("ch06_equiv_wnoise_s07",), asserts=('equiv.loc[0.7, "|w|, noise"] < np.linalg.norm(w_plain) / 5',)),
    # 07 training with Keras
    Claim("07_training_with_keras", "an honest estimate misses by about as much as the folds disagree",
          glue=("ch07_chosen_gap",), asserts=("abs(gap) < 3 *",)),
    Claim("07_training_with_keras", "(The lab reports the same ordering.)",
          asserts=('batch_rows[32]["test accuracy"] > batch_rows[128]["test accuracy"] > batch_rows[512]["test accuracy"]',)),
    Claim("07_training_with_keras", "much closer to each other than the cells of any one row",
          asserts=("max(diagonal) - min(diagonal) < row_spreads.min()",)),
    Claim("07_training_with_keras", "no mismatch, as expected for Fashion-MNIST",
          asserts=("abs(gap_same) < 0.02 and gap_shift > 0.1",)),
    Claim("07_training_with_keras", "the network is still learning when we stop",
          glue=("ch07_001_late_gain",), asserts=("0 < late_gain < early_gain",)),
    Claim("07_training_with_keras", "the pace has been falling, so they would most likely add less",
          glue=("ch07_001_extrapolated",), asserts=("0 < late_gain < early_gain",)),
    Claim("07_training_with_keras", "The learning rate matters most, as the report found",
          asserts=("effect_lr > effect_l2",)),
    Claim("07_training_with_keras", "the faster learner is also the one that starts to fit its training images better",
          asserts=('gap_3[BASE_001] > gap_3["lr 1e-5"]',)),
    Claim("07_training_with_keras", "about as well as ReLU (the cell asserts a difference below one point)",
          glue=("ch07_001_tanh_val_acc",), asserts=('abs(val_3["tanh"] - val_3[BASE_001]) < 0.01',)),
    Claim("07_training_with_keras", "Over the long run of the report's setting the gap grows",
          glue=("ch07_001_gap_e13", "ch07_001_gap_e17"), asserts=("gap_long[13] < gap_long[15] < gap_long[17]",)),
    Claim("07_training_with_keras", "the validation accuracy changes by less than the gap grows",
          asserts=("< gap_long[17] - gap_long[13]",)),
    Claim("07_training_with_keras", "by the report's rule, no overfitting",
          asserts=('first["val_accuracy"] > first["Keras \'accuracy\' (running, during the epoch)"]',)),
    Claim("07_training_with_keras", "most remaining errors confuse one upper-body garment with another",
          glue=("ch07_tops_error_share",), asserts=("tops_share > 0.5",)),
    # 08 convnets
    Claim("08_convnets", "The cell above asserts at least 91 %", asserts=("lenet_test_acc >= 0.91",)),
    Claim("08_convnets", "cannot produce the report's 89.96 %",
          glue=("ch08_twice_scaled_test_acc",), asserts=("twice_acc < 0.5",)),
    # 09 capstone
    Claim("09_capstone", "majority-class rates (the cell checks this)", asserts=("abs(acc - majority) < 0.01",)),
    Claim("09_capstone", "from zeros a tanh or ReLU unit gets no gradient at all", asserts=("spread == 0.0",)),
    Claim("09_capstone", "From zeros its sigmoid units with dropout 0.3 do drift apart",
          glue=("ch09_report_config_zeros_spread",), asserts=('["largest difference between units"] > 0',)),
]

GLUE_CALL = re.compile(r"""\bglue\(\s*(f?)(["'])(.+?)\2""")


def _normalize(text: str) -> str:
    return " ".join(text.split())


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _glues(code: str, key: str) -> bool:
    """Whether ``code`` glues ``key``, literally or through an f-string such as ``f"ch07_bs{bs}_acc"``."""
    for is_f, _, name in GLUE_CALL.findall(code):
        if not is_f and name == key:
            return True
        if is_f:
            pattern = "".join(".+?" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[^}]*\})", name) if part)
            if re.fullmatch(pattern, key):
                return True
    return False


def _asserts(code: str, fragment: str) -> bool:
    return any(line.strip().startswith("assert") and fragment in line for line in code.splitlines())


def check_claim(claim: Claim, cells: list[dict]) -> list[str]:
    """Problems with one claim in a lecture given as a list of notebook cells (empty list: backed)."""
    wanted = _normalize(claim.text)
    where = next((i for i, cell in enumerate(cells)
                  if cell.get("cell_type") == "markdown" and wanted in _normalize(_source(cell))), None)
    if where is None:
        return [f"{claim.chapter}: claim not found in any markdown cell: {claim.text!r}"]
    above = [_source(cell) for cell in cells[:where] if cell.get("cell_type") == "code"]
    problems = [f"{claim.chapter}: {claim.text!r} needs glue key {key!r} above it"
                for key in claim.glue if not any(_glues(code, key) for code in above)]
    problems += [f"{claim.chapter}: {claim.text!r} needs an assert containing {fragment!r} above it"
                 for fragment in claim.asserts if not any(_asserts(code, fragment) for code in above)]
    if not claim.glue and not claim.asserts:
        problems.append(f"{claim.chapter}: {claim.text!r} lists no backing")
    return problems


def lecture_cells(chapter: str, root: Path = ROOT) -> list[dict]:
    path = root / "chapters" / chapter / "lecture.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def check(claims=CLAIMS, root: Path = ROOT) -> list[str]:
    """Problems over all ``claims``; an empty list means every claim is backed."""
    cache, problems = {}, []
    for claim in claims:
        if claim.chapter not in cache:
            try:
                cache[claim.chapter] = lecture_cells(claim.chapter, root)
            except FileNotFoundError:
                problems.append(f"{claim.chapter}: no chapters/{claim.chapter}/lecture.ipynb")
                cache[claim.chapter] = None
        if cache[claim.chapter] is not None:
            problems += check_claim(claim, cache[claim.chapter])
    return problems


def main() -> int:
    for claim in CLAIMS:
        backing = [f"glue {key}" for key in claim.glue] + [f"assert ...{fragment}..." for fragment in claim.asserts]
        print(f"{claim.chapter:27s} {claim.text[:70]!r}\n{'':27s}   backed by: {'; '.join(backing)}")
    problems = check()
    print(f"\n{len(CLAIMS)} claims, {len(problems)} problem(s)")
    for problem in problems:
        print("  -", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
