"""Fault schedules: timed fault events, generated from a seed or read from a file.

A schedule is data, not behaviour: the Nemesis runs it. The same seed, fault
mix, duration, intensity and topology give a byte-identical schedule.json, so a
failing run replays from its seed or from the file it wrote. Every event has a
start and a duration; the last one heals before `duration`, leaving the run a
quiet tail to quiesce in.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.topology import Topology
from faults.catalog import BROKER, CATALOG, CONTAINER, FAMILIES, LINK, NODE, check_params, family
from harness.errors import BadInput

__all__ = ["FaultEvent", "Schedule", "generate", "FAMILIES", "SCHEDULE_VERSION"]

SCHEDULE_VERSION = 1
_EVERYTHING = "*"  # a fault that touches every node (broker faults) conflicts with any other


@dataclass(frozen=True)
class FaultEvent:
    """One fault: starts `at` seconds after chaos starts and heals `duration` seconds later."""

    at: float
    duration: float
    fault: str
    targets: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.at + self.duration

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "duration": self.duration, "fault": self.fault,
                "targets": list(self.targets), "params": dict(self.params)}

    @classmethod
    def from_json(cls, d: Any, where: str = "event") -> FaultEvent:
        if not isinstance(d, dict):
            raise BadInput(f"{where}: expected an object with at, duration, fault, targets, params")
        missing = [k for k in ("at", "duration", "fault") if k not in d]
        if missing:
            raise BadInput(f"{where}: missing {', '.join(missing)}")
        at, duration = d["at"], d["duration"]
        for key, value in (("at", at), ("duration", duration)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                    or not math.isfinite(value):
                raise BadInput(f"{where}: {key} must be a number of seconds >= 0, got {value!r}")
        targets = d.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise BadInput(f"{where}: targets must be a list of names, got {targets!r}")
        params = d.get("params", {})
        if not isinstance(params, dict):
            raise BadInput(f"{where}: params must be an object, got {params!r}")
        if not isinstance(d["fault"], str):
            raise BadInput(f"{where}: fault must be a name, got {d['fault']!r}")
        return cls(float(at), float(duration), d["fault"], tuple(targets), dict(params))


@dataclass
class Schedule:
    """The fault events of one run, in start order."""

    seed: int | None
    events: list[FaultEvent]

    def to_json(self) -> dict[str, Any]:
        return {"version": SCHEDULE_VERSION, "seed": self.seed,
                "events": [e.to_json() for e in self.events]}

    @classmethod
    def from_json(cls, d: Any) -> Schedule:
        if not isinstance(d, dict) or not isinstance(d.get("events"), list):
            raise BadInput('a schedule is an object {"seed": ..., "events": [...]}')
        seed = d.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadInput(f"schedule seed must be an integer or null, got {seed!r}")
        events = [FaultEvent.from_json(e, f"event {i}") for i, e in enumerate(d["events"])]
        return cls(seed, sorted(events, key=lambda e: e.at))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n"

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps())

    @classmethod
    def load(cls, path: str | Path) -> Schedule:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise BadInput(f"cannot read schedule {path}: {e.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInput(f"schedule {path} is not JSON: {e}") from None
        try:
            return cls.from_json(data)
        except BadInput as e:
            raise BadInput(f"schedule {path}: {e}") from None

    @property
    def end(self) -> float:
        return max((e.end for e in self.events), default=0.0)

    def coverage(self) -> dict[tuple[str, str], float]:
        """Seconds under fault per (family, target): what a run exercised, for
        coverage tables. A fault without targets counts as target "*"."""
        seconds: dict[tuple[str, str], float] = {}
        for e in self.events:
            for target in e.targets or ("*",):
                seconds[(e.fault, target)] = seconds.get((e.fault, target), 0.0) + e.duration
        return seconds


# -- generation ---------------------------------------------------------------
def _candidates(name: str, topology: Topology, failpoints: Sequence[str]) -> list[tuple[str, ...]]:
    """Every target tuple `name` could hit in this topology, in a stable order."""
    kind = CATALOG[name].kind
    linked = sorted({link.node for link in topology.links})
    if kind == LINK:
        return [(p,) for p in sorted(link.proxy for link in topology.links)]
    if name == "partition-coordinator":
        return [()] if any(n.role == "coordinator" and n.name in linked for n in topology.nodes) else []
    if name == "partition-split":
        parts = sorted(n.name for n in topology.by_role("participant") if n.name in linked)
        if len(parts) < 2:
            return []
        return [tuple(parts[:k]) for k in range(1, len(parts))] + \
               [tuple(parts[k:]) for k in range(1, len(parts))]
    if name.startswith("partition"):
        return [(n,) for n in linked]
    if kind == NODE:
        if name == "failpoint" and not failpoints:
            return []
        return [(n.name,) for n in sorted(topology.nodes, key=lambda n: n.name)
                if n.process is not None and n.role != "broker"]
    if kind == BROKER:
        return [(n.name,) for n in sorted(topology.by_role("broker"), key=lambda n: n.name)
                if n.process is not None]
    if kind == CONTAINER:
        return [(n.name,) for n in sorted(topology.nodes, key=lambda n: n.name) if n.container]
    return []


def _params(name: str, rng: random.Random, failpoints: Sequence[str]) -> dict[str, Any]:
    p: dict[str, Any] = {}
    if CATALOG[name].kind == LINK and name != "link-down":
        p["direction"] = rng.choice(["both", "both", "upstream", "downstream"])
    if name == "latency":
        p["latency_ms"] = rng.choice([50, 100, 200, 500, 1000])
        p["jitter_ms"] = p["latency_ms"] // 4
    elif name == "bandwidth":
        p["rate_kbps"] = rng.choice([1, 8, 64])
    elif name == "partition-flap":
        p["period_s"] = round(rng.uniform(0.5, 2.0), 2)
    elif name == "failpoint":
        p["name"] = rng.choice(sorted(failpoints))
    return check_params(name, p)


def _touches(topology: Topology, name: str, targets: tuple[str, ...]) -> set[str]:
    kind = CATALOG[name].kind
    if kind == BROKER or name == "partition-coordinator":
        return {_EVERYTHING}
    if kind == LINK:
        return {link.node for link in topology.links if link.proxy in targets}
    return set(targets)


def generate(seed: int, *, families: Sequence[str], duration: float, topology: Topology,
             intensity: float = 0.5, failpoints: Sequence[str] = ()) -> Schedule:
    """A seeded schedule of `families` over `duration` seconds.

    `intensity` (0 < i <= 1) is roughly the share of time under fault; above 0.5
    faults on disjoint nodes may overlap. Faults on the same node never overlap,
    so each heals exactly what it did. The last fault heals by 85% of `duration`.
    """
    for name in families:
        family(name)
    if not families:
        raise BadInput(f"choose at least one fault family; valid: {', '.join(CATALOG)}")
    if not 0 < intensity <= 1:
        raise BadInput(f"intensity must be in (0, 1], got {intensity}")
    if duration <= 0:
        raise BadInput(f"chaos duration must be positive, got {duration}")
    rng = random.Random(seed)
    usable = {n: c for n in dict.fromkeys(families) if (c := _candidates(n, topology, failpoints))}
    if not usable:
        hint = " (failpoint also needs the target's failpoint names)" if "failpoint" in families else ""
        raise BadInput(f"none of the fault families {', '.join(families)} applies to this topology "
                       f"(nodes: {', '.join(n.name for n in topology.nodes)}){hint}")
    names = list(usable)
    end = duration * 0.85
    longest = max(1.0, duration * 0.2)
    overlap = max(0.0, intensity - 0.5) * 2
    placed: list[tuple[FaultEvent, set[str]]] = []
    t = rng.uniform(0.0, longest * (1 - intensity) + 0.5)
    while True:
        name = rng.choice(names)
        targets = rng.choice(usable[name])
        dur = rng.uniform(min(1.0, longest / 2), longest)
        touched = _touches(topology, name, targets)
        moved = True
        while moved:  # start after every placed fault that touches the same nodes
            moved = False
            for ev, nodes in placed:
                clash = nodes & touched or _EVERYTHING in nodes | touched
                if clash and ev.at < t + dur and t < ev.end + 0.1:
                    t, moved = ev.end + 0.1, True
        if t + dur > end:
            break
        event = FaultEvent(round(t, 3), round(dur, 3), name, targets, _params(name, rng, failpoints))
        placed.append((event, touched))
        if rng.random() < overlap:
            t += rng.uniform(0.1, dur)
        else:
            t += dur + dur * (1 - intensity) / intensity * rng.uniform(0.5, 1.5)
    events = sorted((e for e, _ in placed), key=lambda e: (e.at, e.fault, e.targets))
    return Schedule(seed, events)
