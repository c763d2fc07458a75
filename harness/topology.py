"""The shape of a target as faults see it: nodes to crash or pause, links to cut.

Plain values shared by adapters (which build a Topology) and faults (which act
on one), so neither package imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.procs import ManagedProcess

__all__ = ["Link", "Node", "Topology", "LEADER_META", "WAITING_META"]

LEADER_META = "leader"  # Node.meta key of a clustered broker's nodes: () -> the node that leads now
WAITING_META = "waiting"  # and () -> {queue, stream or partition: (leading node, messages waiting)}


@dataclass
class Node:
    """Something a fault can crash, pause or restart.

    `role` is "coordinator", "participant", "broker" or the adapter's own word.
    A node runs either as a local process (`process`) or in a container
    (`container`, a docker name or id); a node with neither cannot be crashed.
    """

    name: str
    role: str
    process: ManagedProcess | None = None
    container: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """One node's connection to one service, through its own Toxiproxy proxy.

    `proxy` is the Toxiproxy proxy's name; cutting it cuts exactly this
    node's traffic to `service` ("rabbitmq", "kafka", "nats" or "http").
    `url` is what the node connects with, in the form that service's clients
    accept (a Kafka bootstrap is `host:port`); `address` is the proxy's
    `host:port`. Both are informational: faults act on `proxy` alone.
    """

    node: str
    service: str
    proxy: str
    url: str = field(default="", compare=False)
    address: str = field(default="", compare=False)


@dataclass
class Topology:
    nodes: list[Node]
    links: list[Link]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    def by_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    def links_of(self, node: str) -> list[Link]:
        return [link for link in self.links if link.node == node]
