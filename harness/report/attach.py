"""Attach a run directory to the current Allure test: verdict, evidence, plots, schedule, history, logs.

Called from a test (or through AllureObserver) after the run directory is
written, or with an `attach` sink of the same signature as `allure.attach` to
write outside a pytest session (harness.report.standalone). Every attachment is
bounded and masked; a part that cannot be built becomes a short text attachment
saying why, so one bad file never hides the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import allure

from harness.report.bounded import cap_text, maybe_gzip, tail_lines
from harness.report.files import note_run
from harness.report.html import evidence_html, verdict_html
from harness.report.plots import latency_svg, throughput_svg, timeline_svg
from harness.report.rundir import RunData, load_run
from harness.report.secrets import mask, mask_obj

__all__ = ["attach_run", "MAX_LOGS", "AttachFn"]

AttachFn = Callable[..., Any]  # allure.attach(body, name=, attachment_type=, extension=)

MAX_LOGS = 12  # service logs attached per failed run
_T = allure.attachment_type


def _safe(name: str, build: Callable[[], None], attach: AttachFn) -> None:
    try:
        build()
    except Exception as e:  # noqa: BLE001 - a report part must not hide the verdict
        attach(mask(f"could not build {name}: {type(e).__name__}: {e}"),
               name=f"{name} (unavailable)", attachment_type=_T.TEXT)


def _history(run: RunData, attach: AttachFn) -> None:
    path = run.path / "history.jsonl"
    if not path.is_file():
        return
    body, gz, note = maybe_gzip(path)
    if gz:
        import gzip
        masked = gzip.compress(mask(gzip.decompress(body).decode("utf-8", "replace")).encode(),
                               mtime=0)
        attach(masked, name="history.jsonl.gz (gzipped: large)",
               attachment_type="application/gzip", extension="jsonl.gz")
    else:
        attach(mask(body.decode("utf-8", "replace")), name="history.jsonl",
               attachment_type="text/plain", extension="jsonl")
    if note:
        attach(note, name="history: cut", attachment_type=_T.TEXT)


def _logs(run: RunData, attach: AttachFn) -> None:
    for log in run.logs[:MAX_LOGS]:
        attach(mask(tail_lines(log)), name=f"log tail: {log.stem}", attachment_type=_T.TEXT)
    if len(run.logs) > MAX_LOGS:
        attach(f"[{len(run.logs) - MAX_LOGS} more logs in {run.path / 'logs'}]",
               name="more logs", attachment_type=_T.TEXT)


def attach_run(run_dir: Path, *, failed: bool, attach: AttachFn | None = None) -> RunData:
    """Attach everything a reader needs about `run_dir`; log tails only when `failed`.

    `attach` defaults to `allure.attach` (the current allure-pytest test)."""
    run = load_run(Path(run_dir))
    note_run(run.path)
    a = attach or allure.attach
    if run.run.get("command"):
        a(mask(str(run.run["command"])) + "\n", name="reproduce", attachment_type=_T.TEXT)
    _safe("verdict", lambda: a(verdict_html(run), name="verdict", attachment_type=_T.HTML), a)
    for checker in run.violated:
        _safe(f"evidence {checker.get('name')}",
              lambda c=checker: a(evidence_html(run, c), name=f"evidence: {c.get('name')}",
                                  attachment_type=_T.HTML), a)
    _safe("timeline", lambda: a(timeline_svg(run.history, run.schedule), name="timeline",
                                attachment_type=_T.SVG), a)
    _safe("latency", lambda: a(latency_svg(run.history, run.schedule), name="latency",
                               attachment_type=_T.SVG), a)
    _safe("throughput", lambda: a(throughput_svg(run.history, run.schedule), name="throughput",
                                  attachment_type=_T.SVG), a)
    if run.schedule:
        _safe("fault schedule", lambda: a(cap_text(json.dumps(mask_obj(run.schedule), indent=1)),
                                          name="fault schedule (replayable)",
                                          attachment_type=_T.JSON), a)
    if run.run:
        _safe("run metadata", lambda: a(cap_text(json.dumps(mask_obj(run.run), indent=1)),
                                        name="run.json", attachment_type=_T.JSON), a)
    _safe("history", lambda: _history(run, a), a)
    if failed:
        _safe("logs", lambda: _logs(run, a), a)
    return run
