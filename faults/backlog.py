"""A broker that dies holding a backlog: consumers stop reading, then the broker node holding
what waits for them is killed.

A broker loses only what it holds when it fails, and a consumer takes its messages within
milliseconds, so a broker fault alone rarely finds a broker set up to keep messages in
memory, on one replica, or acknowledged by a leader alone. Faults on a consumer and on a
broker never overlap in a generated schedule (a lone broker's fault holds everything), so
this family makes the two one event:

0. on a clustered broker, the consumers first stop reading alone for `find_s` while the
   coordinator still sends: what it sends them waits. Their inboxes are the queues,
   streams or partitions (harness.lab.cluster) whose messages waiting grow meanwhile and
   drain while they read again in step 1 (a stale backlog does neither; a consumer slowed
   by another fault does not drain while the coordinator holds); the node leading most of
   that is struck (with nothing seen to grow, the node that leads now). Which node holds a
   consumer's inbox is known only this way, and it must be known before the decisions are
   sent (step 2);
1. the coordinator stops reading for `hold_s` (paused, or cut off), and the consumers read
   again: they vote on every payment in flight, and the votes wait for the coordinator;
2. the consumers stop reading again the same way; on a cluster, the node found is cut off
   from its peers, so what it acknowledges from here on is on it alone (a Kafka leader with
   acks=1); then the coordinator reads its votes and sends every decision at once, to
   consumers that do not read: the decisions wait in the broker;
3. `lead_s` later that node (a lone broker: every broker node) is killed with SIGKILL,
   and started again `down_s` later, reconnected first; a cluster's node only once the
   cluster names another leader (or at the heal): back before it is replaced, a Kafka
   leader keeps what it acknowledged alone and loses nothing;
4. the consumers resume `tail_s` later, when the event heals.

Without step 1 only the few payments whose last vote was on its way when the consumers
stopped have a decision waiting. A broker that keeps what it acknowledged delivers all of
it; one that does not leaves payments prepared for ever, or applied by some participants
only.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from faults import process
from faults.cluster import clustered, leader_now, waiting_now
from faults.family import BROKER, Aim, Family, Planned, Reach, each_target, number, register
from faults.injection import Injection
from faults.partition import cut
from harness.errors import BadInput
from harness.topology import Node, Topology

__all__ = ["BacklogKill", "LAGS"]


LAGS = ("pause", "cut")  # how the consumers stop reading
# on a cluster the consumers stop alone this long first: enough for their backlog to show in
# the broker's API (RabbitMQ's queue lengths are refreshed every 0.5 s in the lab)
CLUSTER_FIND = 1.0
# a cluster's node stays down this long (or until another leads): enough for a cluster to
# replace it (a Kafka broker's session here is 4 s). A lone broker's outage is short: what
# it kept only in memory is gone with the kill, and a long outage only idles the run.
CLUSTER_DOWN = 5.0


def _consumers(topology: Topology) -> list[Node]:
    """Nodes that read from a broker: not brokers, with a link to a broker service."""
    return [n for n in sorted(topology.nodes, key=lambda n: n.name) if n.role != "broker"
            and any(link.service != "http" for link in topology.links_of(n.name))]


def _holds(topology: Topology, targets: Sequence[str]) -> list[str]:
    """The coordinator, unless it is one of the consumers: its votes wait while it holds."""
    return [n.name for n in _consumers(topology) if n.role == "coordinator" and n.name not in targets]


def _strikable(topology: Topology) -> list[Node]:
    """What the fault kills: the lone broker's nodes with a process (on a cluster, its leader)."""
    return [n for n in topology.by_role("broker") if n.process is not None]


