"""The Nemesis against real processes and a real Toxiproxy: effects, history, healing, bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from faultkit import MemoryRecorder, becomes, kernel_state, listen_addr, round_trip, wait_for

from harness.topology import Topology
from faults.nemesis import Nemesis
from faults.schedule import FaultEvent, Schedule
from faults.toxiproxy import ToxiproxyServer
from harness.errors import BadInput


def _nemesis(topology: Topology, url: str, **kw: Any) -> tuple[Nemesis, MemoryRecorder]:
    rec = MemoryRecorder()
    return Nemesis(topology, toxiproxy_url=url, recorder=rec, **kw), rec


def _pid(topology: Topology, name: str) -> int | None:
    proc = topology.node(name).process
    assert proc is not None
    return proc.pid


def test_schedule_runs_on_time_records_and_heals(topology: Topology, toxiproxy_url: str,
                                                 server: ToxiproxyServer) -> None:
    nem, rec = _nemesis(topology, toxiproxy_url)
    addr = listen_addr(server, "accounts-a-echo")
    pid = _pid(topology, "accounts-b")
    sched = Schedule(1, [
        FaultEvent(0.0, 1.5, "latency", ("accounts-a-echo",), {"latency_ms": 200, "jitter_ms": 0}),
        FaultEvent(0.1, 1.2, "pause", ("accounts-b",), {}),
    ])
    seen: dict[str, Any] = {}

    async def observe() -> None:
        await asyncio.sleep(0.5)
        seen["rtt"] = await asyncio.to_thread(round_trip, addr)
        seen["state"] = kernel_state(pid)

    async def main() -> None:
        await asyncio.gather(nem.run(sched), observe())

    asyncio.run(main())
    assert seen["rtt"] > 0.38 and seen["state"] == "stopped"
    assert becomes(pid, "running")
    assert round_trip(addr) < 0.2
    assert server.state()["accounts-a-echo"]["toxics"] in ([], None)
    assert rec.pairs() == [("start", "latency", ("accounts-a-echo",)), ("start", "pause", ("accounts-b",)),
                           ("stop", "pause", ("accounts-b",)), ("stop", "latency", ("accounts-a-echo",))]
    assert all(e["process"] == "nemesis" and e["type"] == "info" and "params" in e["value"]
               for e in rec.events)


def test_kill_then_heal_restarts_the_node(topology: Topology, toxiproxy_url: str) -> None:
    nem, rec = _nemesis(topology, toxiproxy_url)
    old = _pid(topology, "accounts-a")

    async def main() -> None:
        inj = await nem.inject(FaultEvent(0, 1, "kill", ("accounts-a",), {}))
        assert kernel_state(old) == "dead"
        await nem.heal(inj)

    asyncio.run(main())
    new = _pid(topology, "accounts-a")
    assert new != old and kernel_state(new) == "running"
    assert [e["f"] for e in rec.events] == ["start", "stop"]


def test_stop_restart_and_broker_faults(topology: Topology, toxiproxy_url: str) -> None:
    nem, _ = _nemesis(topology, toxiproxy_url)

    async def main() -> None:
        old = _pid(topology, "coordinator")
        inj = await nem.inject(FaultEvent(0, 1, "stop", ("coordinator",), {}))
        assert kernel_state(old) == "dead"
        await nem.heal(inj)
        assert kernel_state(_pid(topology, "coordinator")) == "running"

        old = _pid(topology, "coordinator")
        await nem.inject(FaultEvent(0, 1, "restart", ("coordinator",), {}))
        assert kernel_state(old) == "dead" and kernel_state(_pid(topology, "coordinator")) == "running"

        broker = _pid(topology, "broker")
        inj = await nem.inject(FaultEvent(0, 1, "broker-pause", ("broker",), {}))
        assert becomes(broker, "stopped")
        await nem.heal(inj)
        assert becomes(broker, "running")
        inj = await nem.inject(FaultEvent(0, 1, "broker-kill", ("broker",), {}))
        assert kernel_state(broker) == "dead"
        await nem.heal(inj)
        assert kernel_state(_pid(topology, "broker")) == "running"

    asyncio.run(main())


def test_failpoint_crash_is_healed_by_a_restart(topology: Topology, toxiproxy_url: str) -> None:
    armed: list[tuple[str, str, str]] = []

    async def arm_by_signal(node: str, name: str, action: str, **params: Any) -> None:
        """Stands in for a target's failpoint: the node crashes as soon as it is armed."""
        armed.append((node, name, action))
        pid = _pid(topology, node)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)

    nem, _ = _nemesis(topology, toxiproxy_url, arm_failpoint=arm_by_signal)
    old = _pid(topology, "accounts-b")

    async def main() -> None:
        await nem.inject(FaultEvent(0, 1, "failpoint", ("accounts-b",), {"name": "after-prepare"}))
        assert await asyncio.to_thread(wait_for, lambda: kernel_state(old) in ("dead", "zombie"))
        nem.heal_all()

    asyncio.run(main())
    assert armed == [("accounts-b", "after-prepare", "crash")]
    assert kernel_state(_pid(topology, "accounts-b")) == "running" and _pid(topology, "accounts-b") != old


