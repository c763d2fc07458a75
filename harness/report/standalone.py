"""Allure results for a finished run directory, without pytest (`txchaos run --alluredir`).

One test result per checker in verdict.json, with the same names, labels,
steps, failure messages and attachments a suite's test would carry, so a
report from `txchaos run` and one from `pytest suites` read alike and file
failures under the same categories. The run's attachments are written once and
shared by every result of the run (Allure reads them by file name).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import (ATTACHMENT_PATTERN, Attachment, Label, Parameter, Status,
                                   StatusDetails, TestResult, TestStepResult)
from allure_commons.types import AttachmentType

from harness.explain import explain
from harness.report.attach import attach_run
from harness.report.categories import infrastructure_message, unknown_message, violation_message
from harness.report.files import write_report_files
from harness.report.observer import _params
from harness.report.ops import fault_label
from harness.report.rundir import RunData, load_run
from harness.report.secrets import mask

__all__ = ["write_results", "result_name"]

_STATUS = {True: Status.PASSED, False: Status.FAILED}


def result_name(invariant: str, faults: list[str], target: str) -> str:
    """'atomicity holds under kill,partition on rabbitmq' — the title of one result."""
    return f"{invariant} holds under {_family(faults)} on {target}"


def _family(faults: list[str]) -> str:
    return ",".join(faults) if faults else "no faults"


def _status(valid: Any) -> str:
    return _STATUS.get(valid, Status.BROKEN) if isinstance(valid, bool) else Status.BROKEN


class _Sink:
    """An `allure.attach` look-alike that writes each attachment file once into the results."""

    def __init__(self, logger: AllureFileLogger) -> None:
        self.logger, self.attachments = logger, []  # type: list[Attachment]

    def __call__(self, body: str | bytes, name: str | None = None,
                 attachment_type: AttachmentType | str | None = None,
                 extension: str | None = None) -> None:
        if isinstance(attachment_type, AttachmentType):
            mime, ext = attachment_type.mime_type, attachment_type.extension
        else:
            mime, ext = attachment_type, extension or "attach"
        source = ATTACHMENT_PATTERN.format(prefix=uuid.uuid4(), ext=ext)
        self.logger.report_attached_data(body=body, file_name=source)
        self.attachments.append(Attachment(name=mask(name or source), source=source, type=mime))


def _base_ms(run: RunData) -> int:
    """Wall-clock ms of the run's time zero (phase and history times count from it)."""
    try:
        return int(datetime.strptime(str(run.run["started_at"]), "%Y-%m-%dT%H:%M:%S%z")
                   .timestamp() * 1000)
    except (KeyError, ValueError):
        return int((run.path / "run.json").stat().st_mtime * 1000) if (
            run.path / "run.json").is_file() else int(time.time() * 1000)


def _step(name: str, start: int, stop: int, params: dict[str, Any] | None = None, *,
          status: str = Status.PASSED, message: str | None = None) -> TestStepResult:
    return TestStepResult(
        name=mask(name), status=status, stage="finished", start=start, stop=stop,
        parameters=[Parameter(name=k, value=v) for k, v in _params(params or {}).items()],
        statusDetails=StatusDetails(message=mask(message)) if message else None)


def _fault_step(op: dict[str, Any], base: int) -> TestStepResult:
    value = op.get("value") if isinstance(op.get("value"), dict) else {"fault": str(op.get("value"))}
    params: dict[str, Any] = {"fault": value.get("fault", "?"), "targets": value.get("targets") or []}
    params.update({f"param {k}": v for k, v in (value.get("params") or {}).items()})
    at = base + int(op.get("time", 0)) // 1_000_000
    verb = "start" if op.get("f") == "start" else "stop"
    return _step(f"fault {verb}: {fault_label(value)}", at, at, params)


def _checker_step(c: dict[str, Any], at: int) -> TestStepResult:
    valid = c.get("valid")
    word = {True: "valid", False: "VIOLATED"}.get(valid, "unknown") if isinstance(valid, bool) \
        else "unknown"
    counts = {k: e.get("count", 0) for k, e in (c.get("evidence") or {}).items()}
    make = violation_message if valid is False else unknown_message
    return _step(f"check {c.get('name')}: {word}", at, at,
                 {"summary": str(c.get("summary", "")), **counts}, status=_status(valid),
                 message=None if valid is True else make(str(c.get("name")), str(c.get("summary", ""))))


