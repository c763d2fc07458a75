"""Both processors under short real chaos, and each mutant caught by the checker expected.

Seeds are fixed and printed; schedules are hand-written where default chaos
would expose a mutant only by luck (docs/kafka-eos.md has the table). The
Python processor's mutants (and the correct processor under their schedules) run in the
default tier, the Java processor's nightly; under default chaos, the Java processor by
default and both nightly.
"""

from __future__ import annotations

import pytest

from tests.kafka_eos.conftest import chaos, invalid, schedule, skip_unless_built

DEFAULT_FAULTS = ("kill", "pause", "latency", "broker-kill")
JAVA = pytest.param("kafka-eos-java", marks=pytest.mark.nightly)


def zombie():
    """proc-1 stopped longer than its session timeout (6 s), shorter than its transaction
    timeout (10 s): proc-2 takes its partition over, then proc-1 resumes with a full buffer."""
    return schedule((3.0, 8.0, "pause", "proc-1", {}))


def zombies():
    """The zombie twice, one processor after the other: a pause that lands between two
    transactions exposes nothing, and two such misses in a row are rare."""
    return schedule((3.0, 8.0, "pause", "proc-1", {}), (13.0, 8.0, "pause", "proc-2", {}))


def crash():
    """kill -9 of each processor in turn, while it is busy."""
    return schedule((4.0, 2.0, "kill", "proc-1", {}), (8.0, 2.0, "kill", "proc-2", {}))


# mutant -> (schedule, seconds of chaos, clients, checkers of which at least one must fail)
EXPOSURES = {
    "offsets-outside-txn": (crash, 13, 8, {"exactly-once", "conservation"}),
    "fresh-txn-id": (zombie, 13, 16, {"exactly-once", "conservation"}),
    "early-result": (zombies, 23, 16, {"exactly-once", "atomicity", "client-agreement"}),
}


# The Python processor's correctness is checked by default under the zombie and the
# mutants' schedules; under default chaos, by default the Java one, nightly both.
@pytest.mark.parametrize("target", [pytest.param("kafka-eos-py", marks=pytest.mark.nightly), "kafka-eos-java"])
def test_valid_under_default_chaos(lab, tmp_path, target):
    skip_unless_built(target)
    # intensity 0.3: all four families, with room left for payments to complete
    result = chaos(lab, tmp_path, target, seed=3, duration=20, faults=DEFAULT_FAULTS, intensity=0.3)
    assert result.counts.get("ok", 0) > 0, result.counts
    assert result.valid is True, (result.command, result.verdict)


@pytest.mark.parametrize("target", ["kafka-eos-py", JAVA])
def test_valid_under_the_zombie(lab, tmp_path, target):
    """The schedules below prove nothing if the correct processor failed them too."""
    skip_unless_built(target)
    result = chaos(lab, tmp_path, target, seed=5, duration=23, sched=zombies(), clients=16)
    assert result.valid is True, (result.command, result.verdict)



# The zombie exposures of fresh-txn-id and early-result on aiokafka depend on where the
# pause lands in a transaction (early-result: after the plain producer's result, before the
# commit), and on whether the resumed zombie learns it is fenced before or after its next
# result: caught in most runs, each missed in one default CI run (early-result: both
# pauses landed between transactions, all six checkers valid); nightly until a hook in the
# processor can place the pause inside the window.
MUTANTS = [pytest.param(m, marks=pytest.mark.nightly) if m in ("fresh-txn-id", "early-result") else m
           for m in sorted(EXPOSURES)]


@pytest.mark.parametrize("target", ["kafka-eos-py", JAVA])
@pytest.mark.parametrize("mutant", MUTANTS)
def test_mutant_is_caught(lab, tmp_path, target, mutant):
    skip_unless_built(target)
    if (target, mutant) == ("kafka-eos-java", "fresh-txn-id"):
        pytest.skip("harmless in Java: see test_java_zombie_is_fenced_by_its_group_generation")
    make, duration, clients, expected = EXPOSURES[mutant]
    result = chaos(lab, tmp_path, target, seed=5, duration=duration, mutant=mutant, sched=make(),
                   clients=clients)
    assert invalid(result) & expected, (result.command, result.verdict)


@pytest.mark.parametrize("target", [JAVA])
def test_java_zombie_is_fenced_by_its_group_generation(lab, tmp_path, target):
    """Java's sendOffsetsToTransaction carries the consumer's group metadata (KIP-447): the
    zombie's offset commit is refused and its transaction aborted even without transactional-id
    fencing, so the fresh-txn-id mistake does no harm there (aiokafka sends only the group id)."""
    skip_unless_built(target)
    result = chaos(lab, tmp_path, target, seed=5, duration=13, mutant="fresh-txn-id", sched=zombie(), clients=16)
    journal = "".join(p.read_text() for p in (result.run_dir / "target-data").rglob("*.txns.jsonl"))
    assert result.valid is True, (result.command, result.verdict)
    assert "group metadata mismatch" in journal, "the zombie was not stopped by group-metadata fencing"
