"""The payment processor on Kafka transactions, in Python (aiokafka).

A consume-transform-produce loop as such pipelines are written: instances share
a consumer group on NS.requests (isolation read_committed, no auto-commit).
Each assigned input partition is a *task* with its own transactional producer
whose id is stable per partition, so the task's next owner fences it
(aiokafka's send_offsets_to_transaction carries only the group id, not the
group generation, so fencing by group metadata — KIP-447 — is not available).
Opening a task: the producer's first (empty) transaction obtains its producer
id and epoch (InitProducerId fences older epochs and completes their open
transaction), then balances of the accounts it owns are restored from the
committed account records, then the consumer is placed at the committed offset.

Per payment, ONE transaction: debit record on the source account's partition,
credit on the destination's, a ledger record, the result record, and the input
offset. A refused payment (insufficient funds) commits only its result and
offset. Every attempt is journaled (transactional id, producer id and epoch,
outcome) so the harness can say which transaction did what.

Run: python -m targets.kafka_eos.processor --bootstrap HOST:PORT --ns NS
     --instance NAME --data-dir DIR  (accounts as JSON in TXCHAOS_ACCOUNTS)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError

from targets.kafka_eos.protocol import MUTANTS, Layout, decode, encode

log = logging.getLogger("kafka_eos")

TXN_TIMEOUT_MS = 10_000      # the broker aborts a transaction left open this long
OP_TIMEOUT_S = 30.0          # last-resort bound on one payment's transaction (the client's own
                             # request timeouts act first); longer than a zombie's pause
RESTORE_TIMEOUT_S = 15.0     # reading the account partitions up to the high watermark
SESSION_TIMEOUT_MS = 6_000   # the broker's group.min.session.timeout.ms


@dataclass
class Task:
    """One assigned input partition: its producer and the balances of the accounts it owns."""

    partition: int
    producer: AIOKafkaProducer
    tid: str
    next_offset: int
    debits: dict[str, int]  # debits of owned accounts: restored, then our own commits
    seq: int = 0
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # our own committed results


@dataclass
class Tail:
    """Account and result records, read continuously: credits and debits per account, and
    the result of every payment id (an idempotency key: a client may re-submit a payment)."""

    consumer: AIOKafkaConsumer
    results_topic: str
    credits: dict[str, int] = field(default_factory=dict)
    debits: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment id -> first result

    def apply(self, topic: str, rec: dict[str, Any]) -> None:
        if topic == self.results_topic:
            self.results.setdefault(rec["payment"], rec)
            return
        book = self.credits if rec.get("kind") == "credit" else self.debits
        book[rec["account"]] = book.get(rec["account"], 0) + int(rec["amount"])


class Journal:
    """Append-only record of every transaction attempt and how it ended."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", buffering=1)

    def write(self, **fields: Any) -> None:
        self._f.write(json.dumps({"t": time.time(), **fields}, sort_keys=True) + "\n")


