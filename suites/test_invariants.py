"""Each invariant under each fault family, for each target.

One chaos run per (target, family) is shared by the six invariant tests, so a
report shows pass/fail per invariant per fault while the run happens once.
"""

from __future__ import annotations

import pytest

from suites.reporting import report_run
from suites.verdicts import INVARIANTS, assert_invariant

FAMILIES: dict[str, tuple[str, ...]] = {
    "latency": ("latency",),
    "partition": ("partition", "partition-coordinator", "partition-split"),
    "process": ("kill", "pause", "restart"),
    "broker": ("broker-kill", "broker-pause"),
}


@pytest.mark.chaos
@pytest.mark.quick
@pytest.mark.parametrize("invariant", INVARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_invariant_holds_under_faults(chaos_runner, target: str, family: str, invariant: str) -> None:
    with report_run(target=target, family=family, invariant=invariant) as observer:
        result, made = chaos_runner.run(target, key=("faults", family), faults=FAMILIES[family],
                                        observer=observer)
        observer.attach(result, made=made, invariant=invariant)
    assert result.counts["ok"] > 0, f"no payment committed during the run: {result.counts}"
    assert_invariant(result, invariant)
