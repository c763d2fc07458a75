"""Allure reports for txchaos runs: steps, labels, attachments, report files, `txchaos report`.

Public API (imported lazily so `harness.run` can use the observer type without
pulling in allure until a report is actually written):

- `AllureObserver` — phase/fault/checker steps for the run lifecycle
- `label_test(target, invariant, fault_family, seed, mutant)`
- `attach_run(run_dir, *, failed)`
- `write_report_files(results_dir, run_dirs, info)`
- `violation_message`, `infrastructure_message`, `failure_message` — the failure
  message prefixes the categories match (docs/reports.md)
"""

from __future__ import annotations

from typing import Any

__all__ = ["AllureObserver", "label_test", "attach_run", "write_report_files",
           "violation_message", "unknown_message", "infrastructure_message", "failure_message"]

_WHERE = {
    "AllureObserver": "observer", "label_test": "observer", "attach_run": "attach",
    "write_report_files": "files", "violation_message": "categories",
    "unknown_message": "categories", "infrastructure_message": "categories",
    "failure_message": "categories",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f"harness.report.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
