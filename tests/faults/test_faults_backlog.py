"""backlog-kill against real processes and a real Toxiproxy: the coordinator holds, consumers
stop reading, the coordinator reads again, the broker node dies and comes back, the consumers
resume; a cluster's leader is cut off when the consumers stop."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import MemoryRecorder, becomes, kernel_state, listen_addr, round_trip, sleeper

from faults.catalog import family
from faults.nemesis import Nemesis
from faults.schedule import FaultEvent, Schedule
from faults.toxiproxy import ToxiproxyServer
from harness.errors import BadInput
from harness.topology import LEADER_META, WAITING_META, Link, Topology

PARAMS = {"hold_s": 0.4, "lead_s": 0.6, "down_s": 0.8, "tail_s": 0.8}  # steps at 0.4, 1.0, 1.8, 2.6
REPLACES = {"dead": True}  # whether the fake cluster below names another leader when bus-2 dies
BACKLOG = {"on": None}  # a node whose messages waiting grow in the fake cluster while accounts-a is paused


def _pid(topology: Topology, name: str) -> int | None:
    proc = topology.node(name).process
    assert proc is not None
    return proc.pid


def _sample(nem: Nemesis, sched: Schedule, at: list[float], look: Callable[[], Any]) -> dict[float, Any]:
    """Run the schedule and call `look` (in a thread) at each moment, in seconds from its start."""
    seen: dict[float, Any] = {}

    async def observe() -> None:
        t0 = asyncio.get_running_loop().time()
        for t in at:
            await asyncio.sleep(max(0.0, t0 + t - asyncio.get_running_loop().time()))
            seen[t] = await asyncio.to_thread(look)

    async def main() -> None:
        await asyncio.gather(nem.run(sched), observe())

    asyncio.run(main())
    return seen


def _states(topology: Topology, names: list[str]) -> Callable[[], dict[str, tuple[int | None, str]]]:
    return lambda: {n: (_pid(topology, n), kernel_state(_pid(topology, n))) for n in names}


def test_the_consumers_pause_the_broker_dies_and_returns_then_they_resume(
        topology: Topology, toxiproxy_url: str) -> None:
    aims = family("backlog-kill").candidates(topology)
    assert [a.targets for a in aims] == [("accounts-a", "accounts-b"), ("accounts-a",), ("accounts-b",)]
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder())
    broker, consumers = _pid(topology, "broker"), [_pid(topology, n) for n in ("accounts-a", "accounts-b")]
    sched = Schedule(1, [FaultEvent(0.0, 2.6, "backlog-kill", ("accounts-a", "accounts-b"),
                                    {"lag": "pause", **PARAMS})])
    seen = _sample(nem, sched, [0.2, 0.7, 1.4, 2.2],
                   _states(topology, ["accounts-a", "accounts-b", "broker", "coordinator"]))
    assert seen[0.2]["coordinator"][1] == "stopped"  # holds: the votes wait for it
    assert seen[0.2]["accounts-a"][1] == seen[0.2]["accounts-b"][1] == "running"
    assert seen[0.7]["accounts-a"][1] == seen[0.7]["accounts-b"][1] == "stopped"
    assert seen[0.7]["broker"] == (broker, "running") and seen[0.7]["coordinator"][1] == "running"
    assert seen[1.4]["broker"][1] == "dead" and seen[1.4]["accounts-a"][1] == "stopped"
    assert seen[2.2]["broker"][1] == "running" and seen[2.2]["broker"][0] != broker  # started again
    assert seen[2.2]["accounts-b"][1] == "stopped"  # the consumers resume only at the heal
    assert all(becomes(pid, "running") for pid in consumers)


def test_cut_consumers_lose_their_links_until_the_heal(topology: Topology, toxiproxy_url: str,
                                                       server: ToxiproxyServer) -> None:
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder())
    cut, kept = listen_addr(server, "accounts-a-echo"), listen_addr(server, "coordinator-echo")
    sched = Schedule(1, [FaultEvent(0.0, 2.6, "backlog-kill", ("accounts-a",), {"lag": "cut", **PARAMS})])

    def reached(addr: tuple[str, int]) -> str:
        try:
            round_trip(addr, timeout=0.3)
            return "reachable"
        except OSError:
            return "cut"

    def look() -> dict[str, Any]:
        return {"coordinator": reached(kept), "consumer": reached(cut)}

    links = _sample(nem, sched, [0.1, 0.8], look)
    assert links[0.1] == {"coordinator": "cut", "consumer": "reachable"}  # the coordinator holds
    assert links[0.8] == {"coordinator": "reachable", "consumer": "cut"}
    assert round_trip(cut) < 0.2
    assert kernel_state(_pid(topology, "broker")) == "running"


@pytest.fixture
def cluster(topology: Topology, server: ToxiproxyServer, echo_port: int, tmp_path: Path) -> Iterator[Topology]:
    """The topology's lone broker replaced by three, bus-2 leading; a proxy between each pair."""
    buses = [sleeper(f"bus-{i}", tmp_path, "broker") for i in (1, 2, 3)]

    calls = [0]

    def waiting() -> dict[str, tuple[str, int]]:
        """bus-1 leads a stale backlog, bus-2 one whose consumer is slow (it grows, never
        drains), BACKLOG["on"] the inbox of accounts-a: it grows while accounts-a is paused
        and the coordinator sends, and is read as soon as accounts-a runs."""
        calls[0] += 1
        out = {"stale": ("bus-1", 50), "slow": ("bus-2", 50 * calls[0])}
        if BACKLOG["on"]:
            sending = kernel_state(_pid(topology, "coordinator")) != "stopped"
            paused = kernel_state(_pid(topology, "accounts-a")) == "stopped"
            out["inbox"] = (BACKLOG["on"], 20 * calls[0] if paused and sending else 0)
        return out

    def leader() -> str:  # bus-2 leads while it runs (or while the cluster has not noticed)
        alive = buses[1].process is not None and buses[1].process.alive
        return "bus-2" if alive or not REPLACES["dead"] else "bus-1"

    for b in buses:
        b.meta[LEADER_META], b.meta[WAITING_META] = leader, waiting
        assert b.process is not None
        b.process.start()
    peers = []
    for i, a in enumerate(buses):
        for b in buses[i + 1:]:
            proxy = f"{a.name}~{b.name}"
            server.create_proxy(proxy, f"127.0.0.1:{echo_port}")
            peers += [Link(a.name, "bus", proxy), Link(b.name, "bus", proxy)]
    nodes = [n for n in topology.nodes if n.role != "broker"] + buses
    try:
        yield Topology(nodes, topology.links + peers)
    finally:
        for b in buses:
            assert b.process is not None
            b.process.stop(timeout=2)


