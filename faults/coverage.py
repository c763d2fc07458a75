"""A coverage table of one schedule: which fault family hit which target, for how long.

`txchaos run` prints it under the verdict; a campaign adds tables up over runs.
"""

from __future__ import annotations

from faults.schedule import Schedule
from harness.topology import Topology

__all__ = ["coverage_lines"]


def coverage_lines(schedule: Schedule, topology: Topology | None = None) -> list[str]:
    """One line per family: its targets with seconds under fault, families in the
    order they first struck. Empty for a fault-free run."""
    by_family: dict[str, dict[str, float]] = {}
    for (fault, target), seconds in schedule.coverage(topology).items():
        by_family.setdefault(fault, {})[target] = seconds
    if not by_family:
        return []
    width = max(len(f) for f in by_family)
    targets = {t for hit in by_family.values() for t in hit}
    lines = [f"coverage: {len(schedule.events)} faults, {len(by_family)} families, {len(targets)} targets "
             f"(seconds under fault)"]
    for fault, hit in by_family.items():
        cells = ", ".join(f"{t} {s:.1f}s" for t, s in sorted(hit.items()))
        lines.append(f"  {fault:<{width}}  {cells}")
    return lines
