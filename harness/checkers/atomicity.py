"""Atomicity: every payment is committed at all of its participants or at none."""

from __future__ import annotations

from typing import Any

from harness.checkers.facts import ABSENT, NOT_IN_STATE, Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op

NAME = "atomicity"
_NOWHERE = frozenset({"aborted", ABSENT, "prepared"})
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
    n = 0
    for pid in facts.payment_ids():
        n += 1
        u, decision, certain = facts.summary(pid)
        if u == "committed" and decision != "abort" and certain:
            continue  # fast path: committed everywhere
        if u in _NOWHERE and decision != "commit":
            continue  # fast path: committed nowhere
        ps, certain = facts.participants_of(pid)
        st = {p: facts.status(p, pid) for p in ps}
        values = set(st.values())
        ex = {"payment": pid, "participants": ps, "states": st}
        if decision is not None:
            ex["decision"] = decision
        committed = "committed" in values or decision == "commit"
        if "committed" in values and "aborted" in values:
            out.add("mixed-outcome", **ex, detail="committed at some participants, aborted at others")
        elif (decision == "commit" and "aborted" in values) or (
                decision == "abort" and "committed" in values):
            out.add("coordinator-disagrees", **ex,
                    detail=f"coordinator decided {decision} but a participant did the opposite")
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
        elif "committed" in values and not certain:
            out.add("participants-undetermined", **ex,
                    detail="no coordinator record and the accounts' owners are unknown")
    return out.verdict(NAME, f"all {n} payments committed everywhere or nowhere")
