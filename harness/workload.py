"""Seeded bank workload: concurrent clients submit transfers and reads and record them.

The generator is a pure function of (spec, seed), so a failing run can be replayed
with the same requests. Clients follow Jepsen's rule for indeterminate outcomes:
an UNKNOWN answer or an exception is recorded as `info` (never `fail`) and that
process is retired; the client carries on under a fresh process number.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import BadInput
from harness.history import HistoryRecorder
from harness.model import Op, OpResult, OpType, Outcome, Transfer

__all__ = ["WorkloadSpec", "account_names", "initial_balances", "TransferGenerator",
           "Request", "run_clients", "Client"]


@dataclass
class WorkloadSpec:
    """The shape of a bank workload.

    `overdraft_share` of transfers ask for more than all the money in the bank, so
    they must fail for lack of funds whatever the balances are. `rate` is total
    operations per second over all clients (None: as fast as the target answers);
    `ops` caps the number of operations (None: until stopped). After an unknown
    outcome a client waits `backoff_s`, doubling up to `max_backoff_s` while
    outcomes stay unknown, as a real client would: without it a crashed
    coordinator turns every client into a tight loop of refused requests that
    floods the history and proves nothing more.
    """

    accounts: int = 8
    initial_balance: int = 100
    clients: int = 4
    read_share: float = 0.05
    overdraft_share: float = 0.1
    max_amount: int = 30
    rate: float | None = None
    ops: int | None = None
    backoff_s: float = 0.05
    max_backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.accounts < 2:
            raise BadInput(f"a workload needs at least 2 accounts, got {self.accounts}")
        if self.clients < 1:
            raise BadInput(f"a workload needs at least 1 client, got {self.clients}")
        if self.max_amount < 1 or self.initial_balance < 0:
            raise BadInput("max_amount must be >= 1 and initial_balance >= 0")
        for name in ("read_share", "overdraft_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise BadInput(f"{name} must be between 0 and 1, got {v}")
        if self.rate is not None and self.rate <= 0:
            raise BadInput(f"rate must be positive (ops/s), got {self.rate}")
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise BadInput("backoff_s must be >= 0 and max_backoff_s >= backoff_s")
        if self.ops is not None and self.ops < 0:
            raise BadInput(f"ops must be >= 0, got {self.ops}")


def account_names(spec: WorkloadSpec) -> list[str]:
    """"acct-01", "acct-02", ... (zero-padded to at least two digits)."""
    width = max(2, len(str(spec.accounts)))
    return [f"acct-{i:0{width}d}" for i in range(1, spec.accounts + 1)]


def initial_balances(spec: WorkloadSpec) -> dict[str, int]:
    return {a: spec.initial_balance for a in account_names(spec)}


@dataclass(frozen=True)
class Request:
    """One generated operation: f is "transfer" (with `transfer`) or "read"."""

    f: str
    transfer: Transfer | None = None


class TransferGenerator:
    """Deterministic stream of requests: the same spec and seed give the same sequence.

    Payment ids are "pay-000001", "pay-000002", ... in generation order.
    """

    def __init__(self, spec: WorkloadSpec, seed: int) -> None:
        self.spec = spec
        self._rng = random.Random(seed)
        self._accounts = account_names(spec)
        self._total = spec.accounts * spec.initial_balance
        self._n = 0

    def __iter__(self) -> TransferGenerator:
        return self

    def __next__(self) -> Request:
        return self.next()

    def next(self) -> Request:
        rng = self._rng
        if self.spec.read_share and rng.random() < self.spec.read_share:
            return Request("read")
        self._n += 1
        source, dest = rng.sample(self._accounts, 2)
        if rng.random() < self.spec.overdraft_share:
            amount = self._total + rng.randint(1, self.spec.max_amount)
        else:
            amount = rng.randint(1, self.spec.max_amount)
        return Request("transfer", Transfer(f"pay-{self._n:06d}", source, dest, amount))


class Client(Protocol):
    async def transfer(self, t: Transfer) -> OpResult: ...


class _Shared:
    """State the concurrent clients share: generator, op budget, rate limit, processes."""

    def __init__(self, spec: WorkloadSpec, seed: int, loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.gen = TransferGenerator(spec, seed)
        self.remaining = spec.ops
        self.interval = 1.0 / spec.rate if spec.rate else 0.0
        self.next_slot = loop.time()
        self.next_process = spec.clients
        self.loop = loop

    def take(self) -> Request | None:
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        return self.gen.next()

    async def pace(self) -> None:
        if not self.interval:
            return
        now = self.loop.time()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def new_process(self) -> int:
        p = self.next_process
        self.next_process += 1
        return p


def _balances(v: Any) -> bool:
    """An ok read must carry {account: int}; anything else cannot be checked."""
    return isinstance(v, dict) and all(type(b) is int for b in v.values())


def _record(recorder: HistoryRecorder, inv: Op, result: OpResult) -> bool:
    """Record the completion; True if the process must be retired."""
    if not isinstance(result, OpResult):
        recorder.complete(inv, OpType.INFO, error=f"client returned {result!r}, not an OpResult")
        return True
    if result.outcome is Outcome.OK:
        if inv.f == "read" and not _balances(result.value):
            recorder.complete(inv, OpType.INFO,
                              error=f"read answered ok without balances: {result.value!r}")
            return True
        recorder.complete(inv, OpType.OK, result.value if inv.f == "read" else None)
        return False
    if result.outcome is Outcome.FAIL:
        recorder.complete(inv, OpType.FAIL, error=result.error)
        return False
    recorder.complete(inv, OpType.INFO, error=result.error or "unknown")
    return True


async def _backoff(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


async def _one_client(client: Any, recorder: HistoryRecorder, shared: _Shared,
                      process: int, stop: asyncio.Event) -> None:
    spec = shared.spec
    backoff = spec.backoff_s
    while not stop.is_set():
        await shared.pace()
        if stop.is_set():
            return
        req = shared.take()
        if req is None:
            return
        if req.f == "read":
            inv = recorder.invoke(process, "read", None)
            call = client.read()
        else:
            assert req.transfer is not None
            inv = recorder.invoke(process, "transfer", req.transfer.to_json())
            call = client.transfer(req.transfer)
        try:
            result = await call
        except asyncio.CancelledError:
            recorder.complete(inv, OpType.INFO, error="cancelled: workload stopped")
            raise
        except Exception as e:  # noqa: BLE001 - any client error is an unknown outcome
            recorder.complete(inv, OpType.INFO, error=f"{type(e).__name__}: {e}")
            retired = True
        else:
            retired = _record(recorder, inv, result)
        if retired:
            process = shared.new_process()
            await _backoff(stop, backoff)
            backoff = min(backoff * 2, spec.max_backoff_s)
        else:
            backoff = spec.backoff_s


async def run_clients(client: Any, recorder: HistoryRecorder, spec: WorkloadSpec, seed: int,
                      *, until: asyncio.Event | float, grace_s: float = 30.0) -> None:
    """Run `spec.clients` concurrent clients until `until` (event set, or seconds elapsed)
    or until `spec.ops` operations were issued.

    Clients stop issuing at the deadline; operations in flight get `grace_s` seconds
    to finish, then are cancelled and recorded as `info`.
    """
    if spec.read_share > 0 and not callable(getattr(client, "read", None)):
        raise BadInput("the workload asks for reads (read_share > 0) but the client has no "
                       "read(); set read_share=0")
    loop = asyncio.get_running_loop()
    shared = _Shared(spec, seed, loop)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_one_client(client, recorder, shared, p, stop),
                                 name=f"txchaos-client-{p}") for p in range(spec.clients)]
    all_done = asyncio.ensure_future(asyncio.gather(*tasks))
    # Interrupted runs cancel the clients; the outcome is read below, not here.
    all_done.add_done_callback(lambda f: f.cancelled() or f.exception())
    stopper: asyncio.Future[Any]
    if isinstance(until, asyncio.Event):
        stopper = asyncio.ensure_future(until.wait())
    else:
        stopper = asyncio.ensure_future(asyncio.sleep(float(until)))
    try:
        await asyncio.wait({all_done, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        if not all_done.done():
            await asyncio.wait({all_done}, timeout=grace_s)
    finally:
        stop.set()
        stopper.cancel()
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        all_done.cancel()
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
