"""Bridges the suites to the Allure report: labels, live phase steps, attachments.

With allure-pytest inactive (no --alluredir) the steps and attachments cost
almost nothing: allure-pytest drops them when no listener is registered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from harness.run import RunResult


class SuiteObserver:
    """The Allure observer for a run, plus the attachments a test adds afterwards."""

    def __init__(self, *, target: str, family: str, invariant: str, mutant: str | None) -> None:
        from harness.report import AllureObserver

        self._allure = AllureObserver()
        self.target, self.family, self.invariant, self.mutant = target, family, invariant, mutant

    def phase(self, name: str, **params: Any) -> contextlib.AbstractContextManager[Any]:
        return self._allure.phase(name, **params)

    def fault(self, value: dict[str, Any], started: bool) -> None:
        self._allure.fault(value, started)

    def checker(self, verdict: dict[str, Any]) -> None:
        self._allure.checker(verdict)

    def attach(self, result: RunResult, *, made: bool, invariant: str) -> None:
        """Label the test with the run's seed and attach the run.

        A run shared by several tests is attached in full to each, since each
        test's page must explain itself; the attachments are size-capped."""
        from harness.report import label_test

        label_test(self.target, invariant, self.family, result.seed, self.mutant)
        if not made:
            self._allure.checker(result.verdict)
        self._allure.attach_run(result.run_dir, failed=result.valid is not True)


@contextlib.contextmanager
def report_run(*, target: str, family: str, invariant: str, mutant: str | None = None) -> Iterator[SuiteObserver]:
    yield SuiteObserver(target=target, family=family, invariant=invariant, mutant=mutant)
