"""Link fault families: a Toxiproxy toxic on one node's link to one service, or the link down.

Toxiproxy's toxics act on one stream each (upstream: client to service, downstream:
service to client), so `direction="both"` adds one toxic per stream. Each toxic
family only says which toxic it is and how its parameters map to the toxic's
attributes; adding one is one subclass.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from faults.family import LINK, Aim, Family, Planned, Reach, number, register
from faults.injection import Injection
from faults.toxiproxy import ToxicSpec
from harness.errors import BadInput
from harness.topology import Topology

__all__ = ["LinkFamily", "ToxicFamily", "DIRECTIONS"]

DIRECTIONS = ("both", "upstream", "downstream")
_COMMON = {"direction": "both", "toxicity": 1.0}


class LinkFamily(Family):
    """Targets are proxy names; the nodes acted on are the links' own nodes. Each link
    is aimed at once per cycle: the coordinator already has one link per service."""

    kind = LINK
    role_weight: ClassVar[dict[str, int] | None] = {}

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((p,)) for p in sorted(link.proxy for link in topology.links)]

    def acts_on(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        return {link.node for link in topology.links if link.proxy in targets}

    def check_value(self, key: str, params: dict[str, Any]) -> None:
        if key == "direction":
            if params[key] not in DIRECTIONS:
                raise BadInput(f"fault {self.name!r}: direction must be one of {', '.join(DIRECTIONS)}, "
                               f"got {params[key]!r}")
        elif key == "toxicity":
            number(self.name, params, key, high=1.0)
        else:
            number(self.name, params, key)

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        valid = [link.proxy for link in reach.topology.links]
        bad = [t for t in targets if t not in valid]
        if not targets or bad:
            raise BadInput(f"{self.name}: unknown link(s) {', '.join(bad) or '(none given)'}; "
                           f"links: {', '.join(valid)}")
        return Planned(targets, params, list(targets))


class ToxicFamily(LinkFamily):
    """A link fault made of one Toxiproxy toxic per stream; heals by removing them."""

    toxic: ClassVar[str]  # Toxiproxy's toxic type
    cuts: ClassVar[bool] = True  # whether data stops getting through (else it is only slowed)

    def touches(self, topology: Topology, targets: tuple[str, ...]) -> set[str]:
        """A toxic that only slows holds only its own proxies: it and a crash, pause or
        partition of the link's node act on different things and heal independently, so
        they may overlap (a slow link to a node that is also crashing, as in Jepsen's
        combined nemesis). One that cuts the link holds the node too: a node restarted
        behind a dead link may be unable to start at all, and its restart would fail for
        a reason the run itself made."""
        links = {f"link:{p}" for p in targets}
        return links | self.acts_on(topology, targets) if self.cuts else links

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        """The toxic's attributes from the (checked) parameters."""
        raise NotImplementedError

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {"direction": rng.choice(["both", "both", "upstream", "downstream"])}

    def toxics(self, params: dict[str, Any]) -> list[ToxicSpec]:
        p = self.check(params)
        streams = ("upstream", "downstream") if p["direction"] == "both" else (p["direction"],)
        return [ToxicSpec(self.toxic, s, float(p["toxicity"]), self.attributes(p)) for s in streams]

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        added: list[tuple[str, list[str]]] = []
        try:
            for proxy in plan.proxies:
                added.append((proxy, reach.toxiproxy.add_toxics(proxy, self.name, plan.params)))
        except BaseException:
            for proxy, names in added:
                reach.toxiproxy.remove_toxics(proxy, names)
            raise

        def undo() -> None:
            for proxy, names in added:
                reach.toxiproxy.remove_toxics(proxy, names)

        return Injection(self.name, plan.targets, undo)


