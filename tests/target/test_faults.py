"""The target under real network and broker faults: a cut link, a killed broker."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from harness.lab.ports import port_open

from harness.model import Outcome, Transfer
from tests.target.helpers import problems, settle, transfer


def _pay_many(adapter, prefix: str, n: int) -> dict:
    async def go():
        try:
            accts = sorted(adapter.accounts)
            results = await asyncio.gather(*(adapter.transfer(
                Transfer(f"{prefix}-{i}", accts[i % 6], accts[(i + 1) % 6], 3)) for i in range(n)))
            return {f"{prefix}-{i}": r for i, r in enumerate(results)}
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def _agrees(state: dict, outcomes: dict) -> list[str]:
    bad = []
    for pid, r in outcomes.items():
        decision = state["coordinator"]["payments"].get(pid, {}).get("decision")
        if r.outcome == Outcome.OK and decision != "commit":
            bad.append(f"{pid}: client ok, decision {decision}")
        if r.outcome == Outcome.FAIL and decision == "commit":
            bad.append(f"{pid}: client fail, decision commit")
    return bad


@pytest.mark.spread  # the target's own recovery: one broker by default, each nightly
def test_cut_participant_link_then_heal_resolves_everything(start_target, broker, lab):
    adapter, topo = start_target()
    proxy = next(link.proxy for link in topo.links_of("accounts-b") if link.service == broker)
    outcomes: dict = {}
    worker = threading.Thread(target=lambda: outcomes.update(_pay_many(adapter, "cut", 12)))
    lab.toxiproxy.set_enabled(proxy, False)
    try:
        worker.start()
        time.sleep(7)  # longer than the vote timeout: payments on accounts-b must abort
    finally:
        lab.toxiproxy.set_enabled(proxy, True)
    worker.join(30)
    assert len(outcomes) == 12
    assert transfer(adapter, "after-heal", "acct-01", "acct-02", 1).outcome == Outcome.OK
    state = settle(adapter, timeout=40)
    assert problems(state) == []
    assert _agrees(state, outcomes) == []
    # payments touching accounts-b could not commit while it was cut off
    assert any(r.outcome != Outcome.OK for r in outcomes.values())


def test_broker_killed_and_restarted_loses_nothing(start_target, broker, lab):
    adapter, topo = start_target()
    before = _pay_many(adapter, "before", 6)
    assert all(r.outcome == Outcome.OK for r in before.values())
    broker_proc = topo.node(broker).process
    assert broker_proc is not None
    outcomes: dict = {}
    worker = threading.Thread(target=lambda: outcomes.update(_pay_many(adapter, "during", 6)))
    worker.start()
    time.sleep(0.3)
    broker_proc.kill()
    ep = lab.endpoint(broker)
    deadline = time.monotonic() + 15
    while port_open(ep.host, ep.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    if port_open(ep.host, ep.port):
        worker.join(60)
        pytest.skip(f"the lab's kill left {broker} listening on {ep.port}; cannot test a broker crash")
    broker_proc.start()
    worker.join(60)
    assert transfer(adapter, "after-restart", "acct-03", "acct-04", 2).outcome == Outcome.OK
    state = settle(adapter, timeout=60)
    assert problems(state) == []
    assert _agrees(state, {**before, **outcomes}) == []
