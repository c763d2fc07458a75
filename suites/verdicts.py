"""Assertions the suites make about a run's verdict, with messages that explain."""

from __future__ import annotations

from typing import Any

import pytest

from harness.explain import explain
from harness.run import RunResult

INVARIANTS = ("atomicity", "client-agreement", "exactly-once", "conservation", "no-negative",
              "resolution")


def assert_invariant(result: RunResult, invariant: str) -> None:
    """Fail with the evidence when the run's `invariant` checker is not valid."""
    checker = result.checker(invariant)
    if checker["valid"] is True:
        return
    pytest.fail(explain(result.run_dir, checker, command=result.command, seed=result.seed),
                pytrace=False)


def assert_all_invariants(result: RunResult) -> None:
    bad = [c for c in result.verdict["checkers"] if c["valid"] is not True]
    if bad:
        pytest.fail("\n\n".join(explain(result.run_dir, c, command=result.command, seed=result.seed)
                                for c in bad), pytrace=False)


def violated(result: RunResult) -> list[dict[str, Any]]:
    return [c for c in result.verdict["checkers"] if c["valid"] is False]
