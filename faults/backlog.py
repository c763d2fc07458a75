"""A broker that dies holding a backlog: consumers stop reading, then the broker node holding
what waits for them is killed.

A broker loses only what it holds when it fails, and a consumer takes its messages within
milliseconds, so a broker fault alone rarely finds a broker set up to keep messages in
memory, on one replica, or acknowledged by a leader alone. Faults on a consumer and on a
broker never overlap in a generated schedule (a lone broker's fault holds everything), so
this family makes the two one event:

1. the consumers stop reading: paused (SIGSTOP) or cut off from every service;
   what is sent to them waits in the broker (decisions of payments they already voted on);
2. on a clustered broker, the node that leads now is cut off from its peers at once, so
   what it acknowledges from here on is on it alone (a Kafka leader with acks=1);
3. `lead_s` later that node (a lone broker: every broker node) is killed with SIGKILL,
   and started again `down_s` later, reconnected first; a cluster's node only once the
   cluster names another leader (or at the heal): back before it is replaced, a Kafka
   leader keeps what it acknowledged alone and loses nothing;
4. the consumers resume `tail_s` later, when the event heals.

A broker that keeps what it acknowledged delivers all of it; one that does not leaves
payments prepared for ever, or applied by some participants only.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

from faults import process
from faults.cluster import clustered, leader_now
from faults.family import BROKER, Aim, Family, Planned, Reach, each_target, number, register
from faults.injection import Injection
from faults.partition import cut
from harness.errors import BadInput
from harness.topology import Node, Topology

__all__ = ["BacklogKill", "LAGS"]

LAGS = ("pause", "cut")  # how the consumers stop reading
# a cluster's node stays down this long (or until another leads): enough for a cluster to
# replace it (a Kafka broker's session here is 4 s). A lone broker's outage is short: what
# it kept only in memory is gone with the kill, and a long outage only idles the run.
CLUSTER_DOWN = 5.0


def _consumers(topology: Topology) -> list[Node]:
    """Nodes that read from a broker: not brokers, with a link to a broker service."""
    return [n for n in sorted(topology.nodes, key=lambda n: n.name) if n.role != "broker"
            and any(link.service != "http" for link in topology.links_of(n.name))]


def _strikable(topology: Topology) -> list[Node]:
    """What the fault kills: the lone broker's nodes with a process (on a cluster, its leader)."""
    return [n for n in topology.by_role("broker") if n.process is not None]


@register
class BacklogKill(Family):
    name, kind, default, weight = "backlog-kill", BROKER, True, 1.5
    description = ("consumers stop reading (paused or cut off) so messages wait in the broker; "
                   "lead_s later the broker node holding them (a cluster's leader, cut off from its "
                   "peers from the start) is killed for down_s; consumers resume tail_s after")
    defaults = {"lag": "cut", "lead_s": 1.0, "down_s": 1.5, "tail_s": 1.0}
    scales = ("short",)  # the window is lead_s + down_s + tail_s (window())

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """Every consumer but the coordinator together (whichever node dies holds some of
        their backlog), then each alone (one is more often free of other faults). A
        coordinator that stops reading only delays its own decisions."""
        if not _strikable(topology):
            return []
        consumers = _consumers(topology)
        readers = [n.name for n in consumers if n.role != "coordinator"] or [n.name for n in consumers]
        pinned = (("down_s", CLUSTER_DOWN),) if len(clustered(topology)) > 1 else ()
        return [Aim(group, pinned) for group in ([tuple(readers)] if len(readers) > 1 else [])
                + [(r,) for r in readers]]

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {"lag": rng.choice(LAGS), "lead_s": round(rng.uniform(0.5, 2.0), 2),
                "down_s": round(rng.uniform(0.3, 1.5), 2), "tail_s": round(rng.uniform(0.5, 1.5), 2)}

    def window(self, rng: random.Random, low: float, high: float, params: dict[str, Any]) -> float:
        return round(float(params["lead_s"]) + float(params["down_s"]) + float(params["tail_s"]), 3)

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        if key == "lag":
            if params[key] not in LAGS:
                raise BadInput(f"fault {self.name!r}: lag must be one of {', '.join(LAGS)}, "
                               f"got {params[key]!r}")
        else:
            number(self.name, params, key, high=60.0)

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        """Its consumers, the coordinator and the broker's nodes: the consumers must have
        voted on payments in flight when they stop, and with the coordinator crashed or
        paused nothing waits in the broker for them. Not everything a lone broker's fault
        holds: faults on the other services may go on."""
        return set(targets) | {n.name for n in topology.by_role("coordinator")} | \
            {n.name for n in clustered(topology) or _strikable(topology)}

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        consumers = {n.name: n for n in _consumers(reach.topology)}
        bad = [t for t in targets if t not in consumers]
        if not targets or bad:
            raise BadInput(f"{self.name}: unknown consumer(s) {', '.join(bad) or '(none given)'}; "
                           f"nodes that read from a broker: {', '.join(consumers) or 'none'}")
        if not _strikable(reach.topology):
            raise BadInput(f"{self.name}: no broker node with a local process to kill in this topology")
        if params["lag"] == "pause":
            for t in targets:
                process.process_of(consumers[t])
        proxies = [link.proxy for t in targets for link in reach.topology.links_of(t)]
        how = "paused" if params["lag"] == "pause" else "cut off"
        return Planned(targets, params, proxies,
                       f"{', '.join(targets)} {how}; the broker node holding their backlog killed")

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        backlog = _Backlog(reach, plan, self.name)
        fut = asyncio.ensure_future(asyncio.to_thread(backlog.begin))
        try:
            struck = await asyncio.shield(fut)
        except asyncio.CancelledError:
            reach.keep(Injection(self.name, plan.targets, backlog.undo))
            raise
        except BaseException:
            backlog.undo()
            raise
        reach.spawn(backlog.strike())
        return Injection(self.name, tuple(plan.targets) + tuple(n.name for n in struck), backlog.undo)


