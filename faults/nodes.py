"""Process fault families: kill, stop, pause, restart, crash storms and failpoints on a
node's local process, and the same on a broker's.

The primitives (signals to a process group, restart and wait for readiness) live in
`faults.process`; these classes say which nodes each family applies to and how an
event becomes an `Injection`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from faults import process
from faults.family import (BROKER, NODE, Aim, Family, Planned, Reach, broker_holds, each_target,
                           heal_together, number, register)
from faults.injection import Injection
from harness.errors import BadInput
from harness.topology import Node, Topology

__all__ = ["NodeFamily", "BrokerFamily", "CrashStorm", "Failpoint", "FailpointSweep", "FailpointDelay",
           "offered_actions", "node_failpoints", "ACTIONS_META"]


class NodeFamily(Family):
    """Targets are nodes with a local process (not brokers: they have their own families)."""

    kind = NODE
    action: ClassVar[Callable[[Node], Injection]]

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((n.name,)) for n in sorted(topology.nodes, key=lambda n: n.name)
                if n.process is not None and n.role != "broker"]

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        if not targets:
            raise BadInput(f"{self.name}: name the node(s); nodes: "
                           f"{', '.join(n.name for n in reach.topology.nodes)}")
        for t in targets:
            node = reach.node(t)
            if node.process is None:
                raise BadInput(f"{self.name}: node {t!r} has no local process; nodes with one: "
                               f"{', '.join(n.name for n in reach.topology.nodes if n.process)}")
        return Planned(targets, params)

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        act = type(self).action
        return each_target(self.name, plan.targets, lambda t: act(reach.node(t)))


class BrokerFamily(NodeFamily):
    """Targets are nodes of role "broker": every payment passes through it."""

    kind = BROKER
    scales = ("short",)  # every payment passes the broker: a long broker fault only idles the run

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((n.name,)) for n in sorted(topology.by_role("broker"), key=lambda n: n.name)
                if n.process is not None]

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        return broker_holds(topology, targets)

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        """No targets: every broker node (the broker, whichever it is: a schedule written once
        for every target)."""
        targets = targets or tuple(t for aim in self.candidates(reach.topology) for t in aim.targets)
        planned = super().plan(reach, targets, params)
        for t in targets:
            if reach.node(t).role != "broker":
                raise BadInput(f"{self.name}: node {t!r} is not a broker; brokers: "
                               f"{', '.join(n.name for n in reach.topology.by_role('broker')) or 'none'}")
        return planned


@register
class Kill(NodeFamily):
    name, default, weight = "kill", True, 3.0
    description = "kill -9 the node's process group; healed by starting it again"
    action = staticmethod(process.kill)


@register
class Stop(NodeFamily):
    name = "stop"
    description = "graceful stop (SIGTERM, then SIGKILL after a timeout); healed by starting it"
    action = staticmethod(process.stop)


@register
class Pause(NodeFamily):
    name, default, weight = "pause", True, 2.0
    description = "SIGSTOP the node's process group; healed by SIGCONT"
    action = staticmethod(process.pause)


@register
class Restart(NodeFamily):
    name, default, scales = "restart", True, ("short",)
    description = "graceful stop and immediate start"
    action = staticmethod(process.restart)


@register
class CrashStorm(NodeFamily):
    name, default, weight, scales = "crash-storm", True, 2.0, ("medium", "long")
    description = ("kill -9 the node every period_s seconds, restarting it after down_s each time, "
                   "until healed: repeated crash-restart cycles while traffic flows")
    defaults = {"period_s": 2.0, "down_s": 0.0}

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {"period_s": round(rng.uniform(1.0, 3.0), 2), "down_s": round(rng.uniform(0.0, 0.5), 2)}

    def window(self, rng: random.Random, low: float, high: float, params: dict[str, Any]) -> float:
        # at least three crashes, whatever the scale
        return max(rng.uniform(low, high), 3 * float(params["period_s"]))

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        number(self.name, params, key, low=0.2 if key == "period_s" else 0.0)

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        planned = super().plan(reach, targets, params)
        if len(targets) != 1:
            raise BadInput(f"{self.name}: name exactly one node, got {len(targets)}")
        return planned

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        storm = _Storm(reach.node(plan.targets[0]), float(plan.params["period_s"]),
                       float(plan.params["down_s"]))
        await asyncio.to_thread(storm.crash)
        reach.spawn(storm.run())
        return storm.injection


class _Storm:
    """Crashes one node over and over; healing stops the cycle and leaves it running."""

    def __init__(self, node: Node, period: float, down: float) -> None:
        self.node, self.period, self.down = node, period, down
        self.injection = Injection("crash-storm", (node.name,), self._undo)
        self.crashes = 0
        self._lock = threading.Lock()  # a heal never interleaves with a crash or a restart
        self._stopped = False

    def crash(self) -> None:
        with self._lock:
            if not self._stopped:
                process.process_of(self.node).kill(signal.SIGKILL)
                self.crashes += 1

    def revive(self) -> None:
        with self._lock:
            process.ensure_running(self.node)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopped:
            began = loop.time()
            await asyncio.sleep(self.down)
            await asyncio.to_thread(self.revive)
            await asyncio.sleep(max(0.1, self.period - (loop.time() - began)))
            await asyncio.to_thread(self.crash)

    def _undo(self) -> None:
        self._stopped = True
        self.revive()


_SETTLE = 0.2  # seconds for a crash that fired just before a heal to show
ARMED = (2.5, 6.0)  # seconds a generated failpoint-delay keeps its points armed
ACTIONS_META = "failpoint-actions"  # Node.meta key: the failpoint actions a node accepts


def offered_actions(node: Node) -> dict[str, tuple[str, ...]]:
    """The failpoint actions a node declares (`meta["failpoint-actions"]`: action -> the
    parameters it takes, of "ms" and "probability"); a node that declares none takes
    a plain "crash" on the first hit."""
    declared = node.meta.get(ACTIONS_META)
    if declared is None:
        return {"crash": ()}
    return {str(a): tuple(p) for a, p in dict(declared).items()}


def node_failpoints(topology: Topology, node: str, failpoints: Sequence[str]) -> list[str]:
    """The failpoints `node` accepts: `failpoints`, narrowed by its `meta["failpoints"]`."""
    own = topology.node(node).meta.get("failpoints")
    return [fp for fp in failpoints if own is None or fp in own]


def _names(family: str, params: dict[str, Any]) -> list[str]:
    names = params.get("names")
    if not isinstance(names, (list, tuple)) or not names or \
            not all(isinstance(n, str) and n for n in names):
        raise BadInput(f"fault {family!r}: parameter names must be a non-empty list of failpoints")
    return list(names)


class _FailpointFamily(NodeFamily):
    """Families that arm the target's failpoints: need `arm_failpoint` and an action."""

    action: ClassVar[str] = "crash"

    def nodes(self, topology: Topology, failpoints: Sequence[str]) -> list[tuple[str, list[str]]]:
        """(node, its failpoints) for every node that offers this family's action."""
        out = []
        for aim in super().candidates(topology):
            node = aim.targets[0]
            points = node_failpoints(topology, node, failpoints)
            if points and self.action in offered_actions(topology.node(node)):
                out.append((node, points))
        return out

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        planned = super().plan(reach, targets, params)
        if reach.arm_failpoint is None:
            raise BadInput(f"{self.name}: this target offers no failpoints")
        return planned


