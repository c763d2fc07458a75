"""The Adapter contract: everything txchaos knows about a target system.

An adapter starts and stops the target, says what it is made of (its
`Topology`: nodes that faults can crash or pause, links that faults can cut),
submits operations, and snapshots the final state in the shape of
docs/formats.md. The harness never reaches a target any other way, and faults,
workload and checkers never see an adapter: they see a Topology, a history and
a state.

Required: `start`, `stop`, `transfer`, `snapshot`. Optional capabilities are
declared in `capabilities` and discovered by callers, never assumed:

- "read": `read()` returns balances (a client read, recorded in the history);
- "snapshot-reads": reads are atomic snapshots, so their sum is checkable;
- "no-negative": the target promises no balance goes below zero;
- "failpoints": `arm_failpoint()` crashes/delays a node at a named protocol step;
- "mutants": `mutants()` names seeded bugs, chosen with TargetContext.mutant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.model import OpResult, Transfer
from harness.topology import Link, Node, Topology

if TYPE_CHECKING:
    from harness.lab import Lab

__all__ = ["Adapter", "Link", "Node", "TargetContext", "Topology", "TargetError"]  # Link, Node, Topology: harness.topology


class TargetError(RuntimeError):
    """The target could not be started or reached: infrastructure, not a verdict."""


@dataclass
class TargetContext:
    """What the harness hands an adapter to start a target."""

    lab: Lab
    run_dir: Path
    accounts: Mapping[str, int]  # initial balances
    mutant: str | None = None
    failpoints: Mapping[str, str] = field(default_factory=dict)  # node -> spec, armed at start
    seed: int = 0

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"


class Adapter(ABC):
    """A target system. Subclass it, or load one by entry point or module:Class."""

    name: ClassVar[str]
    services: ClassVar[frozenset[str]] = frozenset()  # lab services the target needs
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # the target's own timeouts in seconds, e.g. {"vote": 5, "in-doubt": 8}: generated
    # schedules hold some fault windows longer than the longest (docs/faults.md)
    timeouts: ClassVar[dict[str, float]] = {}

    @abstractmethod
    def start(self, ctx: TargetContext) -> Topology:
        """Start the target with the given accounts; return when it serves requests."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every process of the target and reap it; safe to call twice."""

    @abstractmethod
    async def transfer(self, t: Transfer) -> OpResult:
        """Submit one payment. OK: it committed; FAIL: it certainly did not;
        UNKNOWN: anything else (timeouts, connection errors, 5xx)."""

    @abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """The final state of every participant, in the docs/formats.md shape."""

    async def read(self) -> OpResult:
        """Balances as a client sees them (capability "read")."""
        raise NotImplementedError(f"{self.name} does not offer reads")

    def mutants(self) -> list[str]:
        """Names of seeded bugs this target can switch on (capability "mutants")."""
        return []

    def failpoints(self) -> list[str]:
        """Names of failpoints this target offers (capability "failpoints")."""
        return []

    async def arm_failpoint(self, node: str, name: str, action: str = "crash", **params: Any) -> None:
        """Arm a failpoint on a running node (capability "failpoints")."""
        raise NotImplementedError(f"{self.name} has no failpoints")

    async def aclose(self) -> None:
        """Release client resources (HTTP sessions); the target keeps running."""
