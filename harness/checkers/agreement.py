"""Client agreement: what clients were told matches what the participants did.

ok => committed at every participant; fail => committed at none; info => either,
but the same at all. Also: an ok payment no participant knows is lost, and a
committed payment no client ever requested came from nowhere.
"""

from __future__ import annotations

from typing import Any

from harness.checkers.facts import NOT_IN_STATE, Facts
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


def check_agreement(history: list[Op], state: dict[str, Any],
                    options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    counts = {OpType.OK: 0, OpType.FAIL: 0, OpType.INFO: 0}
    OK, FAIL = OpType.OK, OpType.FAIL
    for index, typ, pid in facts.completions:
        counts[typ] += 1
        u, _, certain = facts.summary(pid)
        if u == "committed":
            if typ is not FAIL and certain:
                continue  # fast path: ok or info, committed everywhere
        elif u is not None and typ is not OK:
            continue  # fast path: fail or info, committed nowhere
        ps, certain = facts.participants_of(pid)
        st = {p: facts.status(p, pid) for p in ps}
        values = set(st.values())
        ex = {"payment": pid, "participants": ps, "indexes": [index], "states": st}
        if typ is OpType.OK:
            if not facts.known_anywhere(pid):
                out.add("payment-lost", **ex, detail="client was told ok; no participant knows it")
            elif values - {"committed", "prepared", NOT_IN_STATE}:
                out.add("ok-not-committed", **ex, detail="client was told ok; not committed everywhere")
            elif "prepared" in values:
                out.add("ok-in-doubt", **ex, detail="client was told ok; still prepared somewhere")
            elif NOT_IN_STATE in values:
                out.add("participant-not-in-state", **ex, detail="a participant is missing from the state")
            elif not certain:
                out.add("participants-undetermined", **ex,
                        detail="no coordinator record and the accounts' owners are unknown")
        elif typ is OpType.FAIL:
            if "committed" in values:
                out.add("fail-but-committed", **ex, detail="client was told fail; committed somewhere")
        elif "committed" in values and values - {"committed", "prepared", NOT_IN_STATE}:
            out.add("info-split", **ex, detail="outcome unknown to the client; committed only at some")
    for pid in facts.payment_ids():
        if pid in facts.transfers:
            continue
        decision = (facts.coordinator.get(pid) or {}).get("decision")
        committed_at = [p for p, t in facts.txns.items()
                        if (t.get(pid) or {}).get("state") == "committed"]
        if committed_at or decision == "commit":
            out.add("committed-not-requested", payment=pid, participants=committed_at,
                    indexes=[], detail="committed but no client ever invoked it")
    return out.verdict(NAME, f"{counts[OpType.OK]} ok, {counts[OpType.FAIL]} fail, "
                             f"{counts[OpType.INFO]} info outcomes all match the participants")