def test_context_manager_heals_on_exception(topology: Topology, toxiproxy_url: str,
                                            server: ToxiproxyServer) -> None:
    pid = _pid(topology, "accounts-a")
    with pytest.raises(RuntimeError, match="boom"):
        with Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder()) as nem:
            asyncio.run(nem.inject(FaultEvent(0, 9, "pause", ("accounts-a",), {})))
            asyncio.run(nem.inject(FaultEvent(0, 9, "link-down", ("accounts-b-echo",), {})))
            asyncio.run(nem.inject(FaultEvent(0, 9, "bandwidth", ("coordinator-echo",), {})))
            assert becomes(pid, "stopped")
            assert server.state()["accounts-b-echo"]["enabled"] is False
            raise RuntimeError("boom")
    assert becomes(pid, "running")
    assert all(p["enabled"] and not p["toxics"] for p in server.state().values())


def test_new_run_clears_what_a_killed_run_left(topology: Topology, toxiproxy_url: str,
                                               server: ToxiproxyServer) -> None:
    server.add_toxics("accounts-a-echo", "timeout", {})
    server.set_enabled("coordinator-echo", False)
    proc = topology.node("accounts-b").process
    assert proc is not None
    proc.pause()
    assert becomes(proc.pid, "stopped")
    asyncio.run(Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder())
                .run(Schedule(None, [])))
    assert all(p["enabled"] and not p["toxics"] for p in server.state().values())
    assert becomes(proc.pid, "running")


@pytest.mark.parametrize("event,needle", [
    (FaultEvent(0, 1, "earthquake", ("accounts-a",), {}), "valid faults: latency, slow-link, bandwidth"),
    (FaultEvent(0, 1, "kill", ("nobody",), {}), "unknown node 'nobody'; nodes: coordinator, accounts-a"),
    (FaultEvent(0, 1, "latency", ("nolink",), {}), "links: coordinator-echo, accounts-a-echo"),
    (FaultEvent(0, 1, "latency", ("accounts-a-echo",), {"latency_ms": -1}), "latency_ms must be >= 0"),
    (FaultEvent(0, 1, "latency", ("accounts-a-echo",), {"toxicity": 2}), "toxicity must be between 0 and 1"),
    (FaultEvent(0, 1, "broker-kill", ("accounts-a",), {}), "not a broker; brokers: broker"),
    (FaultEvent(0, 1, "failpoint", ("accounts-a",), {"name": "x"}), "offers no failpoints"),
    (FaultEvent(0, 1, "docker-kill", ("accounts-a",), {}), "no Docker engine"),
    (FaultEvent(0, 1, "partition-split", ("accounts-a", "coordinator"), {}), "participants: accounts-a"),
])
def test_bad_input_fails_before_anything_is_injected(topology: Topology, toxiproxy_url: str,
                                                     server: ToxiproxyServer, event: FaultEvent,
                                                     needle: str) -> None:
    nem, rec = _nemesis(topology, toxiproxy_url)
    first = FaultEvent(0, 1, "link-down", ("accounts-a-echo",), {})
    with pytest.raises(BadInput, match=needle):
        asyncio.run(nem.run(Schedule(None, [first, event])))
    assert rec.events == []
    assert all(p["enabled"] for p in server.state().values())


