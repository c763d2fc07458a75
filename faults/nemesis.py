"""The Nemesis: runs a fault schedule against a Topology, records it, heals on every way out.

It sees only a Topology (nodes and links), a Toxiproxy server, a history
recorder and, when the target offers them, an `arm_failpoint` callable and a
docker client: never an adapter. A schedule is validated whole before the first
fault, so bad input fails fast and leaves nothing behind. Every fault in force
is an `Injection`; `heal_all()` undoes them all, and the context managers and
`run()` call it in `finally`, so Ctrl-C, SIGTERM (which the CLI and pytest
plugin turn into KeyboardInterrupt) and exceptions all heal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from harness.topology import Node, Topology
from faults import docker as docker_faults
from faults import partition, process
from faults.catalog import BROKER, CONTAINER, LINK, PARTITION, check_params, family
from faults.injection import Injection
from faults.schedule import FaultEvent, Schedule
from faults.toxiproxy import ToxiproxyServer
from harness.errors import BadInput, InfraError

__all__ = ["Nemesis", "Recorder"]

log = logging.getLogger(__name__)


class Recorder(Protocol):
    def nemesis(self, f: str, value: dict[str, Any]) -> Any: ...


@dataclass
class _Planned:
    """An event checked against the topology: what exactly it will hit."""

    event: FaultEvent
    params: dict[str, Any]
    targets: tuple[str, ...]
    proxies: list[str]
    description: str | None = None


class Nemesis:
    """Injects faults into one target's topology and always heals them."""

    def __init__(self, topology: Topology, *, toxiproxy_url: str, recorder: Recorder,
                 arm_failpoint: Callable[..., Awaitable[None]] | None = None,
                 docker_client: Any = None) -> None:
        self.topology = topology
        self.toxiproxy = ToxiproxyServer(toxiproxy_url)
        self.recorder = recorder
        self.arm_failpoint = arm_failpoint
        self.docker = docker_client
        self._active: list[tuple[_Planned, Injection]] = []
        self._flaps: list[asyncio.Task[None]] = []

    # -- validation ----------------------------------------------------------
    def _node(self, name: str) -> Node:
        try:
            return self.topology.node(name)
        except KeyError:
            raise BadInput(f"unknown node {name!r}; nodes: "
                           f"{', '.join(n.name for n in self.topology.nodes)}") from None

    def _plan(self, ev: FaultEvent) -> _Planned:
        fam = family(ev.fault)
        params = check_params(ev.fault, ev.params)
        targets = tuple(ev.targets)
        if fam.kind == LINK:
            valid = [link.proxy for link in self.topology.links]
            bad = [t for t in targets if t not in valid]
            if not targets or bad:
                raise BadInput(f"{ev.fault}: unknown link(s) {', '.join(bad) or '(none given)'}; "
                               f"links: {', '.join(valid)}")
            return _Planned(ev, params, targets, list(targets))
        if fam.kind == PARTITION:
            for t in targets:
                self._node(t)
            nodes = partition.partition_targets(ev.fault, self.topology, targets)
            return _Planned(ev, params, nodes, partition.proxies_of(self.topology, nodes),
                            partition.describe(ev.fault, self.topology, nodes))
        if fam.kind == CONTAINER:
            if self.docker is None:
                raise BadInput(f"{ev.fault}: no Docker engine was given for container faults")
            if not targets:
                raise BadInput(f"{ev.fault}: name the container(s): node names, name=<c> or label=<k>=<v>")
            for t in targets:
                docker_faults.resolve(self.docker, self.topology, t)
            return _Planned(ev, params, targets, [])
        if not targets:
            raise BadInput(f"{ev.fault}: name the node(s); nodes: "
                           f"{', '.join(n.name for n in self.topology.nodes)}")
        for t in targets:
            node = self._node(t)
            if node.process is None:
                raise BadInput(f"{ev.fault}: node {t!r} has no local process; nodes with one: "
                               f"{', '.join(n.name for n in self.topology.nodes if n.process)}")
            if fam.kind == BROKER and node.role != "broker":
                raise BadInput(f"{ev.fault}: node {t!r} is not a broker; brokers: "
                               f"{', '.join(n.name for n in self.topology.by_role('broker')) or 'none'}")
        if ev.fault == "failpoint" and self.arm_failpoint is None:
            raise BadInput("failpoint: this target offers no failpoints")
        return _Planned(ev, params, targets, [])

    def validate(self, schedule: Schedule) -> None:
        """Check every event against the topology; BadInput before anything is injected."""
        for i, ev in enumerate(schedule.events):
            try:
                self._plan(ev)
            except BadInput as e:
                raise BadInput(f"schedule event {i} (at {ev.at:g}s): {e}") from None

    # -- injecting -----------------------------------------------------------
    def _record(self, f: str, plan: _Planned) -> None:
        value: dict[str, Any] = {"fault": plan.event.fault, "targets": list(plan.targets),
                                 "params": plan.params}
        if plan.description:
            value["description"] = plan.description
        self.recorder.nemesis(f, value)

    def _inject_sync(self, plan: _Planned) -> Injection:
        ev, p = plan.event, plan.params
        kind = family(ev.fault).kind
        if kind == LINK:
            if ev.fault == "link-down":
                return partition.cut(self.toxiproxy, ev.fault, plan.targets, plan.proxies)
            added: list[tuple[str, list[str]]] = []
            try:
                for proxy in plan.proxies:
                    added.append((proxy, self.toxiproxy.add_toxics(proxy, ev.fault, p)))
            except BaseException:
                for proxy, names in added:
                    self.toxiproxy.remove_toxics(proxy, names)
                raise

            def undo() -> None:
                for proxy, names in added:
                    self.toxiproxy.remove_toxics(proxy, names)

            return Injection(ev.fault, plan.targets, undo)
        if kind == PARTITION:
            return partition.cut(self.toxiproxy, ev.fault, plan.targets, plan.proxies)
        if kind == CONTAINER:
            containers = [c for t in plan.targets
                          for c in docker_faults.resolve(self.docker, self.topology, t)]
            return docker_faults.inject(ev.fault, containers, p)
        action = {"kill": process.kill, "stop": process.stop, "pause": process.pause,
                  "restart": process.restart, "broker-kill": process.kill,
                  "broker-pause": process.pause, "broker-restart": process.restart}[ev.fault]
        injections = []
        try:
            for t in plan.targets:
                injections.append(action(self._node(t)))
        except BaseException:
            for inj in injections:
                inj.heal()
            raise

        def heal_each() -> None:
            for inj in injections:
                inj.heal()

        return Injection(ev.fault, plan.targets, heal_each)

    async def _blocking(self, fn: Callable[[], Injection], plan: _Planned) -> Injection:
        """Run a blocking injection in a thread; if cancelled, still keep what it did to heal it."""
        fut = asyncio.ensure_future(asyncio.to_thread(fn))
        try:
            inj = await asyncio.shield(fut)
        except asyncio.CancelledError:
            try:
                self._active.append((plan, await fut))
            except Exception:
                pass
            raise
        self._active.append((plan, inj))
        return inj

    async def inject(self, event: FaultEvent) -> Injection:
        """Start one fault now and record it; it stays in force until healed."""
        plan = self._plan(event)
        if event.fault == "failpoint":
            extra = {k: v for k, v in plan.params.items() if k not in ("name", "action")}
            armed: list[Injection] = []
            for t in plan.targets:
                armed.append(await process.failpoint(self._node(t), self.arm_failpoint,
                                                     plan.params["name"], plan.params["action"], **extra))

            def undo() -> None:
                for one in armed:
                    one.heal()

            inj = Injection("failpoint", plan.targets, undo)
            self._active.append((plan, inj))
        elif event.fault == "partition-flap":
            flapper = partition.Flapper(self.toxiproxy, plan.targets, plan.proxies,
                                        float(plan.params["period_s"]))
            inj = flapper.injection
            self._active.append((plan, inj))
            self._flaps.append(asyncio.get_running_loop().create_task(flapper.run()))
        else:
            inj = await self._blocking(lambda: self._inject_sync(plan), plan)
        self._record("start", plan)
        return inj

    async def heal(self, injection: Injection) -> None:
        """Undo one fault (in a thread: restarting a node waits for it to be ready)."""
        for plan, inj in list(self._active):
            if inj is injection:
                await asyncio.to_thread(inj.heal)
                self._active.remove((plan, inj))
                self._record("stop", plan)

    # -- running a schedule --------------------------------------------------
    async def run(self, schedule: Schedule, *, stop: asyncio.Event | None = None) -> None:
        """Fire each event at its time (seconds from now), heal it after its duration.

        Returns when the schedule ends or `stop` is set; everything is healed on
        the way out, whatever the way out is.
        """
        self.validate(schedule)
        self.clear_leftovers()
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        # at one instant: heal what ends, then start what begins; a zero-length fault heals last
        steps = sorted([(e.at, 1, i) for i, e in enumerate(schedule.events)] +
                       [(e.end, 0 if e.duration > 0 else 2, i) for i, e in enumerate(schedule.events)])
        live: dict[int, Injection] = {}
        try:
            for at, order, i in steps:
                delay = t0 + at - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                if stop.is_set():
                    break
                if order == 1:
                    live[i] = await self.inject(schedule.events[i])
                elif i in live:
                    await self.heal(live.pop(i))
        finally:
            await self._stop_flaps()
            self.heal_all()

    async def _stop_flaps(self) -> None:
        for task in self._flaps:
            task.cancel()
        for task in self._flaps:
            try:
                await task
            except BaseException:
                pass
        self._flaps.clear()

    # -- healing -------------------------------------------------------------
    def clear_leftovers(self) -> None:
        """Undo what a killed run may have left: toxics, disabled proxies, paused nodes."""
        self.toxiproxy.reset()
        for node in self.topology.nodes:
            if node.process is not None and node.process.state == "stopped":
                node.process.resume()
        if self.docker is not None:
            for node in self.topology.nodes:
                if node.container:
                    try:
                        c = self.docker.containers.get(node.container)
                        if docker_faults.container_status(c) == "paused":
                            c.unpause()
                    except Exception as e:  # a missing container is the adapter's business
                        log.warning("could not check container %s: %s", node.container, e)

    def heal_all(self) -> None:
        """Undo every fault in force, then make sure no toxic, cut link or pause remains.

        Idempotent and synchronous (usable from `finally` and signal paths).
        Keeps going past failures and reports them together at the end.
        """
        for task in self._flaps:  # heal_all may run in a worker thread: cancel through the loop
            task.get_loop().call_soon_threadsafe(task.cancel)
        errors: list[str] = []
        while self._active:
            plan, inj = self._active.pop()
            try:
                inj.heal()
            except Exception as e:
                errors.append(f"{plan.event.fault} on {', '.join(plan.targets)}: {e}")
            self._record("stop", plan)
        try:
            self.clear_leftovers()
        except Exception as e:
            errors.append(str(e))
        if errors:
            raise InfraError("some faults could not be healed: " + "; ".join(errors))

    # -- context managers ----------------------------------------------------
    def __enter__(self) -> Nemesis:
        self.clear_leftovers()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.heal_all()

    async def __aenter__(self) -> Nemesis:
        await asyncio.to_thread(self.clear_leftovers)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop_flaps()
        self.heal_all()

