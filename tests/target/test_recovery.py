"""kill -9 at every failpoint of every kind of service, restart, and everything resolves.

One target serves all cases in turn (starting one costs seconds); each case's
payment id names its node and failpoint, so a failure message says which one.
"""

from __future__ import annotations

import threading
import time

import pytest

from harness.model import Outcome
from tests.lab.conftest import disabled
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


@pytest.mark.spread  # one broker by default, every broker nightly
def test_a_commit_that_waits_is_applied_once_when_it_was_delivered_again_meanwhile(start_target, broker, lab):
    """The ledger's COMMIT waits 5 s before it applies; meanwhile its broker link drops and
    comes back, and the broker delivers the unacknowledged COMMIT again on the new
    connection, which applies it. The first delivery, going on, must find it applied: it
    checked the state before it waited, and once applied the payment a second time (found
    by a default run on a RabbitMQ cluster)."""
    adapter, topo = start_target(failpoints={"ledger": "before-apply=delay(5000)@1"})
    proxy = next(link.proxy for link in topo.links_of("ledger") if link.service == broker)
    sent = time.monotonic()
    paid = threading.Thread(target=transfer, args=(adapter, "waits", "acct-01", "acct-02", 5))
    paid.start()
    time.sleep(1.5)  # the COMMIT waits at the ledger
    with disabled(lab, proxy):
        time.sleep(1.0)
    paid.join(30)
    time.sleep(max(0.0, sent + 7.0 - time.monotonic()))  # the first delivery went on at 5 s
    state = settle(adapter, timeout=20)
    assert problems(state) == [], problems(state)
    assert state["participants"]["ledger"]["txns"]["waits"]["applied"] == 1
