"""Talk to a broker with its own client, beside the transport: publish raw bytes
and read how many of an inbox's messages are still unacknowledged."""

from __future__ import annotations

import nats
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from targets.payments.transport.base import Transport
from targets.payments.transport.kafka import KafkaTransport
from targets.payments.transport.nats import NatsTransport


async def publish_raw(transport: Transport, inbox: str, data: bytes) -> None:
    """Put `data` into the inbox as is (e.g. not JSON), durably."""
    if isinstance(transport, KafkaTransport):
        await transport.ensure_topic(transport.topic(inbox))
        producer = AIOKafkaProducer(bootstrap_servers=transport.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(transport.topic(inbox), data)
        finally:
            await producer.stop()
    elif isinstance(transport, NatsTransport):
        await transport.connect()  # declares the stream
        nc = await nats.connect(servers=[transport.server])
        try:
            await nc.jetstream().publish(transport.subject(inbox), data, stream=transport.stream)
        finally:
            await nc.close()
    else:
        raise NotImplementedError(type(transport).__name__)


async def backlog(transport: Transport, inbox: str) -> int:
    """Messages of the inbox not yet acknowledged by its consumer group / durable."""
    if isinstance(transport, KafkaTransport):
        topic = transport.topic(inbox)
        tp = TopicPartition(topic, 0)
        admin = AIOKafkaAdminClient(bootstrap_servers=transport.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=transport.bootstrap)
        await admin.start()
        await consumer.start()
        try:
            offsets = await admin.list_consumer_group_offsets(transport.group(inbox))
            committed = offsets[tp].offset if tp in offsets else 0
            end = (await consumer.end_offsets([tp]))[tp]
        finally:
            await consumer.stop()
            await admin.close()
        return end - max(committed, 0)
    if isinstance(transport, NatsTransport):
        nc = await nats.connect(servers=[transport.server])
        try:
            info = await nc.jetstream().consumer_info(transport.stream, transport.durable(inbox))
        finally:
            await nc.close()
        return info.num_pending + info.num_ack_pending
    raise NotImplementedError(type(transport).__name__)


async def stream_messages(transport: NatsTransport) -> int:
    """How many messages the JetStream stream holds (after de-duplication)."""
    nc = await nats.connect(servers=[transport.server])
    try:
        return (await nc.jetstream().stream_info(transport.stream)).state.messages
    finally:
        await nc.close()
