"""`txchaos run` from a shell: bad input is refused up front, a real run writes a
run directory that `txchaos check` re-checks offline to the same verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def txchaos(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, says", [
    (["--target", "nope"], "unknown target 'nope'; choose one of"),
    (["--target", "nats", "--mutant", "bogus"], "has no mutant 'bogus'; its mutants: decision-not-logged"),
    (["--target", "nats", "--faults", "kill,bogus"], "unknown fault 'bogus'; valid faults: latency"),
    (["--target", "nats", "--duration", "-1"], "--duration must be positive"),
    (["--target", "nats", "--intensity", "2"], "--intensity must be between 0 and 1"),
    (["--target", "nats", "--schedule", "/no/such/file.json"], "no such file"),
    (["--target"], "expected one argument"),
    (["--target", "nats", "--cluster", "2"], "invalid choice: 2 (choose from 1, 3)"),
    (["--target", "kafka-eos-py", "--cluster", "3"], "run it with --cluster 1"),
])
def test_bad_input_exits_3_with_a_message_and_starts_nothing(tmp_path: Path, args: list[str],
                                                            says: str) -> None:
    out = tmp_path / "run"
    done = txchaos("run", *args, "--seed", "1", "--out", str(out), timeout=60)
    assert done.returncode == 3, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "history.jsonl").exists()


def test_a_real_run_is_rechecked_offline_to_the_same_verdict(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = txchaos("run", "--target", "nats", "--faults", "kill", "--duration", "5",
                   "--seed", "11", "--quiesce", "15", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: VALID" in done.stdout
    assert f"reproduce:     txchaos run --replay {out}" in done.stdout
    for name in ("history.jsonl", "state.json", "schedule.json", "verdict.json", "run.json"):
        assert (out / name).is_file(), name
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert any(op["process"] == "nemesis" and op["f"] == "start" for op in history)
    assert any(op["type"] == "ok" and op["f"] == "transfer" for op in history)
    # a second run into the same directory is refused, not overwritten
    again = txchaos("run", "--target", "nats", "--seed", "11", "--out", str(out), timeout=60)
    assert again.returncode == 3 and "already holds a run" in again.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    (out / "verdict.json").unlink()
    checked = txchaos("check", str(out))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads((out / "verdict.json").read_text())["valid"] == verdict["valid"] is True


def test_faults_none_is_a_fault_free_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = txchaos("run", "--target", "nats", "--faults", "none", "--duration", "3", "--seed", "2",
                   "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((out / "schedule.json").read_text())["events"] == []
    assert ", 0 faults injected" in done.stdout
