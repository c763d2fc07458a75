"""Shared pieces of the Kafka EOS target's tests: targets, fixed schedules, a short chaos run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faults.schedule import FaultEvent, Schedule
from harness.run import RunConfig, RunResult, run_chaos

TARGETS = ["kafka-eos-py", "kafka-eos-java"]


def java_ready() -> bool:
    from targets.kafka_eos.java_build import built_classpath

    return built_classpath() is not None


def skip_unless_built(target: str) -> None:
    if target == "kafka-eos-java" and not java_ready():
        pytest.skip("the Java processor is not built (scripts/bootstrap.sh builds it)")


@pytest.fixture(params=TARGETS)
def eos_target(request: pytest.FixtureRequest) -> str:
    skip_unless_built(request.param)
    return request.param


@pytest.fixture(autouse=True)
def _nightly_only_when_asked(request: pytest.FixtureRequest) -> None:
    """Tests marked nightly run only when selected with -m nightly."""
    if request.node.get_closest_marker("nightly") and "nightly" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("nightly test: select it with -m nightly")


def schedule(*events: tuple[float, float, str, str, dict[str, Any]]) -> Schedule:
    """A hand-written schedule: (at, duration, fault, target, params) per event."""
    return Schedule(0, [FaultEvent(at, dur, fault, (target,), params) for at, dur, fault, target, params in events])


def chaos(lab: Any, tmp_path: Path, target: str, *, seed: int, duration: float, mutant: str | None = None,
          sched: Schedule | None = None, faults: tuple[str, ...] = (), clients: int = 4,
          quiesce: float = 30.0, intensity: float = 0.5) -> RunResult:
    print(f"kafka-eos chaos: target={target} mutant={mutant} seed={seed} duration={duration}")
    config = RunConfig(target=target, mutant=mutant, seed=seed, duration=duration, out=tmp_path / "run",
                       clients=clients, quiesce_timeout=quiesce, schedule=sched, intensity=intensity,
                       **({"faults": faults} if faults else {}))
    result = run_chaos(config, lab=lab)
    print({c["name"]: (c["valid"], c["summary"]) for c in result.verdict["checkers"]})
    return result


def invalid(result: RunResult) -> set[str]:
    return {c["name"] for c in result.verdict["checkers"] if c["valid"] is not True}
