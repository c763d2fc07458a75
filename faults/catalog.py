"""The fault families txchaos knows, and the default mix: one registry for everyone.

Each family is one `faults.family.Family` subclass registered where it is defined
(link faults in `faults.link`, partitions in `faults.partition`, process faults in
`faults.nodes`, clock faults in `faults.clock`, container faults in `faults.docker`,
clustered-broker faults in `faults.cluster`).
Importing this module loads them all. The schedule generator, the Nemesis, `txchaos
run` and the docs read the families from here, so they agree on what each name means.
"""

from __future__ import annotations

from typing import Any

import faults.backlog  # noqa: F401  (registers the consumer-lag-and-broker-kill family)
import faults.clock  # noqa: F401  (registers the clock families)
import faults.cluster  # noqa: F401  (registers the clustered-broker families)
import faults.docker  # noqa: F401  (registers the container families)
import faults.link  # noqa: F401  (registers the link families)
import faults.nodes  # noqa: F401  (registers the process, broker and failpoint families)
import faults.partition  # noqa: F401  (registers the partition families)
import faults.power  # noqa: F401  (registers the power-loss families)
from faults.family import BROKER, CONTAINER, LINK, NODE, PARTITION, REGISTRY, Family
from faults.link import DIRECTIONS
from harness.errors import BadInput

__all__ = ["Family", "CATALOG", "FAMILIES", "DEFAULT_FAULTS", "parse_families", "LINK", "NODE", "BROKER",
           "CONTAINER", "PARTITION", "family", "check_params", "DIRECTIONS"]

CATALOG: dict[str, Family] = REGISTRY  # name -> family, grouped by kind (links first)

FAMILIES: dict[str, str] = {name: f.description for name, f in CATALOG.items()}

# The default mix: every family safe for a single run on any target. Families that
# do not apply to a topology (failpoints of a target that offers none, containers)
# are skipped by the generator, so the same default works everywhere.
DEFAULT_FAULTS: tuple[str, ...] = tuple(name for name, f in CATALOG.items() if f.default)


def parse_families(text: str) -> tuple[str, ...]:
    """A --faults value: comma-separated family names, where `default` stands for the
    default mix and `none` for no fault; duplicates dropped, order kept."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "default":
            names.extend(DEFAULT_FAULTS)
        elif part and part != "none":
            names.append(part)
    return tuple(dict.fromkeys(names))


def family(name: str) -> Family:
    """The family called `name`, or BadInput listing the valid names."""
    try:
        return CATALOG[name]
    except KeyError:
        raise BadInput(f"unknown fault {name!r}; valid faults: {', '.join(CATALOG)}") from None


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate `params` of fault `name`; return them merged over the defaults."""
    return family(name).check(params)
