"""Crashes at each named 2PC step, and the blocking case of a coordinator crash."""

from __future__ import annotations

import pytest

from suites.reporting import report_run
from suites.schedules import all_crashpoints, coordinator_crash, crash_at
from suites.verdicts import assert_all_invariants


@pytest.mark.chaos
@pytest.mark.crashpoints
@pytest.mark.spread
@pytest.mark.txchaos_requires("failpoints")
def test_every_failpoint_crash_resolves_atomically(chaos_runner, adapter_class, target: str) -> None:
    """Each failpoint in turn crashes its service mid-protocol; after restarts every
    payment must end committed everywhere or nowhere, applied exactly once."""
    points = all_crashpoints()
    schedule = crash_at(points, every=3.0)
    with report_run(target=target, family="crashpoints", invariant="all") as observer:
        result, made = chaos_runner.run(target, key=("crashpoints",), schedule=schedule,
                                        duration=len(points) * 3.0 + 2.0, observer=observer)
        observer.attach(result, made=made, invariant="all")
    assert result.counts["faults"] >= len(points), "not every failpoint was armed"
    assert_all_invariants(result)


@pytest.mark.chaos
@pytest.mark.crashpoints
@pytest.mark.spread
@pytest.mark.txchaos_requires("failpoints")
def test_payments_blocked_by_a_coordinator_crash_resolve_after_restart(
        chaos_runner, adapter_class, target: str, record_property) -> None:
    """Participants that voted yes cannot decide alone; once the coordinator is
    back, recovery must resolve them. Reports how long each stayed in doubt."""
    with report_run(target=target, family="coordinator-crash", invariant="resolution") as observer:
        result, made = chaos_runner.run(target, key=("coordinator-crash",),
                                        schedule=coordinator_crash(), duration=10.0,
                                        observer=observer)
        observer.attach(result, made=made, invariant="resolution")
    import json

    state = json.loads((result.run_dir / "state.json").read_text())
    blocked = state.get("resolution", {}).get("in_doubt", {})
    longest = max((r["blocked_s"] for r in blocked.values()), default=0.0)
    record_property("in_doubt_payments", len(blocked))
    record_property("longest_blocked_s", longest)
    print(f"{target}: {len(blocked)} payment(s) in doubt after healing, longest {longest:.1f}s")
    assert_all_invariants(result)