def _steps(run: RunData, base: int) -> list[TestStepResult]:
    """The run's phases; fault events nested under the workload phase, checkers under check."""
    phases = [p for p in run.run.get("phases") or [] if isinstance(p, dict)]
    steps = [_step(str(p.get("name")), base + int(float(p.get("start", 0)) * 1000),
                   base + int(float(p.get("end", 0)) * 1000)) for p in phases]
    by_name = {s.name: s for s in steps}
    workload = next((s for s in steps if s.name.startswith("workload")), None)
    for op in run.history:
        if op.get("process") == "nemesis" and op.get("f") in ("start", "stop"):
            (workload.steps if workload else steps).append(_fault_step(op, base))
    check = by_name.get("check")
    at = check.start if check else (steps[-1].stop if steps else base)
    for c in run.verdict.get("checkers") or []:
        (check.steps if check else steps).append(_checker_step(c, at))
    return steps


def _history_id(*parts: Any) -> str:
    return hashlib.md5("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def _result(run: RunData, invariant: str, status: str, message: str | None,
            base: int, sink: _Sink) -> TestResult:
    target = str(run.run.get("target") or "unknown target")
    faults = [str(f) for f in run.run.get("faults") or []]
    mutant, seed = run.run.get("mutant"), run.run.get("seed")
    steps = _steps(run, base)
    family = _family(faults)
    return TestResult(
        uuid=str(uuid.uuid4()), name=mask(result_name(invariant, faults, target)),
        fullName=mask(f"txchaos.run.{target}.{family}.{invariant}"),
        historyId=_history_id(target, invariant, family, mutant or "none"),
        testCaseId=_history_id(target, invariant, family),
        status=status, stage="finished",
        statusDetails=StatusDetails(message=mask(message)) if message else None,
        description=mask(f"Chaos run {run.path}\n\nreproduce: {run.run.get('command', '?')}"
                         + "".join(f"\n\nNOTE: {n}" for n in run.run.get("notices") or [])),
        start=steps[0].start if steps else base, stop=steps[-1].stop if steps else base,
        steps=steps, attachments=list(sink.attachments),
        labels=[Label(name=k, value=mask(v)) for k, v in (
            ("epic", target), ("feature", invariant), ("story", family), ("tag", target),
            ("parentSuite", "txchaos run"), ("suite", target), ("subSuite", family),
            ("framework", "txchaos"), ("language", "python"))],
        parameters=[Parameter(name="seed", value="none" if seed is None else str(seed), excluded=True),
                    Parameter(name="mutant", value=mask(str(mutant or "none")), excluded=True)])


def write_results(run_dir: Path, results_dir: Path, *,
                  info: dict[str, Any] | None = None) -> list[Path]:
    """Write Allure results for the finished run `run_dir` into `results_dir`.

    One result per checker (passed / failed when violated / broken when unknown);
    a run without a verdict (it broke before checking) gives one broken result
    filed under Infrastructure error. Returns the result files written; the
    environment, categories and executor files are written too.
    """
    run = load_run(Path(run_dir).resolve())
    results_dir = Path(results_dir)
    before = set(results_dir.glob("*-result.json"))
    logger = AllureFileLogger(str(results_dir))
    sink = _Sink(logger)
    checkers = [c for c in run.verdict.get("checkers") or [] if isinstance(c, dict)]
    attach_run(run.path, failed=run.verdict.get("valid") is not True, attach=sink)
    base = _base_ms(run)
    command, seed = str(run.run.get("command", "?")), run.run.get("seed") or 0
    results = []
    for c in checkers:
        status = _status(c.get("valid"))
        message = None if status == Status.PASSED else explain(run.path, c, command=command,
                                                               seed=seed)
        results.append(_result(run, str(c.get("name")), status, message, base, sink))
    if not checkers:
        why = (f"the run was interrupted before its verdict ({run.path})" if run.run.get("interrupted")
               else f"{run.run['error']} (run directory {run.path})" if run.run.get("error")
               else f"run directory {run.path} has no verdict "
                    f"(missing: {', '.join(run.missing) or 'none'})")
        results.append(_result(run, "chaos run", Status.BROKEN,
                               infrastructure_message(why), base, sink))
    for r in results:
        logger.report_result(r)
    write_report_files(results_dir, [run.path], info)
    return sorted(set(results_dir.glob("*-result.json")) - before)