@register
class BacklogKill(Family):
    name, kind, default, weight = "backlog-kill", BROKER, True, 1.5
    description = ("the coordinator stops reading for hold_s, then the consumers (paused or cut "
                   "off), so its decisions wait in the broker; lead_s later the broker node holding "
                   "them is killed for down_s; consumers resume tail_s after. On a cluster the "
                   "consumers first stop alone for find_s, the node their backlog lands on is "
                   "found, and it is cut off from its peers as they stop again")
    defaults = {"lag": "cut", "find_s": 0.0, "hold_s": 0.5, "lead_s": 1.0, "down_s": 1.5, "tail_s": 1.0}
    scales = ("short",)  # the window is the sum of the steps (window())
    STEPS = ("find_s", "hold_s", "lead_s", "down_s", "tail_s")

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """Every consumer but the coordinator together (whichever node dies holds some of
        their backlog), then each alone (one is more often free of other faults). A
        coordinator that stops reading only delays its own decisions."""
        if not _strikable(topology):
            return []
        consumers = _consumers(topology)
        readers = [n.name for n in consumers if n.role != "coordinator"] or [n.name for n in consumers]
        pinned = (("find_s", CLUSTER_FIND), ("down_s", CLUSTER_DOWN)) if len(clustered(topology)) > 1 else ()
        return [Aim(group, pinned) for group in ([tuple(readers)] if len(readers) > 1 else [])
                + [(r,) for r in readers]]

    def claims(self, topology: Topology) -> bool:
        """On a cluster: its window holds the coordinator, the consumers and every broker
        node, free together in about half the runs otherwise, and it is the cluster's one
        fault that strikes the node holding the decisions (a lone broker's every fault does)."""
        return len(clustered(topology)) > 1

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {"lag": rng.choice(LAGS), "find_s": 0.0, "hold_s": round(rng.uniform(0.2, 0.8), 2),
                "lead_s": round(rng.uniform(0.5, 2.0), 2),
                "down_s": round(rng.uniform(0.3, 1.5), 2), "tail_s": round(rng.uniform(0.5, 1.5), 2)}

    def window(self, rng: random.Random, low: float, high: float, params: dict[str, Any]) -> float:
        return round(sum(float(params[k]) for k in self.STEPS), 3)

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
        holds = _holds(reach.topology, targets)
        if params["lag"] == "pause":
            for t in (*targets, *holds):
                process.process_of(consumers[t])
        proxies = [link.proxy for t in targets for link in reach.topology.links_of(t)]
        how = "paused" if params["lag"] == "pause" else "cut off"
        held = f"{', '.join(holds)} held, " if holds else ""
        return Planned(targets, params, proxies,
                       f"{held}{', '.join(targets)} {how}; the broker node holding their backlog killed")

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        backlog = _Backlog(reach, plan, self.name)
        fut = asyncio.ensure_future(asyncio.to_thread(backlog.begin))
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            reach.keep(Injection(self.name, plan.targets, backlog.undo))
            raise
        except BaseException:
            backlog.undo()
            raise
        backlog.injection = Injection(self.name, backlog.named(), backlog.undo)
        reach.spawn(backlog.strike())
        return backlog.injection


def _stop_reading(reach: Reach, fault: str, lag: str, names: Sequence[str]) -> Injection:
    """Pause the named nodes, or cut every link they have (all or nothing)."""
    if lag == "pause":
        return each_target(fault, tuple(names), lambda t: process.pause(reach.node(t)))
    proxies = [link.proxy for t in names for link in reach.topology.links_of(t)]
    return cut(reach.toxiproxy, fault, tuple(names), proxies)


def _by_node(paths: dict[str, tuple[str, int]]) -> dict[str, int]:
    """Messages per leading node, over the data paths with some."""
    out: dict[str, int] = {}
    for node, messages in paths.values():
        if messages > 0:
            out[node] = out.get(node, 0) + messages
    return out


