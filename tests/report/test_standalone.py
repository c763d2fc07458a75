"""Allure results written from a run directory without pytest (`txchaos run --alluredir`).

The first tests read the hand-built fixture runs; the last one makes a real
5-second NATS run through the CLI and builds its report with the Allure 3 CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfraError
from harness.report.allure_cli import find_allure
from harness.report.categories import classify
from harness.report.standalone import result_name, write_results

FAULTS = "partition,latency"


def _results(results_dir: Path) -> dict[str, dict[str, Any]]:
    raw = [json.loads(p.read_text()) for p in results_dir.glob("*-result.json")]
    return {_label(r, "feature"): r for r in raw}


def _label(result: dict[str, Any], name: str) -> str:
    return next(lb["value"] for lb in result["labels"] if lb["name"] == name)


def _allure_or_skip() -> None:
    try:
        find_allure()
    except InfraError as e:
        pytest.skip(str(e))


def test_one_result_per_checker_with_the_suites_messages(violated_run_dir: Path,
                                                         tmp_path: Path) -> None:
    written = write_results(violated_run_dir, tmp_path)
    verdict = json.loads((violated_run_dir / "verdict.json").read_text())
    results = _results(tmp_path)
    assert len(written) == len(verdict["checkers"]) == len(results)
    expected = {c["name"]: {True: "passed", False: "failed"}.get(c["valid"], "broken")
                for c in verdict["checkers"]}
    assert {name: r["status"] for name, r in results.items()} == expected
    atomicity = results["atomicity"]
    assert atomicity["name"] == "atomicity holds under partition,latency on rabbitmq"
    message = atomicity["statusDetails"]["message"]
    assert message.startswith("INVARIANT VIOLATED [atomicity]: ")
    assert "pay-000031" in message and "reproduce (seed 42)" in message
    assert classify(message, "failed") == "Atomicity violated"
    unknown = results[next(n for n, s in expected.items() if s == "broken")]
    assert classify(unknown["statusDetails"]["message"], "broken") == "Verdict unknown"
    assert all("statusDetails" not in r for r in results.values() if r["status"] == "passed")
    for name in ("environment.properties", "categories.json", "executor.json"):
        assert (tmp_path / name).is_file()
    assert "target=rabbitmq" in (tmp_path / "environment.properties").read_text()


def test_labels_parameters_and_a_stable_history_id(violated_run_dir: Path, valid_run_dir: Path,
                                                   tmp_path: Path) -> None:
    first = _results_of(violated_run_dir, tmp_path / "a")
    again = _results_of(violated_run_dir, tmp_path / "b")
    valid = _results_of(valid_run_dir, tmp_path / "c")
    r = first["atomicity"]
    labels = {(lb["name"], lb["value"]) for lb in r["labels"]}
    assert {("epic", "rabbitmq"), ("feature", "atomicity"), ("story", FAULTS),
            ("suite", "rabbitmq")} <= labels
    params = {p["name"]: p for p in r["parameters"]}
    assert params["seed"] == {"name": "seed", "value": "42", "excluded": True}
    assert params["mutant"]["value"] == "commit-on-first-yes" and params["mutant"]["excluded"]
    assert r["historyId"] == again["atomicity"]["historyId"]  # same run, same history
    assert r["uuid"] != again["atomicity"]["uuid"]
    assert r["historyId"] != valid["atomicity"]["historyId"]  # the mutant is part of it
    assert r["testCaseId"] == valid["atomicity"]["testCaseId"]
    assert len({x["historyId"] for x in first.values()}) == len(first)


def _results_of(run_dir: Path, results_dir: Path) -> dict[str, dict[str, Any]]:
    write_results(run_dir, results_dir)
    return _results(results_dir)


def test_steps_are_the_phases_with_faults_under_the_workload(violated_run_dir: Path,
                                                             tmp_path: Path) -> None:
    run = json.loads((violated_run_dir / "run.json").read_text())
    write_results(violated_run_dir, tmp_path)
    r = _results(tmp_path)["exactly-once"]
    phases = [s for s in r["steps"] if not s["name"].startswith("check ")]
    assert [s["name"] for s in phases] == [p["name"] for p in run["phases"]]
    base = phases[0]["start"]
    for step, phase in zip(phases, run["phases"]):
        assert step["start"] - base == pytest.approx(phase["start"] * 1000, abs=1)
        assert step["stop"] - base == pytest.approx(phase["end"] * 1000, abs=1)
    workload = next(s for s in phases if s["name"] == "workload")
    nemesis = [json.loads(line) for line in (violated_run_dir / "history.jsonl").open()
               if '"nemesis"' in line]
    faults = workload["steps"]
    assert [s["name"] for s in faults] == [
        "fault start: partition accounts-b", "fault stop: partition accounts-b",
        "fault start: latency ledger", "fault stop: latency ledger"]
    assert [s["start"] - base for s in faults] == [op["time"] // 1_000_000 for op in nemesis]
    assert {"name": "param latency_ms", "value": "400"} in faults[2]["parameters"]
    checks = {s["name"]: s["status"] for s in r["steps"] if s["name"].startswith("check ")}
    assert checks["check exactly-once: VIOLATED"] == "failed"
    assert checks["check conservation: valid"] == "passed"
    assert r["start"] == base and r["stop"] == phases[-1]["stop"]


def test_attachments_are_written_once_and_shared(violated_run_dir: Path, valid_run_dir: Path,
                                                 tmp_path: Path) -> None:
    write_results(violated_run_dir, tmp_path / "bad")
    bad = _results(tmp_path / "bad")
    names = {a["name"]: a for a in bad["atomicity"]["attachments"]}
    for want in ("reproduce", "verdict", "evidence: atomicity", "evidence: exactly-once",
                 "timeline", "latency", "throughput", "fault schedule (replayable)", "run.json",
                 "history.jsonl", "log tail: accounts-b"):
        assert want in names, sorted(names)
        assert (tmp_path / "bad" / names[want]["source"]).stat().st_size > 0
    assert names["timeline"]["type"] == "image/svg+xml"
    assert "pay-000031" in (tmp_path / "bad" / names["evidence: atomicity"]["source"]).read_text()
    sources = {a["source"] for r in bad.values() for a in r["attachments"]}
    assert sources == {a["source"] for a in bad["atomicity"]["attachments"]}  # one set, shared
    assert len(list((tmp_path / "bad").glob("*-attachment.*"))) == len(sources)
    write_results(valid_run_dir, tmp_path / "good")
    good = {a["name"] for a in _results(tmp_path / "good")["atomicity"]["attachments"]}
    assert "verdict" in good and not any(n.startswith("log tail") for n in good)


def test_secrets_never_reach_the_results(violated_run_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(violated_run_dir, run_dir)
    secret = "amqp://alice:s3cr3t-pw@127.0.0.1:35672/"
    run = json.loads((run_dir / "run.json").read_text())
    run["command"] += f" --lab {secret}"
    run["phases"][0]["name"] = f"start target {secret}"
    (run_dir / "run.json").write_text(json.dumps(run))
    with open(run_dir / "logs" / "accounts-b.log", "a") as f:
        f.write(f"ERROR lost connection to {secret}\n")
    out = tmp_path / "results"
    write_results(run_dir, out)
    files = list(out.iterdir())
    assert len(files) > 10
    leaked = [p.name for p in files if b"s3cr3t-pw" in p.read_bytes()]
    assert leaked == []
    assert any(b"alice:****@" in p.read_bytes() for p in files if "log" in p.name or
               p.suffix == ".txt")


def test_a_run_without_verdict_is_one_broken_infrastructure_result(violated_run_dir: Path,
                                                                   tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(violated_run_dir, run_dir)
    (run_dir / "verdict.json").unlink()
    (written,) = write_results(run_dir, tmp_path / "results")
    r = json.loads(written.read_text())
    assert r["status"] == "broken"
    assert r["name"] == result_name("chaos run", ["partition", "latency"], "rabbitmq")
    assert classify(r["statusDetails"]["message"], "broken") == "Infrastructure error"


def test_report_from_a_saved_run_dir(violated_run_dir: Path, tmp_path: Path) -> None:
    _allure_or_skip()
    out = tmp_path / "report"
    built = subprocess.run([sys.executable, "-m", "harness", "report", "--run",
                            str(violated_run_dir), "--out", str(out)],
                           capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stderr
    tests = [json.loads(p.read_text()) for p in (out / "data" / "test-results").glob("*.json")]
    filed = {t["name"]: [c["name"] for c in t.get("categories") or []] for t in tests}
    assert filed[f"atomicity holds under {FAULTS} on rabbitmq"] == ["Atomicity violated"]
    assert filed[f"exactly-once holds under {FAULTS} on rabbitmq"] == ["Applied twice"]
    assert filed[f"conservation holds under {FAULTS} on rabbitmq"] == []
    both = subprocess.run([sys.executable, "-m", "harness", "report", str(tmp_path), "--run",
                           str(violated_run_dir)], capture_output=True, text=True, timeout=60)
    assert both.returncode == 3 and "not both" in both.stderr


def test_txchaos_run_alluredir_then_report_on_nats(tmp_path: Path) -> None:
    """A real 5 s NATS run with process kills, its results, and the built report."""
    _allure_or_skip()
    results, report = tmp_path / "allure-results", tmp_path / "allure-report"
    run = subprocess.run([sys.executable, "-m", "harness", "run", "--target", "nats",
                          "--duration", "5", "--faults", "kill", "--seed", "7", "--quiet",
                          "--out", str(tmp_path / "run"), "--alluredir", str(results)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode in (0, 1, 2), run.stderr
    assert f"txchaos report {results} --out allure-report" in run.stdout
    verdict = json.loads((tmp_path / "run" / "verdict.json").read_text())
    raw = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert len(raw) == len(verdict["checkers"]) >= 5
    workload = next(s for s in raw[0]["steps"] if s["name"] == "workload and faults")
    assert any(s["name"].startswith("fault start: kill ") for s in workload["steps"])
    built = subprocess.run([sys.executable, "-m", "harness", "report", str(results), "--out",
                            str(report)], capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stderr
    names = {json.loads(p.read_text())["name"]
             for p in (report / "data" / "test-results").glob("*.json")}
    assert names == {f"{c['name']} holds under kill on nats" for c in verdict["checkers"]}
