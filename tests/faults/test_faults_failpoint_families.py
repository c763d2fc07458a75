"""failpoint-sweep and failpoint-delay against real node processes. The target's failpoints
are played by `arm` below: a point in `reached` "fires" (kill -9 of the node's group) a
moment after it is armed, any other point is never reached."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from faultkit import MemoryRecorder, kernel_state

from faults.nemesis import Nemesis
from faults.schedule import FaultEvent, Schedule
from harness.topology import Topology


class FakeFailpoints:
    """Stands in for a target's failpoint endpoint; records every call."""

    def __init__(self, topology: Topology, reached: set[str]) -> None:
        self.topology, self.reached = topology, reached
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.pids: set[int] = set()

    async def __call__(self, node: str, name: str, action: str, **params: Any) -> None:
        self.calls.append((node, name, action, params))
        proc = self.topology.node(node).process
        assert proc is not None and proc.pid is not None
        self.pids.add(proc.pid)
        if action == "crash" and name in self.reached:
            await asyncio.sleep(0.1)  # the next payment reaches the step
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_sweep_crashes_at_each_point_in_turn_retries_unreached_ones_and_heals(
        topology: Topology, toxiproxy_url: str) -> None:
    arm = FakeFailpoints(topology, reached={"p-one", "p-two"})
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder(), arm_failpoint=arm)
    event = FaultEvent(0, 5.0, "failpoint-sweep", ("accounts-a",),
                       {"names": ["p-one", "never", "p-two"], "wait_s": 0.5, "down_s": 0.1})
    asyncio.run(nem.run(Schedule(1, [event])))
    crashes = [name for _, name, action, _ in arm.calls if action == "crash"]
    print("armed in turn:", crashes)
    # the unreached point gets its second turn before a point that fired gets another
    assert crashes[:5] == ["p-one", "never", "p-two", "never", "p-one"]
    assert crashes.count("p-one") >= 2  # the sweep starts over until healed
    # the unreached point was disarmed after wait_s, before the next one was armed
    i = next(k for k, c in enumerate(arm.calls) if c[1] == "never")
    assert arm.calls[i + 1][2] == "off"
    assert len(arm.pids) >= 3  # restarted after every crash
    proc = topology.node("accounts-a").process
    assert proc is not None and proc.pid is not None and kernel_state(proc.pid) == "running"
    assert {c[0] for c in arm.calls} == {"accounts-a"}


def test_a_delay_arms_every_point_with_the_declared_parameters_then_disarms(
        topology: Topology, toxiproxy_url: str) -> None:
    node = topology.node("coordinator")
    node.meta["failpoint-actions"] = {"crash": [], "delay": ["ms"]}  # no probability: first hit only
    arm = FakeFailpoints(topology, reached=set())
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder(), arm_failpoint=arm)
    event = FaultEvent(0, 1.5, "failpoint-delay", ("coordinator",),
                       {"names": ["c-a", "c-b"], "ms": 12000, "probability": 0.4, "armed_s": 0.3})
    off_at: list[float] = []

    async def main() -> None:
        t0 = asyncio.get_running_loop().time()
        run = asyncio.ensure_future(nem.run(Schedule(1, [event])))
        while not run.done():
            if not off_at and any(c[2] == "off" for c in arm.calls):
                off_at.append(asyncio.get_running_loop().time() - t0)
            await asyncio.sleep(0.02)
        await run

    asyncio.run(main())
    assert arm.calls[:3] == [("coordinator", "c-a", "delay", {"ms": 12000}),
                             ("coordinator", "c-b", "delay", {"ms": 12000}),
                             ("coordinator", "", "off", {})]
    assert all(c == ("coordinator", "", "off", {}) for c in arm.calls[3:])  # the heal disarms again
    print("disarmed after", off_at)
    assert off_at and 0.3 <= off_at[0] < 1.2  # after armed_s, well before the event ends


def test_a_point_armed_as_the_sweep_heals_cannot_leave_the_node_dead(
        topology: Topology, toxiproxy_url: str) -> None:
    """Every point fires late (0.3 s after arming, past the heal): the heal still waits for
    the sweep, disarms and restarts, so the node runs afterwards."""

    class Late(FakeFailpoints):
        async def __call__(self, node: str, name: str, action: str, **params: Any) -> None:
            self.calls.append((node, name, action, params))
            proc = self.topology.node(node).process
            assert proc is not None and proc.pid is not None
            if action == "crash":
                pid = proc.pid
                asyncio.get_running_loop().call_later(0.3, lambda: _kill_if_armed(self, node, pid))

    def _kill_if_armed(arm: FakeFailpoints, node: str, pid: int) -> None:
        if arm.calls[-1][2] == "crash":  # not disarmed since
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    arm = Late(topology, reached=set())
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder(), arm_failpoint=arm)
    for length in (0.35, 0.5, 0.7):
        event = FaultEvent(0, length, "failpoint-sweep", ("accounts-b",),
                           {"names": ["p-one"], "wait_s": 0.5, "down_s": 0.0})
        asyncio.run(nem.run(Schedule(1, [event])))
        proc = topology.node("accounts-b").process
        assert proc is not None and proc.alive, f"dead after a {length} s sweep"
        assert arm.calls[-1][2] == "off"