class _Backlog:
    """One event's steps and their undo; a heal never interleaves with a step."""

    def __init__(self, reach: Reach, plan: Planned, fault: str) -> None:
        self.reach, self.plan, self.fault = reach, plan, fault
        self.lock = threading.Lock()
        self.healed = False
        self.held: Injection | None = None
        self.lagged: Injection | None = None
        self.isolated: Injection | None = None
        self.on_cluster = len(clustered(reach.topology)) > 1
        self.finding = self.on_cluster and float(plan.params.get("find_s", 0.0)) > 0
        self.holds = _holds(reach.topology, plan.targets)
        self.struck: list[Node] = [] if self.on_cluster else _strikable(reach.topology)
        self.injection: Injection | None = None  # its targets name a cluster's node once found
        self.began = time.monotonic()
        self.grown: dict[str, tuple[str, int]] = {}  # data paths that grew in step 0: (leader, by how much)
        self.found: dict[str, tuple[str, int]] = {}  # every data path at the end of step 0

    def named(self) -> tuple[str, ...]:
        """What the history names: the consumers, the coordinator held, the node struck."""
        return tuple(self.plan.targets) + tuple(self.holds) + tuple(n.name for n in self.struck)

    def _stop(self, names: Sequence[str]) -> Injection:
        return _stop_reading(self.reach, self.fault, self.plan.params["lag"], names)

    def begin(self) -> None:
        """Step 0 on a cluster (the consumers stop alone), else step 1 (the coordinator
        holds), else, with no coordinator to hold, step 2 at once."""
        with self.lock:
            if self.finding:
                self.lagged = self._stop(self.plan.targets)
            elif self.holds:
                self.held = self._stop(self.holds)
            else:
                self._lag()

    def _found(self, before: dict[str, tuple[str, int]]) -> None:
        """Note what grew since `before`; then the coordinator holds and the consumers read
        again (or, with none to hold, step 2)."""
        self.found = waiting_now(self.reach)
        self.grown = {path: (node, waiting - before[path][1]) for path, (node, waiting) in self.found.items()
                      if path in before and waiting > before[path][1]}
        if not self.holds:
            self._lag()
            return
        self.held = self._stop(self.holds)
        if self.lagged is not None:
            self.lagged.heal()
            self.lagged = None

    def _lag(self) -> None:
        """Stop the consumers (unless they are still stopped); on a cluster, cut the node
        found (without step 0: the one that leads now) off from its peers; then let the
        coordinator read again."""
        if self.lagged is None:
            self.lagged = self._stop(self.plan.targets)
        if self.on_cluster:
            leader = self._inbox_leader()
            peers = [link.proxy for link in self.reach.topology.links_of(leader.name)]
            self.isolated = cut(self.reach.toxiproxy, self.fault, (leader.name,), peers) if peers else None
            self.struck = [leader]
            if self.injection is not None:  # the event's stop record names it
                self.injection.targets = self.named()
        if self.held is not None:
            self.held.heal()

    def _inbox_leader(self) -> Node:
        """The node leading most of what grew in step 0 and drained since (consumers and
        coordinator both stopped now, so nothing moves); with no drain seen, of what grew;
        with nothing grown, the node that leads now."""
        drained: dict[str, int] = {}
        if self.grown and self.holds:
            now = waiting_now(self.reach)
            drained = _by_node({path: (node, min(grew, self.found[path][1] - now[path][1]))
                                for path, (node, grew) in self.grown.items() if path in now})
        scores, how = (drained, "grew and drained") if drained else (_by_node(self.grown), "grew")
        if not scores:
            if self.finding:
                self._note("nothing grew while they stopped: the node that leads now")
            return leader_now(self.reach, self.fault)
        ranked = sorted(scores, key=lambda n: (-scores[n], n))
        self._note(f"messages that {how} while they stopped, by node: "
                   + ", ".join(f"{n} {scores[n]}" for n in ranked))
        return self.reach.node(ranked[0])

    def _note(self, text: str) -> None:
        if self.injection is not None:
            self.injection.note = text

    async def strike(self) -> None:
        """The steps after begin(); a failure or a heal before the strike is said in the
        history's stop record (the fault did less than it names)."""
        try:
            await self._steps()
        except Exception as e:  # noqa: BLE001 - the heal still undoes what was done
            self._note(f"no node struck: {type(e).__name__}: {e}")

    async def _steps(self) -> None:
        """Each step at its offset from the start (the sum of the steps before it): a step
        whose probe of the broker overran (rabbitmqctl starts an Erlang VM for each)
        delays the next only by its overrun, so the kill still comes before the heal."""
        p = self.plan.params
        loop = asyncio.get_running_loop()
        start, offset = loop.time(), 0.0

        async def after(step: str) -> None:
            nonlocal offset
            offset += float(p[step])
            await asyncio.sleep(max(0.0, start + offset - loop.time()))

        if self.finding:
            before = await asyncio.to_thread(waiting_now, self.reach)  # as the consumers stop
            await after("find_s")
            await asyncio.to_thread(self._step, lambda: self._found(before))
        if self.holds:
            await after("hold_s")
            await asyncio.to_thread(self._step, self._lag)
        await after("lead_s")
        await asyncio.to_thread(self._step, self._kill)
        await after("down_s")
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
        """The broker back first (reconnected, running), then the consumers, then the
        coordinator if it still holds."""
        with self.lock:
            self.healed = True
            if self.on_cluster and not self.struck and self.injection is not None and not self.injection.note:
                self._note(f"healed {time.monotonic() - self.began:.1f} s in, before a node was struck")
            try:
                self._revive()
            finally:
                try:
                    if self.lagged is not None:
                        self.lagged.heal()
                finally:
                    if self.held is not None:
                        self.held.heal()