class Processor:
    def __init__(self, *, bootstrap: str, layout: Layout, instance: str, accounts: dict[str, int],
                 data_dir: Path, mutant: str | None) -> None:
        self.bootstrap = bootstrap
        self.layout = layout
        self.instance = instance
        self.initial = accounts
        self.data_dir = data_dir
        self.mutant = mutant
        self.tasks: dict[int, Task] = {}
        self.lock = asyncio.Lock()
        self.journal = Journal(data_dir / f"{instance}.txns.jsonl")
        self.consumer: AIOKafkaConsumer | None = None
        self.tail: Tail | None = None
        self.probe: AIOKafkaConsumer | None = None
        self.plain: AIOKafkaProducer | None = None  # early-result mutant only
        self.processed: dict[TopicPartition, int] = {}  # offsets-outside-txn mutant only
        self.last_commit = 0.0

    # -- lifecycle ------------------------------------------------------------
    async def run(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.layout.group, client_id=self.instance,
            group_instance_id=self.instance,  # static membership: a restarted instance gets its partitions back
            isolation_level="read_committed", auto_offset_reset="earliest", enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=1000,
            rebalance_timeout_ms=10_000, max_poll_interval_ms=30_000, request_timeout_ms=10_000)
        isolation = "read_uncommitted" if self.mutant == "uncommitted-restore" else "read_committed"
        tail = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=f"{self.instance}-state",
                                isolation_level=isolation, enable_auto_commit=False, group_id=None,
                                request_timeout_ms=10_000)
        # the high watermark (end offsets under read_uncommitted) is what a restore must reach
        self.probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=f"{self.instance}-probe",
                                      isolation_level="read_uncommitted", enable_auto_commit=False,
                                      group_id=None, request_timeout_ms=10_000)
        for client in (self.consumer, tail, self.probe):
            await _start(client)
        tps = [TopicPartition(self.layout.account_topic, i) for i in range(len(self.layout.accounts))]
        tps += [TopicPartition(self.layout.results, i) for i in range(self.layout.request_partitions)]
        tail.assign(tps)
        await tail.seek_to_beginning(*tps)
        self.tail = Tail(tail, self.layout.results)
        if self.mutant == "early-result":
            self.plain = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                          client_id=f"{self.instance}-early")
            await _start(self.plain)
        self.consumer.subscribe([self.layout.requests], listener=_Listener(self))
        (self.data_dir / f"{self.instance}.ready").write_text(str(os.getpid()))
        log.info("%s started (mutant %s)", self.instance, self.mutant or "none")
        try:
            await self._loop()
        finally:
            for p in list(self.tasks):
                await self.drop(p)
            for c in (self.consumer, tail, self.probe, self.plain):
                if c is not None:
                    try:
                        await asyncio.wait_for(c.stop(), 5.0)
                    except BaseException:
                        pass

    async def _loop(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=300, max_records=20)
            for tp, msgs in batches.items():
                for msg in msgs:
                    if not await self.handle(tp, msg):
                        break
            if self.processed and time.monotonic() - self.last_commit >= 1.0:
                await self.commit_outside()

    async def commit_outside(self) -> None:
        """offsets-outside-txn: the consumer commits what was processed, at most once a second."""
        offsets, self.processed = self.processed, {}
        self.last_commit = time.monotonic()
        try:
            await self.consumer.commit(offsets)  # type: ignore[union-attr]
        except Exception as e:
            log.warning("offset commit failed: %r", e)

    # -- tasks ----------------------------------------------------------------
    async def open(self, tp: TopicPartition) -> Task:
        p = tp.partition
        tid = self.layout.transactional_id(p)
        if self.mutant == "fresh-txn-id":
            tid = f"{tid}.{uuid.uuid4().hex[:8]}"
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=tid,
                                    transaction_timeout_ms=TXN_TIMEOUT_MS, acks="all",
                                    client_id=f"{self.instance}-p{p}", request_timeout_ms=10_000)
        try:
            await producer.start()
            # An empty transaction: obtains the producer id and epoch (InitProducerId
            # fences older epochs of this id and completes their open transaction).
            await producer.begin_transaction()
            await producer.abort_transaction()
            await self.catch_up(full=True)  # restore: every committed account record so far
            committed = await self.consumer.committed(tp)  # type: ignore[union-attr]
        except BaseException:
            await _close(producer)
            raise
        committed = committed or 0
        if not self.seek(tp, committed):  # revoked while we opened
            await _close(producer)
            raise RuntimeError(f"partition {p} was revoked while its task opened")
        debits = {a: self.tail.debits.get(a, 0) for a in self.layout.owned(p)}  # type: ignore[union-attr]
        task = Task(p, producer, tid, committed, debits)
        self.tasks[p] = task
        txm = producer._txn_manager  # producer id and epoch, for the evidence
        log.info("task p%d open: tid %s pid %s epoch %s offset %d debits %s", p, tid,
                 txm.producer_id, txm.producer_epoch, committed, debits)
        return task

    def seek(self, tp: TopicPartition, offset: int) -> bool:
        """Place the consumer at `offset`; False if the partition is no longer ours."""
        try:
            self.consumer.seek(tp, offset)  # type: ignore[union-attr]
            return True
        except IllegalStateError:
            return False

    async def drop(self, p: int) -> None:
        task = self.tasks.pop(p, None)
        if task is not None:
            await _close(task.producer)
            log.info("task p%d closed", p)

    async def catch_up(self, *, full: bool) -> None:
        """Apply new account records; `full`: up to the high watermark of now.

        Not just to the last stable offset: another task's open transaction can hold the
        LSO below debits our predecessor committed, and missing them would overspend."""
        tail = self.tail
        assert tail is not None
        if full:
            tps = list(tail.consumer.assignment())
            end = await self.probe.end_offsets(tps)
            deadline = time.monotonic() + RESTORE_TIMEOUT_S
            while [tp for tp in tps if await tail.consumer.position(tp) < end[tp]]:
                if time.monotonic() > deadline:
                    raise TimeoutError("restore: account partitions not read to their end")
                for tp, msgs in (await tail.consumer.getmany(timeout_ms=200)).items():
                    for m in msgs:
                        tail.apply(tp.topic, decode(m.value))
        else:
            for tp, msgs in (await tail.consumer.getmany(timeout_ms=0)).items():
                for m in msgs:
                    tail.apply(tp.topic, decode(m.value))

    # -- one payment ----------------------------------------------------------
    async def handle(self, tp: TopicPartition, msg: Any) -> bool:
        """Process one request; False: the partition was repositioned, drop the rest of its batch."""
        async with self.lock:
            consumer = self.consumer
            assert consumer is not None
            if tp not in consumer.assignment():
                return False
            task = self.tasks.get(tp.partition)
            if task is None:
                try:
                    await asyncio.wait_for(self.open(tp), RESTORE_TIMEOUT_S * 2)
                except Exception as e:
                    log.warning("task p%d could not open: %r", tp.partition, e)
                    self.seek(tp, msg.offset)
                    await asyncio.sleep(1.0)
                return False  # the consumer now reads from the committed offset
            if msg.offset < task.next_offset:
                return True  # a stale fetch from before a reposition
            if msg.offset > task.next_offset:
                self.seek(tp, task.next_offset)
                return False
            try:
                await asyncio.wait_for(self.transact(task, tp, msg), OP_TIMEOUT_S)
            except Exception as e:
                log.warning("task p%d: payment at offset %d failed (%r); reopening", tp.partition,
                            msg.offset, e)
                await self.drop(tp.partition)
                self.seek(tp, msg.offset)
                return False
            task.next_offset = msg.offset + 1
            return True

    async def transact(self, task: Task, tp: TopicPartition, msg: Any) -> None:
        req = decode(msg.value)
        pid, src, dst, amount = req["id"], req["from"], req["to"], int(req["amount"])
        await self.catch_up(full=False)
        tail = self.tail
        assert tail is not None
        # A client's re-submission (a new request record with a known payment id) gets the
        # first result again. The same record delivered twice is not guarded against here:
        # that is what the transactions exclude, and what the harness checks.
        earlier = task.done.get(pid) or tail.results.get(pid)
        replay = earlier is not None and earlier.get("offset") != msg.offset
        balance = self.initial.get(src, 0) + tail.credits.get(src, 0) - task.debits.get(src, 0)
        accepted = (not replay and src in self.initial and dst in self.initial and src != dst
                    and 0 < amount <= balance)
        producer, txm = task.producer, task.producer._txn_manager
        task.seq += 1
        attempt = f"{task.tid}/{txm.producer_id}.{txm.producer_epoch}/{task.seq}"
        meta = {"payment": pid, "txn": attempt, "tid": task.tid, "pid": txm.producer_id,
                "epoch": txm.producer_epoch, "by": self.instance}
        self.journal.write(txn=attempt, tid=task.tid, pid=txm.producer_id, epoch=txm.producer_epoch,
                           payment=pid, status="replay" if replay else "ok" if accepted else "refused",
                           outcome="begin", offset=msg.offset, partition=tp.partition)
        result = {**meta, "status": "ok" if accepted else "refused", "from": src, "to": dst,
                  "amount": amount, "offset": msg.offset}
        if replay:
            result.update(status=earlier["status"], replay=True)  # type: ignore[index]
        lay = self.layout
        try:
            await producer.begin_transaction()
            sends = []
            if accepted:
                sends.append(await producer.send(lay.account_topic, encode(
                    {**meta, "kind": "debit", "account": src, "amount": amount}),
                    partition=lay.account_partition(src)))
                sends.append(await producer.send(lay.account_topic, encode(
                    {**meta, "kind": "credit", "account": dst, "amount": amount}),
                    partition=lay.account_partition(dst)))
                sends.append(await producer.send(lay.ledger, encode(
                    {**meta, "from": src, "to": dst, "amount": amount}), partition=0))
            if self.mutant == "early-result":
                await self.plain.send_and_wait(lay.results, encode(result),  # type: ignore[union-attr]
                                               partition=tp.partition)
            else:
                sends.append(await producer.send(lay.results, encode(result), partition=tp.partition))
            if self.mutant == "offsets-outside-txn":
                self.processed[tp] = msg.offset + 1  # committed later, by the consumer
            else:
                await producer.send_offsets_to_transaction({tp: msg.offset + 1}, lay.group)
            for fut in sends:
                await fut
            await producer.commit_transaction()
        except BaseException as e:
            outcome = "unknown"
            if not isinstance(e, asyncio.CancelledError) and txm.is_in_transaction():
                try:
                    await asyncio.wait_for(producer.abort_transaction(), 3.0)
                    outcome = "aborted"
                except BaseException:
                    pass
            self.journal.write(txn=attempt, payment=pid, outcome=outcome, error=repr(e))
            raise
        self.journal.write(txn=attempt, payment=pid, outcome="committed")
        if not replay:
            task.done[pid] = result
        if accepted:
            task.debits[src] = task.debits.get(src, 0) + amount


