"""Every seeded bug shows up as a violated invariant under the fault that exposes it.

The table mirrors docs/reference-target.md. Three mutants run in the default
tier; the rest are marked nightly to keep the tier short.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.model import Outcome
from tests.target.helpers import crash_at, problems, settle


@dataclass(frozen=True)
class Exposure:
    node: str
    point: str
    source: str = "acct-01"  # shard a
    dest: str = "acct-02"  # shard b
    amount: int = 5
    down_for: float = 0.0
    expect: str = ""  # a substring of the problem the snapshot must show


EXPOSURES = {
    "decision-not-logged": Exposure("coordinator", "after-send-first-decision", expect="not atomic"),
    "vote-before-persist": Exposure("accounts-a", "after-vote", expect="decided commit but"),
    "no-dedup": Exposure("ledger", "after-apply-before-ack", expect="applied 2 times"),
    "ack-before-apply": Exposure("notifications", "before-apply", expect="not atomic"),
    "commit-when-in-doubt": Exposure("coordinator", "after-send-prepare", amount=5000, down_for=4.0,
                                     expect="not atomic"),
    "early-reply": Exposure("coordinator", "before-log-decision", expect="client told ok"),
    "no-recovery": Exposure("coordinator", "after-send-prepare", expect="still prepared"),
    "split-apply": Exposure("accounts-a", "mid-apply", dest="acct-03", expect="money not conserved"),
}
QUICK = {"no-dedup", "decision-not-logged", "early-reply"}


@pytest.mark.parametrize("mutant", [m if m in QUICK else pytest.param(m, marks=pytest.mark.nightly)
                                    for m in EXPOSURES])
def test_mutant_is_caught(start_target, mutant):
    e = EXPOSURES[mutant]
    adapter, _ = start_target(mutant=mutant)
    result = crash_at(adapter, e.node, e.point, "victim", e.source, e.dest, e.amount, down_for=e.down_for)
    state = settle(adapter, timeout=12)
    found = problems(state)
    decision = state["coordinator"]["payments"]["victim"]["decision"]
    if result.outcome == Outcome.OK and decision != "commit":
        found.append(f"client told ok but the decision is {decision}")
    assert any(e.expect in p for p in found), (mutant, result, found)
