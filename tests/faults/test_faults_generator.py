"""Generated schedules cover the topology: every (family x target) over a few seeds, on
three time scales, with storms, failpoints and overlapping faults. Pure generation: the
node processes are never started."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import sleeper

from faults.catalog import DEFAULT_FAULTS, family
from faults.coverage import coverage_lines
from faults.generator import LONG_DEFAULT, time_scales
from faults.schedule import FaultEvent, Schedule, generate
from harness.topology import Link, Topology

COORD_POINTS = ("c-after-log", "c-before-decision")
PART_POINTS = ("p-after-vote", "p-before-apply", "p-mid-apply")
TIMEOUTS = {"vote": 5.0, "in-doubt": 8.0}


def _topology(tmp: Path) -> Topology:
    nodes = [sleeper("coordinator", tmp, "coordinator"), sleeper("accounts-a", tmp),
             sleeper("accounts-b", tmp), sleeper("ledger", tmp), sleeper("bus", tmp, "broker")]
    nodes[0].meta["failpoints"] = list(COORD_POINTS)
    for n in nodes[1:4]:
        n.meta["failpoints"] = list(PART_POINTS)
    links = [Link(n.name, "bus", f"{n.name}-bus") for n in nodes[:4]]
    links.append(Link("coordinator", "http", "coordinator-accounts-a"))
    return Topology(nodes, links)


def _default(seed: int, topo: Topology, duration: float = 30, **kw: object) -> Schedule:
    return generate(seed, families=DEFAULT_FAULTS, duration=duration, topology=topo,
                    failpoints=COORD_POINTS + PART_POINTS, timeouts=TIMEOUTS, **kw)


def _aim(e: FaultEvent) -> tuple[str, tuple[str, ...], str]:
    return (e.fault, e.targets, str(e.params.get("name", "")) if e.fault == "failpoint" else "")


def test_the_default_mix_holds_every_family_safe_for_one_run() -> None:
    for name in ("latency", "timeout", "link-down", "partition", "kill", "pause", "restart",
                 "crash-storm", "failpoint", "broker-kill", "broker-pause"):
        assert name in DEFAULT_FAULTS
    assert not {"docker-kill", "stop", "bandwidth"} & set(DEFAULT_FAULTS)


def test_a_few_seeds_cover_every_family_on_every_target(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    offered = sorted(COORD_POINTS + PART_POINTS)
    wanted = {(name, aim.targets, str(dict(aim.params).get("name", "")))
              for name in DEFAULT_FAULTS for aim in family(name).candidates(topo, offered)}
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    seeds = 0
    while wanted - seen and seeds < 40:
        seen |= {_aim(e) for e in _default(seeds, topo).events}
        seeds += 1
    print(f"{len(wanted)} aims covered by seeds 0..{seeds - 1}")
    assert not wanted - seen, sorted(wanted - seen)
    assert seeds <= 30


def test_consecutive_seeds_continue_where_the_previous_stopped(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    runs = [{_aim(e) for e in _default(seed, topo).events} for seed in range(6)]
    assert all(len(a & b) <= len(a) // 2 for a, b in zip(runs, runs[1:]))
    failpoints = {aim for run in runs for aim in run if aim[0] == "failpoint"}
    assert len(failpoints) >= 8  # of 2 x 2 + 3 x 3 = 13 (node, failpoint) pairs


def test_failpoints_respect_each_nodes_own_and_are_skipped_when_none_are_offered(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    events = [e for seed in range(10) for e in _default(seed, topo).events if e.fault == "failpoint"]
    assert events
    for e in events:
        assert e.params["name"] in (COORD_POINTS if e.targets == ("coordinator",) else PART_POINTS)
    plain = generate(1, families=DEFAULT_FAULTS, duration=30, topology=topo)
    assert plain.events and all(e.fault != "failpoint" for e in plain.events)


@pytest.mark.parametrize("seed", range(10))
def test_windows_come_on_three_time_scales_and_leave_a_quiet_tail(tmp_path: Path, seed: int) -> None:
    topo = _topology(tmp_path)
    s = _default(seed, topo, duration=60)
    assert s.end <= 60 * 0.85 + 1e-6
    assert all(e.duration >= 0.5 for e in s.events)
    assert any(e.duration <= 3.0 for e in s.events)


def test_long_windows_outlast_the_targets_timeouts(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    durations = [e.duration for seed in range(20) for e in _default(seed, topo, duration=60).events]
    low, _ = time_scales(TIMEOUTS)["long"]
    assert low > max(TIMEOUTS.values())
    assert any(3.0 < d < low for d in durations)
    assert sum(d >= low for d in durations) >= 10
    untimed = [e.duration for seed in range(20)
               for e in generate(seed, families=["kill"], duration=60, topology=topo).events]
    assert any(d >= LONG_DEFAULT for d in untimed)
    short_run = [e for seed in range(20) for e in _default(seed, topo, duration=10).events]
    assert short_run and all(e.end <= 8.5 + 1e-6 for e in short_run)


def test_crash_storms_crash_several_times(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    storms = [e for seed in range(10) for e in _default(seed, topo).events if e.fault == "crash-storm"]
    assert len(storms) >= 5
    assert all(1.0 <= e.params["period_s"] <= 3.0 and e.duration >= 3 * e.params["period_s"] - 1e-3
               for e in storms)
    assert {e.targets for e in storms} >= {("coordinator",), ("accounts-a",)}


def test_faults_on_different_nodes_overlap(tmp_path: Path) -> None:
    topo = _topology(tmp_path)

    def overlaps(s: Schedule) -> int:
        return sum(1 for i, e in enumerate(s.events) for f in s.events[i + 1:] if f.at < e.end)

    assert sum(overlaps(_default(seed, topo)) > 0 for seed in range(10)) >= 8
    assert all(overlaps(_default(seed, topo, intensity=0.25)) == 0 for seed in range(10))


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    a = _default(5, _topology(tmp_path)).dumps()
    assert a == _default(5, _topology(tmp_path)).dumps()
    assert a != _default(6, _topology(tmp_path)).dumps()


def test_coverage_names_nodes_for_link_faults(tmp_path: Path) -> None:
    topo = _topology(tmp_path)
    s = Schedule(1, [FaultEvent(1, 2, "latency", ("ledger-bus",), {}),
                     FaultEvent(4, 1.5, "kill", ("ledger",), {}),
                     FaultEvent(6, 1, "kill", ("ledger",), {})])
    assert s.coverage(topo) == {("latency", "ledger>bus"): 2.0, ("kill", "ledger"): 2.5}
    assert s.coverage() == {("latency", "ledger-bus"): 2.0, ("kill", "ledger"): 2.5}
    lines = coverage_lines(s)
    assert lines[0].startswith("coverage: 3 faults, 2 families, 2 targets")
    assert "kill" in lines[2] and "ledger 2.5s" in lines[2]
    assert coverage_lines(Schedule(1, [])) == []
