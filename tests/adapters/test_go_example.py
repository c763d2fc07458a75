"""examples/go-payments: the Go 2PC service, wrapped by its target.toml alone, passes a short
default chaos run, and the chaos catches its switchable bug (no-dedup)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adapters.registry import load_adapter

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "examples" / "go-payments" / "target.toml"


def _run(tmp_path: Path, seed: int, *extra: str) -> tuple[int, str, dict]:
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "harness", "run", "--target", f"spec:{SPEC}",
                             "--duration", "10", "--seed", str(seed), "--quiet", "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    text = result.stdout + result.stderr
    verdict = json.loads((out / "verdict.json").read_text()) if (out / "verdict.json").is_file() else {}
    return result.returncode, text, verdict


def test_spec_declares_what_the_service_offers(gopay: Path) -> None:
    cls = load_adapter(f"spec:{SPEC}")
    assert cls.name == "go-payments" and cls.services == frozenset({"rabbitmq"})
    assert cls.capabilities == frozenset({"no-negative", "mutants", "failpoints"})
    assert cls().failpoints() == ["after-prepare", "after-commit", "after-decide"]
    assert cls().mutants() == ["no-dedup"] and cls.notices == ()


def test_go_example_passes_default_chaos(tmp_path: Path, gopay: Path) -> None:
    code, text, verdict = _run(tmp_path, 9)  # kills the coordinator, then the broker twice
    assert code == 0, text
    assert verdict["valid"] is True
    assert " 0 ok," not in text and "0 faults injected" not in text, text


def test_go_example_bug_is_caught(tmp_path: Path, gopay: Path) -> None:
    code, text, verdict = _run(tmp_path, 10, "--mutant", "no-dedup")  # kills both shards
    assert code == 1, text
    by_name = {c["name"]: c for c in verdict["checkers"]}
    assert by_name["exactly-once"]["valid"] is False, text


def test_a_spec_that_calls_timeouts_failures_says_so(tmp_path: Path, gopay: Path) -> None:
    spec = tmp_path / "target.toml"
    spec.write_text(SPEC.read_text().replace('[submit]\n', '[submit]\non_timeout = "fail"\n', 1))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "harness", "run", "--target", f"spec:{spec}",
                             "--duration", "2", "--seed", "1", "--faults", "latency", "--quiet",
                             "--out", str(out), "--alluredir", str(tmp_path / "allure")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert 'NOTE: target.toml [submit] on_timeout = "fail"' in text, text
    notices = json.loads((out / "run.json").read_text())["notices"]
    assert len(notices) == 1 and "false alarm" in notices[0]
    reports = [p.read_text() for p in (tmp_path / "allure").glob("*-result.json")]
    assert reports and all("on_timeout" in r for r in reports)


def test_failpoint_fault_reaches_the_go_service_through_the_spec_hook(tmp_path: Path, gopay: Path) -> None:
    code, text, verdict = _run(tmp_path, 5, "--faults", "failpoint", "--intensity", "0.8")
    assert code == 0, text
    fired = [line for log in (tmp_path / "run" / "logs").glob("*.log")
             for line in log.read_text().splitlines() if "failpoint after-" in line]
    assert fired, "no failpoint fired:\n" + text
