"""Named failpoints in the 2PC state machine: crash, delay or error at an exact step.

Spec grammar (TXCHAOS_FAILPOINTS, or POST /admin/failpoints in test mode):
    spec    := point ("=" action)? (";" spec)*
    action  := ("crash" | "delay(MS)" | "error") trigger?
    trigger := "@N"  (only on the N-th hit, once)  |  "%P"  (each hit with probability P)
With no trigger the action fires once, on the first hit. `crash` is os._exit:
no cleanup, no flush, exactly like kill -9 at that step.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from dataclasses import dataclass

log = logging.getLogger("txchaos.target.failpoints")

COORDINATOR_POINTS = ("after-log-payment", "after-send-prepare", "before-log-decision",
                      "before-log-commit", "after-log-decision", "after-send-first-decision",
                      "after-send-first-commit")
# The -commit points are the commit branch of the step before them: a crash there leaves
# a commit that some party already saw, while a crash on the abort branch is what presumed
# abort decides anyway, so a sweep that reached the step with an abort learned nothing.
PARTICIPANT_POINTS = ("after-persist-prepared", "after-vote", "before-apply", "mid-apply",
                      "after-apply-before-ack")
ALL_POINTS = COORDINATOR_POINTS + PARTICIPANT_POINTS

_ACTION = re.compile(r"^(crash|error|delay\((\d+)\))(?:@(\d+)|%([0-9.]+))?$")


class FailpointError(RuntimeError):
    """Raised by the `error` action: the step fails as if its I/O had failed."""


class SpecError(ValueError):
    """A failpoint spec that cannot be parsed; the message shows the grammar."""


@dataclass
class Armed:
    point: str
    action: str  # crash | error | delay
    delay_ms: int = 0
    nth: int | None = 1  # fire on this hit only (None: every hit, with probability)
    probability: float = 1.0
    hits: int = 0
    fired: int = 0

    def describe(self) -> dict[str, object]:
        return {"action": self.action, "delay_ms": self.delay_ms, "nth": self.nth,
                "probability": self.probability, "hits": self.hits, "fired": self.fired}


def parse(spec: str, allowed: tuple[str, ...] = ALL_POINTS) -> list[Armed]:
    armed: list[Armed] = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        point, _, action = part.partition("=")
        point, action = point.strip(), (action.strip() or "crash")
        if point not in allowed:
            raise SpecError(f"unknown failpoint {point!r}; known: {', '.join(allowed)}")
        m = _ACTION.match(action)
        if not m:
            raise SpecError(f"bad action {action!r} for {point}: use crash|error|delay(MS), "
                            "optionally followed by @N (N-th hit) or %P (probability)")
        kind = "delay" if m.group(1).startswith("delay") else m.group(1)
        a = Armed(point, kind, delay_ms=int(m.group(2) or 0))
        if m.group(3):
            a.nth = int(m.group(3))
        elif m.group(4):
            p = float(m.group(4))
            if not 0 <= p <= 1:
                raise SpecError(f"probability {p} for {point} is not within 0..1")
            a.nth, a.probability = None, p
        armed.append(a)
    return armed


class Failpoints:
    """The failpoints armed in this process."""

    def __init__(self, allowed: tuple[str, ...] = ALL_POINTS) -> None:
        self.allowed = allowed
        self.armed: dict[str, Armed] = {}

    def arm(self, spec: str) -> list[Armed]:
        new = parse(spec, self.allowed)
        for a in new:
            self.armed[a.point] = a
        return new

    def clear(self) -> None:
        self.armed.clear()

    async def hit(self, point: str, *also: str) -> None:
        """Pass the step named `point` (and `also`, narrower names of the same step)."""
        for name in (point, *also):
            a = self.armed.get(name)
            if a is not None:
                await self._fire(name, a)

    async def _fire(self, point: str, a: Armed) -> None:
        a.hits += 1
        if a.nth is not None:
            if a.hits != a.nth:
                return
        elif random.random() >= a.probability:
            return
        a.fired += 1
        log.warning("failpoint %s fired: %s", point, a.action)
        if a.action == "crash":
            os._exit(137)
        if a.action == "delay":
            await asyncio.sleep(a.delay_ms / 1000)
        elif a.action == "error":
            raise FailpointError(f"failpoint {point} injected an error")