@pytest.mark.parametrize("replaced", [True, False])
def test_on_a_cluster_the_leader_is_cut_off_then_killed_and_only_it(cluster: Topology, toxiproxy_url: str,
                                                                    server: ToxiproxyServer, replaced: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """It comes back once the cluster names another leader; while none does, only at the heal."""
    monkeypatch.setitem(REPLACES, "dead", replaced)
    fam = family("backlog-kill")
    assert fam.touches(cluster, ("accounts-a",)) == {"accounts-a", "coordinator", "bus-1", "bus-2", "bus-3"}
    nem = Nemesis(cluster, toxiproxy_url=toxiproxy_url, recorder=(rec := MemoryRecorder()))
    leader, other = _pid(cluster, "bus-2"), _pid(cluster, "bus-1")
    sched = Schedule(1, [FaultEvent(0.0, 2.6, "backlog-kill", ("accounts-b",), {"lag": "pause", **PARAMS})])
    peers = ("bus-1~bus-2", "bus-2~bus-3", "bus-1~bus-3")

    def look() -> dict[str, Any]:
        state = server.state()
        return {**{p: bool(state[p]["enabled"]) for p in peers},
                **_states(cluster, ["bus-1", "bus-2"])()}

    seen = _sample(nem, sched, [0.2, 0.7, 1.4, 2.2], look)
    assert all(seen[0.2][p] for p in peers)  # the coordinator holds; no node cut off yet
    assert [seen[0.7][p] for p in peers] == [False, False, True]  # the leader alone cut off
    assert seen[0.7]["bus-2"] == (leader, "running")
    assert seen[1.4]["bus-2"][1] == "dead" and seen[1.4]["bus-1"] == (other, "running")
    if replaced:
        assert all(seen[2.2][p] for p in peers) and seen[2.2]["bus-2"][1] == "running"
    else:
        assert seen[2.2]["bus-2"][1] == "dead" and not seen[2.2]["bus-1~bus-2"]
    assert all(server.state()[p]["enabled"] for p in peers) and kernel_state(_pid(cluster, "bus-2")) == "running"
    assert rec.events[0]["value"]["description"].endswith(": accounts-b, coordinator")
    assert rec.events[-1]["value"]["description"].endswith(": accounts-b, coordinator, bus-2")  # struck


def test_on_a_cluster_the_consumers_first_stop_alone_and_the_node_their_backlog_is_on_is_struck(
        cluster: Topology, toxiproxy_url: str, server: ToxiproxyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated aims on a cluster stop the consumers alone for find_s; the node leading
    what grew meanwhile and drained while they read again (bus-3) is cut off and killed:
    not the leader (bus-2), not the node of a stale backlog (bus-1), not the node whose
    backlog grows faster but never drains (bus-2); the coordinator holds only after that."""
    monkeypatch.setitem(BACKLOG, "on", "bus-3")
    aims = family("backlog-kill").candidates(cluster)
    assert {dict(a.params)["find_s"] for a in aims} == {1.0}
    nem = Nemesis(cluster, toxiproxy_url=toxiproxy_url, recorder=(rec := MemoryRecorder()))
    pids = {n: _pid(cluster, n) for n in ("bus-1", "bus-2", "bus-3")}
    # steps at 0.5 (found), 0.9 (cut off), 1.5 (killed), 2.3 (back: the fake names bus-2 again)
    sched = Schedule(1, [FaultEvent(0.0, 3.1, "backlog-kill", ("accounts-a",),
                                    {"lag": "pause", **PARAMS, "find_s": 0.5})])
    peers = ("bus-1~bus-3", "bus-2~bus-3", "bus-1~bus-2")

    def look() -> dict[str, Any]:
        state = server.state()
        return {"cut": [p for p in peers if not state[p]["enabled"]],
                **_states(cluster, ["accounts-a", "coordinator", *pids])()}

    seen = _sample(nem, sched, [0.25, 0.7, 1.2, 1.9], look)
    assert seen[0.25]["accounts-a"][1] == "stopped" and seen[0.25]["coordinator"][1] == "running"
    assert seen[0.25]["cut"] == []
    assert seen[0.7]["accounts-a"][1] == "running" and seen[0.7]["coordinator"][1] == "stopped"
    assert seen[1.2]["accounts-a"][1] == "stopped" and seen[1.2]["coordinator"][1] == "running"
    assert seen[1.2]["cut"] == ["bus-1~bus-3", "bus-2~bus-3"]
    assert seen[1.9]["bus-3"][1] == "dead"
    assert seen[1.9]["bus-2"] == (pids["bus-2"], "running") and seen[1.9]["bus-1"] == (pids["bus-1"], "running")
    assert not any(server.state()[p]["enabled"] is False for p in peers)
    assert kernel_state(_pid(cluster, "bus-3")) == "running"
    assert becomes(_pid(cluster, "accounts-a"), "running")
    # the stop record says why: what grew and drained, by node (the stale bus-1 not at all)
    said = rec.events[-1]["value"]["description"]
    assert re.search(r": accounts-a, coordinator, bus-3 \(messages that grew and drained while they "
                     r"stopped, by node: bus-3 \d+(, bus-2 \d+)?\)$", said), said


def test_a_heal_before_the_strike_is_said_in_the_stop_record(cluster: Topology, toxiproxy_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The event ends while the consumers still stop alone (the find outlasts it, as when a
    broker's probes are slow): no node is struck, and the history does not pretend one was."""
    monkeypatch.setitem(BACKLOG, "on", "bus-3")
    nem = Nemesis(cluster, toxiproxy_url=toxiproxy_url, recorder=(rec := MemoryRecorder()))
    pids = {n: _pid(cluster, n) for n in ("bus-1", "bus-2", "bus-3")}
    sched = Schedule(1, [FaultEvent(0.0, 0.3, "backlog-kill", ("accounts-a",),
                                    {"lag": "pause", **PARAMS, "find_s": 0.6})])
    seen = _sample(nem, sched, [0.9], _states(cluster, ["accounts-a", *pids]))
    assert seen[0.9]["accounts-a"][1] == "running"
    assert all(seen[0.9][n] == (pid, "running") for n, pid in pids.items())
    said = rec.events[-1]["value"]["description"]
    assert re.search(r": accounts-a, coordinator \(healed 0\.\d s in, before a node was struck\)$", said), said


def test_bad_targets_and_parameters_name_the_valid_choices(topology: Topology, toxiproxy_url: str) -> None:
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder())
    with pytest.raises(BadInput, match="nodes that read from a broker: accounts-a, accounts-b, coordinator"):
        nem.validate(Schedule(1, [FaultEvent(0, 1, "backlog-kill", ("broker",), {})]))
    with pytest.raises(BadInput, match="lag must be one of pause, cut"):
        nem.validate(Schedule(1, [FaultEvent(0, 1, "backlog-kill", ("accounts-a",), {"lag": "stop"})]))
    no_broker = Topology([n for n in topology.nodes if n.role != "broker"], topology.links)
    assert family("backlog-kill").candidates(no_broker) == []
