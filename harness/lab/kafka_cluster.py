"""Kafka as a three-node KRaft cluster (every node broker and controller) whose nodes
reach each other only through Toxiproxy proxies.

Kafka connects to a peer at the address that peer advertises, one address per
listener, so per-pair proxies need a listener per dialling node: every node has
listeners FROM1..FROMn, advertises its FROMk at the proxy from node k to it, and node k
uses FROMk as its inter-broker listener. The same for the controllers: every node has
controller listeners CTL1..CTLn, advertised likewise, and node k's own CTLk comes first
in its `controller.listener.names` (a broker reaches the active controller at the
address it registered for that listener; with a single CONTROLLER listener, a node cut
off from its peers still reached the controller directly). Node k's quorum voters are
the same proxies. Two proxies per direction and pair: `kafka-i~kafka-j.ctl` and
`kafka-i~kafka-j.repl`. Clients keep the single-node scheme
(harness.lab.kafka): a client claims the same CLIENTk listener on every node, each
advertised at that client's proxy to that node.

Settings are Kafka's documented no-loss ones: replication factor 3 everywhere,
`min.insync.replicas=2`, unclean leader election off.
"""

from __future__ import annotations

import struct
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
    # a follower cut off leaves the ISR after 10 s (default 30 s: longer than most fault windows)
    "replica.lag.time.max.ms": "10000",
}


class _KafkaNode(KafkaService):
    """One node of a KafkaCluster; its ports and peer addresses come from the cluster."""

    def __init__(self, root: Path, pid_dir: Path, *, index: int, disks: bool) -> None:
        self.name = f"kafka-{index}"
        super().__init__(root, pid_dir, disks=disks)
        self.index = index
        self.port = free_port()  # PLAINTEXT, unproxied: the lab's own probes
        self.slots = [(free_port(), free_port()) for _ in range(CLIENT_SLOTS)]
        self.repl: dict[int, int] = {}  # k -> port of listener FROMk
        self.repl_advertised: dict[int, int] = {}  # k -> where FROMk is advertised (k's proxy to here)
        self.ctl: dict[int, int] = {}  # k -> port of controller listener CTLk
        self.ctl_advertised: dict[int, int] = {}  # k -> where CTLk is advertised (k's proxy to here)
        self.voter: dict[int, int] = {}  # j -> where this node reaches voter j (its proxy to j's CTL<self>)

    def _ports(self) -> None:
        """Fixed by the cluster before any node starts (the proxies point at them)."""

    def _props(self) -> dict[str, str]:
        props = super()._props()
        names = sorted(self.repl)
        own = [ln for ln in props["listeners"].split(",") if not ln.startswith("CONTROLLER:")]
        listeners = own + [f"{kind}{k}://127.0.0.1:{ports[k]}" for kind, ports in
                           (("FROM", self.repl), ("CTL", self.ctl)) for k in names]
        advertised = [props["advertised.listeners"]] + \
            [f"{kind}{k}://127.0.0.1:{ports[k]}" for kind, ports in
             (("FROM", self.repl_advertised), ("CTL", self.ctl_advertised)) for k in names]
        protocols = [p for p in props["listener.security.protocol.map"].split(",") if not p.startswith("CONTROLLER:")]
        protocols += [f"{kind}{k}:PLAINTEXT" for kind in ("FROM", "CTL") for k in names]
        voters = ",".join(f"{j}@127.0.0.1:{self.ctl[j] if j == self.index else self.voter[j]}" for j in names)
        props.update({
            "node.id": str(self.index),
            "controller.quorum.voters": voters,
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols),
            "inter.broker.listener.name": f"FROM{self.index}",
            "controller.listener.names": ",".join(f"CTL{k}" for k in [self.index] + [k for k in names if k != self.index]),
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

    def _plan(self) -> None:
        cluster_id = new_cluster_id()
        nodes = [_KafkaNode(self.root, self.pid_dir, index=i, disks=False)  # not on lazy disks
                 for i in range(1, self.size + 1)]                          # (docs/faults.md)
        for node in nodes:
            node.cluster_id = cluster_id
            node.repl = {k: free_port() for k in range(1, self.size + 1)}
            node.ctl = {k: free_port() for k in range(1, self.size + 1)}
        for a in nodes:
            for b in nodes:
                if a is b:
                    a.repl_advertised[a.index] = a.repl[a.index]
                    a.ctl_advertised[a.index] = a.ctl[a.index]
                    continue
                a.voter[b.index] = b.ctl_advertised[a.index] = \
                    self.peer_proxy(a.index, b.index, b.ctl[a.index], "ctl")
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

    def data_paths(self) -> dict[str, tuple[str, int]]:
        """Per partition of the users' topics: its leader, and the messages waiting for its
        consumer groups (up to the high watermark, past each group's committed offset). Each
        node answers for the groups it coordinates and the partitions it leads."""
        ports = {n.index: n.port for n in self.nodes}  # type: ignore[attr-defined]
        leaders: dict[tuple[str, int], int] = {}
        committed: dict[tuple[str, int], list[int]] = {}
        for port in ports.values():
            try:
                leaders = leaders or probes.kafka_partition_leaders("127.0.0.1", port, timeout=1.0)
                for group in probes.kafka_groups("127.0.0.1", port, timeout=1.0):
                    for part, offset in probes.kafka_committed("127.0.0.1", port, group, timeout=1.0).items():
                        committed.setdefault(part, []).append(offset)
            except (OSError, ConnectionError, struct.error):  # killed, paused or cut: the next one
                continue
        ends: dict[tuple[str, int], int] = {}
        for node, port in ports.items():
            mine = [part for part, leader in leaders.items() if leader == node and part in committed]
            try:
                ends.update(probes.kafka_ends("127.0.0.1", port, mine, timeout=1.0) if mine else {})
            except (OSError, ConnectionError, struct.error):
                continue

        def waiting(part: tuple[str, int]) -> int:
            end = ends.get(part)
            return 0 if end is None else sum(max(0, end - c) for c in committed.get(part, []))

        return {f"{topic}/{pid}": (f"kafka-{leader}", waiting((topic, pid)))
                for (topic, pid), leader in sorted(leaders.items())}
