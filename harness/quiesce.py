"""Wait, boundedly, for in-doubt payments to resolve after every fault is healed.

A correct 2PC system resolves every prepared payment once the network and the
processes are back; how long that takes is the blocking the classic protocol
is known for, so it is measured per payment and written into the state's
`resolution` section (docs/formats.md) for the resolution checker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.errors import InfraError

__all__ = ["in_doubt", "quiesce"]


def in_doubt(state: dict[str, Any]) -> dict[str, list[str]]:
    """Payment id -> participants where it is still `prepared`."""
    found: dict[str, list[str]] = {}
    for name, part in (state.get("participants") or {}).items():
        for pid, txn in (part.get("txns") or {}).items():
            if txn.get("state") == "prepared":
                found.setdefault(pid, []).append(name)
    return found


async def quiesce(adapter: Any, *, timeout: float, interval: float = 0.5) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snapshot until nothing is in doubt or `timeout` passes.

    Returns the last snapshot and the resolution record: for every payment seen
    in doubt, its participants, seconds blocked (from the start of quiescence,
    i.e. right after healing) and whether it resolved within the bound.
    """
    start = time.monotonic()
    seen: dict[str, dict[str, Any]] = {}
    last_error: Exception | None = None
    state: dict[str, Any] | None = None
    while True:
        now = time.monotonic() - start
        try:
            state = await adapter.snapshot()
            last_error = None
        except Exception as e:  # a node still restarting; try again until the bound
            last_error = e
        if state is not None and last_error is None:
            doubtful = in_doubt(state)
            for pid, parts in doubtful.items():
                rec = seen.setdefault(pid, {"participants": sorted(parts), "blocked_s": 0.0,
                                            "resolved": False})
                rec["participants"] = sorted(set(rec["participants"]) | set(parts))
                rec["blocked_s"] = round(now, 3)
            for pid, rec in seen.items():
                if pid not in doubtful and not rec["resolved"]:
                    rec["resolved"] = True
                    rec["blocked_s"] = round(now, 3)
            if not doubtful:
                break
        if now >= timeout:
            break
        await asyncio.sleep(interval)
    if state is None:
        raise InfraError(f"could not snapshot the target's state within {timeout:g}s: {last_error}")
    return state, {"bound_s": timeout, "in_doubt": seen}
