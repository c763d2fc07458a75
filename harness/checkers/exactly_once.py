"""Exactly once: committed => applied once; aborted => never; applied twice is a failure.

Duplicates are violations for payments (unlike Jepsen's queue checker), because a
redelivered prepare or commit that is applied again moves money twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checkers.facts import ABORTED, COMMITTED, PREPARED, STATUS, Facts
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
    for p, recs in zip(facts.participants, facts.records):
        n += len(recs.rows)
        a, s = recs.applied, recs.status
        # every record that is not applied exactly as decided, in the state's order
        bad = (a < 0) | (a > 1) | ((s == COMMITTED) & (a == 0)) | (
            ((s == ABORTED) | (s == PREPARED)) & (a > 0))
        for k in np.flatnonzero(bad):
            applied = int(a[k]) if a[k] >= 0 else None
            st = STATUS[s[k]]
            ex = {"payment": facts.pid(recs.rows[k]), "participants": [p], "state": st,
                  "applied": applied}
            if applied is None:
                out.add("applied-not-reported", **ex, detail=f"{p} does not report `applied`")
            elif applied > 1:
                out.add("applied-more-than-once", **ex, detail=f"{p} applied it {applied} times")
            elif st == "committed" and applied == 0:
                out.add("committed-not-applied", **ex, detail=f"{p} committed but never applied it")
            elif st == "aborted" and applied > 0:
                out.add("aborted-but-applied", **ex, detail=f"{p} aborted but applied it")
            elif st == "prepared" and applied > 0:
                out.add("applied-while-prepared", **ex, detail=f"{p} applied it while still prepared")
    return out.verdict(NAME, f"all {n} participant records applied exactly as decided")
