"""The seeded workload: determinism, the info/retire rule, budgets and rate limits.

FakeBank below is an in-memory stand-in used only to exercise the client loop's
pure logic; real targets are driven by the chaos suites.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.errors import BadInput
from harness.history import HistoryRecorder, validate_history
from harness.model import OpResult, OpType, Outcome, Transfer
from harness.workload import (TransferGenerator, WorkloadSpec, account_names,
                              initial_balances, run_clients)


class FakeBank:
    """In-memory bank: refuses overdrafts; every `unknown_every`-th transfer is UNKNOWN
    (applied anyway), every `raise_every`-th raises."""

    def __init__(self, balances: dict[str, int], unknown_every: int = 0, raise_every: int = 0):
        self.balances = dict(balances)
        self.n = 0
        self.unknown_every = unknown_every
        self.raise_every = raise_every

    async def transfer(self, t: Transfer) -> OpResult:
        self.n += 1
        await asyncio.sleep(0)
        if self.raise_every and self.n % self.raise_every == 0:
            raise ConnectionError("connection reset")
        if self.balances[t.source] < t.amount:
            return OpResult(Outcome.FAIL, error="insufficient-funds")
        self.balances[t.source] -= t.amount
        self.balances[t.dest] += t.amount
        if self.unknown_every and self.n % self.unknown_every == 0:
            return OpResult(Outcome.UNKNOWN, error="timeout")
        return OpResult(Outcome.OK)

    async def read(self) -> OpResult:
        return OpResult(Outcome.OK, value=dict(self.balances))


def test_account_names_and_balances() -> None:
    spec = WorkloadSpec(accounts=3, initial_balance=7)
    assert account_names(spec) == ["acct-01", "acct-02", "acct-03"]
    assert initial_balances(spec) == {"acct-01": 7, "acct-02": 7, "acct-03": 7}
    assert account_names(WorkloadSpec(accounts=120))[0] == "acct-001"


def test_generator_is_deterministic_and_overdrafts_exceed_the_bank() -> None:
    spec = WorkloadSpec(read_share=0.2, overdraft_share=0.3)
    a = [TransferGenerator(spec, 42).next() for _ in range(1)]
    g1, g2, g3 = TransferGenerator(spec, 42), TransferGenerator(spec, 42), TransferGenerator(spec, 43)
    s1 = [g1.next() for _ in range(500)]
    assert s1 == [g2.next() for _ in range(500)]
    assert s1 != [g3.next() for _ in range(500)]
    assert a[0] == s1[0]
    transfers = [r.transfer for r in s1 if r.f == "transfer"]
    assert transfers[0].id == "pay-000001" and transfers[1].id == "pay-000002"
    total = spec.accounts * spec.initial_balance
    big = [t for t in transfers if t.amount > total]
    assert 0.2 < len(big) / len(transfers) < 0.4
    assert all(1 <= t.amount <= spec.max_amount for t in transfers if t.amount <= total)
    assert all(t.source != t.dest for t in transfers)
    assert 50 < sum(r.f == "read" for r in s1) < 150


def test_spec_validation() -> None:
    with pytest.raises(BadInput, match="read_share"):
        WorkloadSpec(read_share=2)
    with pytest.raises(BadInput, match="at least 2 accounts"):
        WorkloadSpec(accounts=1)


def test_run_clients_ops_budget_and_info_retires_process() -> None:
    spec = WorkloadSpec(clients=3, ops=200, read_share=0.1)
    bank = FakeBank(initial_balances(spec), unknown_every=7, raise_every=11)
    rec = HistoryRecorder()
    asyncio.run(run_clients(bank, rec, spec, seed=1, until=30.0))
    ops = validate_history(rec.ops)  # the recorded history obeys its own rules
    invokes = [o for o in ops if o.type is OpType.INVOKE]
    assert len(invokes) == 200
    infos = [o for o in ops if o.type is OpType.INFO]
    assert any(o.error == "timeout" for o in infos)
    assert any(o.error and o.error.startswith("ConnectionError") for o in infos)
    # every info retires its process: clients + infos processes, less those retired
    # by a client's last operation (one at most per client), which never invoke
    assert 3 + len(infos) - 3 <= len({o.process for o in ops}) <= 3 + len(infos)
    for info in infos:
        assert not any(o.process == info.process and o.index > info.index for o in ops)
    fails = [o for o in ops if o.type is OpType.FAIL]
    assert fails and all(o.error == "insufficient-funds" for o in fails)
    reads = [o for o in ops if o.f == "read" and o.type is OpType.OK]
    assert reads and all(sum(o.value.values()) == 800 for o in reads)


def test_run_clients_stops_on_event_and_rate_limits() -> None:
    spec = WorkloadSpec(clients=2, rate=100.0, read_share=0.0)
    bank = FakeBank(initial_balances(spec))
    rec = HistoryRecorder()

    async def main() -> float:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        t0 = time.monotonic()
        await run_clients(bank, rec, spec, seed=2, until=stop)
        return time.monotonic() - t0

    elapsed = asyncio.run(main())
    n = sum(o.type is OpType.INVOKE for o in rec.ops)
    assert 0.45 < elapsed < 2.0
    assert 30 <= n <= 60  # 100 ops/s for 0.5 s


def test_run_clients_cancels_hung_ops_as_info() -> None:
    class HangingBank(FakeBank):
        async def transfer(self, t: Transfer) -> OpResult:
            await asyncio.sleep(3600)
            raise AssertionError

    spec = WorkloadSpec(clients=2, read_share=0.0)
    rec = HistoryRecorder()
    asyncio.run(run_clients(HangingBank({}), rec, spec, seed=3, until=0.1, grace_s=0.1))
    ops = rec.ops
    assert [o.type for o in ops].count(OpType.INFO) == 2
    assert all(o.error.startswith("cancelled") for o in ops if o.type is OpType.INFO)


def test_reads_without_read_method_are_bad_input() -> None:
    class NoRead:
        async def transfer(self, t: Transfer) -> OpResult:
            return OpResult(Outcome.OK)

    with pytest.raises(BadInput, match="read_share=0"):
        asyncio.run(run_clients(NoRead(), HistoryRecorder(), WorkloadSpec(), 0, until=1.0))


def test_ok_read_without_balances_is_recorded_as_info() -> None:
    class BadReads(FakeBank):
        async def read(self) -> OpResult:
            return OpResult(Outcome.OK, value=None)

    spec = WorkloadSpec(clients=1, ops=40, read_share=0.5)
    rec = HistoryRecorder()
    asyncio.run(run_clients(BadReads(initial_balances(spec)), rec, spec, seed=5, until=10.0))
    reads = [o for o in rec.ops if o.f == "read" and o.type is not OpType.INVOKE]
    assert reads and all(o.type is OpType.INFO for o in reads)
    assert "without balances" in reads[0].error
    validate_history(rec.ops)


def test_clients_back_off_while_outcomes_stay_unknown() -> None:
    """A target that only times out must not be hammered in a tight loop."""
    def ops_in_one_second(backoff_s: float) -> int:
        spec = WorkloadSpec(clients=1, read_share=0.0, backoff_s=backoff_s, max_backoff_s=0.4)
        bank = FakeBank(initial_balances(spec), raise_every=1)  # every transfer errors
        rec = HistoryRecorder()
        asyncio.run(run_clients(bank, rec, spec, seed=3, until=1.0))
        return sum(o.type is OpType.INVOKE for o in rec.ops)

    backed_off = ops_in_one_second(0.05)  # waits 0.05, 0.1, 0.2, 0.4, 0.4 ...
    assert 3 <= backed_off <= 6
    assert ops_in_one_second(0.0) > 50 * backed_off