@register
class Failpoint(_FailpointFamily):
    name, default, weight, open_params = "failpoint", True, 3.0, True
    scales = ("medium", "long")  # the sweep crashes at each step; this one keeps the node down after it
    description = ("arms the named failpoint on the node (action crash by default); healed by "
                   "starting the node if it died")
    defaults = {"name": None, "action": "crash"}

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """Every (node, failpoint) pair the target offers. A node's `meta["failpoints"]`,
        when set, narrows the names it accepts (a coordinator's steps differ from a
        participant's)."""
        return [Aim((node,), (("name", fp),)) for node, points in self.nodes(topology, failpoints)
                for fp in points]

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        if key == "name" and (not isinstance(params[key], str) or not params[key]):
            raise BadInput(f"fault {self.name!r}: parameter name (the failpoint) is required")
        if key == "action" and not isinstance(params[key], str):
            raise BadInput(f"fault {self.name!r}: parameter action must be a string")

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        p = plan.params
        extra = {k: v for k, v in p.items() if k not in ("name", "action")}
        armed = [await process.failpoint(reach.node(t), reach.arm_failpoint, p["name"], p["action"],
                                         **extra) for t in plan.targets]
        return heal_together(self.name, plan.targets, armed)


@register
class FailpointSweep(_FailpointFamily):
    name, default, weight, scales = "failpoint-sweep", True, 6.0, ("medium", "long")
    description = ("crashes the node at each of its failpoints in turn (first hit), restarting it "
                   "down_s after each crash; a point not reached within wait_s gets a second "
                   "turn with twice the wait before a point that fired gets another")
    defaults = {"names": None, "wait_s": 1.5, "down_s": 0.0}

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((node,), (("names", tuple(points)),)) for node, points in self.nodes(topology, failpoints)]

    def params(self, rng: random.Random, aim: Aim) -> dict[str, Any]:
        names = list(dict(aim.params)["names"])
        rng.shuffle(names)  # each sweep starts somewhere else, so short windows still vary
        return self.check({"names": names, "wait_s": round(rng.uniform(1.0, 2.0), 2),
                           "down_s": round(rng.uniform(0.0, 0.3), 2)})

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        """The node and its links: a step must be reached to crash the node there, and a node
        whose broker link is slowed reaches few of its later steps (a publisher waiting out
        each confirm), so a sweep does not overlap a slow link of its own node."""
        return set(targets) | {f"link:{link.proxy}" for t in targets for link in topology.links_of(t)}

    def window(self, rng: random.Random, low: float, high: float, params: dict[str, Any]) -> float:
        """At least one pass: a sweep healed before it reached a step never crashed the node
        there (a coordinator's commit point is one step of seven). Under load each armed point
        fires within milliseconds, so a pass costs a restart per point, plus one wait."""
        one_pass = len(params["names"]) * (float(params["down_s"]) + SWEEP_RESTART) + float(params["wait_s"])
        return max(rng.uniform(low, high), one_pass)

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        if key == "names":
            _names(self.name, params)
        else:
            number(self.name, params, key, low=0.2 if key == "wait_s" else 0.0)

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        planned = super().plan(reach, targets, params)
        if len(targets) != 1:
            raise BadInput(f"{self.name}: name exactly one node, got {len(targets)}")
        return planned

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        assert reach.arm_failpoint is not None  # plan() checked it
        p = plan.params
        sweep = _Sweep(reach.node(plan.targets[0]), reach.arm_failpoint, _names(self.name, p),
                       float(p["wait_s"]), float(p["down_s"]))
        reach.spawn(sweep.run())
        return sweep.injection