class _Backlog:
    """One event's steps and their undo; a heal never interleaves with a step."""

    def __init__(self, reach: Reach, plan: Planned, fault: str) -> None:
        self.reach, self.plan, self.fault = reach, plan, fault
        self.lock = threading.Lock()
        self.healed = False
        self.lagged: Injection | None = None
        self.isolated: Injection | None = None
        self.on_cluster = len(clustered(reach.topology)) > 1
        self.struck: list[Node] = []

    def begin(self) -> list[Node]:
        """Stop the consumers; on a cluster, find the leader and cut it off from its peers."""
        with self.lock:
            if self.plan.params["lag"] == "pause":
                self.lagged = each_target(self.fault, self.plan.targets,
                                          lambda t: process.pause(self.reach.node(t)))
            else:
                self.lagged = cut(self.reach.toxiproxy, self.fault, self.plan.targets, self.plan.proxies)
            if self.on_cluster:
                leader = leader_now(self.reach, self.fault)
                peers = [link.proxy for link in self.reach.topology.links_of(leader.name)]
                self.isolated = cut(self.reach.toxiproxy, self.fault, (leader.name,), peers) if peers else None
                self.struck = [leader]
            else:
                self.struck = _strikable(self.reach.topology)
            return self.struck

    async def strike(self) -> None:
        p = self.plan.params
        await asyncio.sleep(float(p["lead_s"]))
        await asyncio.to_thread(self._step, self._kill)
        await asyncio.sleep(float(p["down_s"]))
        while self.on_cluster and not self.healed and await asyncio.to_thread(self._still_leads):
            await asyncio.sleep(0.5)  # a cluster has not replaced it yet (a Kafka broker's session)
        await asyncio.to_thread(self._step, self._revive)

    def _still_leads(self) -> bool:
        """Whether the cluster still names the struck node as its leader: back before it is
        replaced, it would keep what it held alone and lose nothing."""
        try:
            return leader_now(self.reach, self.fault).name == self.struck[0].name
        except Exception:
            return False

    def _step(self, act: Callable[[], None]) -> None:
        with self.lock:
            if not self.healed:
                act()

    def _kill(self) -> None:
        for node in self.struck:
            process.kill(node)

    def _revive(self) -> None:
        if self.isolated is not None:
            self.isolated.heal()
        for node in self.struck:
            process.ensure_running(node)

    def undo(self) -> None:
        """The broker back first (reconnected, running), then the consumers."""
        with self.lock:
            self.healed = True
            try:
                self._revive()
            finally:
                if self.lagged is not None:
                    self.lagged.heal()
