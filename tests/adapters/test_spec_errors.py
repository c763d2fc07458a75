"""A malformed target spec is refused before anything starts: exit 3, the file and the key, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GOOD = """
[target]
name = "tiny"
broker = "none"

[timeouts]
start = 2

[services.bank]
role = "participant"
command = "sleep"
args = ["30"]
env = { BANK_PORT = "{port}" }
health = "http://127.0.0.1:{port}/health"
state = "http://127.0.0.1:{port}/state"

[submit]
method = "POST"
url = "{service.bank.url}/payments"
body = '{"id": "{id}", "from": "{from}", "to": "{to}", "amount": {amount}}'
[[submit.outcome]]
status = 200
result = "ok"
"""


def _run(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "target.toml"
    spec.write_text(text)
    return subprocess.run([sys.executable, "-m", "harness", "run", "--target", f"spec:{spec}",
                           "--duration", "1", "--seed", "1", "--faults", "latency", "--quiet",
                           "--out", str(tmp_path / "run"), *extra],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def _refused(result: subprocess.CompletedProcess[str], tmp_path: Path, key: str, *words: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert "Traceback" not in out, out
    assert str(tmp_path / "target.toml") in out, out
    assert key in out, out
    for word in words:
        assert word in out, out


@pytest.mark.parametrize("text,key,words", [
    pytest.param(GOOD.replace('role = "participant"\n', ""), "services.bank.role",
                 ("missing", "coordinator, participant"), id="missing-key"),
    pytest.param(GOOD.replace('args = ["30"]', 'args = "30"'), "services.bank.args",
                 ("expected a list of strings", "str"), id="wrong-type"),
    pytest.param(GOOD.replace('"{port}" }', '"{prot}" }'), "services.bank.env.BANK_PORT",
                 ("unknown placeholder {prot}", "{port}"), id="unknown-placeholder"),
    pytest.param(GOOD.replace('role = "participant"', 'role = "particpant"'), "services.bank.role",
                 ("unknown role 'particpant'", "[target] roles"), id="unknown-role"),
    pytest.param(GOOD.replace('command = "sleep"', 'command = "no-such-bank-server"'), "services.bank.command",
                 ("command not found", "no-such-bank-server"), id="command-not-found"),
])
def test_malformed_spec_is_refused(tmp_path: Path, text: str, key: str, words: tuple[str, ...]) -> None:
    _refused(_run(tmp_path, text), tmp_path, key, *words)
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_health_check_that_never_answers(tmp_path: Path) -> None:
    result = _run(tmp_path, GOOD)
    _refused(result, tmp_path, "services.bank.health", "was not ready after 2s")


def test_unknown_target_option_is_refused(tmp_path: Path) -> None:
    result = _run(tmp_path, GOOD, "--target-opt", "colour=blue")
    out = result.stdout + result.stderr
    assert result.returncode == 3 and "no option 'colour'" in out and "Traceback" not in out, out
