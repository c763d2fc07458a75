"""A harness interrupted mid-fault leaves nothing behind: no toxic, cut link, paused process or container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faultkit import becomes, wait_for

from faults.docker_engine import BUSYBOX_TAG
from faults.toxiproxy import ToxiproxyServer

RUNNER = Path(__file__).with_name("nemesis_runner.py")


def _starts(history: Path) -> int:
    if not history.exists():
        return 0
    return sum(1 for line in history.read_text().splitlines() if json.loads(line)["f"] == "start")


def _interrupt(tmp_path: Path, server: ToxiproxyServer, echo_port: int, toxiproxy_url: str, sig: int,
               container: Any = None, socket: Path | None = None) -> None:
    server.create_proxy("slow", f"127.0.0.1:{echo_port}")
    server.create_proxy("cut", f"127.0.0.1:{echo_port}")
    cfg = {"toxiproxy_url": toxiproxy_url, "latency_proxy": "slow", "down_proxy": "cut",
           "workdir": str(tmp_path)}
    if container is not None:
        cfg |= {"docker_socket": str(socket), "container": container.name}
    expected = 4 if container is not None else 3
    history = tmp_path / "history.jsonl"
    proc = subprocess.Popen([sys.executable, str(RUNNER), json.dumps(cfg)], cwd=Path(__file__).parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim = None
    try:
        assert wait_for(lambda: _starts(history) == expected, timeout=30), \
            (proc.poll(), proc.stdout.read() if proc.poll() is not None and proc.stdout else "")
        victim = int((tmp_path / "victim.pid").read_text())
        state = server.state()
        assert state["slow"]["toxics"] and not state["cut"]["enabled"]
        assert becomes(victim, "stopped")
        if container is not None:
            container.reload()
            assert container.status == "paused"

        proc.send_signal(sig)
        assert proc.wait(30) == 130, proc.stdout.read() if proc.stdout else ""

        state = server.state()
        assert not state["slow"]["toxics"], "a toxic was left behind"
        assert state["cut"]["enabled"], "a proxy was left disabled"
        assert becomes(victim, "running"), "the paused process was left stopped"
        if container is not None:
            container.reload()
            assert container.status == "running", "the container was left paused"
        stops = [json.loads(line) for line in history.read_text().splitlines()]
        assert sum(e["f"] == "stop" for e in stops) == expected
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if victim is not None:
            try:
                os.killpg(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_heals_everything(tmp_path: Path, server: ToxiproxyServer, echo_port: int,
                                          toxiproxy_url: str, sig: int) -> None:
    _interrupt(tmp_path, server, echo_port, toxiproxy_url, sig)


@pytest.mark.docker
def test_interrupted_run_unpauses_containers(tmp_path: Path, server: ToxiproxyServer, echo_port: int,
                                             toxiproxy_url: str, docker_engine: Any) -> None:
    box = docker_engine.client.containers.run(BUSYBOX_TAG, ["sleep", "600"], detach=True,
                                              network_mode="host", name="txc-interrupt")
    try:
        _interrupt(tmp_path, server, echo_port, toxiproxy_url, signal.SIGINT, box, docker_engine.socket)
    finally:
        box.remove(force=True)
