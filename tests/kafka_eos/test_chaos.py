"""Both processors under short real chaos, and each mutant caught by the checker expected.

Seeds are fixed and printed; schedules are hand-written where default chaos
would expose a mutant only by luck (docs/kafka-eos.md has the table).
"""

from __future__ import annotations

import pytest

from tests.kafka_eos.conftest import chaos, invalid, schedule

DEFAULT_FAULTS = ("kill", "pause", "latency", "broker-kill")


def test_valid_under_default_chaos(lab, tmp_path, eos_target):
    result = chaos(lab, tmp_path, eos_target, seed=3, duration=12, faults=DEFAULT_FAULTS)
    assert result.counts.get("ok", 0) > 0, result.counts
    assert result.valid is True, (result.command, result.verdict)


# mutant -> (schedule, clients, checkers of which at least one must fail)
EXPOSURES = {
    # a crash between the transaction's commit and the consumer's offset commit reprocesses
    "offsets-outside-txn": (lambda: schedule((4.0, 2.0, "kill", "proc-1", {})), 4,
                            {"exactly-once", "conservation"}),
    # a processor cut off longer than its session timeout is fenced and its transaction
    # aborted, but its result was already published: seen twice, or ok without the transfer
    "early-result": (lambda: schedule((3.0, 10.0, "timeout", "proc-1-kafka", {"timeout_ms": 0})), 8,
                     {"exactly-once", "atomicity", "client-agreement"}),
}


@pytest.mark.parametrize("mutant", sorted(EXPOSURES))
def test_mutant_is_caught(lab, tmp_path, eos_target, mutant):
    make, clients, expected = EXPOSURES[mutant]
    result = chaos(lab, tmp_path, eos_target, seed=5, duration=15, mutant=mutant, sched=make(), clients=clients)
    assert invalid(result) & expected, (result.command, result.verdict)


def test_correct_processor_survives_the_mutant_schedules(lab, tmp_path, eos_target):
    """The schedules above prove nothing if the correct processor failed them too."""
    sched = schedule((3.0, 10.0, "timeout", "proc-1-kafka", {"timeout_ms": 0}),
                     (4.0, 2.0, "kill", "proc-2", {}))
    result = chaos(lab, tmp_path, eos_target, seed=5, duration=15, sched=sched, clients=8)
    assert result.valid is True, (result.command, result.verdict)
