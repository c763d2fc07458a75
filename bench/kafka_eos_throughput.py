"""Payments per second of the Kafka EOS processors (Python, Java), beside Kafka's raw round trip.

    .venv/bin/python bench/kafka_eos_throughput.py [--targets kafka-eos-py,kafka-eos-java]
        [--clients 4,16] [--duration 8]

One local lab (Kafka + Toxiproxy, no toxics). For each concurrency level:

- raw: `clients` concurrent senders, each producing a record (acks=all) and
  waiting until a read_committed consumer of the same topic has it: the
  client's own path to Kafka and back, without a processor;
- each target: `clients` concurrent clients submitting payments through the
  adapter (request record -> processor transaction with five writes and the
  input offset -> committed result record) and waiting for the result.

Rates are completed operations per second of wall-clock time; latencies per
operation. The machine is shared and loaded: compare the columns of one run,
not numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from adapters.base import TargetContext  # noqa: E402
from adapters.registry import load_adapter  # noqa: E402
from harness.errors import TxchaosError  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.model import Outcome, Transfer  # noqa: E402

ACCOUNTS = {f"acct-{i:02d}": 1_000_000 for i in range(1, 9)}


@dataclass
class Sample:
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
        return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))] * 1000


async def raw(bootstrap: str, clients: int, duration: float) -> Sample:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed")
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")  # creates the topic
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    waiting: dict[bytes, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()

    async def read() -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                for m in msgs:
                    fut = waiting.pop(m.value, None)
                    if fut is not None and not fut.done():
                        fut.set_result(None)

    reader = asyncio.create_task(read())
    sample = Sample()

    async def sender(n: int, until: float) -> None:
        i = 0
        while loop.time() < until:
            key = f"{n}-{i}".encode()
            i += 1
            fut: asyncio.Future[None] = loop.create_future()
            waiting[key] = fut
            start = loop.time()
            await producer.send_and_wait(topic, key)
            await asyncio.wait_for(fut, 30)
            sample.latencies.append(loop.time() - start)
            sample.outcomes["ok"] += 1

    started = loop.time()
    try:
        await asyncio.gather(*(sender(n, started + duration) for n in range(clients)))
        sample.seconds = loop.time() - started
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    return sample


async def payments(adapter: object, clients: int, duration: float, tag: str) -> Sample:
    accounts = sorted(ACCOUNTS)
    sample = Sample()
    loop = asyncio.get_running_loop()

    async def client(n: int, until: float) -> None:
        i = 0
        while loop.time() < until:
            src = accounts[(n + i) % len(accounts)]
            dst = accounts[(n + i + 1 + i % 3) % len(accounts)]
            i += 1
            start = loop.time()
            result = await adapter.transfer(Transfer(f"{tag}-{n}-{i}", src, dst, 1))  # type: ignore[attr-defined]
            sample.outcomes[result.outcome.value] += 1
            if result.outcome is Outcome.OK:
                sample.latencies.append(loop.time() - start)

    started = loop.time()
    await asyncio.gather(*(client(n, started + duration) for n in range(clients)))
    sample.seconds = loop.time() - started
    return sample


def row(name: str, clients: int, s: Sample) -> str:
    outcomes = " ".join(f"{k}={v}" for k, v in sorted(s.outcomes.items()))
    return f"{name:<15} {clients:>7} | {s.rate:>8.1f} {s.pct(50):>8.1f} {s.pct(99):>8.1f}  {outcomes}"


HEADER = f"{'what':<15} {'clients':>7} | {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}  outcomes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="kafka-eos-py,kafka-eos-java")
    parser.add_argument("--clients", default="4,16", help="concurrency levels, comma-separated")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    args = parser.parse_args(argv)
    try:
        levels = [int(c) for c in args.clients.split(",") if c]
    except ValueError:
        print(f"--clients must be integers, e.g. 4,16 (got {args.clients!r})", file=sys.stderr)
        return 3
    targets = [t for t in args.targets.split(",") if t]
    with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab")
        try:
            lab.ensure("kafka")
            bootstrap = lab.link("kafka", "bench-raw").url.removeprefix("kafka://")
            print(HEADER, flush=True)
            for clients in levels:
                print(row("raw round trip", clients, asyncio.run(raw(bootstrap, clients, args.duration))),
                      flush=True)
            for target in targets:
                adapter = load_adapter(target)()
                adapter.start(TargetContext(lab=lab, run_dir=root / target, accounts=ACCOUNTS))
                try:
                    async def measure() -> list[str]:
                        try:
                            await payments(adapter, 2, 3.0, "warm-up")  # group joined, tasks open
                            return [row(target, c, await payments(adapter, c, args.duration, f"b{c}"))
                                    for c in levels]
                        finally:
                            await adapter.aclose()

                    for line in asyncio.run(measure()):
                        print(line, flush=True)
                finally:
                    adapter.stop()
        except TxchaosError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