_SWEEP_TRIES = 2  # turns an unreached point gets per pass of a sweep
SWEEP_RESTART = 1.0  # seconds a node restarted by a sweep takes to serve again (a Python service)


class _Sweep:
    """Arms one failpoint at a time and restarts the node after each crash; healing
    stops the sweep, disarms and leaves the node running."""

    def __init__(self, node: Node, arm: process.ArmFailpoint, names: list[str], wait: float,
                 down: float) -> None:
        self.node, self.arm, self.names, self.wait, self.down = node, arm, names, wait, down
        self.injection = Injection("failpoint-sweep", (node.name,), self._undo)
        self.crashes = 0
        self._lock = threading.Lock()  # a heal never interleaves with a restart
        self._stopped = False
        self._done = threading.Event()  # the sweep arms nothing more

    def revive(self) -> None:
        with self._lock:
            process.ensure_running(self.node)

    async def run(self) -> None:
        try:
            await self._sweep()
        finally:
            self._done.set()

    @staticmethod
    def _next(order: list[str], fired: set[str], tries: dict[str, int]) -> str:
        """The first point in line still due in this pass (not fired, tried fewer than
        _SWEEP_TRIES times), moved to the back of the line; a new pass once none is."""
        due = [n for n in order if n not in fired and tries[n] < _SWEEP_TRIES]
        if not due:
            fired.clear()
            tries.update(dict.fromkeys(tries, 0))
            due = list(order)
        order.remove(due[0])
        order.append(due[0])
        tries[due[0]] += 1
        return due[0]

    async def _sweep(self) -> None:
        # A point not reached in its wait (a step only some payments pass, or traffic
        # still resuming after the last crash) is tried again, with twice the wait,
        # before any point that already fired gets a second turn.
        loop, proc = asyncio.get_running_loop(), process.process_of(self.node)
        order, fired = list(self.names), set()
        tries, waits = dict.fromkeys(self.names, 0), dict.fromkeys(self.names, self.wait)
        while not self._stopped:
            name = self._next(order, fired, tries)
            try:
                await self.arm(self.node.name, name, "crash")
            except Exception:  # not ready (yet): make sure it runs, go on with the next point
                await asyncio.to_thread(self.revive)
                continue
            if self._stopped:  # healed while arming: the heal disarms once this returns
                return
            deadline = loop.time() + waits[name]
            while not self._stopped and proc.alive and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if proc.alive:  # not reached in time (or healed): disarm before the next point
                waits[name] = min(waits[name] * 2, self.wait * 4)
                try:
                    await self.arm(self.node.name, name, "off")
                except Exception:
                    pass
                continue
            fired.add(name)
            self.crashes += 1
            await asyncio.sleep(self.down)
            if not self._stopped:
                await asyncio.to_thread(self.revive)

    def _undo(self) -> None:
        # Wait until the sweep arms nothing more, then disarm and restart: a point armed
        # just before the heal must not crash the node after it (the task may be gone
        # already, or cancelled with the loop: then the wait ends at once or times out).
        self._stopped = True
        self._done.wait(timeout=10)
        try:
            process._run_in_own_loop(lambda: self.arm(self.node.name, "", "off"))
        except Exception:
            pass  # it died (or is dying) at a point: revive covers that
        time.sleep(_SETTLE)  # a crash that fired before the disarm shows as a dead process
        self.revive()