def test_zero_length_fault_is_healed_at_once(topology: Topology, toxiproxy_url: str) -> None:
    nem, rec = _nemesis(topology, toxiproxy_url)
    old = _pid(topology, "accounts-a")
    sched = Schedule(None, [FaultEvent(0.0, 0.0, "kill", ("accounts-a",), {}),
                            FaultEvent(0.5, 0.1, "pause", ("accounts-b",), {})])
    asyncio.run(nem.run(sched))
    assert [e["f"] for e in rec.events[:2]] == ["start", "stop"]  # healed before the next fault
    assert _pid(topology, "accounts-a") != old and kernel_state(_pid(topology, "accounts-a")) == "running"


def test_crash_storm_kills_again_and_again_then_leaves_the_node_running(topology: Topology,
                                                                         toxiproxy_url: str) -> None:
    nem, rec = _nemesis(topology, toxiproxy_url)
    pids: set[int | None] = set()

    async def watch() -> None:
        for _ in range(40):
            pids.add(_pid(topology, "accounts-a"))
            await asyncio.sleep(0.05)

    storm = FaultEvent(0.0, 1.6, "crash-storm", ("accounts-a",), {"period_s": 0.4, "down_s": 0.05})
    other = FaultEvent(0.2, 0.5, "pause", ("accounts-b",), {})  # runs while the storm rages

    async def main() -> None:
        await asyncio.gather(nem.run(Schedule(1, [storm, other])), watch())

    asyncio.run(main())
    assert len(pids - {None}) >= 3, pids  # the first process and at least two restarts
    assert kernel_state(_pid(topology, "accounts-a")) == "running"
    assert ("stop", "crash-storm", ("accounts-a",)) in rec.pairs()
    assert rec.pairs().index(("stop", "pause", ("accounts-b",))) < \
        rec.pairs().index(("stop", "crash-storm", ("accounts-a",)))


def test_a_slow_heal_does_not_delay_faults_on_other_nodes(topology: Topology, toxiproxy_url: str) -> None:
    """Each event is its own task: a restart that blocks does not hold back the next fault."""
    nem, rec = _nemesis(topology, toxiproxy_url)
    proc = topology.node("coordinator").process
    assert proc is not None
    slow_start = proc.start

    def start() -> None:
        time.sleep(1.5)
        slow_start()

    proc.start = start  # type: ignore[method-assign]
    sched = Schedule(1, [FaultEvent(0.0, 0.2, "kill", ("coordinator",), {}),
                         FaultEvent(0.5, 0.3, "pause", ("accounts-a",), {})])
    t0 = time.monotonic()
    asyncio.run(nem.run(sched))
    times = {(e["f"], e["value"]["fault"]): e["time"] for e in rec.events}
    assert (times[("start", "pause")] - t0 * 1e9) / 1e9 < 1.2
    assert times[("stop", "pause")] < times[("stop", "kill")]
    assert kernel_state(_pid(topology, "coordinator")) == "running"


def test_a_family_is_one_registered_class(topology: Topology, toxiproxy_url: str) -> None:
    """A new family needs nothing but its class: the generator and the Nemesis find it."""
    from faults.family import REGISTRY, register
    from faults.nodes import NodeFamily
    from faults.process import pause
    from faults.schedule import generate

    @register
    class Doze(NodeFamily):
        name, description = "test-doze", "SIGSTOP, for a test"
        action = staticmethod(pause)

    try:
        sched = generate(3, families=["test-doze"], duration=4, topology=topology)
        assert sched.events and {e.fault for e in sched.events} == {"test-doze"}
        nem, rec = _nemesis(topology, toxiproxy_url)
        asyncio.run(nem.run(sched))
        assert [f for f, fault, _ in rec.pairs() if fault == "test-doze"].count("stop") == len(sched.events)
        with pytest.raises(BadInput, match="event 0 .*unknown node 'nobody'"):
            nem.validate(Schedule(1, [FaultEvent(0, 1, "test-doze", ("nobody",), {})]))
    finally:
        REGISTRY.pop("test-doze")
