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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faults.catalog import FAMILIES
from harness.errors import BadInput
from harness.topology import Topology

__all__ = ["FaultEvent", "Schedule", "generate", "FAMILIES", "SCHEDULE_VERSION"]

SCHEDULE_VERSION = 1


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

    def coverage(self, topology: Topology | None = None) -> dict[tuple[str, str], float]:
        """Seconds under fault per (family, target): what a run exercised, for
        coverage tables. A fault without targets counts as target "*". Given the
        topology, a link fault's target is named by its node and service
        ("ledger>nats") instead of the proxy."""
        links = {link.proxy: f"{link.node}>{link.service}" for link in (topology.links if topology else [])}
        seconds: dict[tuple[str, str], float] = {}
        for e in self.events:
            for target in e.targets or ("*",):
                key = (e.fault, links.get(target, target))
                seconds[key] = round(seconds.get(key, 0.0) + e.duration, 3)
        return seconds


def generate(seed: int, **kwargs: Any) -> Schedule:
    """A seeded schedule that covers the topology: see faults.generator.generate."""
    from faults.generator import generate as _generate

    return _generate(seed, **kwargs)