@register
class Latency(ToxicFamily):
    name, toxic, default = "latency", "latency", True
    cuts = False
    description = ("adds latency_ms (+/- jitter_ms) to each stream of a link; 'both' delays requests "
                   "and replies, so the round trip grows by about twice latency_ms")
    defaults = {"latency_ms": 200, "jitter_ms": 50, **_COMMON}

    def draw(self, rng: random.Random) -> dict[str, Any]:
        ms = rng.choice([50, 100, 200, 500, 1000, 3000])
        return {**super().draw(rng), "latency_ms": ms, "jitter_ms": ms // 4}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"latency": int(p["latency_ms"]), "jitter": int(p["jitter_ms"])}


@register
class SlowLink(Latency):
    """Latency past the timers: jitter of a few hundred ms tests little in a 2PC system,
    whose bugs hide behind its timeouts (vote, reply, in-doubt). A message sent on a
    slow link arrives after the timer that waits for it fired, so the window is always
    "long" (past the target's declared timeouts). Slow, not dead: at 3 s each way a
    client's own send timeout (a JetStream publish ack waits 5 s) fails every send and
    the run sees only an outage, which link-down and timeout already give."""

    name = "slow-link"
    description = ("latency of 1-2 s on one link for longer than the target's own timeouts: requests "
                   "sent in the window arrive after the timers waiting for them fired (gray failure)")
    defaults = {"latency_ms": 2000, "jitter_ms": 200, **_COMMON}
    scales = ("long",)
    weight = 4.0
    role_weight = {"coordinator": 4}

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        """The links to a broker, where the protocol's messages and their timers are (all
        links if none goes to a broker): a slow link for a side request only idles."""
        brokers = {n.name for n in topology.by_role("broker")}
        to_broker = sorted(link.proxy for link in topology.links if link.service in brokers)
        return [Aim((p,)) for p in to_broker] or super().candidates(topology, failpoints)

    def draw(self, rng: random.Random) -> dict[str, Any]:
        ms = rng.choice([1000, 1250, 1500, 2000])  # its own values, not Latency's draw
        return {**ToxicFamily.draw(self, rng), "latency_ms": ms, "jitter_ms": ms // 10}


@register
class Bandwidth(ToxicFamily):
    name, toxic, cuts = "bandwidth", "bandwidth", False
    description = "caps a link's throughput at rate_kbps (KB/s)"
    defaults = {"rate_kbps": 16, **_COMMON}

    def draw(self, rng: random.Random) -> dict[str, Any]:
        return {**super().draw(rng), "rate_kbps": rng.choice([1, 8, 64])}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"rate": int(p["rate_kbps"])}


@register
class Timeout(ToxicFamily):
    name, toxic, default = "timeout", "timeout", True
    description = ("blackholes a link: data is swallowed; after timeout_ms (0: never) the "
                   "connection is closed")
    defaults = {"timeout_ms": 0, **_COMMON}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"timeout": int(p["timeout_ms"])}


@register
class Reset(ToxicFamily):
    name, toxic = "reset", "reset_peer"
    description = "resets connections (TCP RST) after timeout_ms"
    defaults = {"timeout_ms": 0, **_COMMON}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"timeout": int(p["timeout_ms"])}


@register
class Slicer(ToxicFamily):
    name, toxic, cuts = "slicer", "slicer", False
    description = "cuts data into small packets of average_size +/- size_variation bytes, delay_us apart"
    defaults = {"average_size": 16, "size_variation": 8, "delay_us": 1000, **_COMMON}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"average_size": int(p["average_size"]), "size_variation": int(p["size_variation"]),
                "delay": int(p["delay_us"])}


@register
class LimitData(ToxicFamily):
    name, toxic = "limit-data", "limit_data"
    description = "closes connections after `bytes` bytes have passed"
    defaults = {"bytes": 4096, **_COMMON}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"bytes": int(p["bytes"])}


@register
class SlowClose(ToxicFamily):
    name, toxic, cuts = "slow-close", "slow_close", False
    description = "delays closing a connection by delay_ms"
    defaults = {"delay_ms": 2000, **_COMMON}

    def attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"delay": int(p["delay_ms"])}


@register
class LinkDown(LinkFamily):
    name, default = "link-down", True
    description = "disables the link's proxy: connections are dropped and refused"

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        from faults.partition import cut

        return cut(reach.toxiproxy, self.name, plan.targets, plan.proxies)
