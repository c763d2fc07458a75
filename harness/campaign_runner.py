"""Executes a campaign: hands its runs to worker processes until the budget,
the run count or a violation stops it.

Each worker (`harness.campaign_worker`) owns one lab and runs one chaos run at
a time, so `--parallel N` means N labs on separate ports and no run ever sees
another's faults. A run starts only if the budget still has room for it (the
mean wall time of the runs so far, or --duration before the first); a started
run is never cut short. Stopping at a violation lets the runs in progress
finish, so every run directory the campaign lists is complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from harness.campaign import CampaignSpec, RunRecord, format_seconds
from harness.errors import BadInput, InfraError

__all__ = ["CampaignOutcome", "CampaignView", "run_campaign"]

BROKEN_IN_A_ROW = 3  # this many broken runs in a row: the lab or target is broken, stop


@dataclass
class CampaignOutcome:
    records: list[RunRecord]
    stopped: str  # "runs", "budget", "violation", "interrupted", "broken", "bad-input"
    elapsed_s: float
    error: str | None = None


class CampaignView:
    """The live view: runs done, faults covered, violations, time left.

    On a terminal one line redrawn in place, with a line per finished run above
    it; otherwise a line per finished run and a status line every 30 s, so CI
    logs show progress without flooding (harness.progress's conventions).
    """

    def __init__(self, spec: CampaignSpec, *, enabled: bool = True,
                 stream: TextIO = sys.stderr) -> None:
        self.spec, self.enabled, self.stream = spec, enabled, stream
        self.tty = enabled and stream.isatty()
        self.t0 = time.monotonic()
        self.records: list[RunRecord] = []
        self.running = 0
        self.total = sum(1 for _ in spec.shard.run_indices(spec.runs)) if spec.runs else None
        self._last = 0.0
        self._lock = threading.Lock()

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        pairs = {(c["family"], c["target"]) for r in self.records for c in r.coverage}
        families = {f for f, _ in pairs}
        done = f"{len(self.records)}/{self.total}" if self.total else str(len(self.records))
        left = ""
        if self.spec.budget_s is not None:
            left = f"  left {format_seconds(self.spec.budget_s - elapsed)}"
        return (f"[{format_seconds(elapsed):>6}] runs {done} ({self.running} running)  "
                f"violations {sum(r.valid is False for r in self.records)}  "
                f"unknown {sum(r.valid == 'unknown' for r in self.records)}  "
                f"broken {sum(r.valid is None for r in self.records)}  "
                f"faults covered: {len(pairs)} family×node pairs, {len(families)} families{left}")

    def finished(self, record: RunRecord) -> None:
        with self._lock:
            self.records.append(record)
            if not self.enabled:
                return
            why = ", ".join(record.violated) or record.error or ""
            text = (f"run {record.index} seed {record.seed}: {record.label} in "
                    f"{record.elapsed_s:.1f}s" + (f" ({why})" if why else ""))
            self._write(text, final=True)

    def tick(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not self.enabled or (not force and now - self._last < (0.5 if self.tty else 30.0)):
                return
            self._last = now
            self._write(self.line(), final=False)

    def close(self) -> None:
        if self.enabled:
            self.tick(force=True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()

    def _write(self, text: str, *, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
            if final:
                self.stream.write(self.line())
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


class _Worker:
    """One worker process, its pipes and its log."""

    def __init__(self, number: int, campaign_dir: Path, lab: str) -> None:
        logs = campaign_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"worker-{number}.log"
        self._log: IO[str] = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.campaign_worker", "--lab", lab,
             "--lab-root", str((campaign_dir / "labs" / f"worker-{number}").resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            start_new_session=True, cwd=os.getcwd())

    def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The worker's reply to `job`, or None if the worker is gone."""
        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, ValueError, OSError):
            return None
        return json.loads(line) if line.strip() else None

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close(self, timeout: float = 120.0) -> None:
        """Let the worker finish (stdin closed), heal and bring its lab down; kill it if it hangs."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class _Dispatcher:
    """Hands out jobs under one lock and decides when the campaign stops."""

    def __init__(self, spec: CampaignSpec, campaign_dir: Path, view: CampaignView,
                 on_record: Callable[[RunRecord], None], first_estimate_s: float) -> None:
        self.spec, self.dir, self.view, self.on_record = spec, campaign_dir, view, on_record
        self.jobs: Iterator[tuple[int, int]] = spec.jobs()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + spec.budget_s if spec.budget_s is not None else None
        self.first_estimate_s = first_estimate_s
        self.lock = threading.Lock()
        self.records: list[RunRecord] = []
        self.stopped: str | None = None
        self.error: str | None = None
        self.broken_in_a_row = 0

    def _estimate(self) -> float:
        times = [r.elapsed_s for r in self.records if r.valid is not None]
        return sum(times) / len(times) if times else self.first_estimate_s

    def next_job(self) -> dict[str, Any] | None:
        with self.lock:
            if self.stopped is not None:
                return None
            if self.deadline is not None and time.monotonic() + self._estimate() > self.deadline:
                self.stopped = "budget"
                return None
            nxt = next(self.jobs, None)
            if nxt is None:
                self.stopped = "runs"
                return None
            index, seed = nxt
            out = (self.dir / "runs" / f"run-{index:04d}-seed{seed}").resolve()
            self.view.running += 1
            return {"index": index, "seed": seed, "out": str(out), "run": self.spec.run}

    def finish(self, reply: dict[str, Any] | None, job: dict[str, Any], worker: _Worker) -> None:
        with self.lock:
            self.view.running -= 1
            if reply is None:
                if self.stopped != "interrupted":
                    self.stopped, self.error = "broken", (
                        f"campaign worker exited unexpectedly; see {worker.log_path}")
                return
            record = RunRecord(**reply["record"])
            if reply.get("kind") == "bad-input":
                self.stopped, self.error = "bad-input", record.error
                return
            self.records.append(record)
            self.view.finished(record)
            try:
                self.on_record(record)
            except Exception as e:  # e.g. Allure results: never worth losing the campaign over
                print(f"txchaos: warning: run {record.index}: {type(e).__name__}: {e}",
                      file=sys.stderr)
            self.broken_in_a_row = self.broken_in_a_row + 1 if record.valid is None else 0
            if self.broken_in_a_row >= BROKEN_IN_A_ROW and self.stopped is None:
                self.stopped, self.error = "broken", (
                    f"{BROKEN_IN_A_ROW} runs in a row broke; last: {record.error}")
            elif record.valid is False and not self.spec.keep_going and self.stopped is None:
                self.stopped = "violation"


def run_campaign(spec: CampaignSpec, campaign_dir: Path, *, lab: str = "local",
                 view: CampaignView | None = None,
                 on_record: Callable[[RunRecord], None] = lambda r: None) -> CampaignOutcome:
    """Run the campaign's runs on `spec.parallel` workers; Ctrl-C stops them (healed)."""
    if spec.parallel > 1 and lab != "local":
        raise BadInput("--parallel needs --lab local: runs in parallel each need their own "
                       "brokers, or one run's broker faults hit the others")
    view = view or CampaignView(spec, enabled=False)
    from harness.run import RunConfig

    first = float(spec.run.get("duration") or RunConfig.__dataclass_fields__["duration"].default)
    dispatcher = _Dispatcher(spec, campaign_dir, view, on_record, first_estimate_s=first)
    workers: list[_Worker] = []

    def drive(worker: _Worker) -> None:
        while (job := dispatcher.next_job()) is not None:
            dispatcher.finish(worker.run(job), job, worker)

    threads: list[threading.Thread] = []
    try:
        for n in range(spec.parallel):
            workers.append(_Worker(n + 1, campaign_dir, lab))
            threads.append(threading.Thread(target=drive, args=(workers[-1],), daemon=True))
            threads[-1].start()
        while any(t.is_alive() for t in threads):
            view.tick()
            for t in threads:
                t.join(0.25)
    except KeyboardInterrupt:
        with dispatcher.lock:
            dispatcher.stopped = "interrupted"
        print("\ntxchaos: interrupted; healing the runs in progress ...", file=sys.stderr)
        for w in workers:
            w.interrupt()
        _wait_quietly(threads)
    finally:
        for w in workers:
            _close_quietly(w)
        view.close()
    if dispatcher.stopped == "broken" and not dispatcher.records:
        raise InfraError(dispatcher.error or "the campaign's workers broke")
    return CampaignOutcome(records=dispatcher.records, stopped=dispatcher.stopped or "runs",
                           elapsed_s=time.monotonic() - dispatcher.t0, error=dispatcher.error)


def _wait_quietly(threads: list[threading.Thread]) -> None:
    """Wait for the workers to heal; a second Ctrl-C does not leave faults in force."""
    while any(t.is_alive() for t in threads):
        try:
            for t in threads:
                t.join(0.5)
        except KeyboardInterrupt:
            print("txchaos: still healing; waiting for the runs in progress to stop",
                  file=sys.stderr)


def _close_quietly(worker: _Worker) -> None:
    while True:
        try:
            worker.close()
            return
        except KeyboardInterrupt:
            worker.interrupt()
