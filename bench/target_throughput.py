"""Throughput and latency of the reference payment system per broker, beside the broker's raw rate.

    .venv/bin/python bench/target_throughput.py [--brokers rabbitmq,kafka,nats]
        [--clients 8,32] [--duration 10]

For each broker (started by a local lab, every connection through Toxiproxy
with no toxics) and each concurrency level it measures, in the same run:

- raw: the broker's own produce-consume round trip through the project's
  transport: `clients` concurrent senders, each sending a message (durably
  confirmed) and waiting until a consumer of the same inbox has handled it;
- payments: `clients` concurrent clients POSTing transfers to the reference
  target's coordinator (2PC over four participants) and waiting for the answer.

Rates are completed operations per second of wall-clock time; latencies are
per operation. A 2PC payment needs about 10 broker messages in sequence
(prepare and vote per participant, then decision and ack), which is what the
ratio of the two columns shows. The machine is shared: compare columns of one
run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.base import TargetContext  # noqa: E402
from adapters.registry import load_adapter  # noqa: E402
from harness.errors import TxchaosError  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.model import Outcome, Transfer  # noqa: E402
from targets.payments.transport.base import Message, TransportError, make_transport  # noqa: E402

ACCOUNTS = {f"acct-{i:02d}": 1_000_000 for i in range(1, 17)}


@dataclass
class Sample:
    """Latencies (seconds) of completed operations in a window of `seconds`."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The q-th percentile latency in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


async def raw_round_trips(url: str, clients: int, duration: float) -> Sample:
    """Send-then-handled round trips through one inbox with `clients` concurrent senders."""
    transport = make_transport(url, client_id=f"bench-{uuid.uuid4().hex[:6]}")
    inbox = f"bench-{uuid.uuid4().hex[:8]}"
    waiting: dict[str, asyncio.Future[None]] = {}

    async def handler(message: Message) -> None:
        fut = waiting.pop(str(message.get("k")), None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    await transport.connect()
    await transport.send(inbox, {"k": "warm-up"}, dedup_id="warm-up")  # creates topic/queue
    server = asyncio.create_task(transport.serve(inbox, handler))
    sample = Sample()
    loop = asyncio.get_running_loop()

    async def sender(n: int, until: float) -> None:
        i = 0
        while loop.time() < until:
            key = f"{n}-{i}"
            i += 1
            fut: asyncio.Future[None] = loop.create_future()
            waiting[key] = fut
            start = loop.time()
            try:
                await transport.send(inbox, {"k": key}, dedup_id=key)
                await asyncio.wait_for(fut, 30)
            except (TransportError, asyncio.TimeoutError):
                sample.outcomes["error"] += 1
                continue
            sample.latencies.append(loop.time() - start)
            sample.outcomes["ok"] += 1

    try:
        started = loop.time()
        await asyncio.gather(*(sender(n, started + duration) for n in range(clients)))
        sample.seconds = loop.time() - started
    finally:
        await transport.close()
        await asyncio.wait_for(server, 30)
    return sample


async def payments(adapter: object, clients: int, duration: float, tag: str) -> Sample:
    """Transfers between random-free rotating account pairs by `clients` concurrent clients."""
    accounts = sorted(ACCOUNTS)
    sample = Sample()
    loop = asyncio.get_running_loop()

    async def client(n: int, until: float) -> None:
        i = 0
        while loop.time() < until:
            src = accounts[(n + i) % len(accounts)]
            dst = accounts[(n + i * 7 + 1) % len(accounts)]
            if dst == src:
                dst = accounts[(accounts.index(src) + 1) % len(accounts)]
            t = Transfer(id=f"{tag}-{n}-{i}", source=src, dest=dst, amount=1)
            i += 1
            start = loop.time()
            result = await adapter.transfer(t)  # type: ignore[attr-defined]
            sample.outcomes[result.outcome.value] += 1
            if result.outcome is Outcome.OK:
                sample.latencies.append(loop.time() - start)

    started = loop.time()
    await asyncio.gather(*(client(n, started + duration) for n in range(clients)))
    sample.seconds = loop.time() - started
    return sample


def bench_broker(lab: Lab, root: Path, broker: str, levels: list[int], duration: float) -> list[str]:
    lab.ensure(broker)
    url = lab.link(broker, "bench-raw").url
    adapter = load_adapter(broker)()
    ctx = TargetContext(lab=lab, run_dir=root / broker, accounts=ACCOUNTS)
    rows = []
    adapter.start(ctx)
    try:
        async def measure() -> None:
            try:
                for clients in levels:
                    raw = await raw_round_trips(url, clients, duration)
                    pay = await payments(adapter, clients, duration, f"{broker}-{clients}")
                    rows.append(_row(broker, clients, raw, pay))
                    print(rows[-1], flush=True)
            finally:
                await adapter.aclose()

        asyncio.run(measure())
    finally:
        adapter.stop()
    return rows


HEADER = (f"{'broker':<9} {'clients':>7} | {'raw msg/s':>9} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'pay/s':>6} {'p50 ms':>7} {'p99 ms':>7}  outcomes")


def _row(broker: str, clients: int, raw: Sample, pay: Sample) -> str:
    outcomes = " ".join(f"{k}={v}" for k, v in sorted(pay.outcomes.items()))
    if raw.outcomes.get("error"):
        outcomes += f" raw-errors={raw.outcomes['error']}"
    return (f"{broker:<9} {clients:>7} | {raw.rate:>9.1f} {raw.pct(50):>7.1f} {raw.pct(99):>7.1f} | "
            f"{pay.rate:>6.1f} {pay.pct(50):>7.1f} {pay.pct(99):>7.1f}  {outcomes}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="rabbitmq,kafka,nats")
    parser.add_argument("--clients", default="8,32", help="concurrency levels, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    args = parser.parse_args(argv)
    brokers = [b for b in args.brokers.split(",") if b]
    try:
        levels = [int(c) for c in args.clients.split(",") if c]
    except ValueError:
        print(f"--clients must be integers, e.g. 8,32 (got {args.clients!r})", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab")
        print(HEADER, flush=True)
        rows: list[str] = []
        started = time.monotonic()
        try:
            for broker in brokers:
                rows += bench_broker(lab, root, broker, levels, args.duration)
        except TxchaosError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        finally:
            lab.down()
    print(f"\n{HEADER}\n" + "\n".join(rows))
    print(f"({args.duration:.0f} s per cell, {time.monotonic() - started:.0f} s in all; "
          f"p50/p99 of payments are of committed ones)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
