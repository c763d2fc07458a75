"""The fault families txchaos knows: their targets, parameters and defaults.

One table, so that the schedule generator, the Nemesis's validation and the
docs agree on what each fault name means. Pure data and checks; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import BadInput

__all__ = ["Family", "CATALOG", "FAMILIES", "LINK", "NODE", "BROKER", "CONTAINER", "PARTITION",
           "family", "check_params", "DIRECTIONS"]

LINK = "link"            # targets are Toxiproxy proxy names (Link.proxy)
NODE = "node"            # targets are node names whose Node.process is set
BROKER = "broker"        # targets are nodes of role "broker" with a process
CONTAINER = "container"  # targets are node names with a container, "name=<c>" or "label=<k>=<v>"
PARTITION = "partition"  # targets are node names; their links are cut

DIRECTIONS = ("both", "upstream", "downstream")


@dataclass(frozen=True)
class Family:
    """One fault family: what it targets, its parameters and their defaults."""

    name: str
    kind: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


_LINK_COMMON = {"direction": "both", "toxicity": 1.0}

CATALOG: dict[str, Family] = {f.name: f for f in [
    Family("latency", LINK, "adds latency_ms (+/- jitter_ms) to each stream of a link; 'both' "
           "delays requests and replies, so the round trip grows by about twice latency_ms",
           {"latency_ms": 200, "jitter_ms": 50, **_LINK_COMMON}),
    Family("bandwidth", LINK, "caps a link's throughput at rate_kbps (KB/s)",
           {"rate_kbps": 16, **_LINK_COMMON}),
    Family("timeout", LINK, "blackholes a link: data is swallowed; after timeout_ms (0: never) "
           "the connection is closed", {"timeout_ms": 0, **_LINK_COMMON}),
    Family("reset", LINK, "resets connections (TCP RST) after timeout_ms", {"timeout_ms": 0, **_LINK_COMMON}),
    Family("slicer", LINK, "cuts data into small packets of average_size +/- size_variation bytes, "
           "delay_us apart", {"average_size": 16, "size_variation": 8, "delay_us": 1000, **_LINK_COMMON}),
    Family("limit-data", LINK, "closes connections after `bytes` bytes have passed",
           {"bytes": 4096, **_LINK_COMMON}),
    Family("slow-close", LINK, "delays closing a connection by delay_ms", {"delay_ms": 2000, **_LINK_COMMON}),
    Family("link-down", LINK, "disables the link's proxy: connections are dropped and refused", {}),
    Family("partition", PARTITION, "isolates the target nodes: every link of each is down", {}),
    Family("partition-coordinator", PARTITION, "isolates the coordinator node(s): every link down "
           "(targets may be empty: all nodes of role coordinator)", {}),
    Family("partition-split", PARTITION, "splits the participants into two groups; the group "
           "without the coordinator (the targets) loses every link", {}),
    Family("partition-flap", PARTITION, "isolates the targets, heals and isolates again every "
           "period_s seconds", {"period_s": 1.0}),
    Family("kill", NODE, "kill -9 the node's process group; healed by starting it again", {}),
    Family("stop", NODE, "graceful stop (SIGTERM, then SIGKILL after a timeout); healed by starting it", {}),
    Family("pause", NODE, "SIGSTOP the node's process group; healed by SIGCONT", {}),
    Family("restart", NODE, "graceful stop and immediate start", {}),
    Family("failpoint", NODE, "arms the named failpoint on the node (action crash by default); "
           "healed by starting the node if it died", {"name": None, "action": "crash"}),
    Family("broker-kill", BROKER, "kill -9 the broker; healed by starting it again", {}),
    Family("broker-pause", BROKER, "SIGSTOP the broker; healed by SIGCONT", {}),
    Family("broker-restart", BROKER, "graceful stop and immediate start of the broker", {}),
    Family("docker-kill", CONTAINER, "kills the container (SIGKILL); healed by starting it", {}),
    Family("docker-stop", CONTAINER, "stops the container (SIGTERM, then SIGKILL); healed by starting it",
           {"timeout_s": 5}),
    Family("docker-pause", CONTAINER, "freezes the container (cgroup freezer); healed by unpausing", {}),
    Family("docker-restart", CONTAINER, "restarts the container", {"timeout_s": 5}),
]}

FAMILIES: dict[str, str] = {name: f.description for name, f in CATALOG.items()}


def family(name: str) -> Family:
    """The family called `name`, or BadInput listing the valid names."""
    try:
        return CATALOG[name]
    except KeyError:
        raise BadInput(f"unknown fault {name!r}; valid faults: {', '.join(CATALOG)}") from None


def _number(fault: str, params: dict[str, Any], key: str, *, low: float = 0.0,
            high: float | None = None) -> None:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"fault {fault!r}: parameter {key} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise BadInput(f"fault {fault!r}: parameter {key} must be {bound}, got {value!r}")


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate `params` of fault `name`; return them merged over the defaults.

    Unknown keys are errors (a typo would otherwise silently inject the default).
    """
    fam = family(name)
    unknown = sorted(set(params) - set(fam.defaults))
    if unknown and name != "failpoint":  # a failpoint's extra params go to the target as they are
        valid = ", ".join(fam.defaults) or "none"
        raise BadInput(f"fault {name!r}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
    merged = {**fam.defaults, **params}
    for key, value in merged.items():
        if key == "direction":
            if value not in DIRECTIONS:
                raise BadInput(f"fault {name!r}: direction must be one of {', '.join(DIRECTIONS)}, "
                               f"got {value!r}")
        elif key == "toxicity":
            _number(name, merged, key, high=1.0)
        elif key == "period_s":
            _number(name, merged, key, low=0.05)
        elif key == "name":
            if not isinstance(value, str) or not value:
                raise BadInput(f"fault {name!r}: parameter name (the failpoint) is required")
        elif key == "action":
            if not isinstance(value, str):
                raise BadInput(f"fault {name!r}: parameter action must be a string")
        elif key in fam.defaults:
            _number(name, merged, key)
    return merged
