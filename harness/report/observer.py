"""The run lifecycle's window into Allure: phases as steps, faults, checker verdicts, labels.

`harness.run` calls an observer and never imports allure; this one turns the
calls into Allure steps. Outside an allure-pytest session every call is a no-op.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure
from allure_commons._allure import StepContext

from harness.report.categories import unknown_message, violation_message
from harness.report.ops import fault_label
from harness.report.secrets import mask, mask_obj

__all__ = ["AllureObserver", "label_test"]


class Verdict(AssertionError):
    """Marks an Allure step failed (a violated checker) without failing the test itself."""

    __module__ = "builtins"  # shown as "Verdict: INVARIANT VIOLATED [...]" in the report


def _params(params: dict[str, Any]) -> dict[str, str]:
    return {k: mask(v if isinstance(v, str) else repr(mask_obj(v))) for k, v in params.items()}


def _instant(title: str, params: dict[str, Any], *, failed: str | None = None) -> None:
    try:
        with StepContext(mask(title), _params(params)):
            if failed is not None:
                raise Verdict(mask(failed))
    except Verdict:
        pass


def label_test(target: str, invariant: str, fault_family: str, seed: int | None,
               mutant: str | None = None) -> None:
    """Label the current test: epic = target, feature = invariant, story = fault family.

    The seed and mutant are parameters excluded from Allure's history id, so a
    nightly run with a new seed still extends the same test's history and trend.
    """
    allure.dynamic.epic(target)
    allure.dynamic.feature(invariant)
    allure.dynamic.story(fault_family)
    allure.dynamic.tag(target)
    allure.dynamic.parameter("seed", "none" if seed is None else seed, excluded=True)
    allure.dynamic.parameter("mutant", mask(mutant or "none"), excluded=True)


class AllureObserver:
    """Receives lifecycle events from `harness.run` and records them as Allure steps."""

    @contextlib.contextmanager
    def phase(self, name: str, **params: Any) -> Iterator[None]:
        """One step around a lifecycle phase (start target, workload, heal, quiesce, ...)."""
        with StepContext(mask(name), _params(params)):
            yield

    def fault(self, value: dict[str, Any], started: bool) -> None:
        """A fault started or stopped: `value` is the nemesis op value {fault, targets, params}."""
        value = value if isinstance(value, dict) else {"fault": str(value)}
        params = {"fault": value.get("fault", "?"), "targets": value.get("targets") or []}
        params.update({f"param {k}": v for k, v in (value.get("params") or {}).items()})
        verb = "start" if started else "stop"
        _instant(f"fault {verb}: {fault_label(value)}", params)

    def checker(self, verdict: dict[str, Any]) -> None:
        """A step per checker (one checker's entry, or a whole verdict.json); violated and
        unknown ones are failed steps."""
        checkers = verdict.get("checkers") if "checkers" in verdict else [verdict]
        for c in checkers or []:
            valid = c.get("valid")
            word = {True: "valid", False: "VIOLATED"}.get(valid, "unknown")
            counts = {k: e.get("count", 0) for k, e in (c.get("evidence") or {}).items()}
            _instant(f"check {c.get('name')}: {word}",
                     {"summary": str(c.get("summary", "")), **counts},
                     failed=None if valid is True else
                     (violation_message if valid is False else unknown_message)(
                         str(c.get("name")), str(c.get("summary", ""))))

    def label(self, target: str, invariant: str, fault_family: str, seed: int | None,
              mutant: str | None = None) -> None:
        label_test(target, invariant, fault_family, seed, mutant)

    def attach_run(self, run_dir: Path, *, failed: bool) -> None:
        from harness.report.attach import attach_run
        attach_run(run_dir, failed=failed)
