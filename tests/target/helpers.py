"""Checks the target's tests share: does every service agree, is money conserved."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from adapters.reference import ReferenceAdapter


def problems(state: dict[str, Any]) -> list[str]:
    """Every disagreement in a snapshot: atomicity, exactly-once, conservation, stuck payments."""
    out: list[str] = []
    parts = state["participants"]
    payments = state["coordinator"]["payments"]
    for pid, p in payments.items():
        seen = {name: parts[name]["txns"].get(pid, {}).get("state", "none") for name in p["participants"]}
        states = set(seen.values())
        if "prepared" in states:
            out.append(f"{pid} still prepared: {seen}")
        if "committed" in states and states != {"committed"}:
            out.append(f"{pid} not atomic: {seen}")
        if p["decision"] == "commit" and states != {"committed"}:
            out.append(f"{pid} decided commit but {seen}")
        if p["decision"] != "commit" and "committed" in states:
            out.append(f"{pid} decided {p['decision']} but {seen}")
    for name, s in parts.items():
        for pid, t in s["txns"].items():
            want = 1 if t["state"] == "committed" else 0
            if t["applied"] != want:
                out.append(f"{pid} applied {t['applied']} times at {name} ({t['state']})")
    balances = {a: b for s in parts.values() for a, b in s.get("balances", {}).items()}
    initial = state["initial_balances"]
    if sum(balances.values()) != sum(initial.values()):
        out.append(f"money not conserved: {sum(balances.values())} != {sum(initial.values())}")
    expected = dict(initial)
    for pid, p in payments.items():
        if p["decision"] == "commit":
            expected[p["from"]] -= p["amount"]
            expected[p["to"]] += p["amount"]
    if balances != expected:
        out.append(f"balances {balances} differ from initial + committed transfers {expected}")
    if "journal_sum" in parts.get("ledger", {}) and parts["ledger"]["journal_sum"] != 0:
        out.append(f"ledger unbalanced: entries sum to {parts['ledger']['journal_sum']}")
    if any(b < 0 for b in balances.values()):
        out.append(f"negative balance: {balances}")
    return out


def snapshot(adapter: ReferenceAdapter) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        try:
            return await adapter.snapshot()
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def settle(adapter: ReferenceAdapter, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the snapshot until nothing is prepared or undecided (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot(adapter)
        pending = [pid for pid, p in state["coordinator"]["payments"].items() if p["decision"] is None]
        prepared = [pid for s in state["participants"].values() for pid, t in s["txns"].items()
                    if t["state"] == "prepared"]
        unacked = state["coordinator"].get("unacknowledged", [])
        if (not pending and not prepared and not unacked) or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


def transfer(adapter: ReferenceAdapter, pid: str, source: str, dest: str, amount: int) -> Any:
    from harness.model import Transfer

    async def go() -> Any:
        try:
            return await adapter.transfer(Transfer(pid, source, dest, amount))
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def crash_at(adapter: ReferenceAdapter, node: str, point: str, pid: str, source: str, dest: str,
             amount: int, *, down_for: float = 0.0, power_cut: bool = False) -> Any:
    """Arm a crash at `point` on `node`, pay, wait for the crash, restart the node
    (with `power_cut`, after its data dir lost every write it had not fsynced).

    Returns the client's OpResult. Fails the test if the node did not crash.
    """

    async def arm() -> None:
        try:
            await adapter.arm_failpoint(node, point, "crash")
        finally:
            await adapter.aclose()

    asyncio.run(arm())
    result = transfer(adapter, pid, source, dest, amount)
    proc = adapter.procs[node]
    deadline = time.monotonic() + 15
    while proc.alive and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not proc.alive, f"{node} did not crash at {point}"
    if power_cut:
        assert proc.disk is not None, f"{node} has no lazy disk: start the target with disks=True"
        proc.disk.drop()
    time.sleep(down_for)
    proc.start()
    return result


def delay_at(adapter: ReferenceAdapter, node: str, point: str, ms: int, pid: str, source: str, dest: str,
             amount: int) -> Any:
    """Arm a delay of `ms` at `point` on `node` (first hit only), then pay; returns the OpResult."""

    async def arm() -> None:
        try:
            await adapter.arm_failpoint(node, point, "delay", ms=ms)
        finally:
            await adapter.aclose()

    asyncio.run(arm())
    return transfer(adapter, pid, source, dest, amount)


def transfers_at_once(adapter: ReferenceAdapter, payments: list[tuple[str, str, str, int]]) -> list[Any]:
    """Submit (id, from, to, amount) payments concurrently; their OpResults in order."""
    from harness.model import Transfer

    async def go() -> list[Any]:
        try:
            return list(await asyncio.gather(*(adapter.transfer(Transfer(*p)) for p in payments)))
        finally:
            await adapter.aclose()

    return asyncio.run(go())
