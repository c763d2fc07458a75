"""No lab process outlives `txchaos lab down` or an interrupted session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.lab import Lab, probes, registry
from tests.lab.conftest import live_pids_in_groups, live_pids_mentioning

HOLD_TEST = '''
import json, os, time
from harness.lab import registry

def test_hold(lab):
    lab.ensure("nats")
    d = lab._lab_dir
    info = {"dir": str(d), "pgids": registry.lab_pgids(d), "root": str(lab.root)}
    with open(os.environ["LAB_MARK"], "w") as f:
        json.dump(info, f)
    time.sleep(300)
'''


def _txchaos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def _wait_gone(pgids: set[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := live_pids_in_groups(pgids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_cli_up_status_down_leaves_no_process(tmp_path):
    lab_dir = tmp_path / "lab"
    up = _txchaos("lab", "up", "rabbitmq", "nats", "--dir", str(lab_dir), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "rabbitmq" in up.stdout and "3." in up.stdout and "nats://127.0.0.1:" in up.stdout
    state = json.loads((lab_dir / "state.json").read_text())
    pgids = set(registry.lab_pgids(Path(state["lab_dir"])).values())
    assert len(pgids) == 4  # toxiproxy, nats, rabbitmq and its epmd
    assert live_pids_in_groups(pgids)

    # the state file is a lab config: another process can proxy its clients through it
    ext = Lab.from_option(str(lab_dir / "state.json"), root=tmp_path / "ext")
    link = ext.link("nats", "probe")
    assert probes.nats_version(*link.listen) == state["services"]["nats"]["version"]
    ext.down()
    assert ext.toxiproxy.get("probe-nats") is None

    status = _txchaos("lab", "status", "--dir", str(lab_dir), cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("running") == 3

    down = _txchaos("lab", "down", "--dir", str(lab_dir), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert _wait_gone(pgids) == []
    assert live_pids_mentioning(str(lab_dir)) == []
    assert not (lab_dir / "state.json").exists()
    again = _txchaos("lab", "down", "--dir", str(lab_dir), cwd=tmp_path)
    assert again.returncode == 0 and "no lab" in again.stdout


def _held_session(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict]:
    (tmp_path / "test_hold.py").write_text(HOLD_TEST)
    mark = tmp_path / "mark.json"
    env = dict(os.environ, LAB_MARK=str(mark))
    session = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "test_hold.py"], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not mark.exists() or not mark.read_text():
        assert session.poll() is None, "the held session ended early"
        assert time.monotonic() < deadline, "the held session never brought its lab up"
        time.sleep(0.2)
    return session, json.loads(mark.read_text())


def test_ctrl_c_session_leaves_no_process(tmp_path):
    session, info = _held_session(tmp_path)
    pgids = set(info["pgids"].values())
    assert live_pids_in_groups(pgids)
    session.send_signal(signal.SIGINT)
    session.wait(60)
    assert _wait_gone(pgids) == []
    assert live_pids_mentioning(info["root"]) == []


def test_killed_session_is_reaped_by_next_lab(tmp_path):
    session, info = _held_session(tmp_path)
    pgids = set(info["pgids"].values())
    session.kill()
    session.wait(10)
    time.sleep(0.5)
    assert live_pids_in_groups(pgids), "orphans expected after SIGKILL"
    fresh = Lab(tmp_path / "next")
    try:
        fresh.ensure("toxiproxy")  # each lab start reaps labs of dead owners
        assert _wait_gone(pgids, 10) == []
        assert not Path(info["dir"]).exists()
    finally:
        fresh.down()


def test_reaping_tolerates_a_lab_another_process_reaped_meanwhile(tmp_path: Path, monkeypatch) -> None:
    """Two campaign workers start labs at once and both reap: a stale lab dir one of them
    removes between the other's listing and its look at the dir is skipped, not an error."""
    import shutil

    stale = tmp_path / "target-1-dead"
    (stale / "pids").mkdir(parents=True)
    monkeypatch.setattr(registry, "LABS_DIR", tmp_path)
    read = registry._meta

    def meta_then_gone(d: Path) -> dict | None:
        out = read(d)
        shutil.rmtree(d)  # the other worker's reap, just now
        return out

    monkeypatch.setattr(registry, "_meta", meta_then_gone)
    assert registry.reap_stale_labs() == []
    assert not stale.exists()
