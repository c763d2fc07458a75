"""Partition fault families, built from per-link proxies and named the way a report reader says them.

Every node reaches each service through its own Toxiproxy proxy (harness.topology.Link),
so cutting a node off means switching off all of its proxies. With a broker in
the middle the links form a star: "split the participants into two groups" is
realised by cutting off the group that does not hold the coordinator.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from typing import Any

from faults.family import EVERYTHING, PARTITION, Aim, Family, Planned, Reach, number, register
from faults.injection import Injection
from faults.toxiproxy import ToxiproxyServer
from harness.errors import BadInput
from harness.topology import Topology

__all__ = ["partition_targets", "proxies_of", "describe", "cut", "Flapper", "PartitionFamily"]


def partition_targets(fault: str, topology: Topology, targets: Sequence[str]) -> tuple[str, ...]:
    """The nodes a partition fault cuts off (resolves the coordinator; checks a split)."""
    if fault == "partition-coordinator":
        coords = tuple(n.name for n in topology.by_role("coordinator"))
        if not coords:
            raise BadInput("partition-coordinator: the topology has no node of role coordinator")
        return tuple(targets) or coords
    if not targets:
        raise BadInput(f"{fault}: name the node(s) to cut off; nodes: "
                       f"{', '.join(n.name for n in topology.nodes)}")
    if fault == "partition-split":
        participants = {n.name for n in topology.by_role("participant")}
        stray = [t for t in targets if t not in participants]
        if stray:
            raise BadInput(f"partition-split: {', '.join(stray)} not participant(s); participants: "
                           f"{', '.join(sorted(participants))}")
        if set(targets) == participants:
            raise BadInput("partition-split: one group must keep at least one participant")
    return tuple(targets)


def proxies_of(topology: Topology, nodes: Sequence[str]) -> list[str]:
    proxies = [link.proxy for n in nodes for link in topology.links_of(n)]
    if not proxies:
        raise BadInput(f"nodes {', '.join(nodes)} have no links to cut; nodes with links: "
                       f"{', '.join(sorted({link.node for link in topology.links}))}")
    return proxies


def describe(fault: str, topology: Topology, nodes: Sequence[str]) -> str:
    """A sentence for the report: what is cut off from what."""
    if fault == "partition-split":
        rest = [n.name for n in topology.by_role("participant") if n.name not in nodes]
        return f"participants split: [{', '.join(rest)}] | [{', '.join(nodes)}] (the second group cut off)"
    who = "coordinator " if fault == "partition-coordinator" else ""
    services = sorted({link.service for n in nodes for link in topology.links_of(n)})
    flap = " (flapping)" if fault == "partition-flap" else ""
    return f"{who}{', '.join(nodes)} isolated from {', '.join(services)}{flap}"


def cut(server: ToxiproxyServer, fault: str, nodes: tuple[str, ...], proxies: list[str]) -> Injection:
    """Switch every proxy off; healing switches them on again."""
    done: list[str] = []
    try:
        for p in proxies:
            server.set_enabled(p, False)
            done.append(p)
    except BaseException:
        for p in done:
            server.set_enabled(p, True)
        raise

    def undo() -> None:
        for p in proxies:
            server.set_enabled(p, True)

    return Injection(fault, nodes, undo)


class Flapper:
    """Cuts and restores a set of proxies every `period` seconds until healed."""

    def __init__(self, server: ToxiproxyServer, nodes: tuple[str, ...], proxies: list[str],
                 period: float) -> None:
        self.server, self.proxies, self.period = server, proxies, period
        self.injection = Injection("partition-flap", nodes, self._undo)
        self.flips = 0
        self._lock = threading.Lock()
        self._stopped = False

    def _set(self, enabled: bool) -> None:
        with self._lock:  # healing must not interleave with a flip in a worker thread
            if self._stopped and not enabled:
                return
            for p in self.proxies:
                self.server.set_enabled(p, enabled)

    async def run(self) -> None:
        """Flap until cancelled or healed; the link ends enabled either way."""
        down = False
        try:
            while not self._stopped:
                down = not down
                await asyncio.to_thread(self._set, not down)
                self.flips += 1
                await asyncio.sleep(self.period)
        finally:
            if not self._stopped:
                self._set(True)

    def _undo(self) -> None:
        self._stopped = True
        self._set(True)


def _linked(topology: Topology) -> list[str]:
    return sorted({link.node for link in topology.links})


class PartitionFamily(Family):
    """Targets are node names; every link of each is switched off. Heals by enabling them."""

    kind = PARTITION

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((n,)) for n in _linked(topology)]

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        for t in targets:
            reach.node(t)
        nodes = partition_targets(self.name, reach.topology, targets)
        return Planned(nodes, params, proxies_of(reach.topology, nodes),
                       describe(self.name, reach.topology, nodes))

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        return cut(reach.toxiproxy, self.name, plan.targets, plan.proxies)


@register
class Partition(PartitionFamily):
    name, default = "partition", True
    description = "isolates the target nodes: every link of each is down"


@register
class PartitionCoordinator(PartitionFamily):
    name = "partition-coordinator"
    description = ("isolates the coordinator node(s): every link down (targets may be empty: "
                   "all nodes of role coordinator)")

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        linked = set(_linked(topology))
        return [Aim(())] if any(n.name in linked for n in topology.by_role("coordinator")) else []

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        return {EVERYTHING}


@register
class PartitionSplit(PartitionFamily):
    name, default = "partition-split", True
    description = ("splits the participants into two groups; the group without the coordinator "
                   "(the targets) loses every link")

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        linked = set(_linked(topology))
        parts = sorted(n.name for n in topology.by_role("participant") if n.name in linked)
        if len(parts) < 2:
            return []
        return [Aim(tuple(parts[:k])) for k in range(1, len(parts))] + \
               [Aim(tuple(parts[k:])) for k in range(1, len(parts))]


@register
class PartitionFlap(PartitionFamily):
    name, default = "partition-flap", True
    description = "isolates the targets, heals and isolates again every period_s seconds"
    defaults = {"period_s": 1.0}
    scales = ("medium", "long")

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {"period_s": round(rng.uniform(0.5, 2.0), 2)}

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        number(self.name, params, key, low=0.05)

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        flapper = Flapper(reach.toxiproxy, plan.targets, plan.proxies, float(plan.params["period_s"]))
        reach.spawn(flapper.run())
        return flapper.injection
