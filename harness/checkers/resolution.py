"""Resolution (liveness): after faults heal and the system quiesces, nothing stays in doubt.

Decided from the participants' `prepared` records; with the state's optional
`resolution` section (docs/formats.md) it also checks how long each in-doubt
payment was blocked against the bound, and reports those times.
"""

from __future__ import annotations

from typing import Any

from harness.checkers.facts import PREPARED, Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op

NAME = "resolution"
KINDS = {
    "left-prepared": "violation",   # a participant still holds the payment prepared
    "unresolved": "violation",      # the run lifecycle saw it still in doubt at the end
    "resolved-late": "violation",   # blocked longer than the bound
    "blocked": "info",              # in doubt after heal, resolved within the bound
}


def check_resolution(history: list[Op], state: dict[str, Any],
                     options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    res = facts.state.get("resolution") or {}
    bound = float(res.get("bound_s", options.resolution_bound_s))
    in_doubt: dict[str, dict[str, Any]] = res.get("in_doubt") or {}
    prepared: dict[str, list[str]] = {}
    for p, recs in zip(facts.participants, facts.records):
        for r in recs.rows[recs.status == PREPARED]:
            prepared.setdefault(facts.pid(r), []).append(p)
    for pid, ps in sorted(prepared.items()):
        blocked = (in_doubt.get(pid) or {}).get("blocked_s")
        out.add("left-prepared", payment=pid, participants=ps, blocked_s=blocked,
                detail=f"still prepared at {', '.join(ps)} after heal and quiesce")
    longest = 0.0
    for pid, rec in sorted(in_doubt.items()):  # the examples kept must not hang on how it was read
        b = float(rec["blocked_s"])
        longest = max(longest, b)
        ex = {"payment": pid, "participants": rec.get("participants", []), "blocked_s": b}
        if not rec["resolved"]:
            if pid not in prepared:
                out.add("unresolved", **ex, detail=f"still in doubt after {b:.1f} s")
        elif b > bound:
            out.add("resolved-late", **ex, detail=f"blocked {b:.1f} s, bound {bound:.1f} s")
        else:
            out.add("blocked", **ex, detail=f"blocked {b:.1f} s")
    timing = (f"; {len(in_doubt)} were in doubt after heal, longest blocked {longest:.1f} s "
              f"(bound {bound:.0f} s)") if res else ""
    return out.verdict(NAME, f"no payment left prepared{timing}")
