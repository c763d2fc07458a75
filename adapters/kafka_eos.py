"""Payments on Kafka's own transactions (exactly-once processing): the adapters.

The target is a consume-transform-produce processor (targets/kafka_eos),
implemented twice with the same protocol: in Python on aiokafka and in Java on
Kafka's own client. Two processor instances share a consumer group; each runs
as its own OS process whose every broker connection goes through its own
Toxiproxy link. The client side (this adapter) produces a payment request and
learns the outcome from the committed result record: ok, fail (refused for
funds), or unknown after a timeout. The snapshot reads every topic back
directly (adapters.kafka_eos_state maps it to participants).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from adapters.base import Adapter, Link, Node, TargetContext, Topology
from adapters.kafka_eos_state import build_state
from harness.errors import BadInput, InfraError
from harness.model import OpResult, Outcome, Transfer
from harness.procs import ManagedProcess, ServiceStartError
from targets.kafka_eos.protocol import MUTANTS, Layout, decode, encode

__all__ = ["KafkaEosAdapter", "KafkaEosPythonAdapter", "KafkaEosJavaAdapter"]

INSTANCES = ("proc-1", "proc-2")
REPLY_TIMEOUT_S = 10.0


def _run(coro: Any) -> Any:
    """Run a coroutine from sync code, even when a loop is already running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class _Client:
    """The payment client, bound to one event loop: a producer and a results reader."""

    def __init__(self, bootstrap: str, layout: Layout) -> None:
        self.layout = layout
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="txchaos-client",
                                         request_timeout_ms=5000)
        self.results = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                        isolation_level="read_committed", enable_auto_commit=False,
                                        client_id="txchaos-results")
        self.waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.results.start()
        tps = [TopicPartition(self.layout.results, i) for i in range(self.layout.request_partitions)]
        self.results.assign(tps)
        await self.results.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, before any request is sent
            await self.results.position(tp)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self.results.getmany(timeout_ms=500)
            for msgs in batches.values():
                for m in msgs:
                    rec = decode(m.value)
                    fut = self.waiters.get(rec.get("payment", ""))
                    if fut is not None and not fut.done():
                        fut.set_result(rec)

    async def transfer(self, t: Transfer) -> OpResult:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters[t.id] = fut
        try:
            try:
                await asyncio.wait_for(self.producer.send_and_wait(
                    self.layout.requests, encode(t.to_json()), key=t.source.encode(),
                    partition=self.layout.request_partition(t.source)), REPLY_TIMEOUT_S)
            except Exception as e:  # it may still have been written
                return OpResult(Outcome.UNKNOWN, error=f"send: {type(e).__name__}")
            try:
                rec = await asyncio.wait_for(asyncio.shield(fut), REPLY_TIMEOUT_S)
            except asyncio.TimeoutError:
                return OpResult(Outcome.UNKNOWN, error="timeout")
        finally:
            self.waiters.pop(t.id, None)
        if rec.get("status") == "ok":
            return OpResult(Outcome.OK)
        return OpResult(Outcome.FAIL, error="insufficient-funds")

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        for c in (self.producer, self.results):
            try:
                await asyncio.wait_for(c.stop(), 5)
            except (Exception, asyncio.CancelledError):  # teardown: aiokafka cancels its own tasks
                pass


