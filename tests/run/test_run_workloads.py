"""`txchaos run --workload`: bad names are refused up front; a short real run of the
default `mixed` workload on NATS stays valid and really bursts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def txchaos(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_unknown_workload_exits_3_listing_the_valid_ones(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = txchaos("run", "--target", "nats", "--workload", "bogus", "--seed", "1",
                   "--out", str(out), timeout=60)
    assert done.returncode == 3, done.stderr
    assert "unknown workload 'bogus'; valid workloads: uniform, burst, hot, drain, retry, mixed" \
        in done.stderr
    assert "Traceback" not in done.stderr and not (out / "history.jsonl").exists()


def test_a_short_mixed_run_on_nats_is_valid_and_bursts(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = txchaos("run", "--target", "nats", "--workload", "mixed", "--duration", "8",
                   "--seed", "3", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: VALID" in done.stdout
    # saved in the run's configuration, so a replay requests the same payments
    assert json.loads((out / "run.json").read_text())["config"]["workload"] == "mixed"
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    in_flight = most = 0
    for op in history:
        if op["process"] != "nemesis":
            in_flight += 1 if op["type"] == "invoke" else -1
            most = max(most, in_flight)
    print(f"seed 3: {len(history)} events, at most {most} payments in flight")
    assert most > 4  # more than --clients: seed 3's mix opens with a burst (after a lull of 3-6)
