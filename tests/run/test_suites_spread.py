"""The suites' default run proves every case of a `spread` test on one target in turn
(every target used), and leaves the other (case, target) pairs to the nightly run."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _collected(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "suites/test_selftest.py", "suites/test_crashpoints.py", "suites/test_invariants.py",
                           "--target", "all", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_each_case_of_a_spread_test_runs_on_one_target_by_default_and_on_all_nightly() -> None:
    default, nightly = _collected("-m", "not nightly"), _collected("-m", "nightly")
    cases: dict[str, set[str]] = defaultdict(set)
    for line in default:
        m = re.search(r"::test_mutant_is_detected\[(\w+)-(.+)\]$", line)
        if m:
            cases[m.group(2)].add(m.group(1))
    assert cases and all(len(on) == 1 for on in cases.values()), cases  # each mutant once
    assert set().union(*cases.values()) == {"rabbitmq", "kafka", "nats"}  # every target used
    every_point = [line for line in default if "test_every_failpoint_crash" in line]
    assert len(every_point) == 1
    assert len([line for line in nightly if "test_every_failpoint_crash" in line]) == 2
    assert len([line for line in default if "test_payments_blocked_by_a_coordinator_crash" in line]) == 1
    assert sum("test_mutant_is_detected" in line for line in nightly) == 2 * len(cases)
    # the invariants: each family's one run on one target, its six invariants with it
    families: dict[str, set[str]] = defaultdict(set)
    for line in default:
        m = re.search(r"::test_invariant_holds_under_faults\[(\w+)-(\w+)-[\w-]+\]$", line)
        if m:
            families[m.group(1)].add(m.group(2))
    assert set(families) == {"latency", "partition", "process", "broker"}, families
    assert all(len(on) == 1 for on in families.values()), families
    assert set().union(*families.values()) == {"rabbitmq", "kafka", "nats"}
    assert 2 * sum("test_invariant_holds_under_faults" in line for line in default) == \
        sum("test_invariant_holds_under_faults" in line for line in nightly)
