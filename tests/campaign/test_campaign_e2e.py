"""A real campaign against the reference target on NATS, split into two shards that
write into one Allure results directory: together they run exactly the seeds of the
unsharded campaign, each shard's campaign.json and coverage table say what ran, and
one report holds both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.campaign import run_seed

SEED = 11  # campaign seed


def txchaos(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_two_shards_run_the_campaign_and_merge_into_one_report(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    seen: dict[int, int] = {}
    for shard in ("1/2", "2/2"):
        out = tmp_path / f"shard{shard[0]}"
        done = txchaos("campaign", "--target", "nats", "--runs", "2", "--duration", "4",
                       "--faults", "kill,pause", "--seed", str(SEED), "--shard", shard,
                       "--parallel", "1", "--quiesce", "15", "--out", str(out),
                       "--alluredir", str(results))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"campaign seed {SEED}" in done.stdout
        assert "family" in done.stdout and "seconds under fault" in done.stdout  # coverage table
        assert "verdict: VALID (1 valid, 0 violated, 0 unknown, 0 broken)" in done.stdout
        data = json.loads((out / "campaign.json").read_text())
        assert data["seed"] == SEED and data["shard"]["count"] == 2
        assert data["stopped"] == "runs" and data["verdict"]["exit_code"] == 0
        (run,) = data["runs"]
        seen[run["index"]] = run["seed"]
        run_dir = Path(run["run_dir"])
        for name in ("history.jsonl", "schedule.json", "state.json", "verdict.json", "run.json"):
            assert (run_dir / name).is_file(), name  # a replay bundle
        assert json.loads((run_dir / "run.json").read_text())["seed"] == run["seed"]
        assert run["coverage"], "a run under kill,pause covered no fault"
        assert {c["family"] for c in run["coverage"]} <= {"kill", "pause"}
        for row in data["coverage"]:
            assert f"{row['family']}" in done.stdout and row["target"] in done.stdout
    assert seen == {0: run_seed(SEED, 0), 1: run_seed(SEED, 1)}
    seeds, history_ids = set(), []
    for f in results.glob("*-result.json"):
        result = json.loads(f.read_text())
        params = {p["name"]: p["value"] for p in result["parameters"]}
        seeds.add(int(params["seed"]))
        history_ids.append(result["historyId"])
    assert seeds == set(seen.values())  # both shards' runs in one results directory
    assert len(set(history_ids)) == len(history_ids) >= 2  # one test per checker per run, no retries
    report = txchaos("report", str(results), "--out", str(tmp_path / "report"),
                     "--history", str(tmp_path / "history.jsonl"))
    assert report.returncode == 0, report.stdout + report.stderr
    assert (tmp_path / "report" / "index.html").is_file()


@pytest.mark.nightly
def test_a_budget_campaign_with_parallel_workers_is_valid(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    done = txchaos("campaign", "--target", "nats", "--budget", "3m", "--duration", "20",
                   "--seed", str(SEED), "--parallel", "2", "--keep-going", "--quiet",
                   "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "campaign.json").read_text())
    assert data["stopped"] == "budget" and data["verdict"]["runs"] >= 4
    assert data["elapsed_s"] < 3 * 60 + 60  # a run may end after the budget, never start after it


@pytest.mark.nightly
def test_a_campaign_stops_at_the_first_violation(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    done = txchaos("campaign", "--target", "nats", "--mutant", "no-dedup", "--faults", "kill",
                   "--runs", "6", "--duration", "10", "--seed", "3", "--parallel", "1",
                   "--quiet", "--out", str(out), timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    data = json.loads((out / "campaign.json").read_text())
    assert data["stopped"] == "violation" and data["verdict"]["violated"] == 1
    assert data["verdict"]["runs"] < 6
    violated = next(r for r in data["runs"] if r["valid"] is False)
    assert "exactly-once" in violated["violated"]
    assert f"txchaos shrink {violated['run_dir']}" in done.stdout
