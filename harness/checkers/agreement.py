"""Client agreement: what clients were told matches what the participants did.

ok => committed at every participant; fail => committed at none; info => either,
but the same at all. Also: an ok payment no participant knows is lost, and a
committed payment no client ever requested came from nowhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checkers.facts import COMMIT, COMMITTED, NOT_IN_STATE, TYPES, Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op, OpType

NAME = "client-agreement"
KINDS = {
    "payment-lost": "violation",          # ok, but no participant has any record of it
    "ok-not-committed": "violation",      # ok, but aborted or unknown at some participant
    "fail-but-committed": "violation",    # fail, but committed at some participant
    "info-split": "violation",            # info, committed at some participants but not all
    "committed-not-requested": "violation",  # committed, but never invoked in the history
    "ok-in-doubt": "unknown",             # ok, but still prepared somewhere
    "participant-not-in-state": "unknown",
    "participants-undetermined": "unknown",
}
_OK, _FAIL = 1, 2  # completion type codes (facts.TYPES)


def check_agreement(history: list[Op], state: dict[str, Any],
                    options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    index, typ, rows = facts.completions
    counts = np.bincount(typ.astype(np.intp), minlength=4)
    u_all, decision, certain_all = facts.summary_all()
    u, certain = u_all[rows], certain_all[rows]
    # fast path, for all outcomes at once: ok or info and committed everywhere;
    # fail or info and committed nowhere
    fine = ((u == COMMITTED) & (typ != _FAIL) & certain) | (
        (u >= 0) & (u != COMMITTED) & (typ != _OK))
    for k in np.flatnonzero(~fine):
        r = rows[k]
        pid = facts.pid(r)
        t = TYPES[typ[k]]
        ps, certain_k = facts.participants_of(r)
        st = {p: facts.status_of(p, r) for p in ps}
        values = set(st.values())
        ex = {"payment": pid, "participants": ps, "indexes": [int(index[k])], "states": st}
        if t is OpType.OK:
            if not facts.known_anywhere(r):
                out.add("payment-lost", **ex, detail="client was told ok; no participant knows it")
            elif values - {"committed", "prepared", NOT_IN_STATE}:
                out.add("ok-not-committed", **ex, detail="client was told ok; not committed everywhere")
            elif "prepared" in values:
                out.add("ok-in-doubt", **ex, detail="client was told ok; still prepared somewhere")
            elif NOT_IN_STATE in values:
                out.add("participant-not-in-state", **ex, detail="a participant is missing from the state")
            elif not certain_k:
                out.add("participants-undetermined", **ex,
                        detail="no coordinator record and the accounts' owners are unknown")
        elif t is OpType.FAIL:
            if "committed" in values:
                out.add("fail-but-committed", **ex, detail="client was told fail; committed somewhere")
        elif "committed" in values and values - {"committed", "prepared", NOT_IN_STATE}:
            out.add("info-split", **ex, detail="outcome unknown to the client; committed only at some")
    unrequested = ~facts.requested & ((facts.status == COMMITTED).any(axis=1) | (decision == COMMIT))
    for r in np.flatnonzero(unrequested):
        pid = facts.pid(r)
        out.add("committed-not-requested", payment=pid, participants=facts.committed_at(r),
                indexes=[], detail="committed but no client ever invoked it")
    return out.verdict(NAME, f"{counts[1]} ok, {counts[2]} fail, "
                             f"{counts[3]} info outcomes all match the participants")
