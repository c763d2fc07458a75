"""Each invariant under each fault family, for each target.

One chaos run per (target, family) is shared by the six invariant tests, so a
report shows pass/fail per invariant per fault while the run happens once. With
several targets, the default run takes each family on one target in turn (spread);
the nightly run takes every pair.
"""

from __future__ import annotations

import pytest

from harness.pytest_plugin import option
from suites.reporting import report_run
from suites.verdicts import INVARIANTS, assert_invariant

FAMILIES: dict[str, tuple[str, ...]] = {
    "latency": ("latency",),
    "partition": ("partition", "partition-coordinator", "partition-split"),
    "process": ("kill", "pause", "restart"),
    "broker": ("broker-kill", "broker-pause", "backlog-kill"),
}


def families(config: pytest.Config) -> dict[str, tuple[str, ...]]:
    """The fault families to run: --faults F1,F2 runs those (one run each), else FAMILIES."""
    chosen = option(config, "faults")
    if not chosen:
        return FAMILIES
    return {f.strip(): (f.strip(),) for f in chosen.split(",") if f.strip()}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "family" in metafunc.fixturenames:
        chosen = families(metafunc.config)
        metafunc.parametrize("family", [pytest.param((name, faults), id=name)
                                        for name, faults in chosen.items()])


@pytest.mark.chaos
@pytest.mark.quick
@pytest.mark.spread("family")
@pytest.mark.parametrize("invariant", INVARIANTS)
def test_invariant_holds_under_faults(chaos_runner, target: str, family: tuple[str, tuple[str, ...]],
                                      invariant: str) -> None:
    name, faults = family
    with report_run(target=target, family=name, invariant=invariant) as observer:
        result, made = chaos_runner.run(target, key=("faults", name), faults=faults,
                                        observer=observer)
        observer.attach(result, made=made, invariant=invariant)
    assert result.counts["ok"] > 0, f"no payment committed during the run: {result.counts}"
    assert_invariant(result, invariant)
