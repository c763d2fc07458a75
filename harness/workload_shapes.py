"""Workload shapes: what the clients ask for, one small object per shape.

Bugs in 2PC payment systems hide from uniform traffic. They show up when many
payments are in flight as a fault hits (`burst`), when payments contend for one
or two accounts (`hot`), when concurrent debits race a funds check on an account
near zero (`drain`), when a client re-submits a payment id after an unknown
outcome (`retry`), and `mixed` moves through all of them within one run.

A shape is an endless stream of requests drawn from one seeded `Draft`, so the
same seed gives the same requests whatever the timing. Timing is only a hint
(`pause_s`, `width`) that the client loop in harness.workload honours. Adding a
shape is adding one class decorated with `@shape_class`; docs/workloads.md
describes each.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from harness.errors import BadInput
from harness.model import Transfer

if TYPE_CHECKING:
    from harness.workload import WorkloadSpec

__all__ = ["Request", "Draft", "Shape", "SHAPES", "shape", "shape_names"]


@dataclass(frozen=True)
class Request:
    """One generated operation: f is "transfer" (with `transfer`) or "read".

    `retries`: how many times the client re-submits this payment id if an attempt
    ends unknown (`info`), as a client holding an idempotency key does.
    `pause_s`: the client waits this long before issuing it (a lull).
    `width`: while this request is next, at most this many clients are busy at
    once (None: `spec.clients`); a burst raises it, a lull lowers it.
    `shape`: the shape that made it (for statistics and reports).
    """

    f: str
    transfer: Transfer | None = None
    retries: int = 0
    pause_s: float = 0.0
    width: int | None = None
    shape: str = ""


class Draft:
    """What shapes draw from: the spec, one seeded rng, the accounts, and a model of
    the balances (each transfer applied in request order when its source could pay).

    The model is not the target's truth (faults abort payments); it only lets
    `drain` size amounts near what an account holds, deterministically.
    """

    def __init__(self, spec: WorkloadSpec, accounts: list[str], rng: random.Random) -> None:
        self.spec, self.accounts, self.rng = spec, accounts, rng
        self.total = spec.accounts * spec.initial_balance
        self.model = {a: spec.initial_balance for a in accounts}
        self.n = 0

    def pair(self) -> tuple[str, str]:
        source, dest = self.rng.sample(self.accounts, 2)
        return source, dest

    def other(self, account: str) -> str:
        return self.rng.choice([a for a in self.accounts if a != account])

    def amount(self) -> int:
        """1..max_amount, or (overdraft_share of the time) more than the whole bank."""
        rng, spec = self.rng, self.spec
        if rng.random() < spec.overdraft_share:
            return self.total + rng.randint(1, spec.max_amount)
        return rng.randint(1, spec.max_amount)

    def transfer(self, source: str, dest: str, amount: int, shape: str, *, retries: int = 0,
                 pause_s: float = 0.0, width: int | None = None) -> Request:
        """The next payment id ("pay-000001", ...) for this transfer; updates the model."""
        self.n += 1
        if self.model[source] >= amount:
            self.model[source] -= amount
            self.model[dest] += amount
        return Request("transfer", Transfer(f"pay-{self.n:06d}", source, dest, amount),
                       retries=retries, pause_s=pause_s, width=width, shape=shape)

    def uniform(self, shape: str, **hints: float | int | None) -> Request:
        source, dest = self.pair()
        return self.transfer(source, dest, self.amount(), shape, **hints)  # type: ignore[arg-type]


class Shape(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]
    in_mix: ClassVar[bool]  # does `mixed` move through it

    def requests(self, d: Draft) -> Iterator[Request]: ...


SHAPES: dict[str, Shape] = {}


def shape_class(cls: type) -> type:
    """Register a shape (one instance) under its name; the order is the docs' order."""
    SHAPES[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


def shape_names() -> list[str]:
    return list(SHAPES)


def shape(name: str) -> Shape:
    """The shape called `name`; BadInput listing the valid names otherwise."""
    try:
        return SHAPES[name]
    except KeyError:
        raise BadInput(f"unknown workload {name!r}; valid workloads: {', '.join(SHAPES)}") from None


@shape_class
class Uniform:
    name = "uniform"
    summary = "transfers between random accounts at the clients' pace; a share are overdrafts"
    in_mix = False

    def requests(self, d: Draft) -> Iterator[Request]:
        while True:
            yield d.uniform(self.name)


@shape_class
class Burst:
    name = "burst"
    summary = ("a lull (one client, a few payments a second) then `burst_clients` payments "
               "issued at once, over and over: many in flight when a fault hits")
    in_mix = True
    lull = (3, 6)            # payments per lull
    lull_pause_s = (0.1, 0.3)

    def requests(self, d: Draft) -> Iterator[Request]:
        rng, size = d.rng, d.spec.burst_clients
        while True:
            for _ in range(rng.randint(*self.lull)):
                yield d.uniform(self.name, width=1, pause_s=round(rng.uniform(*self.lull_pause_s), 3))
            for _ in range(size):
                yield d.uniform(self.name, width=size)


@shape_class
class Hot:
    name = "hot"
    summary = "most payments (80 %) move money into or out of one of two hot accounts"
    in_mix = True
    share = 0.8

    def requests(self, d: Draft) -> Iterator[Request]:
        rng = d.rng
        hot = rng.sample(d.accounts, 2)
        while True:
            if rng.random() < self.share:
                h = rng.choice(hot)
                o = d.other(h)
                source, dest = (h, o) if rng.random() < 0.5 else (o, h)
            else:
                source, dest = d.pair()
            yield d.transfer(source, dest, d.amount(), self.name)


@shape_class
class Drain:
    name = "drain"
    summary = ("groups of 1-3 back-to-back debits from one account, each more than half of "
               "what it holds: concurrent debits race the funds check and balances hit zero")
    in_mix = True
    group = (1, 3)

    def requests(self, d: Draft) -> Iterator[Request]:
        rng = d.rng
        while True:
            source = rng.choice(d.accounts)
            held = d.model[source]  # at the group's start: any two of the group exceed it
            for _ in range(rng.randint(*self.group)):
                amount = rng.randint(held // 2 + 1, held) if held > 0 else rng.randint(1, d.spec.max_amount)
                yield d.transfer(source, d.other(source), amount, self.name)


@shape_class
class Retry:
    name = "retry"
    summary = ("uniform transfers whose client re-submits the same payment id (1 to "
               "`max_retries` times) while attempts end unknown, each attempt a new process")
    in_mix = True

    def requests(self, d: Draft) -> Iterator[Request]:
        while True:
            source, dest = d.pair()
            yield d.transfer(source, dest, d.amount(), self.name,
                             retries=d.rng.randint(1, d.spec.max_retries))


@shape_class
class Mixed:
    name = "mixed"
    summary = ("segments of 30-60 requests of each shape marked for the mix (burst, hot, "
               "drain, retry), in a seeded order that reshuffles every round")
    in_mix = False
    segment = (30, 60)

    def requests(self, d: Draft) -> Iterator[Request]:
        streams = {name: s.requests(d) for name, s in SHAPES.items() if s.in_mix}
        rng = d.rng
        while True:
            order = list(streams)
            rng.shuffle(order)
            for name in order:
                stream = streams[name]
                for _ in range(rng.randint(*self.segment)):
                    yield next(stream)
