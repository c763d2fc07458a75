"""Fault families of a clustered broker (harness.lab.cluster): its leader killed or cut
off from its peers, and a rolling restart.

One broker node killed or paused comes from broker-kill and broker-pause (each node is
a broker of the topology), and one node cut off from its peers from partition (its peer
proxies are its links; its clients' proxies are theirs). These families add what needs
the broker's own answer to "who leads now", asked when the fault strikes
(`Node.meta[LEADER_META]`), and the restart of every node in turn.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from typing import Any

from faults import process
from faults.family import BROKER, PARTITION, Aim, Family, Planned, Reach, broker_holds, number, register
from faults.injection import Injection
from faults.partition import cut, proxies_of
from harness.errors import BadInput, InfraError
from harness.topology import LEADER_META, WAITING_META, Node, Topology

__all__ = ["LeaderKill", "LeaderIsolate", "RollingRestart", "clustered", "leader_now", "waiting_now"]


def clustered(topology: Topology) -> list[Node]:
    """The nodes of a clustered broker that faults can kill (none unless clustered)."""
    return [n for n in topology.by_role("broker") if LEADER_META in n.meta and n.process is not None]


def leader_now(reach: Reach, fault: str) -> Node:
    """The node that leads now; when none does, the first live node (the fault still strikes)."""
    nodes = clustered(reach.topology)
    if not nodes:
        raise BadInput(f"{fault}: no clustered broker in this topology (run with --cluster 3)")
    name = nodes[0].meta[LEADER_META]()
    if name is None:  # nothing leads now (no queue, stream or partition yet, or all re-forming)
        live = [n for n in nodes if n.process.alive]  # clustered: each has a process
        if not live:
            raise InfraError(f"{fault}: no broker node runs")
        return live[0]
    return reach.node(name)


def waiting_now(reach: Reach) -> dict[str, tuple[str, int]]:
    """The clustered broker's data paths: {queue, stream or partition: (leading node,
    messages waiting)} ({} if the broker does not say)."""
    nodes = clustered(reach.topology)
    ask = nodes[0].meta.get(WAITING_META) if nodes else None
    return dict(ask()) if ask is not None else {}


class _ClusterFamily(Family):
    """Applies to a topology with a clustered broker; holds every node of the cluster (which
    one leads is known only when it strikes), not the target's: the cluster keeps serving."""

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim(())] if len(clustered(topology)) > 1 else []

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        return broker_holds(topology, tuple(n.name for n in clustered(topology)))

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        if targets:
            raise BadInput(f"{self.name}: takes no targets (it finds the broker's nodes itself)")
        if len(clustered(reach.topology)) < 2:
            raise BadInput(f"{self.name}: no clustered broker in this topology (run with --cluster 3)")
        return Planned((), params, description=self.description.split(";")[0])


@register
class LeaderKill(_ClusterFamily):
    name, kind, default, scales = "leader-kill", BROKER, True, ("short", "medium")
    description = "kill -9 the broker node that leads now (asked of the broker); healed by starting it"

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        node = leader_now(reach, self.name)
        killed = process.kill(node)
        return Injection(self.name, (node.name,), killed.heal)


@register
class LeaderIsolate(_ClusterFamily):
    name, kind, default = "leader-isolate", PARTITION, True
    description = ("cuts the broker node that leads now off from its peers, while its clients "
                   "still reach it; healed by reconnecting it")

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        node = leader_now(reach, self.name)
        return cut(reach.toxiproxy, self.name, (node.name,), proxies_of(reach.topology, [node.name]))


@register
class RollingRestart(_ClusterFamily):
    name, kind, default, scales = "rolling-restart", BROKER, True, ("medium", "long")
    description = ("restarts the broker's nodes one after another (graceful stop, start, gap_s "
                   "before the next), as an upgrade does; healed by making sure every node runs")
    defaults = {"gap_s": 1.0}

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {"gap_s": round(rng.uniform(0.5, 3.0), 2)}

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        number(self.name, params, key)

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        nodes = clustered(reach.topology)
        lock = threading.Lock()  # a heal never interleaves with a restart
        stopped = False

        def restart(node: Node) -> None:
            with lock:
                if not stopped:
                    process.restart(node)

        async def roll() -> None:
            for node in nodes:
                await asyncio.to_thread(restart, node)
                await asyncio.sleep(float(plan.params["gap_s"]))

        reach.spawn(roll())

        def undo() -> None:
            nonlocal stopped
            with lock:
                stopped = True
                for node in nodes:
                    process.ensure_running(node)

        return Injection(self.name, tuple(n.name for n in nodes), undo)
