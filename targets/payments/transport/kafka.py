"""Kafka transport (aiokafka): one single-partition topic and one consumer group per inbox.

Delivery without loss, the way Kafka documents it: the producer is idempotent
with acks=all and `send` waits for the broker's acknowledgement; consumers never
auto-commit, and commit a message's offset only after its handler returned, so
a crash in between redelivers the message to the next member of the group.

Brokers restart and proxies go down under chaos, so nothing here gives up: the
serve loop rebuilds its consumer after any error, with a capped backoff, and a
failed send surfaces as TransportError for the caller to retry.

URL: kafka://host:port[/namespace], or a cluster's kafka://h:p1,h:p2,h:p3[/namespace]
(topics then get replication factor 3). The optional namespace prefixes every topic
and group name, so several systems can share one broker without seeing each
other's messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from targets.payments.transport.serving import ServingTasks, quietly
from targets.payments.transport.base import (Handler, Message, Transport, TransportError,
                                              parse_broker_url)

__all__ = ["KafkaTransport"]

log = logging.getLogger(__name__)

_NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")
_TOPIC_ALREADY_EXISTS = 36
# A restarted service must get its partition back quickly: 6 s is the broker's
# default minimum session timeout (group.min.session.timeout.ms).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000


def parse_kafka_url(url: str) -> tuple[str, str]:
    """(bootstrap "host:port[,host:port...]", namespace or "") of kafka://host:port[/ns], or
    of a cluster's kafka://h:p1,h:p2,h:p3[/ns]; ValueError if malformed."""
    scheme, sep, rest = url.partition("://")
    servers, slash, path = rest.partition("/")
    bootstrap, namespace, names = [], "", servers.split(",")
    for i, server in enumerate(names):
        part = f"{scheme}{sep}{server}" + (f"{slash}{path}" if i == len(names) - 1 else "")
        host, port, namespace = parse_broker_url(part, "kafka", _NAME_OK, "letters, digits, . _ -")
        bootstrap.append(f"{host}:{port}")
    return ",".join(bootstrap), namespace


def decode(value: bytes | None) -> Message | None:
    """The JSON object in a record, or None if it is not one (logged and skipped)."""
    try:
        message = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) else None


class _Backoff:
    """Capped exponential waits: short first (a restart is quick), never longer than `cap`."""

    def __init__(self, first: float = 0.1, cap: float = 2.0) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        wait = self.current
        self.current = min(self.cap, self.current * 2)
        return wait

    def reset(self) -> None:
        self.current = self.first


