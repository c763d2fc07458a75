"""`txchaos shrink` on a real cluster: the original run's configuration, re-runs of
each candidate schedule, the budget, and the replay bundle of the minimal schedule.

A candidate still fails if one of its K re-runs (same seed, so the same
requests; the cluster's timing differs) violates one of the invariants the
original run violated. Re-runs share one lab, started by the first and brought
down at the end (or replaced once if a re-run breaks on it). Every trial is
logged to trials.jsonl in the shrink directory, which is also the cache: a
shrink started again with the same --out tries no candidate twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from faults.schedule import Schedule
from harness.campaign import format_seconds
from harness.errors import BadInput, InfraError, TxchaosError, reading
from harness.shrink import BudgetSpent, Candidate, Shrinker, any_of

__all__ = ["Original", "load_original", "ChaosTrials", "ShrinkOutcome", "shrink_run"]

@dataclass
class Original:
    """The violated run to shrink: its configuration, seed, schedule and broken invariants."""

    run_dir: Path
    config: Any  # a RunConfig: the run's own, its schedule and directory set per trial
    seed: int
    candidate: Candidate
    invariants: list[str]


def load_original(run_dir: Path, invariants: list[str] | None = None) -> Original:
    """The run's configuration from run.json (its `config` object; the top-level keys
    target/mutant/seed/duration/clients of older runs), its verdict and schedule;
    BadInput if it cannot be shrunk."""
    from harness.run import RunConfig

    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: no such run directory")
    docs: dict[str, Any] = {}
    for name in ("run.json", "verdict.json"):
        with reading(run_dir / name, "a JSON file"):
            try:
                docs[name] = json.loads((run_dir / name).read_text())
            except json.JSONDecodeError as e:
                raise BadInput(f"{run_dir / name}: not JSON ({e})") from None
    if not (run_dir / "schedule.json").is_file():
        raise BadInput(f"{run_dir}: no schedule.json; shrink needs the run's fault schedule")
    schedule = Schedule.load(run_dir / "schedule.json")
    meta, verdict = docs["run.json"], docs["verdict.json"]
    saved = meta.get("config")
    if isinstance(saved, dict) and hasattr(RunConfig, "from_json"):
        config, warnings = RunConfig.from_json(saved, where=f"{run_dir}/run.json")
        for w in warnings:
            print(f"txchaos: warning: {w}", file=sys.stderr)
    else:  # a run.json of an older txchaos: its top-level keys
        fields = {f.name for f in dataclasses.fields(RunConfig)}
        kept = {k: meta[k] for k in ("target", "mutant", "duration", "clients")
                if k in meta and k in fields and meta[k] is not None}
        if not isinstance(kept.get("target"), str):
            raise BadInput(f"{run_dir / 'run.json'} names no target")
        config = RunConfig(**kept)
    seed = config.seed if config.seed is not None else meta.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise BadInput(f"{run_dir / 'run.json'} has no integer seed")
    violated = [c["name"] for c in verdict.get("checkers", []) if c.get("valid") is False]
    if not violated:
        label = {True: "VALID", "unknown": "UNKNOWN"}.get(verdict.get("valid"), "not violated")
        raise BadInput(f"{run_dir} is not a violated run (verdict: {label}); shrink needs a run "
                       "that violated an invariant")
    if invariants:
        unknown = sorted(set(invariants) - set(violated))
        if unknown:
            raise BadInput(f"--invariant {', '.join(unknown)}: the run did not violate it; "
                           f"it violated {', '.join(violated)}")
        violated = [v for v in violated if v in invariants]
    return Original(run_dir, config, seed, Candidate(tuple(schedule.events), float(config.duration)),
                    violated)


@dataclass
class Trial:
    key: str
    failed: bool
    runs: list[dict[str, Any]] = field(default_factory=list)  # {run_dir, violated, valid}

    @property
    def failing_run(self) -> str | None:
        return next((r["run_dir"] for r in self.runs if r.get("failed")), None)


class ChaosTrials:
    """The real predicate: re-runs of a candidate on one shared lab, within a deadline."""

    def __init__(self, original: Original, out: Path, *, deadline: float, reruns: int = 3,
                 lab: str = "local", stream: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.original, self.out, self.deadline, self.reruns = original, out.resolve(), deadline, reruns
        self.lab_option, self.stream, self.quiet = lab, stream, quiet
        self.t0 = time.monotonic()
        self.log_path = out / "trials.jsonl"
        self.trials: dict[str, Trial] = {}
        self.runs_taken = 0
        self.overhead_s = 8.0  # start, heal, quiesce, check: updated from real runs
        self._lab: Any = None
        self._generation = 0
        self._load_log()

    # -- cache ----------------------------------------------------------------
    def _load_log(self) -> None:
        if not self.log_path.is_file():
            return
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                d = json.loads(line)
                self.trials[d["key"]] = Trial(d["key"], bool(d["failed"]), list(d["runs"]))

    def cached(self) -> dict[str, bool]:
        return {k: t.failed for k, t in self.trials.items()}

    # -- the predicate ----------------------------------------------------------
    def once(self, candidate: Candidate, attempt: int) -> bool:
        """One re-run of `candidate`; True if it violates one of the original's invariants."""
        from harness.run import run_chaos

        if time.monotonic() + candidate.duration + self.overhead_s > self.deadline:
            raise BudgetSpent
        trial = self.trials.get(candidate.key)
        if trial is None or attempt == 0:
            trial = self.trials[candidate.key] = Trial(candidate.key, False)
        run_dir = (self.out / "runs" / f"{len(self.trials):03d}-{candidate.key}-r{attempt + 1}").resolve()
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an interrupted earlier attempt
        config = dataclasses.replace(self.original.config, seed=self.original.seed, out=run_dir,
                                     duration=candidate.duration, schedule_file=None,
                                     schedule=Schedule(self.original.seed, list(candidate.events)))
        started = time.monotonic()
        result = self._run(run_chaos, config)
        self.runs_taken += 1
        wall = time.monotonic() - started
        self.overhead_s = max(2.0, 0.5 * self.overhead_s + 0.5 * (wall - candidate.duration))
        violated = [c["name"] for c in result.verdict["checkers"] if c["valid"] is False]
        failed = bool(set(violated) & set(self.original.invariants))
        trial.runs.append({"run_dir": str(result.run_dir), "valid": result.valid,
                           "violated": violated, "failed": failed})
        trial.failed = trial.failed or failed
        self._progress(candidate, attempt, failed, violated)
        if failed or attempt == self.reruns - 1:
            with self.log_path.open("a") as f:
                f.write(json.dumps({"key": trial.key, "failed": trial.failed, "runs": trial.runs,
                                    "candidate": candidate.to_json()}) + "\n")
        return failed

    def _run(self, run_chaos: Any, config: Any) -> Any:
        """A run on the shared lab; a run that breaks on it gets one more try on a new lab."""
        from harness.lab import Lab

        for attempt in (1, 2):
            if self._lab is None:
                self._lab = Lab.from_option(self.lab_option,
                                            root=self.out / "labs" / f"lab{self._generation}")
            try:
                return run_chaos(config, lab=self._lab)
            except BadInput:
                raise
            except TxchaosError as e:
                self.close()
                self._generation += 1
                if attempt == 2:
                    raise InfraError(f"a re-run broke twice: {e}") from e
                shutil.rmtree(config.out, ignore_errors=True)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._lab is not None:
            with contextlib.suppress(Exception):
                self._lab.down()
            self._lab = None

    def _progress(self, c: Candidate, attempt: int, failed: bool, violated: list[str]) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.t0
        said = f"still fails ({', '.join(violated)})" if failed else (
            "passes" if not violated else f"fails otherwise ({', '.join(violated)})")
        print(f"[{format_seconds(elapsed):>6}] trial {len(self.trials)} re-run {attempt + 1}/"
              f"{self.reruns}: {c.describe()} -> {said}; runs {self.runs_taken}, "
              f"left {format_seconds(self.deadline - time.monotonic())}",
              file=self.stream, flush=True)


