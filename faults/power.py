"""Power-loss fault families: kill -9 a node and drop every write it never fsynced.

A kill -9 alone never tests durability: the kernel's page cache survives the
killed process, so its un-fsynced writes still reach the disk. A node whose data
dir is a lazy disk (harness.disk; TargetContext.data_dir when the run needs
DISK) loses them as in a power cut: a store without synchronous writes, or a
decision replied before it was fsynced, comes back without what it promised.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from faults import process
from faults.family import EVERYTHING, Aim, Planned, Reach, broker_holds, heal_together, register
from faults.injection import Injection
from faults.nodes import NodeFamily, node_failpoints, offered_actions
from harness.disk import LazyDisk
from harness.errors import BadInput
from harness.topology import Node, Topology

__all__ = ["PowerFamily", "DISK", "disk_of"]

DISK = "disk"  # what a power-loss family needs of a run: data dirs on lazy disks


def disk_of(node: Node) -> LazyDisk | None:
    """The lazy disk of the node's data dir, if it has one."""
    return getattr(node.process, "disk", None)


def _cut(node: Node, plan: Planned) -> None:
    """Drop the node's unsynced writes; what was lost goes on record (the event's description)."""
    disk = disk_of(node)
    assert disk is not None  # plan() checked it
    files, size = disk.drop()
    lost = f"{node.name} lost {size // 1024} KiB unsynced in {files} file(s)"
    plan.description = f"{plan.description}; {lost}" if plan.description else lost


class PowerFamily(NodeFamily):
    """Targets are nodes (brokers too) whose data dir is a lazy disk."""

    needs = frozenset({DISK})
    scales = ("short", "medium")

    def powered(self, topology: Topology) -> list[str]:
        return sorted(n.name for n in topology.nodes if disk_of(n) is not None)

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((name,)) for name in self.powered(topology)]

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        """A broker's power cut holds what a broker kill does (faults.family.broker_holds)."""
        brokers = tuple(t for t in targets if topology.node(t).role == "broker")
        if brokers:
            return broker_holds(topology, brokers) | set(targets)
        return super().touches(topology, targets)

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        if not targets:
            raise BadInput(f"{self.name}: name the node(s); nodes on lazy disks: "
                           f"{', '.join(self.powered(reach.topology)) or 'none'}")
        for t in targets:
            if disk_of(reach.node(t)) is None:
                powered = ", ".join(self.powered(reach.topology)) or "none (the adapter asks ctx.data_dir for none)"
                raise BadInput(f"{self.name}: node {t!r} has no data dir on a lazy disk; nodes that do: {powered}")
        return Planned(targets, params)

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        nodes = [reach.node(t) for t in plan.targets]
        for node in nodes:  # every node dead before any disk forgets: no write lands after
            process.process_of(node).kill(signal.SIGKILL)
        for node in nodes:
            _cut(node, plan)

        def back() -> None:
            """Brokers up first, all at once (a clustered broker's node that lost power with
            its peers waits for them as it starts), then the rest."""
            for group in ([n for n in nodes if n.role == "broker"], [n for n in nodes if n.role != "broker"]):
                if group:
                    with ThreadPoolExecutor(len(group)) as pool:
                        list(pool.map(process.ensure_running, group))
        return Injection(self.name, plan.targets, back)


@register
class PowerLoss(PowerFamily):
    name, weight = "power-loss", 2.0
    description = ("kill -9 the node and drop every write to its data dir it had not fsynced "
                   "(a power cut), or with `failpoint`, cut its power when it reaches that step; "
                   "healed by starting it again")
    defaults = {"failpoint": None}

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """Each powered node at a random moment, and at a random step of its protocol
        where the target offers failpoints (a power cut between two writes)."""
        out = []
        for aim in super().candidates(topology, failpoints):
            out.append(aim)
            points = node_failpoints(topology, aim.targets[0], failpoints)
            if points and "crash" in offered_actions(topology.node(aim.targets[0])):
                out.append(Aim(aim.targets, (("failpoint", tuple(points)),)))
        return out

    def params(self, rng: random.Random, aim: Aim) -> dict[str, Any]:
        pinned = dict(aim.params)
        if isinstance(pinned.get("failpoint"), tuple):
            pinned["failpoint"] = rng.choice(pinned["failpoint"])
        return self.check(pinned)

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        value = params[key]
        if value is not None and (not isinstance(value, str) or not value):
            raise BadInput(f"fault {self.name!r}: parameter failpoint must be a failpoint's name")

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        planned = super().plan(reach, targets, params)
        if params.get("failpoint") and reach.arm_failpoint is None:
            raise BadInput(f"{self.name}: this target offers no failpoints")
        return planned

    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        if not plan.params.get("failpoint"):
            return await super().inject(reach, plan)
        cuts = [_CutAt(reach.node(t), plan) for t in plan.targets]
        armed = [await process.failpoint(c.node, reach.arm_failpoint, plan.params["failpoint"], "crash")
                 for c in cuts]
        for c in cuts:
            c.watch(reach)
        return heal_together(self.name, plan.targets,
                             [Injection(self.name, (c.node.name,), lambda c=c, a=a: (c.stop(), a.heal()))
                              for c, a in zip(cuts, armed)])


class _CutAt:
    """Drops a node's unsynced writes the moment its armed failpoint kills it; stopped at heal
    (dropping then if the node died but was not seen to), before the node is started again."""

    def __init__(self, node: Node, plan: Planned) -> None:
        self.node = node
        self.plan = plan
        self._done = threading.Lock()
        self._cut = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, reach: Reach) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = reach.spawn(self._run())

    async def _run(self) -> None:
        proc = process.process_of(self.node)
        while proc.alive:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(self.cut)

    def cut(self) -> None:
        with self._done:
            if not self._cut:
                self._cut = True
                _cut(self.node, self.plan)

    def stop(self) -> None:
        if self._task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)  # heals run in a worker thread
        if not process.process_of(self.node).alive:
            self.cut()


@register
class PowerLossAll(PowerFamily):
    name = "power-loss-all"
    description = ("the same power cut on every node with a lazy disk at once (they all lose "
                   "their un-fsynced writes); healed by starting them again")
    scales = ("short",)

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        powered = tuple(self.powered(topology))
        return [Aim(powered)] if powered else []

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        return {EVERYTHING}
