"""Atomicity: every payment is committed at all of its participants or at none."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checkers.facts import ABORT, ABSENT, COMMIT, COMMITTED, NOT_IN_STATE, Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op

NAME = "atomicity"
KINDS = {
    "mixed-outcome": "violation",        # committed at some participants, aborted at others
    "missing-record": "violation",       # committed (or decided commit) but a participant never heard of it
    "coordinator-disagrees": "violation",  # the coordinator's decision contradicts a participant
    "in-doubt": "unknown",               # committed somewhere, still prepared elsewhere
    "participant-not-in-state": "unknown",  # a needed participant is missing from the state
    "participants-undetermined": "unknown",  # who takes part cannot be derived (see formats.md)
}


def check_atomicity(history: list[Op], state: dict[str, Any],
                    options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    u, decision, certain = facts.summary_all()
    # fast path, for all payments at once: committed everywhere, or committed nowhere
    fine = ((u == COMMITTED) & (decision != ABORT) & certain) | (
        (u >= 0) & (u != COMMITTED) & (decision != COMMIT))
    for r in np.flatnonzero(~fine):
        pid = facts.pid(r)
        dec = facts.decision_of(r)
        ps, certain_r = facts.participants_of(r)
        st = {p: facts.status_of(p, r) for p in ps}
        values = set(st.values())
        ex = {"payment": pid, "participants": ps, "states": st}
        if dec is not None:
            ex["decision"] = dec
        committed = "committed" in values or dec == "commit"
        if "committed" in values and "aborted" in values:
            out.add("mixed-outcome", **ex, detail="committed at some participants, aborted at others")
        elif (dec == "commit" and "aborted" in values) or (
                dec == "abort" and "committed" in values):
            out.add("coordinator-disagrees", **ex,
                    detail=f"coordinator decided {dec} but a participant did the opposite")
        elif committed and ABSENT in values:
            missing = [p for p, s in st.items() if s == ABSENT]
            out.add("missing-record", **ex,
                    detail=f"committed, but {', '.join(missing)} has no record of it")
        elif committed and NOT_IN_STATE in values:
            missing = [p for p, s in st.items() if s == NOT_IN_STATE]
            out.add("participant-not-in-state", **ex,
                    detail=f"participant(s) {', '.join(missing)} missing from the state")
        elif "committed" in values and "prepared" in values:
            out.add("in-doubt", **ex, detail="committed at some participants, still prepared at others")
        elif "committed" in values and not certain_r:
            out.add("participants-undetermined", **ex,
                    detail="no coordinator record and the accounts' owners are unknown")
    return out.verdict(NAME, f"all {len(facts.pids)} payments committed everywhere or nowhere")
