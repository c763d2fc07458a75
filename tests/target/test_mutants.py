"""Every seeded bug shows up as a violated invariant under the fault that exposes it.

The table mirrors docs/reference-target.md. A few mutants run in the default
tier; the rest are marked nightly to keep the tier short.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from harness.model import Outcome
from targets.payments.mutants import MUTANTS
from tests.target.helpers import crash_at, delay_at, problems, settle, transfer, transfers_at_once


@dataclass(frozen=True)
class Exposure:
    node: str
    point: str
    source: str = "acct-01"  # shard a
    dest: str = "acct-02"  # shard b
    amount: int = 5
    down_for: float = 0.0
    delay_ms: int = 0  # > 0: the node is slowed down at `point` instead of crashed there
    expect: str = ""  # a substring of the problem the snapshot must show


# tests/target/conftest.py's timeouts: in doubt after 2 s, client reply after 7 s
EXPOSURES = {
    "decision-not-logged": Exposure("coordinator", "after-send-first-commit", expect="not atomic"),
    "vote-before-persist": Exposure("accounts-a", "after-vote", expect="decided commit but"),
    "no-dedup": Exposure("ledger", "after-apply-before-ack", expect="applied 2 times"),
    "ack-before-apply": Exposure("notifications", "before-apply", expect="not atomic"),
    "commit-when-in-doubt": Exposure("coordinator", "after-send-prepare", amount=5000, down_for=4.0,
                                     expect="not atomic"),
    "early-reply": Exposure("coordinator", "before-log-commit", expect="client told ok"),
    "no-recovery": Exposure("coordinator", "after-send-prepare", expect="still prepared"),
    "split-apply": Exposure("accounts-a", "mid-apply", dest="acct-03", expect="money not conserved"),
    "heuristic-abort": Exposure("coordinator", "after-log-decision", down_for=4.0, expect="decided commit but"),
    "abort-prepared-on-restart": Exposure("accounts-a", "after-vote", expect="decided commit but"),
    "forget-before-ack": Exposure("coordinator", "after-send-first-commit", expect="not atomic"),
    "presume-abort-while-deciding": Exposure("coordinator", "after-send-prepare", delay_ms=4000,
                                             expect="decided commit but"),
    "timeout-as-abort": Exposure("coordinator", "after-send-prepare", delay_ms=8000,
                                 expect="client told fail"),
}
# only a power cut exposes these: the same crash without one loses nothing (the page cache survives)
POWER = {
    "decision-unsynced": Exposure("coordinator", "after-send-first-commit"),
    "store-sync-off": Exposure("accounts-a", "after-vote"),
}
QUICK = {"no-dedup", "decision-not-logged", "early-reply", "forget-before-ack"}


def test_every_mutant_has_an_exposure():
    # no-funds-hold needs concurrent payments, wall-clock-heuristic a clock step,
    # non-durable-broker a broker's death: all are exposed by the self-test suite
    # (suites/selftest_plan.py) instead
    assert set(EXPOSURES) | set(POWER) | {"no-funds-hold", "wall-clock-heuristic",
                                          "non-durable-broker"} == set(MUTANTS)


@pytest.mark.spread  # each mutant on one broker in turn, by default (the self-test runs them all)
@pytest.mark.parametrize("mutant", [m if m in QUICK else pytest.param(m, marks=pytest.mark.nightly)
                                    for m in EXPOSURES])
def test_mutant_is_caught(start_target, mutant):
    e = EXPOSURES[mutant]
    adapter, _ = start_target(mutant=mutant)
    if e.delay_ms:
        result = delay_at(adapter, e.node, e.point, e.delay_ms, "victim", e.source, e.dest, e.amount)
    else:
        result = crash_at(adapter, e.node, e.point, "victim", e.source, e.dest, e.amount, down_for=e.down_for)
    state = settle(adapter, timeout=12)
    found = problems(state)
    decision = state["coordinator"]["payments"]["victim"]["decision"]
    if result.outcome == Outcome.OK and decision != "commit":
        found.append(f"client told ok but the decision is {decision}")
    if result.outcome == Outcome.FAIL and decision == "commit":
        found.append(f"client told fail ({result.error}) but the decision is commit")
    assert any(e.expect in p for p in found), (mutant, result, found)


@pytest.mark.spread
@pytest.mark.parametrize("mutant", [None, "no-funds-hold"])
def test_concurrent_spends_of_one_balance(start_target, mutant):
    """Two payments from one account, each within its balance, together beyond it.

    The ledger is slowed at every PREPARE, so both payments are prepared at the
    shard before either commits: the correct shard's hold refuses the second,
    the no-funds-hold mutant lets both through and the balance goes negative."""
    adapter, _ = start_target(mutant=mutant, failpoints={"ledger": "after-persist-prepared=delay(1500)%1"})
    results = transfers_at_once(adapter, [("spend-1", "acct-01", "acct-02", 600),
                                          ("spend-2", "acct-01", "acct-04", 600)])
    found = problems(settle(adapter, timeout=12))
    outcomes = sorted(r.outcome.value for r in results)
    if mutant is None:
        assert outcomes == sorted([Outcome.OK.value, Outcome.FAIL.value]) and not found, (results, found)
    else:
        assert outcomes == [Outcome.OK.value] * 2, results
        assert any("negative balance" in p for p in found), found


@pytest.mark.spread
@pytest.mark.parametrize("ms", [4000, 8000])
def test_correct_target_waits_for_a_slow_coordinator(start_target, ms):
    """The fault of presume-abort-while-deciding and timeout-as-abort, without them:
    participants in doubt get no answer until the decision, the client gets no
    outcome it cannot keep."""
    adapter, _ = start_target()
    result = delay_at(adapter, "coordinator", "after-send-prepare", ms, "slow", "acct-01", "acct-02", 5)
    state = settle(adapter, timeout=12)
    assert not problems(state), problems(state)
    assert state["coordinator"]["payments"]["slow"]["decision"] == "commit"
    assert result.outcome in (Outcome.OK, Outcome.UNKNOWN), result


# what is lost lives in the target's own stores, whatever the broker: one broker here
# (the self-test runs these mutants on every broker)
@pytest.mark.parametrize("broker", ["nats"])
@pytest.mark.parametrize("power_cut", [False, True], ids=["kill", "power-cut"])
@pytest.mark.parametrize("mutant", list(POWER))
def test_unsynced_writes_are_caught_by_a_power_cut_and_not_by_a_kill(start_target, mutant, power_cut):
    e = POWER[mutant]
    adapter, _ = start_target(mutant=mutant, disks=True)
    assert transfer(adapter, "earlier", e.source, e.dest, 1).outcome == Outcome.OK
    settle(adapter, timeout=12)  # applied and acknowledged everywhere before the crash
    result = crash_at(adapter, e.node, e.point, "victim", e.source, e.dest, e.amount, power_cut=power_cut)
    state = settle(adapter, timeout=12)
    found = problems(state)
    decision = (state["coordinator"]["payments"].get("victim") or {}).get("decision")
    if result.outcome == Outcome.OK and decision != "commit":
        found.append(f"client told ok but the decision is {decision}")
    assert bool(found) == power_cut, (mutant, result, found)


@pytest.mark.parametrize("broker", ["nats"])
@pytest.mark.parametrize("fault", ["kill", "clock-jump"])
def test_a_wall_clock_timeout_is_caught_by_a_clock_step_and_not_by_a_kill(start_target, fault):
    """wall-clock-heuristic aborts on its own what it prepared 120 s ago by the wall clock:
    the coordinator killed for 4 s while a payment waits in doubt never gets near that; a
    5-minute step of the participant's clock while the coordinator is slow does."""
    e = Exposure("coordinator", "after-send-prepare")
    adapter, _ = start_target(mutant="wall-clock-heuristic", clocks=True)
    if fault == "kill":
        result = crash_at(adapter, e.node, e.point, "victim", e.source, e.dest, e.amount, down_for=4.0)
    else:
        clock = adapter.procs["accounts-a"].clock
        assert clock is not None
        step = threading.Timer(1.0, clock.jump, args=(300.0,))
        step.start()
        try:
            result = delay_at(adapter, e.node, e.point, 4000, "victim", e.source, e.dest, e.amount)
        finally:
            step.cancel()
    state = settle(adapter, timeout=12)
    found = problems(state)
    if result.outcome == Outcome.OK and state["coordinator"]["payments"]["victim"]["decision"] != "commit":
        found.append("client told ok but the payment did not commit")
    assert bool(found) == (fault == "clock-jump"), (result, found)
