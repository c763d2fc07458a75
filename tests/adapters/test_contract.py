"""The Python contract: loading (module:Class, entry point), refused capabilities and
options, and what TargetContext gives an adapter (spawn with pid files, links with URLs)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter, TargetContext, Topology, client_url
from adapters.registry import check_options, load_adapter, parse_options
from harness.errors import BadInput
from harness.model import OpResult, Transfer
from harness.procs import process_state

REPO = Path(__file__).resolve().parents[2]


class Minimal(Adapter):
    name = "minimal"

    def start(self, ctx: TargetContext) -> Topology:
        return Topology([], [])

    def stop(self) -> None:
        pass

    async def transfer(self, t: Transfer) -> OpResult:
        raise NotImplementedError

    async def snapshot(self) -> dict[str, Any]:
        return {}


class Misspelt(Minimal):
    capabilities = frozenset({"no-negative", "reads"})


class ReadsWithoutRead(Minimal):
    capabilities = frozenset({"read"})


class WithOptions(Minimal):
    options = {"region": "where the service runs"}


def test_load_by_module_and_class() -> None:
    assert load_adapter(f"{__name__}:Minimal") is Minimal


def test_misspelt_capability_is_refused() -> None:
    with pytest.raises(BadInput, match=r"unknown capability 'reads'; known: read, snapshot-reads"):
        load_adapter(f"{__name__}:Misspelt")


def test_capability_without_its_method_is_refused() -> None:
    with pytest.raises(BadInput, match=r"declares capability 'read' but does not define read\(\)"):
        load_adapter(f"{__name__}:ReadsWithoutRead")


def test_options_are_declared() -> None:
    check_options(WithOptions, parse_options(["region=eu"]), "x")
    with pytest.raises(BadInput, match=r"no option 'zone'; region: where the service runs"):
        check_options(WithOptions, parse_options(["zone=eu"]), "x")
    with pytest.raises(BadInput, match="expected key=value"):
        parse_options(["region"])


def test_load_by_entry_point(tmp_path: Path) -> None:
    """A distribution that declares a txchaos.adapters entry point is found by its name."""
    (tmp_path / "myadapters.py").write_text(textwrap.dedent(f"""
        from {__name__.rsplit('.', 1)[-1]} import Minimal
        class Mine(Minimal):
            name = "mine"
        """))
    dist = tmp_path / "my_adapters-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-adapters\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[txchaos.adapters]\nmine = myadapters:Mine\n")
    code = "from adapters.registry import load_adapter; c = load_adapter('mine'); print(c.__module__, c.name)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parent), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["myadapters", "mine"]


def test_client_urls_are_what_each_client_accepts() -> None:
    assert client_url("kafka", "127.0.0.1", 9) == "127.0.0.1:9"  # a bootstrap address: no scheme
    assert client_url("rabbitmq", "127.0.0.1", 9) == "amqp://guest:guest@127.0.0.1:9/%2F"
    assert client_url("nats", "127.0.0.1", 9) == "nats://127.0.0.1:9"
    assert client_url("http", "127.0.0.1", 9) == "http://127.0.0.1:9"


HARNESS = """
import sys, time
from pathlib import Path
from adapters.base import TargetContext
ctx = TargetContext(lab=None, run_dir=Path(sys.argv[1]), accounts={})
proc = ctx.spawn("sleeper", ["sleep", "300"])
print(proc.pid, ctx.pid_dir, flush=True)
time.sleep(300)
"""


def test_spawned_processes_of_a_killed_harness_are_reaped(tmp_path: Path) -> None:
    """SIGKILL the harness: its spawned node survives, and the next lab start kills it."""
    labs = tmp_path / "labs"
    env = {**os.environ, "TXCHAOS_LABS_DIR": str(labs), "PYTHONPATH": str(REPO)}
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(tmp_path / "run")], env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        pid_text, pid_dir = harness.stdout.readline().split()  # type: ignore[union-attr]
        pid = int(pid_text)
        record = json.loads((Path(pid_dir) / "sleeper.pid").read_text())
        assert record["pgid"] == pid and record["owner"] == harness.pid
        assert (tmp_path / "run" / "logs" / "sleeper.log").is_file()
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait(10)
    assert process_state(pid) == "running"  # orphaned
    reap = "from harness.lab import registry; print(registry.reap_stale_labs())"
    out = subprocess.run([sys.executable, "-c", reap], env=env, capture_output=True, text=True, timeout=60)
    assert "sleeper" in out.stdout, out.stdout + out.stderr
    deadline = time.monotonic() + 10
    while process_state(pid) == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_state(pid) in ("dead", "zombie")


def test_ctx_link_gives_a_kafka_bootstrap_a_kafka_client_accepts(lab: Any, tmp_path: Path) -> None:
    from aiokafka import AIOKafkaProducer

    ctx = TargetContext(lab=lab, run_dir=tmp_path, accounts={})
    link = ctx.link("kafka", "probe")
    assert "://" not in link.url and link.url == link.address
    assert link.proxy == "probe-kafka" and link.node == "probe" and link.service == "kafka"

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=link.url, request_timeout_ms=20000)
        await producer.start()
        try:
            await producer.send_and_wait("txchaos-link-probe", b"hello")
        finally:
            await producer.stop()

    asyncio.run(produce())
