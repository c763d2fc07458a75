"""A real shrink: the no-dedup mutant on NATS, violated under a schedule of two ledger
crashes at the step that makes a redelivered COMMIT be applied again, plus a latency
fault that has nothing to do with it. The shrink must end with a schedule no larger
than the original that still violates exactly-once, as a replay bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from faults.schedule import FaultEvent, Schedule
from suites.schedules import crash_at

SEED = 5  # the run's seed (its workload); the schedule is written here


def txchaos(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


def violated_run(tmp_path: Path) -> Path:
    crashes = crash_at([("ledger", "after-apply-before-ack")] * 2, start=1.0, every=3.0)
    noise = FaultEvent(2.0, 1.5, "latency", ("clients-coordinator",),
                       {"latency_ms": 100, "jitter_ms": 20, "direction": "both"})
    schedule = tmp_path / "schedule.json"
    Schedule(None, sorted([*crashes.events, noise], key=lambda e: e.at)).dump(schedule)
    run = tmp_path / "run"
    done = txchaos("run", "--target", "nats", "--mutant", "no-dedup", "--schedule", str(schedule),
                   "--duration", "8", "--seed", str(SEED), "--quiesce", "15", "--quiet",
                   "--out", str(run))
    assert done.returncode == 1, done.stdout + done.stderr  # caught: exactly-once violated
    return run


def test_shrink_keeps_the_violation_with_a_schedule_no_larger(tmp_path: Path) -> None:
    run = violated_run(tmp_path)
    out = tmp_path / "shrunk"
    results = tmp_path / "allure-results"
    done = txchaos("shrink", str(run), "--reruns", "1", "--budget", "30s", "--out", str(out),
                   "--alluredir", str(results))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "original" in done.stdout and "minimal" in done.stdout
    summary = json.loads((out / "shrink.json").read_text())
    original, minimal = summary["original"], summary["minimal"]
    assert summary["invariants"] == ["exactly-once"]
    assert "exactly-once" in minimal["violated"]
    assert original["events"] == 3
    assert minimal["events"] <= original["events"]
    assert minimal["fault_seconds"] <= original["fault_seconds"]
    assert minimal["duration"] <= original["duration"]
    assert summary["runs_taken"] >= 1 and summary["stopped"] in ("budget", "fixpoint")
    # the replay bundle is a failing run of exactly the minimal schedule
    bundle = Path(minimal["run_dir"])
    verdict = json.loads((bundle / "verdict.json").read_text())
    assert any(c["name"] == "exactly-once" and c["valid"] is False for c in verdict["checkers"])
    replayed = json.loads((bundle / "schedule.json").read_text())["events"]
    assert replayed == minimal["schedule"]["events"]
    assert summary["reproduce"] == f"txchaos run --replay {bundle}"
    saved = json.loads((bundle / "run.json").read_text())["config"]
    assert saved["duration"] == minimal["duration"] and saved["mutant"] == "no-dedup"
    # every trial is logged (the cache a later shrink with the same --out reuses)
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert trials and sum(len(t["runs"]) for t in trials) == summary["runs_taken"]
    # the minimal run's Allure results carry the shrink summary
    attached = [a for f in results.glob("*-result.json")
                for a in json.loads(f.read_text()).get("attachments", [])
                if a["name"].startswith("shrink summary")]
    assert attached and json.loads((results / attached[0]["source"]).read_text())["minimal"]


def test_shrink_refuses_a_valid_run_and_a_missing_dir(tmp_path: Path) -> None:
    done = txchaos("shrink", str(tmp_path / "nope"))
    assert done.returncode == 3 and "no such run directory" in done.stderr
    run = tmp_path / "valid"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"target": "nats", "seed": 1, "duration": 5}))
    (run / "verdict.json").write_text(json.dumps({"valid": True, "checkers": [
        {"name": "atomicity", "valid": True, "summary": "ok"}]}))
    Schedule(1, []).dump(run / "schedule.json")
    done = txchaos("shrink", str(run))
    assert done.returncode == 3 and "is not a violated run (verdict: VALID)" in done.stderr
    assert "Traceback" not in done.stderr
    done = txchaos("shrink", str(run), "--budget", "soon")
    assert done.returncode == 3 and "--budget 'soon'" in done.stderr
