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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from faults import docker as docker_faults
from faults.catalog import family
from faults.family import EVERYTHING, Planned, Reach
from faults.injection import Injection
from faults.schedule import FaultEvent, Schedule
from faults.toxiproxy import ToxiproxyServer
from harness.errors import BadInput, InfraError
from harness.topology import Topology

__all__ = ["Nemesis", "Recorder"]

log = logging.getLogger(__name__)


class Recorder(Protocol):
    def nemesis(self, f: str, value: dict[str, Any]) -> Any: ...


@dataclass
class _Live:
    """A fault in force: the event, what it resolved to, and how to heal it."""

    event: FaultEvent
    plan: Planned
    injection: Injection


class Nemesis:
    """Injects faults into one target's topology and always heals them.

    Every fault family is an object (faults.family); the Nemesis only resolves an
    event to its family, asks it to plan and inject, and keeps the Injection.
    """

    def __init__(self, topology: Topology, *, toxiproxy_url: str, recorder: Recorder,
                 arm_failpoint: Callable[..., Awaitable[None]] | None = None,
                 docker_client: Any = None) -> None:
        self.topology = topology
        self.toxiproxy = ToxiproxyServer(toxiproxy_url)
        self.recorder = recorder
        self.docker = docker_client
        self._active: list[_Live] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: FaultEvent | None = None
        self.reach = Reach(topology, self.toxiproxy, arm_failpoint=arm_failpoint, docker=docker_client,
                           keep=self._keep, spawn=self._spawn)

    def _keep(self, injection: Injection) -> None:
        """An injection cancelled midway: keep it so heal_all() undoes it."""
        event = self._pending or FaultEvent(0, 0, injection.fault, injection.targets)
        self._active.append(_Live(event, Planned(injection.targets, dict(event.params)), injection))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        return task

    # -- validation ----------------------------------------------------------
    def _plan(self, ev: FaultEvent) -> Planned:
        fam = family(ev.fault)
        return fam.plan(self.reach, tuple(ev.targets), fam.check(ev.params))

    def validate(self, schedule: Schedule) -> None:
        """Check every event against the topology; BadInput before anything is injected."""
        for i, ev in enumerate(schedule.events):
            try:
                self._plan(ev)
            except BadInput as e:
                raise BadInput(f"schedule event {i} (at {ev.at:g}s): {e}") from None

    # -- injecting -----------------------------------------------------------
    def _record(self, f: str, live: _Live) -> None:
        value: dict[str, Any] = {"fault": live.event.fault, "targets": list(live.plan.targets),
                                 "params": live.plan.params}
        if live.plan.description:
            value["description"] = live.plan.description
        struck = list(live.injection.targets)
        if struck and struck != value["targets"]:  # found when it struck (a broker's leader)
            value["description"] = f"{value.get('description', live.event.fault)}: {', '.join(struck)}"
        if live.injection.note:
            value["description"] = f"{value.get('description', live.event.fault)} ({live.injection.note})"
        self.recorder.nemesis(f, value)

    async def inject(self, event: FaultEvent) -> Injection:
        """Start one fault now and record it; it stays in force until healed."""
        plan = self._plan(event)
        self._pending = event
        try:
            inj = await family(event.fault).inject(self.reach, plan)
        finally:
            self._pending = None
        live = _Live(event, plan, inj)
        self._active.append(live)
        self._record("start", live)
        return inj

    async def heal(self, injection: Injection) -> None:
        """Undo one fault (in a thread: restarting a node waits for it to be ready)."""
        for live in list(self._active):
            if live.injection is injection:
                await asyncio.to_thread(injection.heal)
                self._active.remove(live)
                self._record("stop", live)

    # -- running a schedule --------------------------------------------------
    async def run(self, schedule: Schedule, *, stop: asyncio.Event | None = None) -> None:
        """Fire each event at its time (seconds from now), heal it after its duration.

        Each event runs as its own task, so a slow step (a restart waiting for its
        node to be ready) never delays faults on other nodes. An event waits for the
        events the schedule heals before it on the same nodes, so each heal undoes
        exactly its own fault. Returns when the schedule ends or `stop` is set;
        everything is healed on the way out, whatever the way out is.
        """
        self.validate(schedule)
        self.clear_leftovers()
        stop = stop or asyncio.Event()
        t0 = asyncio.get_running_loop().time()
        events = schedule.events
        touched = [family(e.fault).touches(self.topology, tuple(e.targets)) for e in events]
        done = [asyncio.Event() for _ in events]

        def before(i: int) -> list[asyncio.Event]:
            return [done[j] for j, e in enumerate(events) if j != i and e.end <= events[i].at
                    and (touched[i] & touched[j] or EVERYTHING in touched[i] | touched[j])]

        tasks = [asyncio.ensure_future(self._one(e, t0, before(i), done[i], stop))
                 for i, e in enumerate(events)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._stop_tasks()
            self.heal_all()

    async def _one(self, event: FaultEvent, t0: float, after: list[asyncio.Event], done: asyncio.Event,
                   stop: asyncio.Event) -> None:
        """One event: wait for its turn and its time, inject, wait its duration, heal."""
        try:
            for other in after:
                await other.wait()
            if not await _until(t0 + event.at, stop):
                return
            injection = await self.inject(event)
            await _until(t0 + event.end, stop)
            await self.heal(injection)
        finally:
            done.set()

    async def _stop_tasks(self) -> None:
        """Cancel background fault tasks (flapping links, crash storms) and wait for them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:
                pass
        self._tasks.clear()

    # -- healing -------------------------------------------------------------
    def clear_leftovers(self) -> None:
        """Undo what a killed run may have left: toxics, disabled proxies, paused nodes."""
        self.toxiproxy.reset()
        for node in self.topology.nodes:
            if node.process is not None and node.process.alive:
                # unconditionally: a SIGSTOP sent just before may not show in /proc yet,
                # and SIGCONT also discards a stop signal still pending
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
        for task in self._tasks:  # heal_all may run in a worker thread: cancel through the loop
            if not task.done():
                task.get_loop().call_soon_threadsafe(task.cancel)
        errors: list[str] = []
        while self._active:
            live = self._active.pop()
            try:
                live.injection.heal()
            except Exception as e:
                errors.append(f"{live.event.fault} on {', '.join(live.plan.targets)}: {e}")
            self._record("stop", live)
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
        await self._stop_tasks()
        self.heal_all()


async def _until(when: float, stop: asyncio.Event) -> bool:
    """Sleep until loop time `when`; False if `stop` was set first (or already)."""
    delay = when - asyncio.get_running_loop().time()
    if delay > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except asyncio.TimeoutError:
            pass
    return not stop.is_set()
