"""Seeded bank workload: concurrent clients submit transfers and reads and record them.

What is requested comes from a shape (harness.workload_shapes: uniform, burst, hot,
drain, retry, mixed) and is a pure function of (spec, seed), so a failing run can be
replayed with the same requests; timing only changes when they are issued. Clients
follow Jepsen's rule for indeterminate outcomes: an UNKNOWN answer or an exception is
recorded as `info` (never `fail`) and that process is retired; the client carries on
under a fresh process number — and, for a request with retries left, re-submits the
same payment id as that new process.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import BadInput
from harness.history import HistoryRecorder
from harness.model import Op, OpResult, OpType, Outcome, Transfer
from harness.workload_shapes import Draft, Request, shape, shape_names

__all__ = ["WorkloadSpec", "account_names", "initial_balances", "TransferGenerator",
           "Request", "run_clients", "Client", "shape_names"]


@dataclass
class WorkloadSpec:
    """The shape of a bank workload.

    `shape` names what is requested (docs/workloads.md). `overdraft_share` of
    transfers ask for more than all the money in the bank, so they must fail for
    lack of funds whatever the balances are. `rate` is total operations per second
    over all clients (None: as fast as the target answers); `ops` caps the number
    of requests (None: until stopped; retries do not count). After an unknown
    outcome a client waits `backoff_s`, doubling up to `max_backoff_s` while
    outcomes stay unknown, as a real client would: without it a crashed
    coordinator turns every client into a tight loop of refused requests that
    floods the history and proves nothing more. `burst_clients` is how many
    payments a burst issues at once; `max_retries` bounds the re-submissions of
    one payment id, the k-th after `retry_delay_s * 2**(k-1)` seconds.
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
    shape: str = "uniform"
    burst_clients: int = 16
    max_retries: int = 4
    retry_delay_s: float = 0.5

    def __post_init__(self) -> None:
        shape(self.shape)  # BadInput listing the valid names
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
        if self.burst_clients < 1 or self.max_retries < 1 or self.retry_delay_s < 0:
            raise BadInput("burst_clients and max_retries must be >= 1, retry_delay_s >= 0")


def account_names(spec: WorkloadSpec) -> list[str]:
    """"acct-01", "acct-02", ... (zero-padded to at least two digits)."""
    width = max(2, len(str(spec.accounts)))
    return [f"acct-{i:0{width}d}" for i in range(1, spec.accounts + 1)]


def initial_balances(spec: WorkloadSpec) -> dict[str, int]:
    return {a: spec.initial_balance for a in account_names(spec)}


class TransferGenerator:
    """Deterministic stream of requests: the same spec and seed give the same sequence.

    A `read_share` of requests are reads; the rest come from the spec's shape.
    Payment ids are "pay-000001", "pay-000002", ... in generation order.
    """

    def __init__(self, spec: WorkloadSpec, seed: int) -> None:
        self.spec = spec
        self._rng = random.Random(seed)
        self._stream = shape(spec.shape).requests(Draft(spec, account_names(spec), self._rng))
        self._width: int | None = None  # a read keeps the pace of the requests around it

    def __iter__(self) -> TransferGenerator:
        return self

    def __next__(self) -> Request:
        return self.next()

    def next(self) -> Request:
        if self.spec.read_share and self._rng.random() < self.spec.read_share:
            return Request("read", width=self._width)
        req = next(self._stream)
        self._width = req.width
        return req


class Client(Protocol):
    async def transfer(self, t: Transfer) -> OpResult: ...


# A request in flight (or backing off after it) longer than this no longer holds its
# place under a width: one payment stalled by a fault must not stall a lull or a burst,
# and with it the whole workload, for as long as the fault lasts.
STALL_S = 1.0


