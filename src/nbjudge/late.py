"""The course's late-submission penalty, as an nbgrader plugin.

nbgrader computes how late a submission is from its ``timestamp.txt`` and the assignment's due
date (``nbgrader db assignment add NAME --duedate="2026-03-01 23:59:00 Europe/Berlin"``), and
asks ``c.AssignLatePenalties.plugin_class`` for the penalty. nbgrader's own plugin knows only
"none" and "zero"; this one takes a fraction of the notebook's score per started day::

    c.AssignLatePenalties.plugin_class = "nbjudge.late.PerDayPenalty"
    c.PerDayPenalty.fraction_per_day = 0.1     # 10 % of the score per started day
    c.PerDayPenalty.grace_minutes = 15          # uploads a few minutes late are on time
"""
from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float, Integer, validate, TraitError


class PerDayPenalty(LateSubmissionPlugin):
    """Penalty = score x min(1, fraction_per_day x started days late), after a grace period."""

    fraction_per_day = Float(0.1, help="Share of the score lost per started day late.").tag(config=True)
    grace_minutes = Integer(15, help="Minutes after the due date that still count as on time.").tag(config=True)

    @validate("fraction_per_day")
    def _check_fraction(self, proposal):
        value = proposal["value"]
        if not 0.0 <= value <= 1.0:
            raise TraitError(f"fraction_per_day must be in [0, 1], got {value!r}")
        return value

    @validate("grace_minutes")
    def _check_grace(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"grace_minutes must be >= 0, got {proposal['value']!r}")
        return proposal["value"]

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        late = total_seconds_late - 60 * self.grace_minutes
        if late <= 0:
            return None
        days = math.ceil(late / 86400)
        return score * min(1.0, self.fraction_per_day * days)