class _Listener(ConsumerRebalanceListener):
    """Rebalance listener: a revoked partition's task closes (under the processing lock)."""

    def __init__(self, processor: Processor) -> None:
        self.p = processor

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.p.lock:
            if self.p.processed:
                await self.p.commit_outside()
            for tp in revoked:
                await self.p.drop(tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %s", sorted(tp.partition for tp in assigned))


async def _start(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Start a client, retrying while no broker answers, as Kafka's Java clients do: a
    processor restarted while its link is down starts once the link is back, not never."""
    while True:
        try:
            await client.start()
            return
        except KafkaConnectionError as e:
            log.warning("no broker yet (%s); retrying in 1 s", e)
            await asyncio.sleep(1.0)


async def _close(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except BaseException as e:  # a cut link: the broker fences it anyway
        log.warning("producer close: %r", e)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--ns", required=True)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--request-partitions", type=int, default=2)
    ap.add_argument("--mutant", default=os.environ.get("TXCHAOS_MUTANT") or None, choices=[*MUTANTS, None])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    accounts = json.loads(os.environ["TXCHAOS_ACCOUNTS"])
    layout = Layout(args.ns, tuple(sorted(accounts)), args.request_partitions)
    proc = Processor(bootstrap=args.bootstrap.removeprefix("kafka://"), layout=layout,
                     instance=args.instance, accounts=accounts, data_dir=args.data_dir.resolve(),
                     mutant=args.mutant)

    async def _main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await proc.run()
        except asyncio.CancelledError:
            log.info("%s stopping", args.instance)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
