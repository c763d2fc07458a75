"""The reference target on a three-node broker cluster (`txchaos run --cluster 3`) under the
cluster's own faults: its leader killed and cut off from its peers, a rolling restart, one
node killed. The correct target keeps every invariant; the faults struck the broker's nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.run.test_run_cli import txchaos

CLUSTER_FAULTS = "leader-kill,leader-isolate,rolling-restart,broker-kill,partition"


@pytest.mark.parametrize("broker", ["rabbitmq", pytest.param("nats", marks=pytest.mark.nightly),
                                    pytest.param("kafka", marks=pytest.mark.nightly)])
def test_the_correct_target_keeps_every_invariant_under_cluster_faults(tmp_path: Path, broker: str) -> None:
    out = tmp_path / "run"
    done = txchaos("run", "--target", broker, "--cluster", "3", "--faults", CLUSTER_FAULTS,
                   "--duration", "20", "--seed", "5", "--intensity", "0.8", "--out", str(out),
                   "--quiet", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: VALID" in done.stdout
    assert json.loads((out / "run.json").read_text())["config"]["cluster"] == 3
    events = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    started = [e["value"] for e in events if e["process"] == "nemesis" and e["f"] == "start"]
    struck = " ".join(f"{v['fault']} {v['targets']} {v.get('description', '')}" for v in started)
    assert {v["fault"] for v in started} >= {"leader-kill", "leader-isolate", "rolling-restart"}, struck
    leader_hits = [v for v in started if v["fault"].startswith("leader-")]
    assert all(f": {broker}-" in v["description"] for v in leader_hits), struck  # the leader, by name
    ok = sum(1 for e in events if e["type"] == "ok" and e["f"] == "transfer")
    assert ok > 10  # the cluster kept serving through its faults


@pytest.mark.nightly
def test_a_rabbitmq_cluster_that_lost_power_on_every_node_comes_back(tmp_path: Path) -> None:
    """Its nodes are started again all at once: one started alone waits for its peers'
    Mnesia tables, and a start one by one never got past the first."""
    out = tmp_path / "run"
    done = txchaos("run", "--target", "rabbitmq", "--cluster", "3", "--faults", "power-loss,power-loss-all",
                   "--duration", "15", "--seed", "2", "--out", str(out), "--quiet", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    struck = [e["value"]["targets"] for e in events
              if e["process"] == "nemesis" and e["f"] == "stop" and e["value"]["fault"] == "power-loss-all"]
    assert struck and {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3"} <= set(struck[0])
