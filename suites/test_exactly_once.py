"""Exactly once under redelivery: a participant dies after applying a commit but
before acknowledging the broker message, so the broker delivers it again."""

from __future__ import annotations

import pytest

from suites.reporting import report_run
from suites.schedules import PARTICIPANTS, crash_at
from suites.verdicts import assert_invariant


@pytest.mark.chaos
@pytest.mark.crashpoints
@pytest.mark.spread  # with several targets: the first by default, the others nightly
@pytest.mark.txchaos_requires("failpoints")
def test_redelivered_commits_apply_once(chaos_runner, adapter_class, target: str) -> None:
    points = [(p, "after-apply-before-ack") for p in PARTICIPANTS]
    with report_run(target=target, family="redelivery", invariant="exactly-once") as observer:
        result, made = chaos_runner.run(target, key=("redelivery",), schedule=crash_at(points, every=2.5),
                                        duration=len(points) * 2.5 + 2.0, observer=observer)
        observer.attach(result, made=made, invariant="exactly-once")
    assert result.counts["ok"] > 0, f"no payment committed during the run: {result.counts}"
    assert_invariant(result, "exactly-once")
    assert_invariant(result, "atomicity")
