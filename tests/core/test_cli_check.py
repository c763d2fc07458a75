"""`txchaos check` end to end, in a subprocess: exit codes 0/1/2/3, messages, verdict.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.core.bank_model import BankRun
from tests.core.test_checkers import correct_run


def _save(run: BankRun, d: Path, state: dict[str, Any] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "history.jsonl").write_text("".join(json.dumps(o.to_json()) + "\n" for o in run.history))
    (d / "state.json").write_text(json.dumps(state if state is not None else run.state(), indent=1))
    return d


def txchaos(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "check", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_valid_run_exits_0_and_writes_verdict(tmp_path: Path) -> None:
    d = _save(correct_run(), tmp_path / "run")
    r = txchaos(d)
    assert r.returncode == 0, r.stderr
    assert "atomicity" in r.stdout and "overall: valid" in r.stdout
    verdict = json.loads((d / "verdict.json").read_text())
    assert verdict["valid"] is True
    assert [c["name"] for c in verdict["checkers"]][0] == "atomicity"
    assert set(verdict["checkers"][0]) == {"name", "valid", "summary", "evidence"}


def test_violation_exits_1_with_evidence(tmp_path: Path) -> None:
    run = correct_run()
    s = run.state()
    s["participants"]["accounts-a"]["txns"]["pay-000001"]["applied"] = 2
    d = _save(run, tmp_path / "run", s)
    out = tmp_path / "v.json"
    r = txchaos("--history", d / "history.jsonl", "--state", d / "state.json", "--out", out)
    assert r.returncode == 1, r.stderr
    assert "VIOLATED" in r.stdout and "applied-more-than-once=1" in r.stdout
    assert "pay-000001" in r.stdout
    v = json.loads(out.read_text())
    assert v["valid"] is False
    assert not (d / "verdict.json").exists()


def test_undecided_exits_2(tmp_path: Path) -> None:
    run = correct_run()
    s = run.state()
    del s["initial_balances"]
    r = txchaos(_save(run, tmp_path / "run", s))
    assert r.returncode == 2, r.stderr
    assert "overall: unknown" in r.stdout


def test_bad_input_exits_3_without_traceback(tmp_path: Path) -> None:
    d = _save(correct_run(), tmp_path / "run")
    lines = (d / "history.jsonl").read_text().splitlines()
    lines[2] = lines[2][:-3]
    (d / "history.jsonl").write_text("\n".join(lines) + "\n")
    r = txchaos(d)
    assert r.returncode == 3
    assert f"{d / 'history.jsonl'}:3: bad JSON" in r.stderr
    assert "Traceback" not in r.stderr


def test_state_without_participants_exits_3(tmp_path: Path) -> None:
    d = _save(correct_run(), tmp_path / "run", {"initial_balances": {}})
    r = txchaos(d)
    assert r.returncode == 3 and "missing 'participants'" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_arguments_exit_3(tmp_path: Path) -> None:
    r = txchaos("--history", tmp_path / "h.jsonl")
    assert r.returncode == 3 and "both --history" in r.stderr
    r = txchaos(tmp_path / "nope")
    assert r.returncode == 3 and "not a run directory" in r.stderr
