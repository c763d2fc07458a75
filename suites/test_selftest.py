"""Proof that txchaos has teeth: every seeded bug of the reference targets is
caught, by the checker expected to catch it, while the correct target passes
the very same fault schedule.

Builds the detection matrix (mutant x target -> detected, by which checker,
seconds of chaos until the first offending operation), printed at the end of
the session and written as JSON (see suites/conftest.py).
"""

from __future__ import annotations

import json

import pytest

from harness.explain import first_violation_time
from suites.reporting import report_run
from suites.selftest_plan import PLAN, baseline_schedule
from suites.verdicts import assert_all_invariants, violated


@pytest.mark.selftest
@pytest.mark.spread
@pytest.mark.txchaos_requires("mutants")
@pytest.mark.parametrize("mutant", sorted(PLAN))
def test_mutant_is_detected(chaos_runner, adapter_class, target: str, mutant: str,
                            detection_matrix) -> None:
    if mutant not in adapter_class().mutants():
        pytest.skip(f"{target} has no mutant {mutant}")
    plan = PLAN[mutant]
    broker = getattr(adapter_class, "broker", None)
    if plan.brokers and broker not in plan.brokers:
        pytest.skip(f"{mutant} is exposed on {', '.join(plan.brokers)} alone, not on {broker}")
    with report_run(target=target, family="selftest", invariant=",".join(plan.expected),
                    mutant=mutant) as observer:
        result, made = chaos_runner.run(target, key=("mutant", mutant), mutant=mutant,
                                        schedule=plan.schedule, duration=plan.duration,
                                        quiesce_timeout=plan.quiesce, observer=observer)
        observer.attach(result, made=made, invariant=",".join(plan.expected))
    caught = [c for c in violated(result) if c["name"] in plan.expected]
    cell = {"detected": bool(caught), "by": [c["name"] for c in violated(result)],
            "seconds": None, "seed": result.seed, "run_dir": str(result.run_dir)}
    if caught:
        times = [t for t in (first_violation_time(result.run_dir, c) for c in caught) if t is not None]
        cell["seconds"] = round(min(times), 1) if times else None
    detection_matrix[(mutant, target)] = cell
    assert caught, (
        f"mutant {mutant!r} on {target} was NOT detected: expected a violation of one of "
        f"{', '.join(plan.expected)}; verdict {json.dumps({c['name']: c['valid'] for c in result.verdict['checkers']})}; "
        f"faults injected: {result.counts.get('faults')}; reproduce: {result.command}")


@pytest.mark.selftest
@pytest.mark.txchaos_requires("failpoints")
def test_correct_target_passes_the_same_faults(chaos_runner, adapter_class, target: str,
                                               request: pytest.FixtureRequest) -> None:
    """Every fault the mutants are exposed with on this target in this session (all of
    them if none is), in one run of the correct target: a harness that flagged these
    would be crying wolf."""
    mutants = sorted(_mutants_run_on(request.session, target))
    schedule, duration = baseline_schedule(mutants)
    with report_run(target=target, family="selftest-baseline", invariant="all") as observer:
        result, made = chaos_runner.run(target, key=("correct", "selftest-faults", *mutants),
                                        schedule=schedule, duration=duration, quiesce_timeout=15.0,
                                        observer=observer)
        observer.attach(result, made=made, invariant="all")
    assert result.counts["ok"] > 0, f"no payment committed during the run: {result.counts}"
    assert_all_invariants(result)


def _mutants_run_on(session: pytest.Session, target: str) -> set[str]:
    """The mutants test_mutant_is_detected runs on `target` in this session (with several
    targets, `spread` shares them out)."""
    return {item.callspec.params["mutant"] for item in session.items
            if getattr(item, "originalname", "") == "test_mutant_is_detected"
            and item.callspec.params.get("target") == target}  # type: ignore[attr-defined]
