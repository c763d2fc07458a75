"""The reference target end to end on a real broker: commits, aborts, bad input."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from harness.model import Outcome, Transfer
from tests.target.helpers import problems, settle, snapshot


async def _burst(adapter, n: int, concurrency: int) -> list:
    sem = asyncio.Semaphore(concurrency)
    accounts = sorted(adapter.accounts)

    async def one(i: int):
        src, dst = accounts[i % len(accounts)], accounts[(i * 7 + 1) % len(accounts)]
        if src == dst:
            dst = accounts[(i + 1) % len(accounts)]
        async with sem:
            return await adapter.transfer(Transfer(f"burst-{i:04d}", src, dst, 1 + i % 13))

    try:
        return await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await adapter.aclose()


def test_burst_commits_everywhere_and_conserves_money(start_target):
    adapter, topo = start_target()
    results = asyncio.run(_burst(adapter, 60, 8))
    assert [r.outcome for r in results] == [Outcome.OK] * 60, [r for r in results if r.outcome != Outcome.OK]
    state = settle(adapter)
    assert problems(state) == []
    committed = [p for p, v in state["coordinator"]["payments"].items() if v["decision"] == "commit"]
    assert len(committed) == 60
    assert state["participants"]["ledger"]["journal_entries"] == 120
    assert state["participants"]["notifications"]["outbox"] == 60
    # debits and credits really crossed shards
    assert any(len({x for x in v["participants"] if x.startswith("accounts-")}) == 2
               for v in state["coordinator"]["payments"].values())


def test_repeated_id_returns_the_original_outcome(start_target):
    adapter, _ = start_target()

    async def go():
        try:
            first = await adapter.transfer(Transfer("same-1", "acct-01", "acct-02", 10))
            again = await adapter.transfer(Transfer("same-1", "acct-01", "acct-02", 10))
            other = await adapter.transfer(Transfer("same-1", "acct-01", "acct-03", 10))
            return first, again, other
        finally:
            await adapter.aclose()

    first, again, other = asyncio.run(go())
    assert (first.outcome, again.outcome) == (Outcome.OK, Outcome.OK)
    assert other.outcome == Outcome.FAIL and "already used" in (other.error or "")
    state = settle(adapter)
    assert problems(state) == []
    assert state["participants"]["ledger"]["journal_entries"] == 2


def test_insufficient_funds_aborts_everywhere(start_target):
    adapter, _ = start_target(accounts={"acct-01": 50, "acct-02": 50, "acct-03": 50})

    async def go():
        try:
            return await adapter.transfer(Transfer("broke-1", "acct-01", "acct-02", 51))
        finally:
            await adapter.aclose()

    result = asyncio.run(go())
    assert result.outcome == Outcome.FAIL and result.error == "insufficient-funds"
    state = settle(adapter)
    assert problems(state) == []
    assert state["coordinator"]["payments"]["broke-1"]["decision"] == "abort"
    for name in state["coordinator"]["payments"]["broke-1"]["participants"]:
        assert state["participants"][name]["txns"]["broke-1"] == {"state": "aborted", "applied": 0}
    assert state["participants"]["accounts-a"]["balances"]["acct-01"] == 50


def _post(url: str, body: object) -> tuple[int, dict]:
    req = urllib.request.Request(f"{url}/payments", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_malformed_payments_get_4xx_and_leave_no_trace(start_target):
    adapter, _ = start_target()
    bad = [
        {"from": "acct-01", "to": "acct-02", "amount": 5},
        {"id": "", "from": "acct-01", "to": "acct-02", "amount": 5},
        {"id": "m1", "from": "acct-99", "to": "acct-02", "amount": 5},
        {"id": "m2", "from": "acct-01", "to": "acct-01", "amount": 5},
        {"id": "m3", "from": "acct-01", "to": "acct-02", "amount": 0},
        {"id": "m4", "from": "acct-01", "to": "acct-02", "amount": -3},
        {"id": "m5", "from": "acct-01", "to": "acct-02", "amount": "5"},
        ["not", "an", "object"],
    ]
    for body in bad:
        code, answer = _post(adapter.client_url, body)
        assert code == 400 and answer["error"], (body, code, answer)
    state = snapshot(adapter)
    assert state["coordinator"]["payments"] == {}
    assert all(s["txns"] == {} for s in state["participants"].values())
