"""One fault family, one object: what it targets, its parameters, and how it is injected.

A `Family` packages everything one kind of fault needs (Jepsen's combined nemesis
does the same): `candidates()` says which targets of a topology it applies to,
`params()` draws random parameters for a generated schedule, `check()` validates
parameters from a file or the command line, `plan()` resolves an event against the
topology (bad input before anything is injected), and `inject()` starts the fault
and returns an `Injection` that knows how to heal it. The schedule generator, the
Nemesis, the CLI and the docs iterate the registry (`faults.catalog`), so adding a
family is one subclass decorated with `@register`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from faults.injection import Injection
from harness.errors import BadInput
from harness.topology import LEADER_META, Node, Topology

if TYPE_CHECKING:
    from faults.toxiproxy import ToxiproxyServer

__all__ = ["Family", "Aim", "Planned", "Reach", "register", "REGISTRY", "EVERYTHING",
           "LINK", "NODE", "BROKER", "CONTAINER", "PARTITION", "SCALES"]

LINK = "link"            # targets are Toxiproxy proxy names (Link.proxy)
NODE = "node"            # targets are node names whose Node.process is set
BROKER = "broker"        # targets are nodes of role "broker" with a process
CONTAINER = "container"  # targets are node names with a container, "name=<c>" or "label=<k>=<v>"
PARTITION = "partition"  # targets are node names; their links are cut

EVERYTHING = "*"  # what a fault touches when it touches every node (a broker): clashes with all
SCALES = ("short", "medium", "long")  # the time scales a generated window is drawn on

ArmFailpoint = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Aim:
    """One thing a family can hit in a topology: its targets and any pinned parameters
    (a failpoint's name). The generator cycles through aims for coverage."""

    targets: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
        return (self.targets, self.params)


@dataclass
class Planned:
    """An event checked against the topology: exactly what it will hit."""

    targets: tuple[str, ...]
    params: dict[str, Any]
    proxies: list[str] = field(default_factory=list)
    description: str | None = None


@dataclass
class Reach:
    """What the Nemesis can reach to inject faults: never an adapter.

    `keep` registers an injection so it is healed on every way out (used when a
    blocking injection is cancelled midway); `spawn` runs a background task (a
    flapping partition, a crash storm) that the Nemesis cancels on its way out.
    """

    topology: Topology
    toxiproxy: ToxiproxyServer
    arm_failpoint: ArmFailpoint | None = None
    docker: Any = None
    keep: Callable[[Injection], None] = lambda inj: None
    spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]] = \
        lambda coro: asyncio.get_running_loop().create_task(coro)

    def node(self, name: str) -> Node:
        try:
            return self.topology.node(name)
        except KeyError:
            raise BadInput(f"unknown node {name!r}; nodes: "
                           f"{', '.join(n.name for n in self.topology.nodes)}") from None


def broker_holds(topology: Topology, targets: tuple[str, ...]) -> set[str]:
    """What a fault on broker nodes holds: everything for a lone broker (every payment
    passes it: an outage), the cluster's nodes on a cluster (the cluster serves: a
    failover, during which faults on the target still test something, but a second node
    down at once would be an outage of the majority)."""
    if targets and all(LEADER_META in topology.node(t).meta for t in targets):
        return {n.name for n in topology.nodes if LEADER_META in n.meta}
    return {EVERYTHING}


def number(fault: str, params: dict[str, Any], key: str, *, low: float = 0.0,
           high: float | None = None) -> None:
    """BadInput unless params[key] is a number in [low, high]."""
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"fault {fault!r}: parameter {key} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise BadInput(f"fault {fault!r}: parameter {key} must be {bound}, got {value!r}")


