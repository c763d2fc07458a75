"""The campaign's pure parts: shards, run seeds, durations, the coverage table; and the
CLI refusing bad input with exit 3 before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.campaign import (CampaignSpec, RunRecord, Shard, campaign_exit_code, coverage_table,
                              format_coverage, parse_duration, parse_shard, run_seed)
from harness.errors import BadInput

SEED = 20261202  # the campaign seed these tests use


@pytest.mark.parametrize("runs, count", [(10, 2), (10, 3), (7, 4), (1, 3), (25, 5)])
def test_shards_cover_exactly_the_unsharded_seeds(runs: int, count: int) -> None:
    whole = CampaignSpec(seed=SEED, run={"target": "nats"}, runs=runs)
    unsharded = list(whole.jobs())
    assert [i for i, _ in unsharded] == list(range(runs))
    shards = [list(CampaignSpec(seed=SEED, run={"target": "nats"}, runs=runs,
                                shard=Shard(k, count)).jobs()) for k in range(1, count + 1)]
    merged = sorted(job for shard in shards for job in shard)
    assert merged == unsharded  # every (index, seed) once, none added
    assert sum(len(s) for s in shards) == runs
    assert all(len(s) in (runs // count, runs // count + 1) for s in shards)  # balanced


def test_run_seeds_are_deterministic_and_distinct() -> None:
    seeds = [run_seed(SEED, i) for i in range(1000)]
    assert seeds == [run_seed(SEED, i) for i in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(1 <= s < 2**31 for s in seeds)
    # consecutive, so the generator walks the fault space without repeats
    assert seeds == list(range(seeds[0], seeds[0] + 1000))
    # nearby campaign seeds (dates) do not share runs
    assert abs(run_seed(SEED + 1, 0) - run_seed(SEED, 0)) > 10**5
    assert run_seed(7, 0) == 720232177  # stable across machines and Python versions


def test_a_budget_campaign_shard_never_ends_by_itself() -> None:
    jobs = CampaignSpec(seed=SEED, run={"target": "nats"}, budget_s=60, shard=Shard(2, 3)).jobs()
    first = [next(jobs)[0] for _ in range(5)]
    assert first == [1, 4, 7, 10, 13]


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("20m", 1200), ("1h", 3600),
                                           ("1h30m", 5400), ("2.5m", 150), (" 45S ", 45)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "20x", "-5m", "0", "1m1m", "5 m", "1.2.3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadInput, match="--budget"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "1", "a/b", "1/2/3"])
def test_bad_shards(text: str) -> None:
    with pytest.raises(BadInput, match="--shard"):
        parse_shard(text)


def test_coverage_table_counts_runs_and_seconds() -> None:
    def rec(i: int, cov: list[tuple[str, str, float]], valid: bool | str | None = True) -> RunRecord:
        return RunRecord(index=i, seed=i, run_dir=f"r{i}", valid=valid, exit_code=0, elapsed_s=1.0,
                         coverage=[{"family": f, "target": t, "seconds": s} for f, t, s in cov])

    records = [rec(0, [("kill", "ledger", 1.5), ("latency", "coordinator-nats", 2.0)]),
               rec(1, [("kill", "ledger", 0.5)]), rec(2, [])]
    rows = coverage_table(records)
    assert rows == [{"family": "kill", "target": "ledger", "runs": 2, "seconds": 2.0},
                    {"family": "latency", "target": "coordinator-nats", "runs": 1, "seconds": 2.0}]
    text = format_coverage(rows)
    assert "kill     ledger" in text and "2.0" in text
    assert campaign_exit_code(records) == 0
    assert campaign_exit_code(records + [rec(3, [], "unknown")]) == 2
    assert campaign_exit_code(records + [rec(3, [], None), rec(4, [], "unknown")]) == 3
    assert campaign_exit_code(records + [rec(3, [], None), rec(4, [], False)]) == 1
    assert campaign_exit_code([]) == 3


def txchaos(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, says", [
    (["--budget", "20x"], "--budget '20x': expected a duration like 90s"),
    (["--budget", "10s", "--duration", "30"], "shorter than one run"),
    (["--runs", "0"], "--runs must be at least 1"),
    (["--runs", "2", "--shard", "3/2"], "--shard '3/2': I must be between 1 and N"),
    (["--runs", "2", "--parallel", "0"], "--parallel must be at least 1"),
    (["--runs", "2", "--duration", "soon"], "--duration 'soon'"),
    (["--runs", "2", "--faults", "kill,bogus"], "unknown fault 'bogus'"),
    (["--runs", "2", "--mutant", "bogus"], "has no mutant 'bogus'"),
    (["--runs", "2", "--workload", "bogus"], "unknown workload 'bogus'"),
    (["--runs", "2", "--parallel", "2", "--lab", "external"], "--parallel needs --lab local"),
    (["--runs", "2", "--clients", "0"], "--clients must be at least 1"),
    (["--runs", "2", "--target-opt", "bogus=1"], "bogus"),
    (["--runs", "2", "--target-opt", "delivery"], "expected key=value"),
])
def test_bad_input_is_refused_before_anything_starts(args: list[str], says: str) -> None:
    from harness.cli import build_parser
    from harness.cli.campaign import spec_from_args

    parsed = build_parser().parse_args(["campaign", "--target", "nats", "--seed", "1", *args])
    with pytest.raises(BadInput) as e:
        spec_from_args(parsed)
    assert says in str(e.value)


def txchaos(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, says", [
    (["--target", "nope", "--runs", "1"], "unknown target 'nope'"),
    (["--target", "nats", "--budget", "20x"], "--budget '20x'"),
    (["--target", "nats", "--runs"], "expected one argument"),
])
def test_the_cli_exits_3_with_a_message_and_no_traceback(tmp_path: Path, args: list[str],
                                                         says: str) -> None:
    out = tmp_path / "campaign"
    done = txchaos("campaign", *args, "--out", str(out))
    assert done.returncode == 3, done.stdout + done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (out / "runs").exists()


FIXTURES = Path(__file__).resolve().parents[1] / "report" / "fixtures"


def test_each_run_of_a_campaign_is_its_own_allure_test(tmp_path: Path) -> None:
    """Results sharing a history id are filed as retries, the latest shown: a violated run
    followed by a valid one would read as passed. Every run gets its own history id."""
    from harness.campaign_allure import write_run_results

    run = FIXTURES / "fixture-violated-run"
    first = write_run_results(run, tmp_path, key="seed 1", label="run 0 (seed 1)")
    second = write_run_results(run, tmp_path, key="seed 2", label="run 1 (seed 2)",
                               attachment=("shrink summary", {"minimal": {"events": 1}}))
    import json

    ids = [json.loads(p.read_text())["historyId"] for p in first + second]
    assert first and len(set(ids)) == len(ids)
    result = json.loads(second[0].read_text())
    assert {"name": "run", "value": "run 1 (seed 2)"} in result["parameters"]
    attached = result["attachments"][0]
    assert attached["name"] == "shrink summary"
    assert json.loads((tmp_path / attached["source"]).read_text()) == {"minimal": {"events": 1}}


@pytest.mark.parametrize("argv", [
    ["--target", "rabbitmq", "--seed", "41", "--budget", "6m", "--cluster", "3", "--keep-going"],
    ["--target", "nats", "--seed", "7", "--runs", "5", "--mutant", "no-dedup", "--duration", "20",
     "--faults", "kill,partition", "--intensity", "0.5", "--quiesce", "15", "--shard", "2/3"],
    ["--target", "kafka", "--seed", "3", "--runs", "2", "--cluster", "3", "--target-opt", "delivery=broker"],
])
def test_the_repeat_command_gives_back_the_same_campaign(argv: list[str]) -> None:
    import argparse

    from harness.cli import campaign as cli

    def spec(args: list[str]) -> CampaignSpec:
        parser = argparse.ArgumentParser()
        cli.register(parser.add_subparsers(dest="command"))
        return cli.spec_from_args(parser.parse_args(["campaign", *args]))

    first = spec(argv)
    again = spec(first.command().split()[2:])
    assert (again.seed, again.run, again.budget_s, again.runs, again.shard, again.keep_going) == \
           (first.seed, first.run, first.budget_s, first.runs, first.shard, first.keep_going)

