"""The nightly campaign: many seeds, every fault family mixed, longer runs.

`pytest suites -m nightly --target=all` ; TXCHAOS_NIGHTLY_RUNS (default 5)
runs per target, each with a fresh random seed (printed, and in the failure
message with the command that replays it). Every run keeps its directory as a
replay bundle under TXCHAOS_RUNS_DIR when set.
"""

from __future__ import annotations

import os

import pytest

from suites.reporting import report_run
from suites.verdicts import assert_all_invariants

MIXED = ("latency", "partition", "partition-coordinator", "partition-split", "partition-flap",
         "kill", "pause", "restart", "broker-kill", "broker-pause", "reset", "slicer")
RUNS = int(os.environ.get("TXCHAOS_NIGHTLY_RUNS", "5"))


@pytest.mark.chaos
@pytest.mark.nightly
@pytest.mark.parametrize("round_", range(RUNS))
def test_mixed_faults_random_seed(chaos_runner, target: str, round_: int) -> None:
    with report_run(target=target, family="mixed", invariant="all") as observer:
        result, made = chaos_runner.run(target, key=("nightly", round_), faults=MIXED,
                                        duration=60.0, intensity=0.6, observer=observer)
        observer.attach(result, made=made, invariant="all")
    print(f"{target} round {round_}: seed {result.seed}, {result.counts}")
    assert_all_invariants(result)
