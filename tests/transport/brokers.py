"""Real Kafka and NATS brokers behind a real Toxiproxy, for the transport tests.

Each broker is a ManagedProcess with its own data directory and free ports;
clients reach it only through one Toxiproxy proxy, so a test can cut the link
(disable the proxy) or crash the broker (SIGKILL the process) and start it again
on the same ports and data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.procs import ManagedProcess

KAFKA_JARS = Path(os.environ.get("TXCHAOS_KAFKA_JARS", "/tmp/setup/kafka-jars"))
TOXIPROXY_BIN = os.environ.get("TXCHAOS_TOXIPROXY", "/tmp/setup/gobin/server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Broker:
    """One running broker: `url` goes through `proxy`; `process` is the broker itself."""

    name: str
    url: str
    proxy: str
    process: ManagedProcess


class Toxiproxy:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "toxiproxy", [TOXIPROXY_BIN, "-host", "127.0.0.1", "-port", str(self.port)],
            log_path=root / "toxiproxy.log", ready=lambda: port_open(self.port))

    def create(self, name: str, listen_port: int, upstream_port: int) -> None:
        r = requests.post(f"{self.url}/proxies", timeout=5, json={
            "name": name, "listen": f"127.0.0.1:{listen_port}",
            "upstream": f"127.0.0.1:{upstream_port}", "enabled": True})
        r.raise_for_status()

    def set_enabled(self, name: str, enabled: bool) -> None:
        requests.post(f"{self.url}/proxies/{name}", json={"enabled": enabled}, timeout=5).raise_for_status()


def start_nats(root: Path, toxiproxy: Toxiproxy) -> Broker:
    port, proxy_port = free_port(), free_port()
    data = root / "nats"
    data.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess("nats", ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js",
                                   "-sd", str(data)],
                          log_path=root / "nats.log", ready=lambda: port_open(port))
    proc.start()
    toxiproxy.create("nats", proxy_port, port)
    return Broker("nats", f"nats://127.0.0.1:{proxy_port}", "nats", proc)


def start_kafka(root: Path, toxiproxy: Toxiproxy) -> Broker:
    """Single-node KRaft broker whose client listener advertises the proxy's address."""
    if shutil.which("java") is None or not KAFKA_JARS.is_dir():
        raise RuntimeError(f"Kafka needs java and the jars in {KAFKA_JARS}")
    client, internal, controller, proxy_port = free_port(), free_port(), free_port(), free_port()
    data = root / "kafka"
    data.mkdir(parents=True, exist_ok=True)
    props = data / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller}",
        f"listeners=CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},"
        f"CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=CLIENT://127.0.0.1:{proxy_port},INTERNAL://127.0.0.1:{internal}",
        "listener.security.protocol.map=CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=INTERNAL",
        "controller.listener.names=CONTROLLER",
        f"log.dirs={data / 'logs'}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "",
    ]))
    cp = f"{KAFKA_JARS}/*"
    cluster_id = subprocess.run(["java", "-cp", cp, "kafka.tools.StorageTool", "random-uuid"],
                                capture_output=True, text=True, check=True).stdout.split()[-1]
    subprocess.run(["java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                    "-c", str(props)], capture_output=True, check=True)
    proc = ManagedProcess("kafka", ["java", "-Xmx512m", "-Xss1m", "-XX:+UseSerialGC",
                                    "-cp", cp, "kafka.Kafka", str(props)],
                          log_path=root / "kafka.log", ready=lambda: port_open(client),
                          ready_timeout=90)
    proc.start()
    toxiproxy.create("kafka", proxy_port, client)
    return Broker("kafka", f"kafka://127.0.0.1:{proxy_port}", "kafka", proc)