class KafkaEosAdapter(Adapter):
    """The processor deployment; subclasses say how to launch one instance."""

    services: ClassVar[frozenset[str]] = frozenset({"kafka"})
    capabilities: ClassVar[frozenset[str]] = frozenset({"no-negative", "mutants"})

    def __init__(self) -> None:
        self.procs: dict[str, ManagedProcess] = {}
        self.layout: Layout | None = None
        self.accounts: dict[str, int] = {}
        self.data_dir = Path()
        self.bootstrap = ""
        self._client: asyncio.Task[_Client] | None = None  # started once per event loop
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @abstractmethod
    def launcher(self, *, instance: str, bootstrap: str, data_dir: Path) -> list[str]:
        """argv that runs one processor instance (env: TXCHAOS_ACCOUNTS, TXCHAOS_MUTANT)."""

    def prepare(self, ctx: TargetContext) -> None:
        """Build or locate what `launcher` needs; InfraError if it cannot."""

    def mutants(self) -> list[str]:
        return list(MUTANTS)

    # -- lifecycle ------------------------------------------------------------
    def start(self, ctx: TargetContext) -> Topology:
        if ctx.mutant and ctx.mutant not in MUTANTS:
            raise BadInput(f"unknown mutant {ctx.mutant!r} for {self.name}; choose one of {', '.join(MUTANTS)}")
        if len(ctx.accounts) < 2:
            raise BadInput("the target needs at least two accounts")
        self.prepare(ctx)
        ctx.lab.ensure("kafka")
        self.accounts = dict(ctx.accounts)
        self.layout = Layout(f"eos{uuid.uuid4().hex[:8]}", tuple(sorted(self.accounts)))
        self.bootstrap = ctx.lab.endpoint("kafka").url.removeprefix("kafka://")
        self.data_dir = ctx.data_dir("kafka-eos")  # journals and ready files of both instances
        try:
            _run(self._create_topics())
        except Exception as e:  # aiokafka's errors: the broker is not reachable or refused
            raise InfraError(f"{self.name}: could not create the topics on Kafka at {self.bootstrap}: "
                             f"{type(e).__name__}: {e}") from None
        env = {"TXCHAOS_ACCOUNTS": json.dumps(self.accounts), "PYTHONUNBUFFERED": "1"}
        if ctx.mutant:
            env["TXCHAOS_MUTANT"] = ctx.mutant
        nodes: list[Node] = []
        links: list[Link] = []
        try:
            for name in INSTANCES:
                link = ctx.link("kafka", name)  # its own proxy; link.url is a bootstrap host:port
                links.append(link)
                argv = self.launcher(instance=name, bootstrap=link.url, data_dir=self.data_dir)
                ready_file = self.data_dir / f"{name}.ready"
                proc = ctx.spawn(name, argv, env=env, ready=lambda f=ready_file, n=name: self._ready(f, n),
                                 ready_timeout=60, stop_timeout=5, start=False)
                self.procs[name] = proc
                proc.start()
                nodes.append(Node(name, "processor", process=proc))
        except ServiceStartError as e:
            self.stop()
            raise InfraError(f"the {self.name} processor did not start: {e}") from None
        brokers, _ = ctx.broker("kafka")
        nodes += brokers
        return Topology(nodes=nodes, links=links)

    def _ready(self, ready_file: Path, name: str) -> bool:
        """The instance wrote its own pid once its consumers and producers connected."""
        proc = self.procs[name]
        return ready_file.exists() and ready_file.read_text().strip() == str(proc.pid)

    async def _create_topics(self) -> None:
        assert self.layout is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, n, 1) for t, n in self.layout.topics().items()])
        finally:
            await admin.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    async def aclose(self) -> None:
        task, self._client = self._client, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            try:
                client = await task
            except Exception:
                return
            await client.close()

    # -- operations -----------------------------------------------------------
    async def _the_client(self) -> _Client:
        """One client per event loop, shared by concurrent callers (a failed start is retried)."""
        loop = asyncio.get_running_loop()
        task = self._client
        if task is None or self._client_loop is not loop or (task.done() and task.exception()):
            assert self.layout is not None
            task = loop.create_task(self._start_client(self.layout))
            self._client, self._client_loop = task, loop
        return await asyncio.shield(task)

    async def _start_client(self, layout: Layout) -> _Client:
        client = _Client(self.bootstrap, layout)
        try:
            await client.start()
        except BaseException:
            await client.close()
            raise
        return client

    async def transfer(self, t: Transfer) -> OpResult:
        try:
            client = await asyncio.wait_for(self._the_client(), REPLY_TIMEOUT_S)
        except Exception as e:
            return OpResult(Outcome.UNKNOWN, error=f"client: {type(e).__name__}")
        return await client.transfer(t)

    async def snapshot(self) -> dict[str, Any]:
        assert self.layout is not None
        lay = self.layout
        topics = [lay.requests, lay.account_topic, lay.ledger, lay.results]
        committed, stable = await read_all(self.bootstrap, lay, topics, "read_committed")
        uncommitted, _ = await read_all(self.bootstrap, lay, topics, "read_uncommitted")
        requests = [r for (t, _), recs in uncommitted.items() if t == lay.requests for _, r in recs]
        journal = []
        for path in sorted(self.data_dir.glob("*.txns.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    journal.append(json.loads(line))
                except ValueError:
                    pass  # a line cut short by kill -9
        return build_state(initial=self.accounts, layout=lay, committed=committed, uncommitted=uncommitted,
                           stable=stable, requests=requests, journal=journal)


async def read_all(bootstrap: str, layout: Layout, topics: list[str], isolation: str,
                   timeout: float = 15.0) -> tuple[dict[tuple[str, int], list[tuple[int, dict[str, Any]]]],
                                                   dict[tuple[str, int], int]]:
    """Every record of `topics` from the start to the end offsets of now, and those end offsets
    (the last stable offset under read_committed, the high watermark under read_uncommitted)."""
    counts = layout.topics()
    tps = [TopicPartition(t, i) for t in topics for i in range(counts[t])]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level=isolation,
                                enable_auto_commit=False, client_id=f"txchaos-snapshot-{isolation}",
                                request_timeout_ms=10000)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = {(tp.topic, tp.partition): [] for tp in tps}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            if loop.time() > deadline:
                raise InfraError(f"snapshot ({isolation}) did not reach the end of "
                                 f"{', '.join(sorted(f'{tp.topic}/{tp.partition}' for tp in pending))}")
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, msgs in batches.items():
                for m in msgs:
                    if m.offset < end[tp]:
                        out[(tp.topic, tp.partition)].append((m.offset, decode(m.value)))
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return out, {(tp.topic, tp.partition): end[tp] for tp in tps}
    finally:
        await consumer.stop()


class KafkaEosPythonAdapter(KafkaEosAdapter):
    """The processor in Python, on aiokafka."""

    name = "kafka-eos-py"

    def launcher(self, *, instance: str, bootstrap: str, data_dir: Path) -> list[str]:
        assert self.layout is not None
        return [sys.executable, "-m", "targets.kafka_eos.processor", "--bootstrap", bootstrap,
                "--ns", self.layout.ns, "--instance", instance, "--data-dir", str(data_dir),
                "--request-partitions", str(self.layout.request_partitions)]


class KafkaEosJavaAdapter(KafkaEosAdapter):
    """The processor in Java, on Kafka's own client (kafka-clients 4.1.1)."""

    name = "kafka-eos-java"

    def prepare(self, ctx: TargetContext) -> None:
        from targets.kafka_eos.java_build import processor_classpath

        self.classpath = processor_classpath()

    def launcher(self, *, instance: str, bootstrap: str, data_dir: Path) -> list[str]:
        from harness.lab import binaries

        assert self.layout is not None
        return [binaries.java_bin(), "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.classpath, "txchaos.eos.Processor", "--bootstrap", bootstrap,
                "--ns", self.layout.ns, "--instance", instance, "--data-dir", str(data_dir),
                "--request-partitions", str(self.layout.request_partitions)]
