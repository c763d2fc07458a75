"""Ctrl-C in the middle of a chaos run heals every fault, stops every process (a
clustered broker's nodes and epmd too) and unmounts every lazy disk (power-loss faults)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.disk import mounted


def _mounts_under(root: Path) -> list[Path]:
    return [m for _, m in mounted() if m.is_relative_to(root)]


@pytest.mark.parametrize("shape", [["--target", "nats", "--faults", "pause,power-loss"],
                                   ["--target", "rabbitmq", "--cluster", "3", "--faults",
                                    "pause,power-loss,leader-isolate"]], ids=["nats", "rabbitmq-cluster"])
def test_sigint_mid_fault_heals_and_reaps(tmp_path: Path, processes_mentioning, shape: list[str]) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", *shape,
                             "--intensity", "1", "--duration", "60",
                             "--seed", "5", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    history = out / "history.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if history.is_file() and '"nemesis"' in history.read_text():
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("no fault started within 90 s")
    paused = [line for line in history.read_text().splitlines() if '"nemesis"' in line]
    assert '"start"' in paused[-1]  # interrupted while a fault is in force
    assert _mounts_under(out), "the run's data dirs are not on lazy disks"
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    assert _mounts_under(out) == []
    leftovers = processes_mentioning(str(out))
    assert leftovers == [], leftovers
    assert not list((out / "pids").glob("*.pid")) if (out / "pids").is_dir() else True
    starts = history.read_text().count('"f":"start"')
    stops = history.read_text().count('"f":"stop"')
    assert starts >= 1 and stops == starts, (starts, stops)  # every fault healed, on record
