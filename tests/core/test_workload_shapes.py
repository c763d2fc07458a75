"""Workload shapes: each is deterministic from its seed and has the character it claims.

The fakes here stand in for a target only to exercise pure logic (the request
streams and the client loop); real targets are driven by tests/run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest

from harness.errors import BadInput
from harness.history import HistoryRecorder, validate_history
from harness.model import OpResult, OpType, Outcome, Transfer
from harness.workload import (Request, TransferGenerator, WorkloadSpec, initial_balances,
                              run_clients)
from harness.workload_shapes import SHAPES, shape, shape_names

SEED = 20261201  # fixed; every test prints nothing random of its own


def take(name: str, n: int, seed: int = SEED, **spec: Any) -> list[Request]:
    return list(itertools.islice(TransferGenerator(WorkloadSpec(shape=name, **spec), seed), n))


def transfers(reqs: list[Request]) -> list[Transfer]:
    return [r.transfer for r in reqs if r.transfer is not None]


def sequential_refusals(spec: WorkloadSpec, ts: list[Transfer]) -> int:
    """Transfers a bank applying them one after another would refuse, overdrafts excluded."""
    balances = initial_balances(spec)
    total = sum(balances.values())
    refused = 0
    for t in ts:
        if balances[t.source] >= t.amount:
            balances[t.source] -= t.amount
            balances[t.dest] += t.amount
        elif t.amount <= total:
            refused += 1
    return refused


class InFlightBank:
    """In-memory bank that takes `delay` per transfer and records the most transfers in
    flight at once; refuses overdrafts; every `unknown_every`-th attempt is UNKNOWN
    (and took effect). Idempotent: a known payment id answers its first decision."""

    def __init__(self, spec: WorkloadSpec, delay: float = 0.0, unknown_every: int = 0) -> None:
        self.balances = initial_balances(spec)
        self.delay, self.unknown_every = delay, unknown_every
        self.in_flight = self.most = self.n = 0
        self.near_zero = 0  # debits that left their account with 5 or less
        self.decided: dict[str, Outcome] = {}

    async def transfer(self, t: Transfer) -> OpResult:
        self.n += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if t.id not in self.decided:
            ok = self.balances[t.source] >= t.amount
            if ok:
                self.balances[t.source] -= t.amount
                self.balances[t.dest] += t.amount
                self.near_zero += self.balances[t.source] <= 5
            self.decided[t.id] = Outcome.OK if ok else Outcome.FAIL
        if self.unknown_every and self.n % self.unknown_every == 0:
            return OpResult(Outcome.UNKNOWN, error="timeout")
        return OpResult(self.decided[t.id], error=None if self.decided[t.id] is Outcome.OK
                        else "insufficient-funds")

    async def read(self) -> OpResult:
        return OpResult(Outcome.OK, value=dict(self.balances))


def drive(name: str, ops: int, *, delay: float = 0.0, unknown_every: int = 0,
          **spec_kw: Any) -> tuple[InFlightBank, list[Any]]:
    spec = WorkloadSpec(shape=name, ops=ops, backoff_s=0.0, retry_delay_s=0.0, **spec_kw)
    bank = InFlightBank(spec, delay=delay, unknown_every=unknown_every)
    rec = HistoryRecorder()
    asyncio.run(run_clients(bank, rec, spec, seed=SEED, until=60.0))
    return bank, validate_history(rec.ops)  # every shape records a valid history


@pytest.mark.parametrize("name", shape_names())
def test_one_seed_gives_one_request_sequence(name: str) -> None:
    a, b = take(name, 600), take(name, 600)
    assert a == b  # ids, accounts, amounts, retries, pauses, widths
    assert a != take(name, 600, seed=SEED + 1)
    ids = [t.id for t in transfers(a)]
    assert ids == [f"pay-{i:06d}" for i in range(1, len(ids) + 1)]
    assert all(t.source != t.dest and t.amount > 0 for t in transfers(a))


def test_uniform_is_the_historical_generator() -> None:
    """The default shape keeps the requests a seed gave before shapes existed
    (values taken from that generator with the default spec and seed 42)."""
    reqs = take("uniform", 4, seed=42)
    assert [(r.f, r.transfer.source, r.transfer.dest, r.transfer.amount)
            for r in reqs if r.transfer] == [
        ("transfer", "acct-01", "acct-06", 8), ("transfer", "acct-02", "acct-06", 18),
        ("transfer", "acct-07", "acct-01", 807), ("transfer", "acct-01", "acct-05", 21)]


def test_unknown_shape_is_bad_input_naming_the_valid_ones() -> None:
    with pytest.raises(BadInput, match="unknown workload 'bogus'; valid workloads: uniform, burst"):
        shape("bogus")
    with pytest.raises(BadInput, match="unknown workload"):
        WorkloadSpec(shape="bogus")
    assert {"uniform", "burst", "hot", "drain", "retry", "mixed"} <= set(SHAPES)


def test_burst_alternates_lulls_with_wide_bursts() -> None:
    reqs = take("burst", 400, read_share=0.0)
    widths = [r.width for r in reqs]
    assert set(widths) == {1, 16}
    assert all(r.pause_s > 0 for r in reqs if r.width == 1)
    runs = [(w, len(list(g))) for w, g in itertools.groupby(widths)]
    assert all(n == 16 for w, n in runs if w == 16) and len(runs) > 10
    assert all(3 <= n <= 6 for w, n in runs[:-1] if w == 1)


def test_burst_really_puts_many_payments_in_flight() -> None:
    bank, _ = drive("burst", 120, delay=0.02, read_share=0.0)
    assert bank.most >= 14  # 16 at once, less a lull payment or two still finishing
    uniform, _ = drive("uniform", 120, delay=0.02, read_share=0.0)
    assert uniform.most == 4  # spec.clients


class StallingBank(InFlightBank):
    """The first payment takes `stall` seconds (a fault stalled it); the others `delay`."""

    def __init__(self, spec: WorkloadSpec, stall: float) -> None:
        super().__init__(spec, delay=0.005)
        self.stall = stall
        self.stalled = self.stalling = False
        self.done_while_stalled = 0

    async def transfer(self, t: Transfer) -> OpResult:
        if not self.stalled:
            self.stalled = self.stalling = True
            await asyncio.sleep(self.stall)
            self.stalling = False
        result = await super().transfer(t)
        self.done_while_stalled += self.stalling
        return result


def test_a_stalled_payment_in_a_lull_does_not_stall_the_workload() -> None:
    """A lull lets one payment at a time through; one that hangs in a fault must not hold
    the others back for as long as it hangs (harness.workload.STALL_S)."""
    spec = WorkloadSpec(shape="burst", ops=200, backoff_s=0.0, read_share=0.0)
    first = next(iter(TransferGenerator(spec, SEED)))
    assert first.width == 1  # the stream starts in a lull
    bank = StallingBank(spec, stall=3.0)
    asyncio.run(run_clients(bank, HistoryRecorder(), spec, seed=SEED, until=60.0))
    # 2 s of the 3 s stall are past STALL_S; a lull payment takes 0.1-0.3 s
    assert bank.done_while_stalled >= 5, bank.done_while_stalled


def test_hot_concentrates_on_two_accounts() -> None:
    def top2_share(name: str) -> float:
        ts = transfers(take(name, 2000))
        touches = Counter(a for t in ts for a in {t.source, t.dest})
        hot = [a for a, _ in touches.most_common(2)]
        return sum(t.source in hot or t.dest in hot for t in ts) / len(ts)

    assert top2_share("hot") > 0.8
    assert top2_share("uniform") < 0.6  # 1 - C(6,2)/C(8,2) = 0.46 expected


def test_drain_sizes_debits_so_that_some_must_be_refused() -> None:
    spec = WorkloadSpec(shape="drain")
    drain, uniform = transfers(take("drain", 1000)), transfers(take("uniform", 1000))
    total = spec.accounts * spec.initial_balance
    assert all(t.amount <= total for t in drain)  # no overdrafts: refusals come from racing
    drained = sequential_refusals(spec, drain) / len(drain)  # 0.57 for this seed
    assert drained > 0.4 and drained > 3 * sequential_refusals(spec, uniform) / len(uniform)
    bank, ops = drive("drain", 300, delay=0.001, read_share=0.0)
    fails = [o for o in ops if o.type is OpType.FAIL]
    assert len(fails) > 60 and all(o.error == "insufficient-funds" for o in fails)
    assert sum(bank.balances.values()) == total
    near_zero_uniform = drive("uniform", 300, delay=0.001, read_share=0.0)[0].near_zero
    print(f"debits leaving <= 5: drain {bank.near_zero}, uniform {near_zero_uniform}")
    assert bank.near_zero > 3 * near_zero_uniform


def test_retry_marks_transfers_and_other_shapes_do_not() -> None:
    assert all(1 <= r.retries <= 4 for r in take("retry", 500) if r.f == "transfer")
    assert {r.retries for r in take("retry", 500)} >= {1, 2, 3, 4}
    for name in ("uniform", "burst", "hot", "drain"):
        assert all(r.retries == 0 for r in take(name, 300))


def test_retry_resubmits_the_same_id_only_after_info_as_a_new_process() -> None:
    bank, ops = drive("retry", 200, unknown_every=3, read_share=0.1)
    invokes = [o for o in ops if o.type is OpType.INVOKE and o.f == "transfer"]
    by_id: dict[str, list[Any]] = {}
    for o in invokes:
        by_id.setdefault(o.value["id"], []).append(o)
    retried = {pid: v for pid, v in by_id.items() if len(v) > 1}
    assert len(retried) > 20
    completion = {}  # invoke index -> completion
    open_: dict[Any, Any] = {}
    for o in ops:
        if o.type is OpType.INVOKE:
            open_[o.process] = o
        else:
            completion[open_.pop(o.process).index] = o
    for pid, attempts in by_id.items():
        assert len(attempts) <= 1 + 4
        assert len({a.process for a in attempts}) == len(attempts)  # each attempt a new process
        for first, again in zip(attempts, attempts[1:]):
            assert completion[first.index].type is OpType.INFO
            assert completion[first.index].index < again.index
            assert again.value == first.value
        last = completion.get(attempts[-1].index)
        assert last is None or last.type is not OpType.INFO or len(attempts) == 5 or \
            pid == invokes[-1].value["id"]
    # an attempt that ended ok or fail is never repeated
    assert all(completion[a.index].type is OpType.INFO for v in retried.values() for a in v[:-1])


def test_uniform_never_resubmits_an_id() -> None:
    _, ops = drive("uniform", 200, unknown_every=3, read_share=0.0)
    ids = [o.value["id"] for o in ops if o.type is OpType.INVOKE]
    assert len(ids) == len(set(ids)) == 200


def test_mixed_moves_through_every_shape_in_segments() -> None:
    reqs = [r for r in take("mixed", 2000) if r.f == "transfer"]
    segments = [k for k, _ in itertools.groupby(r.shape for r in reqs)]
    members = {n for n, s in SHAPES.items() if s.in_mix}
    assert members == {"burst", "hot", "drain", "retry"}
    assert set(segments[:4]) == members  # the first round already visits each
    assert len(segments) >= 12
    first = [k for k, _ in itertools.groupby(r.shape for r in take("mixed", 2000, seed=SEED + 3)
                                              if r.f == "transfer")]
    assert first != segments  # the order is the seed's


@pytest.mark.parametrize("name", shape_names())
def test_every_shape_records_a_valid_history_with_reads(name: str) -> None:
    bank, ops = drive(name, 150, unknown_every=5, read_share=0.1)
    reads = [o for o in ops if o.f == "read" and o.type is OpType.OK]
    assert reads and all(sum(o.value.values()) == 800 for o in reads)
    assert sum(o.type is OpType.INVOKE for o in ops) >= 150


def test_saved_run_configs_keep_their_workload() -> None:
    from harness.runconfig import RunConfig

    old, _ = RunConfig.from_json({"target": "nats"}, where="run.json")
    assert old.workload == "uniform"  # saved before shapes existed: it ran uniform
    saved, _ = RunConfig.from_json(RunConfig(target="nats", workload="drain").to_json(), where="run.json")
    assert saved.workload == "drain" and RunConfig(target="nats").workload == "mixed"