class _Shared:
    """State the concurrent clients share: the generator, the op budget, the rate
    limit, the requests taken and not yet released (a request's `width` caps how many
    of those taken in the last STALL_S seconds there are), process numbers.

    One event loop, so the checks and updates between awaits need no lock; waiting
    clients are woken by replacing `_changed`, or when a taken request goes stale.
    """

    def __init__(self, spec: WorkloadSpec, seed: int, loop: asyncio.AbstractEventLoop,
                 spawn: Callable[[int], None]) -> None:
        self.spec = spec
        self.gen = TransferGenerator(spec, seed)
        self.remaining = spec.ops
        self.interval = 1.0 / spec.rate if spec.rate else 0.0
        self.next_slot = loop.time()
        self.next_process = spec.clients
        self.loop = loop
        self.stop = asyncio.Event()
        self.taken: dict[int, float] = {}  # token -> loop time the request was taken
        self._tokens = itertools.count()
        self.workers = spec.clients
        self._spawn = spawn
        self._head: Request | None = None
        self._changed = asyncio.Event()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _peek(self) -> Request | None:
        if self._head is None and (self.remaining is None or self.remaining > 0):
            self._head = self.gen.next()
        return self._head

    def _holding(self) -> tuple[int, float]:
        """How many taken requests count toward a width, and the seconds until the
        oldest of them goes stale."""
        now = self.loop.time()
        fresh = [t for t in self.taken.values() if now - t < STALL_S]
        return len(fresh), (min(fresh) + STALL_S - now if fresh else STALL_S)

    async def take(self) -> tuple[int, Request] | None:
        """(token, the next request) once fewer than its width are held; None when done.
        Hand the token back to `release`."""
        while not self.stop.is_set():
            head = self._peek()
            if head is None:
                return None
            width = head.width or self.spec.clients
            while self.workers < width:  # a burst wider than the pool: more clients
                self.workers += 1
                self._spawn(self.new_process())
            holding, stale_in = self._holding()
            if holding < width:
                self._head = None
                token = next(self._tokens)
                self.taken[token] = self.loop.time()
                if self.remaining is not None:
                    self.remaining -= 1
                self._poke()
                return token, head
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), stale_in)
            except asyncio.TimeoutError:
                pass
        return None

    def release(self, token: int) -> None:
        self.taken.pop(token, None)
        self._poke()

    def halt(self) -> None:
        self.stop.set()
        self._poke()

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
                      process: int) -> None:
    backoff = shared.spec.backoff_s
    while not shared.stop.is_set():
        await shared.pace()
        got = await shared.take()
        if got is None:
            return
        token, req = got
        try:
            process, backoff = await _issue(client, recorder, shared, req, process, backoff)
        finally:
            shared.release(token)


async def _issue(client: Any, recorder: HistoryRecorder, shared: _Shared, req: Request,
                 process: int, backoff: float) -> tuple[int, float]:
    """Issue one request, re-submitting a transfer with retries left after each `info`
    (under the new process the info forces); returns the process and backoff to go on with."""
    spec, stop = shared.spec, shared.stop
    if req.pause_s:
        await _backoff(stop, req.pause_s)
        if stop.is_set():
            return process, backoff
    attempt = 0
    while True:
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
        if not retired:
            return process, spec.backoff_s
        process = shared.new_process()
        retry = attempt < req.retries
        # a retry waits long enough to outlast a short crash of the coordinator
        await _backoff(stop, max(backoff, spec.retry_delay_s * 2 ** attempt) if retry else backoff)
        backoff = min(backoff * 2, spec.max_backoff_s)
        if not retry or stop.is_set():
            return process, backoff
        attempt += 1


async def _all_of(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every client, including those a burst adds meanwhile; the first error raises."""
    while True:
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)


async def run_clients(client: Any, recorder: HistoryRecorder, spec: WorkloadSpec, seed: int,
                      *, until: asyncio.Event | float, grace_s: float = 30.0) -> None:
    """Run `spec.clients` concurrent clients (more during a burst) until `until` (event
    set, or seconds elapsed) or until `spec.ops` requests were issued.

    Clients stop issuing at the deadline; operations in flight get `grace_s` seconds
    to finish, then are cancelled and recorded as `info`.
    """
    if spec.read_share > 0 and not callable(getattr(client, "read", None)):
        raise BadInput("the workload asks for reads (read_share > 0) but the client has no "
                       "read(); set read_share=0")
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    def spawn(p: int) -> None:
        tasks.append(asyncio.create_task(_one_client(client, recorder, shared, p),
                                         name=f"txchaos-client-{p}"))

    shared = _Shared(spec, seed, loop, spawn)
    for p in range(spec.clients):
        spawn(p)
    all_done = asyncio.ensure_future(_all_of(tasks))
    # Interrupted runs cancel the clients; the outcome is read below, not here.
    all_done.add_done_callback(lambda f: f.cancelled() or f.exception())
    stopper: asyncio.Future[Any]
    if isinstance(until, asyncio.Event):
        stopper = asyncio.ensure_future(until.wait())
    else:
        stopper = asyncio.ensure_future(asyncio.sleep(float(until)))
    try:
        await asyncio.wait({all_done, stopper}, return_when=asyncio.FIRST_COMPLETED)
        shared.halt()
        if not all_done.done():
            await asyncio.wait({all_done}, timeout=grace_s)
    finally:
        shared.halt()
        stopper.cancel()
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        all_done.cancel()
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
