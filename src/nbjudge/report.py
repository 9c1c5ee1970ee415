"""Grade analytics of one assignment: ``nbjudge report NAME``.

Reads the gradebook and the recorded incidents and writes, to ``reports/<assignment>/``:

- ``report.md``: per-question mean, standard deviation and fail rate; the totals' summary
  and histogram; the submissions that need manual grading; every incident with its reason;
- ``histogram.png``: the distribution of totals (seaborn);
- ``questions.csv``, ``totals.csv``, ``incidents.csv``: the same numbers for a spreadsheet.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path


def collect(course_dir, name):
    """Gradebook rows of ``name``: (per-grade DataFrame, per-student DataFrame)."""
    import pandas as pd
    from nbgrader.api import Gradebook, MissingEntry

    from .course import db_url, load_config
    from .grade import GradingError

    config = load_config(course_dir)
    rows, totals = [], []
    with Gradebook(db_url(course_dir, config)) as gb:
        try:
            assignment = gb.find_assignment(name)
        except MissingEntry as exc:
            raise GradingError(f"the gradebook has no assignment {name!r}: grade it first") from exc
        manual_ids = {c.name for nb in assignment.notebooks for c in nb.solution_cells}
        for sub in sorted(assignment.submissions, key=lambda s: s.student.id):
            penalty, flagged = 0.0, False
            for nb in sub.notebooks:
                penalty += float(nb.late_submission_penalty or 0.0)
                flagged = flagged or bool(nb.flagged)
                for grade in nb.grades:
                    rows.append({"student": sub.student.id, "notebook": nb.name, "question": grade.name,
                                 "kind": "manual" if grade.name in manual_ids else "autograded",
                                 "score": float(grade.score), "max_score": float(grade.max_score),
                                 "needs_manual_grade": bool(grade.needs_manual_grade)})
            score = sum(r["score"] for r in rows if r["student"] == sub.student.id)
            totals.append({"student": sub.student.id, "score": score - penalty, "late_penalty": penalty,
                           "max_score": float(assignment.max_score), "flagged": flagged,
                           "timestamp": sub.timestamp.isoformat(" ") if sub.timestamp else ""})
    return pd.DataFrame(rows), pd.DataFrame(totals)


def question_table(grades):
    """Per question: points, mean, std, fail rate (share of submissions below full points)."""
    import pandas as pd

    if grades.empty:
        return pd.DataFrame(columns=["question", "kind", "points", "mean", "std", "fail_rate", "n"])
    table = grades.groupby(["question", "kind"], sort=False).agg(
        points=("max_score", "first"), mean=("score", "mean"), std=("score", "std"),
        fail_rate=("score", lambda s: float(((s < grades.loc[s.index, "max_score"] - 1e-9)).mean())),
        n=("score", "size")).reset_index()
    return table.fillna({"std": 0.0})


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def markdown_cell(value) -> str:
    """``value`` as the text of one Markdown table cell: one line (every control character, ``\\r``
    included, becomes a space), HTML escaped, ``|`` escaped, so no grade id, student id or message
    can end the row, start a heading or inject markup."""
    text = _CONTROL.sub(" ", str(value))
    return html.escape(text, quote=False).replace("|", "\\|")


def csv_cell(value):
    """``value`` safe for a spreadsheet: one line (control characters become spaces), and text
    starting with ``= + - @`` (or a tab or carriage return) prefixed with ``'`` so that it is never
    read as a formula (CSV injection)."""
    if not isinstance(value, str):
        return value
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        value = "'" + value
    return _CONTROL.sub(" ", value)


def _safe_csv(df):
    return df.map(csv_cell) if not df.empty else df


def _markdown_table(df, floats="{:.2f}") -> str:
    if df.empty:
        return "(none)\n"
    cols = [markdown_cell(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [floats.format(v) if isinstance(v, float) else markdown_cell(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def histogram(totals, max_score, path, title):
    """Seaborn histogram of the totals, saved as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = max(5, min(20, int(max_score) + 1))
    sns.histplot(totals["score"], bins=bins, binrange=(0, max(max_score, 1e-9)), ax=ax, color="#4477aa")
    ax.set_xlabel(f"total score (out of {max_score:g})")
    ax.set_ylabel("submissions")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build(course_dir, name, out=None, log=print) -> Path:
    """Write the report files; return the path of ``report.md``."""
    import pandas as pd

    from . import policy as store

    course_dir = Path(course_dir).resolve()
    out = Path(out) if out else course_dir / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    grades, totals = collect(course_dir, name)
    questions = question_table(grades)
    recorded = store.load(course_dir, name)
    incident_rows = [{"student": s, "severity": i.severity, "kind": i.kind, "cell": i.cell or "",
                      "reason": i.message} for s, found in sorted(recorded.items()) for i in found]
    incidents = pd.DataFrame(incident_rows, columns=["student", "severity", "kind", "cell", "reason"])
    manual = grades[grades["needs_manual_grade"]] if not grades.empty else grades
    manual = manual[["student", "question", "kind"]] if not manual.empty else pd.DataFrame(
        columns=["student", "question", "kind"])
    review = sorted({r["student"] for r in incident_rows if r["severity"] in ("review", "integrity", "error")})
    _safe_csv(questions).to_csv(out / "questions.csv", index=False)
    _safe_csv(totals).to_csv(out / "totals.csv", index=False)
    _safe_csv(incidents).to_csv(out / "incidents.csv", index=False)
    max_score = float(totals["max_score"].iloc[0]) if not totals.empty else 0.0
    if not totals.empty:
        histogram(totals, max_score, out / "histogram.png", f"{name}: totals of {len(totals)} submissions")
    run_file = out / "last-grading-run.json"
    run = json.loads(run_file.read_text()) if run_file.is_file() else {}
    text = [f"# Grading report: {name}\n"]
    if run and run.get("isolated") is False:
        text.append(f"**{markdown_cell(run.get('isolation', 'CPU and memory were not isolated between submissions'))}** "
                    "One submission could slow down or starve the one graded beside it: regrade with `--jobs 1`, "
                    "or on a machine with cgroups (see teaching.md).\n")
    elif run and run.get("isolation"):
        text.append(f"{markdown_cell(run['isolation'])}\n")
    if run:
        mode = "sandboxed (bubblewrap)" if run.get("sandbox") else "**UNSANDBOXED (--no-sandbox)**"
        text.append(f"Last grading run: {run.get('finished')}, {run.get('students')} submission(s), "
                    f"{run.get('jobs')} job(s), {run.get('seconds')} s, {mode}.\n")
    if not totals.empty:
        s = totals["score"]
        text.append(f"## Totals\n\n{len(totals)} submissions; mean {s.mean():.2f}, median {s.median():.2f}, "
                    f"standard deviation {s.std(ddof=1) if len(s) > 1 else 0.0:.2f}, min {s.min():.2f}, "
                    f"max {s.max():.2f} (out of {max_score:g}). Scores of manually graded questions count as 0 "
                    "until they are graded.\n\n![histogram of totals](histogram.png)\n")
    text.append("## Questions\n\nfail_rate: share of submissions below full points.\n\n"
                + _markdown_table(questions))
    text.append(f"## Needs manual grading ({len(manual)})\n\nOpen the formgrader (start `jupyter lab` in the course folder, menu Nbgrader → Formgrader) for "
                "these; autograded test cells appear here when their scores were withheld.\n\n"
                + _markdown_table(manual))
    text.append(f"## Flagged for review ({len(review)})\n\n" + (", ".join(markdown_cell(r) for r in review)
                                                             if review else "(none)") + "\n")
    text.append(f"## Incidents ({len(incidents)})\n\n" + _markdown_table(incidents))
    report = out / "report.md"
    report.write_text("\n".join(text))
    log(f"report: {report}")
    return report
