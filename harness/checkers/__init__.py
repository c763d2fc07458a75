"""The six invariants, each a pure function of (history, state) returning a Verdict.

`check_all` builds the shared Facts once and runs every checker the options ask
for; docs/checkers.md says what each proves and what its evidence kinds mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.checkers.agreement import check_agreement
from harness.checkers.atomicity import check_atomicity
from harness.checkers.conservation import check_conservation
from harness.checkers.exactly_once import check_exactly_once
from harness.checkers.facts import Facts
from harness.checkers.no_negative import check_no_negative
from harness.checkers.resolution import check_resolution
from harness.checkers.state import paused_gc
from harness.checkers.verdict import (CheckOptions, CheckReport, Evidence, Validity, Verdict,
                                      combine)
from harness.model import Op

__all__ = ["CHECKERS", "CheckOptions", "CheckReport", "Evidence", "Verdict", "Validity",
           "check_all", "check_agreement", "check_atomicity", "check_conservation",
           "check_exactly_once", "check_no_negative", "check_resolution"]

Checker = Callable[..., Verdict]

CHECKERS: dict[str, Checker] = {
    "atomicity": check_atomicity,
    "client-agreement": check_agreement,
    "exactly-once": check_exactly_once,
    "conservation": check_conservation,
    "no-negative": check_no_negative,
    "resolution": check_resolution,
}


def check_all(history: list[Op], state: dict[str, Any],
              options: CheckOptions = CheckOptions()) -> CheckReport:
    """Run every checker; "no-negative" only when `options.no_negative` (a promise of the target)."""
    with paused_gc():
        facts = Facts.build(history, state)
        verdicts = [fn(history, state, options, facts) for name, fn in CHECKERS.items()
                    if name != "no-negative" or options.no_negative]
    return CheckReport(verdicts, combine([v.valid for v in verdicts]))
