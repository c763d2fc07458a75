"""Kafka through per-client listeners and proxies: no client can bypass its proxy."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.lab.conftest import disabled, latency


def _bootstrap(url: str) -> str:
    return url.removeprefix("kafka://")


async def _round_trip(url: str) -> float:
    topic = f"labtest-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(url), request_timeout_ms=5000)
    await producer.start()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=_bootstrap(url), auto_offset_reset="earliest",
                                request_timeout_ms=5000)
    try:
        await producer.send_and_wait(topic, b"warm-up")  # creates the topic
        await consumer.start()
        t0 = time.monotonic()
        await producer.send_and_wait(topic, b"ping")
        seen = []
        while b"ping" not in seen:
            msg = await asyncio.wait_for(consumer.getone(), 20)
            seen.append(msg.value)
        return time.monotonic() - t0
    finally:
        await producer.stop()
        await consumer.stop()


def round_trip(url: str) -> float:
    return asyncio.run(asyncio.wait_for(_round_trip(url), 60))


@pytest.fixture(scope="module")
def klink(lab):
    lab.ensure("kafka")
    return lab.link("kafka", "test-kafka")


def test_round_trip_through_proxy(lab, klink):
    assert klink.proxy == "test-kafka-kafka"
    assert klink.upstream[1] != lab.endpoint("kafka").port  # a listener of its own
    assert round_trip(klink.url) < 20


def test_each_client_gets_its_own_listener(lab, klink):
    other = lab.link("kafka", "test-kafka-2")
    assert other.listen != klink.listen and other.upstream != klink.upstream
    assert lab.link("kafka", "test-kafka-2") == other


def test_latency_toxic_slows_round_trip(lab, klink):
    with latency(lab, klink.proxy, 300):
        assert round_trip(klink.url) >= 0.3


def test_client_cut_off_by_its_proxy_cannot_produce(lab, klink):
    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(klink.url), request_timeout_ms=2000,
                                    retry_backoff_ms=100, metadata_max_age_ms=1000)
        await producer.start()
        try:
            await producer.send_and_wait("labtest-cut", b"before")
            brokers = {(b.host, b.port) for b in producer.client.cluster.brokers()}
            assert brokers == {klink.listen}  # the broker advertises only the proxy
            with disabled(lab, klink.proxy):
                with pytest.raises(Exception):
                    await asyncio.wait_for(producer.send_and_wait("labtest-cut", b"during"), 8)
            await asyncio.wait_for(producer.send_and_wait("labtest-cut", b"after"), 20)
        finally:
            await asyncio.wait_for(producer.stop(), 10)

    asyncio.run(scenario())


def test_kill9_and_restart(lab, klink):
    proc = lab.process("kafka")
    proc.kill(signal.SIGKILL)
    assert not proc.alive
    proc.start()
    assert round_trip(klink.url) < 30
