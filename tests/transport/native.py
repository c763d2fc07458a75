"""Talk to a broker with its own client, beside the transport: publish raw bytes
and read how many of an inbox's messages are still unacknowledged."""

from __future__ import annotations

import asyncio

import nats
import pika
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from targets.payments.transport.base import Transport
from targets.payments.transport.kafka import KafkaTransport
from targets.payments.transport.nats import NatsTransport


async def publish_raw(transport: Transport, url: str, inbox: str, data: bytes) -> None:
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
        await asyncio.to_thread(_amqp_publish, url, inbox, data)


async def backlog(transport: Transport, url: str, inbox: str) -> int:
    """Messages of the inbox not yet acknowledged (for RabbitMQ: call it when no
    consumer holds the queue, since unacknowledged messages are not counted)."""
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
    return await asyncio.to_thread(_amqp_ready, url, inbox)


async def stream_messages(transport: NatsTransport) -> int:
    """How many messages the JetStream stream holds (after de-duplication)."""
    nc = await nats.connect(servers=[transport.server])
    try:
        return (await nc.jetstream().stream_info(transport.stream)).state.messages
    finally:
        await nc.close()


def _amqp_publish(url: str, queue: str, data: bytes) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        ch.queue_declare(queue=queue, durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", queue, data, pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()


def _amqp_ready(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue=queue, durable=True, passive=True).method.message_count
    finally:
        conn.close()
