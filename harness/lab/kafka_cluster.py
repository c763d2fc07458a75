"""Kafka as a three-node KRaft cluster (every node broker and controller) whose nodes
reach each other only through Toxiproxy proxies.

Kafka connects to a peer at the address that peer advertises, one address per
listener, so per-pair proxies need a listener per dialling node: every node has
listeners FROM1..FROMn, advertises its FROMk at the proxy from node k to it, and node k
uses FROMk as its inter-broker listener. The controller quorum is a node's own file, so
node i names voter j at the proxy from i to j. Two proxies per direction and pair:
`kafka-i~kafka-j.raft` and `kafka-i~kafka-j.repl`. Clients keep the single-node scheme
(harness.lab.kafka): a client claims the same CLIENTk listener on every node, each
advertised at that client's proxy to that node.

Settings are Kafka's documented no-loss ones: replication factor 3 everywhere,
`min.insync.replicas=2`, unclean leader election off.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import InfraError
from harness.lab import probes
from harness.lab.cluster import BrokerCluster
from harness.lab.kafka import CLIENT_SLOTS, KafkaService, new_cluster_id
from harness.lab.ports import free_port
from harness.lab.types import Endpoint

__all__ = ["KafkaCluster"]

REPLICATED = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    # a follower cut off leaves the ISR after 5 s (default 30 s: longer than most fault windows)
    "replica.lag.time.max.ms": "5000",
}


class _KafkaNode(KafkaService):
    """One node of a KafkaCluster; its ports and peer addresses come from the cluster."""

    def __init__(self, root: Path, pid_dir: Path, *, index: int, disks: bool) -> None:
        self.name = f"kafka-{index}"
        super().__init__(root, pid_dir, disks=disks)
        self.index = index
        self.port, self.controller = free_port(), free_port()
        self.slots = [(free_port(), free_port()) for _ in range(CLIENT_SLOTS)]
        self.repl: dict[int, int] = {}  # k -> port of listener FROMk
        self.repl_advertised: dict[int, int] = {}  # k -> where FROMk is advertised (k's proxy to here)
        self.voters: dict[int, int] = {}  # j -> where this node reaches voter j

    def _ports(self) -> None:
        """Fixed by the cluster before any node starts (the proxies point at them)."""

    def _props(self) -> dict[str, str]:
        props = super()._props()
        names = sorted(self.repl)
        listeners = [props["listeners"]] + [f"FROM{k}://127.0.0.1:{self.repl[k]}" for k in names]
        advertised = [props["advertised.listeners"]] + \
            [f"FROM{k}://127.0.0.1:{self.repl_advertised[k]}" for k in names]
        protocols = [props["listener.security.protocol.map"]] + [f"FROM{k}:PLAINTEXT" for k in names]
        props.update({
            "node.id": str(self.index),
            "controller.quorum.voters": ",".join(f"{j}@127.0.0.1:{p}" for j, p in sorted(self.voters.items())),
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols),
            "inter.broker.listener.name": f"FROM{self.index}",
            **REPLICATED,
        })
        return props

    def endpoint(self) -> Endpoint:
        return Endpoint(self.name, "127.0.0.1", self.port, f"kafka://127.0.0.1:{self.port}",
                        self.version, True)


class KafkaCluster(BrokerCluster):
    service = "kafka"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.claimed: dict[str, int] = {}  # client -> its CLIENTk slot, the same on every node

    @property
    def slots(self) -> list[tuple[int, int]]:
        return self.nodes[0].slots if self.nodes else []  # type: ignore[attr-defined]

    def _plan(self) -> None:
        cluster_id = new_cluster_id()
        nodes = [_KafkaNode(self.root, self.pid_dir, index=i, disks=False)  # not on lazy disks
                 for i in range(1, self.size + 1)]                          # (docs/faults.md)
        for node in nodes:
            node.cluster_id = cluster_id
            node.repl = {k: free_port() for k in range(1, self.size + 1)}
        for a in nodes:
            for b in nodes:
                if a is b:
                    a.voters[a.index] = a.controller
                    a.repl_advertised[a.index] = a.repl[a.index]
                    continue
                a.voters[b.index] = self.peer_proxy(a.index, b.index, b.controller, "raft")
                b.repl_advertised[a.index] = self.peer_proxy(a.index, b.index, b.repl[a.index], "repl")
        self.nodes = nodes  # type: ignore[assignment]

    def client_proxy(self, client: str, index: int) -> tuple[tuple[str, int], int | None]:
        if client not in self.claimed:
            if len(self.claimed) >= CLIENT_SLOTS:
                raise InfraError(f"all {CLIENT_SLOTS} Kafka client listeners are in use; "
                                 f"clients: {', '.join(self.claimed)}")
            self.claimed[client] = len(self.claimed)
        bport, lport = self.nodes[index].slots[self.claimed[client]]  # type: ignore[attr-defined]
        return ("127.0.0.1", bport), lport

    def formed(self) -> None:
        for n in self.nodes:
            brokers = probes.kafka_brokers("127.0.0.1", n.port, topic="__txchaos_ready")
            if len(brokers) < self.size:
                raise ConnectionError(f"{n.name} knows {len(brokers)} of {self.size} brokers")

    def leader(self) -> str | None:
        """The node leading most partitions of the users' topics."""
        for n in self.nodes:
            try:
                led = probes.kafka_leaders("127.0.0.1", n.port, timeout=1.0)
            except Exception:  # killed, paused or cut: ask the next one
                continue
            if led:
                return f"kafka-{max(led, key=lambda k: led[k])}"
        return None
