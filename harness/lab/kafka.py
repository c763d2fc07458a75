"""Kafka 4.x in KRaft mode (one combined broker+controller) from its Maven jars.

Besides the direct PLAINTEXT listener, the broker has a pool of client
listeners CLIENT0..CLIENTn, each on its own broker port and each advertised at
the listen address of its own (future) Toxiproxy proxy. The proxy ports are
chosen before server.properties is written, so a client bootstrapped through
its proxy is only ever told the proxy's address and cannot bypass it.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from harness.errors import InfraError
from harness.lab import binaries, probes
from harness.lab.local import LocalService
from harness.lab.ports import free_port
from harness.lab.types import Endpoint
from harness.procs import ManagedProcess, log_tail

__all__ = ["KafkaService", "CLIENT_SLOTS"]

CLIENT_SLOTS = 16

_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.kafka.log=WARN
"""

_LOG4J2 = """\
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
"""

# Settings for a single-node test broker: replication 1 everywhere, no waits.
_FAST = {
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # a restarted node re-registers only after its old session expires (default 9 s)
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "1000",
    "auto.create.topics.enable": "true",
    "log.segment.bytes": str(64 * 1024 * 1024),
}


def new_cluster_id() -> str:
    """A KRaft cluster id (the nodes of one cluster are formatted with the same)."""
    cluster_id = "-"
    while cluster_id.startswith("-"):  # argparse would read a leading "-" as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    return cluster_id


class KafkaService(LocalService):
    name = "kafka"

    def __init__(self, root: Path, pid_dir: Path, *, disks: bool = False) -> None:
        super().__init__(root, pid_dir, disks=disks)
        self.slots: list[tuple[int, int]] = []  # (broker port, proxy listen port) per CLIENTi
        self.claimed: dict[str, int] = {}  # client -> slot index
        self.controller = 0
        self.cluster_id: str | None = None

    def _jvm(self, jars: Path, main: str, *args: str) -> list[str]:
        return [binaries.java_bin(), "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}",
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.dir}", "-cp", f"{jars}/*", main, *args]

    def _ports(self) -> None:
        """Choose this node's ports (a cluster chooses them before any node starts)."""
        self.port, self.controller = free_port(), free_port()
        self.slots = [(free_port(), free_port()) for _ in range(CLIENT_SLOTS)]
        self.claimed = {}

    def _props(self) -> dict[str, str]:
        """server.properties of a single node: broker and controller, replication 1."""
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}", f"CONTROLLER://127.0.0.1:{self.controller}"]
        advertised = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        for i, (bport, lport) in enumerate(self.slots):
            listeners.append(f"CLIENT{i}://127.0.0.1:{bport}")
            advertised.append(f"CLIENT{i}://127.0.0.1:{lport}")
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        protocols += [f"CLIENT{i}:PLAINTEXT" for i in range(CLIENT_SLOTS)]
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller}",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            # not on a lazy disk: its memory-mapped index files died of SIGBUS there (docs/faults.md)
            "log.dirs": str(self.dir / "data"),
            **_FAST,
        }

    def _prepare(self) -> list[ManagedProcess]:
        jars = binaries.kafka_jars()
        self.version = binaries.kafka_version(jars)
        self._ports()
        props = self._props()
        config = self.dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.dir / "log4j.properties").write_text(_LOG4J)
        (self.dir / "log4j2.properties").write_text(_LOG4J2)
        self._format(jars, config)

        def ready() -> bool:
            # Leaders exist only once the broker is unfenced; then every client
            # listener must answer too, each advertising its own proxy address.
            probes.kafka_brokers("127.0.0.1", self.port, topic="__txchaos_ready")
            for bport, lport in self.slots:
                if ("127.0.0.1", lport) not in probes.kafka_brokers("127.0.0.1", bport):
                    raise ConnectionError("kafka: a client listener advertises the wrong address")
            return True

        argv = self._jvm(jars, "kafka.Kafka", str(config))
        return [self._proc("", argv, ready, timeout=90, stop_timeout=10)]

    def _format(self, jars: Path, config: Path) -> None:
        cluster_id = self.cluster_id or new_cluster_id()
        argv = self._jvm(jars, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config))
        with open(self.log_path, "ab") as log:
            try:
                code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=60).returncode
            except subprocess.TimeoutExpired:
                code = -1
        if code != 0:
            raise InfraError(f"kafka storage format failed (exit {code}); last lines of "
                             f"{self.log_path}:\n{log_tail(self.log_path)}")

    def claim(self, client: str) -> tuple[int, int]:
        """The (broker port, proxy listen port) of `client`'s listener; same slot on repeat."""
        if client not in self.claimed:
            if len(self.claimed) >= len(self.slots):
                raise InfraError(f"all {len(self.slots)} Kafka client listeners are in use; "
                                 f"clients: {', '.join(self.claimed)}")
            self.claimed[client] = len(self.claimed)
        return self.slots[self.claimed[client]]

    def endpoint(self) -> Endpoint:
        return Endpoint("kafka", "127.0.0.1", self.port, f"kafka://127.0.0.1:{self.port}",
                        self.version, True)
