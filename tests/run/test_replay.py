"""A run is reproducible from its directory: relative paths work from anywhere,
`--replay` re-runs the same schedule and requests, `check RUN_DIR` re-checks with
the run's own options, and a broken run still leaves an Allure result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def txchaos(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=full_env)


def _requests(run_dir: Path) -> dict[str, dict]:
    """Transfer requests by payment id: what the seeded workload asked for (which
    client sent it, and how many were sent in the time, depend on the target)."""
    by_id: dict[str, dict] = {}
    for line in (run_dir / "history.jsonl").read_text().splitlines():
        op = json.loads(line)
        if op["type"] == "invoke" and op["f"] == "transfer":
            assert by_id.setdefault(op["value"]["id"], op["value"]) == op["value"]
    return by_id


@pytest.mark.spread  # one broker by default, each nightly
@pytest.mark.parametrize("target", ["rabbitmq", "kafka", "nats"])
def test_relative_out_from_another_directory(tmp_path: Path, target: str) -> None:
    """Services get absolute paths although the user gave a relative run directory."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = txchaos("run", "--target", target, "--faults", "kill", "--duration", "4", "--seed", "3",
                   "--out", "runs/rel", "--quiet", cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = elsewhere / "runs" / "rel"
    assert (run_dir / "verdict.json").is_file()
    assert f"run directory: {run_dir}" in done.stdout


def test_replay_reproduces_schedule_and_requests(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    done = txchaos("run", "--target", "nats", "--faults", "kill,latency,pause", "--duration", "6",
                   "--seed", "4242", "--intensity", "0.8", "--accounts", "5", "--clients", "3",
                   "--quiesce", "12", "--failpoint", "ledger=before-apply=delay(50)",
                   "--out", str(first), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((first / "run.json").read_text())["config"]
    assert config["intensity"] == 0.8 and config["accounts"] == 5 and config["clients"] == 3
    assert config["failpoints"] == {"ledger": "before-apply=delay(50)"}
    assert config["quiesce_timeout"] == 12 and config["seed"] == 4242
    assert f"reproduce:     txchaos run --replay {first}" in done.stdout

    again = txchaos("run", "--replay", str(first), "--out", str(second), "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (second / "schedule.json").read_bytes() == (first / "schedule.json").read_bytes()
    assert json.loads((second / "run.json").read_text())["config"] == config
    a, b = _requests(first), _requests(second)
    common = a.keys() & b.keys()
    assert len(common) >= 0.5 * min(len(a), len(b)) > 0, (len(a), len(b), len(common))
    assert all(a[i] == b[i] for i in common)  # the same payment ids ask for the same transfers
    accounts = {v[k] for v in a.values() for k in ("from", "to")}
    assert len(accounts) <= 5


def test_replay_of_a_missing_or_foreign_directory_is_bad_input(tmp_path: Path) -> None:
    done = txchaos("run", "--replay", str(tmp_path / "nope"), timeout=60)
    assert done.returncode == 3 and "not a run directory" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text(json.dumps({"target": "nats", "seed": 3}))
    done = txchaos("run", "--replay", str(tmp_path / "old"), timeout=60)
    assert done.returncode == 3 and "has no 'config'" in done.stderr


def test_check_uses_the_options_the_run_was_checked_with(tmp_path: Path) -> None:
    """A target that does not promise non-negative balances: the run skips that
    checker, and so must an offline re-check of the same directory."""
    module = tmp_path / "overdraft_target.py"
    module.write_text(textwrap.dedent("""
        from adapters.reference import NatsAdapter

        class Overdraft(NatsAdapter):
            capabilities = NatsAdapter.capabilities - {"no-negative"}
    """))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    out = tmp_path / "run"
    done = txchaos("run", "--target", "overdraft_target:Overdraft", "--faults", "kill",
                   "--duration", "4", "--seed", "8", "--out", str(out), "--quiet", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = json.loads((out / "verdict.json").read_text())
    assert "no-negative" not in {c["name"] for c in saved["checkers"]}
    (out / "verdict.json").unlink()
    checked = txchaos("check", str(out))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads((out / "verdict.json").read_text()) == saved
    forced = txchaos("check", str(out), "--no-negative", "--out", str(tmp_path / "v2.json"))
    assert "no-negative" in {c["name"] for c in json.loads((tmp_path / "v2.json").read_text())["checkers"]}
    assert forced.returncode == 0


def test_a_broken_run_still_writes_an_infrastructure_result(tmp_path: Path) -> None:
    """The target cannot start (a failpoint for a node it does not have): the report
    must still show the run, filed as Infrastructure error, with the message."""
    results = tmp_path / "results"
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps({"nats_url": "nats://127.0.0.1:1", "toxiproxy_url": "http://127.0.0.1:1"}))
    done = txchaos("run", "--target", "nats", "--duration", "3", "--seed", "1", "--lab", str(lab),
                   "--out", str(tmp_path / "run"), "--alluredir", str(results), "--quiet")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    written = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert len(written) == 1, written
    assert written[0]["status"] == "broken"
    assert written[0]["statusDetails"]["message"].startswith("INFRASTRUCTURE:")
    assert "127.0.0.1:1" in written[0]["statusDetails"]["message"]