class Family:
    """Base of every fault family. Subclasses set the class attributes and override
    what differs; `@register` adds an instance to the registry.

    weight: the family's share of a generated schedule, relative to the others.
    default: part of the default mix (safe for any single run).
    scales: the time scales its windows are drawn on (SCALES).
    open_params: extra parameters pass through to the target unchecked.
    role_weight: how many times per cycle it aims at a node of each role (others once);
    None: the generator's default (the coordinator three times).
    needs: what a run must prepare before the target starts for the family to apply
    (faults.clock.CLOCK: nodes started on txchaos clocks).
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    weight: ClassVar[float] = 1.0
    default: ClassVar[bool] = False
    scales: ClassVar[tuple[str, ...]] = SCALES
    open_params: ClassVar[bool] = False
    role_weight: ClassVar[dict[str, int] | None] = None
    needs: ClassVar[frozenset[str]] = frozenset()

    # -- generation ------------------------------------------------------------
    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """Every aim this family has in `topology`, in a stable order ([] if none)."""
        return []

    def claims(self, topology: Topology) -> bool:
        """Laid once in each run of `topology` before the others take turns: a window that
        holds many nodes at once, which the others seldom leave free together."""
        return False

    def params(self, rng: random.Random, aim: Aim) -> dict[str, Any]:
        """Random parameters for one generated event (checked, defaults merged)."""
        return self.check({**self.draw(rng), **dict(aim.params)})

    def draw(self, rng: random.Random) -> dict[str, Any]:
        """The randomised part of `params()`; the defaults fill the rest."""
        return {}

    def window(self, rng: random.Random, low: float, high: float, params: dict[str, Any]) -> float:
        """The event's duration, given the bounds of the time scale drawn for it."""
        return rng.uniform(low, high)

    def acts_on(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        """The nodes an event acts on (their roles weigh its aims in a schedule)."""
        return set(targets)

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        """What an event holds: two events holding one thing never overlap, so each heal
        undoes exactly its own fault. By default its nodes."""
        return self.acts_on(topology, targets)

    # -- validation ------------------------------------------------------------
    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate `params`; return them merged over the defaults.

        Unknown keys are errors (a typo would otherwise silently inject the default)."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown and not self.open_params:
            valid = ", ".join(self.defaults) or "none"
            raise BadInput(f"fault {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                           f"valid: {valid}")
        merged = {**self.defaults, **params}
        for key in self.defaults:
            self.check_value(key, merged)
        return merged

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        """Check one known parameter; numbers >= 0 unless a family says otherwise."""
        number(self.name, params, key)

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        """Resolve an event against the topology; BadInput naming the valid choices."""
        raise NotImplementedError

    # -- injection -------------------------------------------------------------
    async def inject(self, reach: Reach, plan: Planned) -> Injection:
        """Start the fault now. By default the blocking `apply()` runs in a thread; if
        cancelled midway, what it did is still handed to `reach.keep` to be healed."""
        fut = asyncio.ensure_future(asyncio.to_thread(self.apply, reach, plan))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            try:
                reach.keep(await fut)
            except Exception:
                pass
            raise

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        """The blocking part of `inject()` (a signal, a toxic, a restart)."""
        raise NotImplementedError


REGISTRY: dict[str, Family] = {}  # name -> family: links, partitions, nodes, brokers, containers
_KIND_ORDER = (LINK, PARTITION, NODE, BROKER, CONTAINER)


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: one instance of `cls` joins the registry under `cls.name`
    (kept grouped by kind, in registration order within a kind, whatever the import order)."""
    if cls.name in REGISTRY:
        raise ValueError(f"fault family {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    rank = {kind: i for i, kind in enumerate(_KIND_ORDER)}
    ordered = sorted(REGISTRY.items(), key=lambda item: rank.get(item[1].kind, len(rank)))
    REGISTRY.clear()
    REGISTRY.update(ordered)
    return cls


def heal_together(fault: str, targets: tuple[str, ...], parts: list[Injection]) -> Injection:
    """One Injection that heals several (one per target node or container)."""

    def undo() -> None:
        for part in parts:
            part.heal()

    return Injection(fault, targets, undo)


def each_target(fault: str, targets: tuple[str, ...], hit: Callable[[str], Injection]) -> Injection:
    """Apply `hit` to every target; if one fails, heal the ones already hit."""
    parts: list[Injection] = []
    try:
        for t in targets:
            parts.append(hit(t))
    except BaseException:
        for part in parts:
            part.heal()
        raise
    return heal_together(fault, targets, parts)