class KafkaTransport(Transport):
    """`client_id` must be unique among live processes: it names this process's
    static group membership, so a restarted service (same id) takes its
    partition back at once instead of waiting for the old session to expire."""

    def __init__(self, url: str, *, client_id: str, send_timeout: float = 10.0, durable: bool = True) -> None:
        self.bootstrap, self.namespace = parse_kafka_url(url)
        self.durable = durable  # False: acks=1, the leader's word alone (a mutant's settings)
        if not _NAME_OK.match(client_id):
            raise ValueError(f"bad client id {client_id!r}: use letters, digits, . _ -")
        self.client_id = client_id
        self.send_timeout = send_timeout
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._known_topics: set[str] = set()
        self._tasks = ServingTasks()

    # -- names ---------------------------------------------------------------
    def topic(self, inbox: str) -> str:
        if not _NAME_OK.match(inbox):
            raise ValueError(f"bad inbox name {inbox!r}: use letters, digits, . _ -")
        return f"{self.namespace}.{inbox}" if self.namespace else inbox

    def group(self, inbox: str) -> str:
        return f"inbox-{self.topic(inbox)}"

    # -- connection ----------------------------------------------------------
    async def connect(self) -> None:
        """Start the producer; raise TransportError if the broker is unreachable."""
        await self._ensure_producer()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-producer",
                acks="all" if self.durable else 1,
                enable_idempotence=self.durable,
                request_timeout_ms=int(self.send_timeout * 1000),
                retry_backoff_ms=200,
            )
            try:
                await asyncio.wait_for(producer.start(), self.send_timeout)
            except Exception as e:
                await quietly(producer.stop())
                raise TransportError(f"Kafka at {self.bootstrap} unreachable: {e!r}") from e
            self._producer = producer
            return producer

    async def ensure_topic(self, topic: str) -> None:
        """Create `topic` (1 partition; replication factor 1, or 3 on a cluster: as many as the
        bootstrap names, at most 3) if it does not exist; TransportError on failure."""
        if topic in self._known_topics:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                    client_id=f"{self.client_id}-admin",
                                    request_timeout_ms=int(self.send_timeout * 1000))
        try:
            await asyncio.wait_for(admin.start(), self.send_timeout)
            replicas = min(3, len(self.bootstrap.split(",")))  # a cluster's bootstrap names every node
            response = await asyncio.wait_for(
                admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=replicas)]),
                self.send_timeout)
            for name, code, *rest in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise TransportError(f"cannot create Kafka topic {name!r}: error {code} {rest}")
        except TransportError:
            raise
        except Exception as e:
            raise TransportError(f"cannot create Kafka topic {topic!r} at {self.bootstrap}: {e!r}") from e
        finally:
            await quietly(admin.close())
        self._known_topics.add(topic)

    # -- sending -------------------------------------------------------------
    async def send(self, inbox: str, message: Message, *, dedup_id: str) -> None:
        if self._tasks.closed:
            raise TransportError("transport is closed")
        topic = self.topic(inbox)
        await self.ensure_topic(topic)
        producer = await self._ensure_producer()
        value = json.dumps(message, separators=(",", ":")).encode()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(topic, value, key=dedup_id.encode(),
                                       headers=[("dedup-id", dedup_id.encode())]),
                self.send_timeout)
        except Exception as e:  # KafkaError, timeout, connection loss: the caller retries
            raise TransportError(f"Kafka did not confirm message {dedup_id!r} to {topic!r}: {e!r}") from e

    # -- serving -------------------------------------------------------------
    async def serve(self, inbox: str, handler: Handler, *, ack_before_handling: bool = False) -> None:
        topic = self.topic(inbox)
        task = self._tasks.track()
        backoff = _Backoff()
        try:
            while not self._tasks.closed:
                consumer: AIOKafkaConsumer | None = None
                try:
                    await self.ensure_topic(topic)
                    consumer = self._new_consumer(inbox)
                    await asyncio.wait_for(consumer.start(), self.send_timeout)
                    consumer.subscribe([topic])
                    backoff.reset()
                    await self._consume(consumer, handler, ack_before_handling)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.warning("kafka consumer of %s failed (%r); reconnecting", topic, e)
                    await self._tasks.pause(backoff.next())
                finally:
                    if consumer is not None:
                        await quietly(consumer.stop())
        finally:
            self._tasks.untrack(task)

    def _new_consumer(self, inbox: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-{inbox}",
            group_id=self.group(inbox),
            group_instance_id=f"{self.client_id}-{inbox}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            request_timeout_ms=max(int(self.send_timeout * 1000), SESSION_TIMEOUT_MS + 1000),
            retry_backoff_ms=200,
            max_poll_records=50,
        )

    async def _consume(self, consumer: AIOKafkaConsumer, handler: Handler,
                       ack_before_handling: bool) -> None:
        """Handle records in order until closed; a failing handler rewinds to its record.

        The offset is committed once per fetched batch, after the last handler of
        the batch returned: one broker round trip per batch instead of per
        message (under load a service reads many messages at once), and a crash
        still only redelivers messages, never skips one.
        """
        failures = _Backoff(first=0.2, cap=2.0)
        while not self._tasks.closed:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                done: int | None = None  # offset after the last handled record
                for record in records:
                    if not await self._handle(consumer, tp, record, handler, ack_before_handling):
                        if done is not None:
                            await consumer.commit({tp: done})
                            done = None
                        consumer.seek(tp, record.offset)
                        await self._tasks.pause(failures.next())
                        break  # the rest of this batch comes again after the seek
                    failures.reset()
                    done = record.offset + 1
                if done is not None and not ack_before_handling:
                    await consumer.commit({tp: done})

    async def _handle(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                      record: ConsumerRecord, handler: Handler, ack_before_handling: bool) -> bool:
        """Handle one record; False if the handler raised. The caller commits."""
        message = decode(record.value)
        if message is None:
            log.error("skipping a record that is not a JSON object at %s@%d: %.200r",
                      tp.topic, record.offset, record.value)
            return True
        if ack_before_handling:
            await consumer.commit({tp: record.offset + 1})
        try:
            await handler(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed on %s@%d; it will be redelivered", tp.topic, record.offset)
            return ack_before_handling  # a committed record is not retried: that is the mutant
        return True

    # -- closing -------------------------------------------------------------
    async def close(self) -> None:
        await self._tasks.close()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await quietly(producer.stop())

