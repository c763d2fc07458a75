"""No negative balance: for targets that promise to refuse overdrafts."""

from __future__ import annotations

from typing import Any

from harness.checkers.conservation import final_balances
from harness.checkers.facts import Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op

NAME = "no-negative"
KINDS = {
    "negative-balance": "violation",  # a final balance below zero
    "negative-read": "violation",     # an ok read saw a balance below zero
    "no-balances": "unknown",
}


def check_no_negative(history: list[Op], state: dict[str, Any],
                      options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    finals = final_balances(facts)
    if not finals:
        out.add("no-balances", detail="no participant reports balances")
    for a, b in finals.items():
        if b < 0:
            out.add("negative-balance", account=a, participants=[facts.owners[a]], balance=b,
                    detail=f"{a} ends at {b}")
    for op in facts.reads:  # the ok reads that may be evidence
        neg = {a: b for a, b in op.value.items() if b < 0}
        if neg:
            out.add("negative-read", indexes=[op.index], balances=neg,
                    detail=f"read saw {', '.join(f'{a}={b}' for a, b in neg.items())}")
    return out.verdict(NAME, f"{len(finals)} final balances and {facts.n_reads} reads "
                             "are all >= 0")
