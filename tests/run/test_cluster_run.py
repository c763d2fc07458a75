"""The reference target on a three-node broker cluster (`txchaos run --cluster 3`) under the
cluster's own faults: its leader killed and cut off from its peers, a rolling restart, one
node killed. The correct target keeps every invariant; the faults struck the broker's nodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from suites.selftest_plan import broker_backlog_loss
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


# RabbitMQ and NATS lose a non-durable queue or an R1 memory stream with the node holding it;
# Kafka with acks=1 loses what a leader cut off from its peers acknowledged alone, once the
# controller (4 s broker session) gave its partitions to another node
BACKLOG_LOSS = {"rabbitmq": broker_backlog_loss("leader-kill"), "nats": broker_backlog_loss("leader-kill"),
                "kafka": broker_backlog_loss("leader-isolate", lead=1.0, down=8.0, tail=2.0, starts=(2.0,))}


@pytest.mark.nightly  # the default run proves the mutant on one node (suites/selftest_plan.py)
@pytest.mark.parametrize("broker", ["rabbitmq", "nats", "kafka"])
def test_a_broker_without_durability_loses_what_a_target_that_trusts_it_was_told_it_kept(
        tmp_path: Path, broker: str) -> None:
    """delivery=broker passes on the cluster's durable settings; the non-durable-broker mutant
    (the same delivery on a broker set up for speed) leaves participants prepared for ever."""
    schedule = tmp_path / "schedule.json"
    BACKLOG_LOSS[broker].dump(schedule)
    common = ("--target", broker, "--cluster", "3", "--schedule", str(schedule), "--duration", "15",
              "--seed", "1", "--quiesce", "15", "--quiet")
    mutant = txchaos("run", *common, "--mutant", "non-durable-broker", "--out", str(tmp_path / "mutant"),
                     timeout=300)
    assert mutant.returncode == 1, mutant.stdout + mutant.stderr
    assert re.search(r"^resolution\s+VIOLATED\s+\d+ left prepared", mutant.stdout, re.M), mutant.stdout
    correct = txchaos("run", *common, "--target-opt", "delivery=broker", "--out", str(tmp_path / "correct"),
                      timeout=300)
    assert correct.returncode == 0, correct.stdout + correct.stderr
    assert "verdict: VALID" in correct.stdout


@pytest.mark.nightly
@pytest.mark.parametrize("broker", ["rabbitmq", "nats", "kafka"])
def test_the_default_mix_finds_a_broker_without_durability(tmp_path: Path, broker: str) -> None:
    """No schedule written for it: a short campaign of default runs (backlog-kill in each)
    catches the non-durable-broker mutant, and passes the correct delivery=broker."""
    common = ("campaign", "--target", broker, "--cluster", "3", "--seed", "1", "--parallel", "1", "--quiet")
    mutant = txchaos(*common, "--runs", "6", "--mutant", "non-durable-broker", "--out", str(tmp_path / "mutant"),
                     timeout=1800)
    assert mutant.returncode == 1, mutant.stdout + mutant.stderr
    correct = txchaos(*common, "--runs", "2", "--target-opt", "delivery=broker", "--out", str(tmp_path / "correct"),
                      timeout=900)
    assert correct.returncode == 0, correct.stdout + correct.stderr
