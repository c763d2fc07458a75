"""Exactly once: committed => applied once; aborted => never; applied twice is a failure.

Duplicates are violations for payments (unlike Jepsen's queue checker), because a
redelivered prepare or commit that is applied again moves money twice.
"""

from __future__ import annotations

from typing import Any

from harness.checkers.facts import Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op

NAME = "exactly-once"
KINDS = {
    "applied-more-than-once": "violation",
    "committed-not-applied": "violation",
    "aborted-but-applied": "violation",
    "applied-while-prepared": "unknown",   # effect applied before the decision is known
    "applied-not-reported": "unknown",     # the record has no `applied` count
}


def check_exactly_once(history: list[Op], state: dict[str, Any],
                       options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    n = 0
    good: set[int] = set()  # ids of record objects already found correct (they are shared)
    for p, txns in facts.txns.items():
        n += len(txns)
        for pid, rec in txns.items():
            if id(rec) in good:
                continue
            applied = rec.get("applied")
            s = rec["state"]
            ex = {"payment": pid, "participants": [p], "state": s, "applied": applied}
            if applied is None:
                out.add("applied-not-reported", **ex, detail=f"{p} does not report `applied`")
            elif applied > 1:
                out.add("applied-more-than-once", **ex, detail=f"{p} applied it {applied} times")
            elif s == "committed" and applied == 0:
                out.add("committed-not-applied", **ex, detail=f"{p} committed but never applied it")
            elif s == "aborted" and applied > 0:
                out.add("aborted-but-applied", **ex, detail=f"{p} aborted but applied it")
            elif s == "prepared" and applied > 0:
                out.add("applied-while-prepared", **ex, detail=f"{p} applied it while still prepared")
            elif len(good) < 64:
                good.add(id(rec))
    return out.verdict(NAME, f"all {n} participant records applied exactly as decided")