@register
class FailpointDelay(_FailpointFamily):
    name, default, weight, scales = "failpoint-delay", True, 6.0, ("long",)
    action = "delay"
    description = ("arms a delay of ms at the named failpoints of the node for armed_s seconds: "
                   "a payment stalls at one of them with the given probability, spread evenly "
                   "over the points in the order listed (the order a payment passes them), just "
                   "past the target's own timeouts; the event lasts until they resume")
    defaults = {"names": None, "ms": 10000, "probability": 0.3, "armed_s": 3.0}
    # A stalled participant only delays its vote or ack (a vote timeout turns it into an
    # abort, and its inbox waits behind it: every payment aborts meanwhile); a stalled
    # coordinator leaves participants in doubt and clients waiting, where timeout
    # handling goes wrong. Most stalls go to the coordinator.
    role_weight = {"coordinator": 8}

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """One aim per node, with all its points. Each client's payment stalls once and
        holds the client past its timeout, so an event stalls only a handful of payments;
        they are spread evenly over the steps (`stall_probabilities`), so the steps between
        prepare and decision, where timeout handling goes wrong, get their share in every
        event instead of in one event out of as many as the node has points."""
        return [Aim((node,), (("names", tuple(points)),)) for node, points in self.nodes(topology, failpoints)]

    def params(self, rng: random.Random, aim: Aim) -> dict[str, Any]:
        return self.check({"names": list(dict(aim.params)["names"]),
                           "probability": round(rng.uniform(0.3, 0.6), 2),
                           "armed_s": round(rng.uniform(*ARMED), 2)})

    @staticmethod
    def stall_probabilities(total: float, points: int) -> list[float]:
        """Per-point probabilities, in the order a payment passes the points, such that a
        payment stalls with probability `total`, at each point equally likely: the i-th
        point stalls what the earlier ones let through, (total/k) / (1 - i*total/k)."""
        share = total / points
        return [share / (1 - i * share) for i in range(points)]

    def window(self, rng: random.Random, low: float, high: float, params: dict[str, Any]) -> float:
        """Each hit stalls for 0.8-1 x the low end of the long scale: just past the target's
        longest timeout. The points stay armed armed_s only, so one event stalls a handful
        of payments; the window lasts until the last stall ends, so no other fault on the
        node (a crash would abort the stalled payments) comes before."""
        params["ms"] = int(rng.uniform(0.8, 1.0) * low * 1000)  # past the longest timeout, no longer
        return float(params["armed_s"]) + params["ms"] / 1000

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        if key == "names":
            _names(self.name, params)
        else:
            number(self.name, params, key, high=1.0 if key == "probability" else None)

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        assert reach.arm_failpoint is not None
        node, p = reach.node(plan.targets[0]), plan.params
        declared = offered_actions(node).get("delay", ())
        names = _names(self.name, p)
        for name, q in zip(names, self.stall_probabilities(float(p["probability"]), len(names))):
            extra: dict[str, Any] = {"ms": int(p["ms"])}
            if "probability" in declared:
                extra["probability"] = round(q, 4)
            await reach.arm_failpoint(node.name, name, "delay", **extra)

        def disarm() -> None:
            if node.process is not None and node.process.alive:
                try:
                    process._run_in_own_loop(lambda: reach.arm_failpoint(node.name, "", "off"))
                except Exception:
                    pass  # it may have died just now: it restarts disarmed

        async def later() -> None:
            await asyncio.sleep(float(p["armed_s"]))
            await asyncio.to_thread(disarm)

        reach.spawn(later())

        def undo() -> None:  # stalled steps finish on their own
            disarm()
            if node.process is not None:
                process.ensure_running(node)

        return Injection(self.name, plan.targets, undo)


@register
class BrokerKill(BrokerFamily):
    name, default = "broker-kill", True
    description = "kill -9 the broker; healed by starting it again"
    action = staticmethod(process.kill)


@register
class BrokerPause(BrokerFamily):
    name, default = "broker-pause", True
    description = "SIGSTOP the broker; healed by SIGCONT"
    action = staticmethod(process.pause)


@register
class BrokerRestart(BrokerFamily):
    name = "broker-restart"
    description = "graceful stop and immediate start of the broker"
    action = staticmethod(process.restart)
