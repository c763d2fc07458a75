"""The six invariants, each a pure function of (history, state) returning a Verdict.

`check_all` (values in memory) and `check_files` (files, streamed) build the shared
Facts once and run every checker the options ask for; docs/checkers.md says what
each proves and what its evidence kinds mean.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
           "check_all", "check_files", "check_facts", "check_agreement", "check_atomicity",
           "check_conservation", "check_exactly_once", "check_no_negative", "check_resolution"]

Checker = Callable[..., Verdict]

CHECKERS: dict[str, Checker] = {
    "atomicity": check_atomicity,
    "client-agreement": check_agreement,
    "exactly-once": check_exactly_once,
    "conservation": check_conservation,
    "no-negative": check_no_negative,
    "resolution": check_resolution,
}


def check_facts(facts: Facts, options: CheckOptions = CheckOptions()) -> CheckReport:
    """Run every checker; "no-negative" only when `options.no_negative` (a promise of the target)."""
    with paused_gc():
        verdicts = [fn([], facts.state, options, facts) for name, fn in CHECKERS.items()
                    if name != "no-negative" or options.no_negative]
    return CheckReport(verdicts, combine([v.valid for v in verdicts]))


def check_all(history: list[Op], state: dict[str, Any],
              options: CheckOptions = CheckOptions()) -> CheckReport:
    """Check a history and a state held in memory (the end of a chaos run)."""
    with paused_gc():
        facts = Facts.build(history, state)
    return check_facts(facts, options)


def check_files(history: Path, state: Path, options: CheckOptions = CheckOptions(), *,
                progress: Any = None) -> CheckReport:
    """Check a history file and a state file, streamed: memory grows with the number of
    payments, not with the size of the files (docs/checkers.md, "Cost")."""
    from harness.checkers.build import facts_from_files
    return check_facts(facts_from_files(Path(history), Path(state), progress=progress), options)
