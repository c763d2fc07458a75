"""Clock fault families: step or skew one node's wall clock (harness.clock), never the machine's.

Timeouts, leases, idempotency windows and in-doubt resolution are driven by
clocks; a 2PC system that measures a safety-relevant interval on the wall clock
(which NTP may step) instead of a monotonic one breaks when the clock jumps.
Healing sets the node's clock true again, which is itself one more step.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from faults.family import Aim, Planned, Reach, register
from faults.injection import Injection
from faults.nodes import NodeFamily
from harness.clock import Clock
from harness.errors import BadInput
from harness.topology import Node, Topology

__all__ = ["ClockFamily", "CLOCK"]

CLOCK = "clock"  # what a clock family needs of a run: its nodes started on txchaos clocks


def clock_of(node: Node) -> Clock | None:
    """The node's clock, if its process was started on one."""
    return getattr(node.process, "clock", None)


class ClockFamily(NodeFamily):
    """Targets are nodes whose process runs on a txchaos clock (Python and JVM
    services the adapter spawned while clock faults were asked for)."""

    needs = frozenset({CLOCK})
    scales = ("medium", "long")
    param: ClassVar[str]  # the one parameter
    choices: ClassVar[tuple[float, ...]]  # the values a generated event draws from
    rule: ClassVar[str]  # what a valid value is, for the error message

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [a for a in super().candidates(topology, failpoints)
                if clock_of(topology.node(a.targets[0])) is not None]

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        planned = super().plan(reach, targets, params)
        for t in targets:
            if clock_of(reach.node(t)) is None:
                on = [n.name for n in reach.topology.nodes if clock_of(n) is not None]
                raise BadInput(f"{self.name}: node {t!r} does not run on a txchaos clock; nodes "
                               f"that do: {', '.join(on) or 'none (the adapter spawns none)'}")
        return planned

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {self.param: rng.choice(self.choices)}

    def valid(self, value: float) -> bool:
        raise NotImplementedError

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.valid(value):
            raise BadInput(f"fault {self.name!r}: parameter {key} must be {self.rule}, got {value!r}")

    def act(self, clock: Clock, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        clocks = [clock_of(reach.node(t)) for t in plan.targets]
        for c in clocks:
            assert c is not None  # plan() checked it
            self.act(c, plan.params)

        def undo() -> None:
            for c in clocks:
                c.reset()  # type: ignore[union-attr]

        return Injection(self.name, plan.targets, undo)


@register
class ClockJump(ClockFamily):
    name = "clock-jump"
    description = ("steps the node's wall clock by `seconds` (backward if negative); monotonic "
                   "clocks stay true; healed by stepping it back to the true time")
    defaults = {"seconds": 60.0}
    param, choices, rule = "seconds", (-300, -60, -15, 15, 60, 300, 3600), "a non-zero number"

    def valid(self, value: float) -> bool:
        return value != 0

    def act(self, clock: Clock, params: dict[str, Any]) -> None:
        clock.jump(float(params["seconds"]))


@register
class ClockSkew(ClockFamily):
    name = "clock-skew"
    description = ("runs the node's wall clock at `rate` times true speed (0.5: half as fast); "
                   "healed by stepping it back to the true time")
    defaults = {"rate": 2.0}
    param, choices, rule = "rate", (0.5, 0.9, 1.1, 2.0, 10.0), "a number in (0, 1000]"

    def valid(self, value: float) -> bool:
        return 0 < value <= 1000

    def act(self, clock: Clock, params: dict[str, Any]) -> None:
        clock.skew(float(params["rate"]))
