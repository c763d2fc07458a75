"""Seeded schedules: reproducible byte for byte, healable, and strict about their input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultkit import sleeper

from harness.topology import Link, Topology
from faults.catalog import CATALOG
from faults.family import EVERYTHING
from faults.link import ToxicFamily
from faults.schedule import FAMILIES, FaultEvent, Schedule, generate
from harness.errors import BadInput


def _topology(tmp: Path) -> Topology:
    """Nodes with (unstarted) processes: generation only reads the topology."""
    nodes = [sleeper("coordinator", tmp, "coordinator"), sleeper("accounts-a", tmp),
             sleeper("accounts-b", tmp), sleeper("ledger", tmp), sleeper("rabbit", tmp, "broker")]
    links = [Link(n.name, "rabbitmq", f"{n.name}-rabbitmq") for n in nodes[:4]]
    return Topology(nodes, links)


ALL = [f for f in FAMILIES if not f.startswith("docker") and f != "failpoint"]


def test_same_seed_gives_byte_identical_schedule_json(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    generate(42, families=ALL, duration=60, topology=topo, intensity=0.7).dump(a)
    generate(42, families=ALL, duration=60, topology=_topology(tmp_path), intensity=0.7).dump(b)
    generate(43, families=ALL, duration=60, topology=topo, intensity=0.7).dump(c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(json.loads(a.read_text())["events"]) >= 3


def _overlapping(s: Schedule) -> list[tuple[FaultEvent, FaultEvent]]:
    return [(e, f) for i, e in enumerate(s.events) for f in s.events[i + 1:]
            if f.at < e.end and e.at < f.end]


def _is_toxic(e: FaultEvent) -> bool:
    return isinstance(CATALOG[e.fault], ToxicFamily)


def _slows(e: FaultEvent) -> bool:
    """A toxic that only slows its link (holds only its proxy)."""
    fam = CATALOG[e.fault]
    return isinstance(fam, ToxicFamily) and not fam.cuts


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("intensity", [0.2, 0.5, 1.0])
def test_faults_on_one_node_never_overlap_and_all_heal_early(tmp_path: Path, seed: int,
                                                            intensity: float) -> None:
    """Except a toxic that only slows, which holds only its own proxy."""
    topo = _topology(tmp_path)
    s = generate(seed, families=ALL, duration=30, topology=topo, intensity=intensity)
    assert s.events and s.end <= 30 * 0.85 + 1e-6
    proxy_node = {link.proxy: link.node for link in topo.links}
    for e, f in _overlapping(s):
        held = CATALOG[e.fault].touches(topo, e.targets) | CATALOG[f.fault].touches(topo, f.targets)
        assert EVERYTHING not in held and "partition-coordinator" not in (e.fault, f.fault), (e, f)
        if "backlog-kill" in (e.fault, f.fault) and not (_slows(e) or _slows(f)):
            # it holds the broker and the coordinator as well as its consumers
            assert not {"rabbit", "coordinator"} & {proxy_node.get(t, t) for t in e.targets + f.targets}, (e, f)
        if _is_toxic(e) and _is_toxic(f):
            assert not set(e.targets) & set(f.targets), (e, f)  # one proxy, one toxic fault
        elif not (_slows(e) or _slows(f)):
            nodes_e = {proxy_node.get(t, t) for t in e.targets}
            nodes_f = {proxy_node.get(t, t) for t in f.targets}
            assert not nodes_e & nodes_f, (e, f)


def test_a_toxic_may_overlap_a_process_fault_on_its_own_node(tmp_path: Path) -> None:
    """A slow link to a node that is also crashing or paused: combined, as in Jepsen. A
    link cut by a toxic (timeout, reset, limit-data) never overlaps its node's crash: the
    node might not start behind it."""
    topo = _topology(tmp_path)
    proxy_node = {link.proxy: link.node for link in topo.links}
    same_node = [(e, f) for seed in range(25)
                 for e, f in _overlapping(generate(seed, families=ALL, duration=30, topology=topo))
                 if _is_toxic(e) != _is_toxic(f) and CATALOG[(f if _is_toxic(e) else e).fault].kind == "node"
                 and {proxy_node.get(t, t) for t in e.targets} & {proxy_node.get(t, t) for t in f.targets}]
    assert len(same_node) >= 3, same_node
    assert all(_slows(e if _is_toxic(e) else f) for e, f in same_node), same_node


def test_intensity_raises_the_share_of_time_under_fault(tmp_path: Path) -> None:
    topo = _topology(tmp_path)

    def busy(intensity: float) -> float:
        return sum(sum(e.duration for e in generate(s, families=["latency"], duration=60, topology=topo,
                                                     intensity=intensity).events) for s in range(10))

    assert busy(0.9) > 1.5 * busy(0.2)


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    s = generate(7, families=ALL, duration=20, topology=_topology(tmp_path))
    s.dump(tmp_path / "schedule.json")
    assert Schedule.load(tmp_path / "schedule.json") == s


def test_families_outside_the_topology_are_skipped_or_refused(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    s = generate(1, families=["docker-kill", "kill"], duration=20, topology=topo)
    assert {e.fault for e in s.events} == {"kill"}
    with pytest.raises(BadInput, match="none of the fault families docker-kill applies"):
        generate(1, families=["docker-kill"], duration=20, topology=topo)
    with pytest.raises(BadInput, match="valid faults: latency"):
        generate(1, families=["latency", "earthquake"], duration=20, topology=topo)


@pytest.mark.parametrize("text,needle", [
    ("not json", "is not JSON"),
    ('{"events": 3}', "a schedule is an object"),
    ('{"events": [{"at": -1, "duration": 1, "fault": "kill"}]}', "event 0: at must be"),
    ('{"events": [{"at": 1, "fault": "kill"}]}', "event 0: missing duration"),
    ('{"events": [{"at": 1, "duration": 1, "fault": "kill", "targets": "a"}]}', "targets must be a list"),
    ('{"seed": "x", "events": []}', "seed must be an integer"),
])
def test_malformed_files_are_bad_input(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(text)
    with pytest.raises(BadInput, match=needle):
        Schedule.load(path)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read schedule"):
        Schedule.load(tmp_path / "nope.json")


def test_event_json_shape() -> None:
    e = FaultEvent(1.5, 2.0, "latency", ("a-rabbitmq",), {"latency_ms": 10})
    assert e.to_json() == {"at": 1.5, "duration": 2.0, "fault": "latency", "targets": ["a-rabbitmq"],
                           "params": {"latency_ms": 10}}
    assert FaultEvent.from_json(e.to_json()) == e
