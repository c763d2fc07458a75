"""Ctrl-C in the middle of a campaign: the runs in progress heal their faults and stop
their targets, every worker and its lab go away, and the partial summary and
campaign.json are written; exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_sigint_mid_campaign_heals_reaps_and_summarises(tmp_path: Path, processes_mentioning) -> None:
    out = tmp_path / "campaign"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "campaign", "--target", "nats",
                             "--faults", "pause", "--intensity", "1", "--runs", "4",
                             "--duration", "60", "--seed", "5", "--parallel", "2",
                             "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    histories: list[Path] = []
    while time.monotonic() < deadline:  # both runs have a fault in force
        histories = list(out.glob("runs/*/history.jsonl"))
        if len(histories) == 2 and all('"nemesis"' in h.read_text() for h in histories):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("the two runs did not start a fault within 120 s")
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert "interrupted; faults healed and processes stopped" in stderr
    assert "stopped: interrupted" in stdout
    data = json.loads((out / "campaign.json").read_text())
    assert data["stopped"] == "interrupted"
    leftovers = processes_mentioning(str(out))
    assert leftovers == [], leftovers
    for history in histories:
        text = history.read_text()
        starts, stops = text.count('"f":"start"'), text.count('"f":"stop"')
        assert starts >= 1 and stops == starts, (history, starts, stops)  # healed, on record
