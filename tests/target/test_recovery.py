"""kill -9 at every failpoint of every kind of service, restart, and everything resolves.

One target serves all cases in turn (starting one costs seconds); each case's
payment id names its node and failpoint, so a failure message says which one.
"""

from __future__ import annotations

from harness.model import Outcome
from tests.target.helpers import crash_at, problems, settle, transfer

CASES = [
    ("coordinator", "after-log-payment"),
    ("coordinator", "after-send-prepare"),
    ("coordinator", "before-log-decision"),
    ("coordinator", "after-log-decision"),
    ("coordinator", "after-send-first-decision"),
    ("accounts-a", "after-persist-prepared"),
    ("accounts-b", "after-vote"),
    ("accounts-a", "before-apply"),
    ("ledger", "after-apply-before-ack"),
    ("notifications", "after-vote"),
]


def test_crash_at_each_failpoint_then_restart_resolves_everywhere(start_target):
    adapter, _ = start_target()
    outcomes = {}
    for node, point in CASES:
        pid = f"crash-{node}-{point}"
        outcomes[pid] = crash_at(adapter, node, point, pid, "acct-01", "acct-02", 5)
    # a payment after all that still commits normally
    assert transfer(adapter, "after-crashes", "acct-03", "acct-04", 7).outcome == Outcome.OK
    state = settle(adapter, timeout=40)
    assert problems(state) == []
    payments = state["coordinator"]["payments"]
    for pid, result in outcomes.items():
        decision = payments[pid]["decision"]
        assert decision in ("commit", "abort"), (pid, decision)
        if result.outcome == Outcome.OK:
            assert decision == "commit", (pid, result)
        if result.outcome == Outcome.FAIL:
            assert decision == "abort", (pid, result)
    # a crash after the decision was logged must not lose a commit
    assert payments["crash-coordinator-after-log-decision"]["decision"] == "commit"
    assert payments["crash-ledger-after-apply-before-ack"]["decision"] == "commit"
    assert state["participants"]["ledger"]["txns"]["crash-ledger-after-apply-before-ack"]["applied"] == 1