@dataclass
class ShrinkOutcome:
    original: Original
    minimal: Candidate
    minimal_run: Path  # the replay bundle: a failing run of the minimal schedule
    trials: int
    runs_taken: int
    elapsed_s: float
    stopped: str  # "fixpoint", "budget", "interrupted" or "broken" (a re-run broke twice)
    summary: dict[str, Any]
    error: str | None = None


def shrink_run(original: Original, out: Path, *, reruns: int, budget_s: float,
               lab: str = "local", quiet: bool = False) -> ShrinkOutcome:
    """Shrink `original` into `out`; the minimal schedule's failing run is copied to out/minimal."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    trials = ChaosTrials(original, out, deadline=t0 + budget_s, reruns=reruns, lab=lab, quiet=quiet)
    shrinker = Shrinker(original.candidate, any_of(trials.once, reruns), cache=trials.cached(),
                        log=lambda line: None if quiet else print(line, file=sys.stderr))
    error = None
    try:
        shrinker.run()
        stopped = shrinker.stopped
    except KeyboardInterrupt:
        stopped = "interrupted"
    except TxchaosError as e:  # the lab broke: keep what was found so far
        stopped, error = "broken", str(e)
    finally:
        trials.close()
    best = shrinker.best
    trial = trials.trials.get(best.key)
    source = Path(trial.failing_run) if trial and trial.failing_run else original.run_dir
    minimal_run = out / "minimal"
    if minimal_run.exists():
        shutil.rmtree(minimal_run)
    shutil.copytree(source, minimal_run, ignore=shutil.ignore_patterns("pids", "lab", "labs"))
    summary = _summary(original, best, minimal_run, source, shrinker.trials, trials.runs_taken,
                       time.monotonic() - t0, stopped, reruns, budget_s)
    summary["error"] = error
    (out / "shrink.json").write_text(json.dumps(summary, indent=1) + "\n")
    return ShrinkOutcome(original, best, minimal_run, shrinker.trials, trials.runs_taken,
                         time.monotonic() - t0, stopped, summary, error)


def _side(c: Candidate) -> dict[str, Any]:
    return {"events": len(c.events), "fault_seconds": c.fault_seconds, "duration": c.duration,
            "schedule": c.to_json()}


def _summary(original: Original, best: Candidate, minimal_run: Path, source: Path, trials: int,
             runs: int, elapsed: float, stopped: str, reruns: int, budget_s: float) -> dict[str, Any]:
    cfg = original.config
    verdict: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        verdict = json.loads((minimal_run / "verdict.json").read_text())
    violated = [c["name"] for c in verdict.get("checkers", []) if c.get("valid") is False]
    meta: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads((minimal_run / "run.json").read_text())
    if isinstance(meta.get("config"), dict):
        reproduce = f"txchaos run --replay {minimal_run}"
    else:  # the original itself, written by an older txchaos
        reproduce = (f"txchaos run --target {cfg.target} --seed {original.seed} --duration "
                     f"{best.duration:g} --schedule {minimal_run / 'schedule.json'}"
                     + (f" --mutant {cfg.mutant}" if cfg.mutant else ""))
    if cfg.lab != "local":
        reproduce += f" --lab {cfg.lab}"
    return {
        "version": 1, "invariants": original.invariants, "seed": original.seed,
        "target": cfg.target, "mutant": cfg.mutant,
        "original": {"run_dir": str(original.run_dir), **_side(original.candidate)},
        "minimal": {"run_dir": str(minimal_run), "failing_run": str(source), "violated": violated,
                    **_side(best)},
        "smaller": best != original.candidate,
        "trials": trials, "runs_taken": runs, "reruns": reruns, "budget_s": budget_s,
        "elapsed_s": round(elapsed, 3), "stopped": stopped,
        "reproduce": reproduce,
    }
