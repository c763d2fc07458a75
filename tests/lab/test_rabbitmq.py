"""RabbitMQ through its Toxiproxy proxy: round trip, latency, cut and heal, crash and restart."""

from __future__ import annotations

import signal
import time
import uuid

import pika
import pytest
from pika.exceptions import AMQPConnectionError

from tests.lab.conftest import disabled, latency


def _connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 2
    params.blocked_connection_timeout = 2
    params.stack_timeout = 4
    return pika.BlockingConnection(params)


def _round_trip(url: str) -> float:
    """Publish one message (with confirms) and get it back; seconds it took."""
    conn = _connect(url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        queue = ch.queue_declare(queue="", exclusive=True).method.queue
        body = uuid.uuid4().bytes
        t0 = time.monotonic()
        ch.basic_publish("", queue, body)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _, _, got = ch.basic_get(queue, auto_ack=True)
            if got is not None:
                assert got == body
                return time.monotonic() - t0
        raise AssertionError("message never came back")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def rmq(lab):
    lab.ensure("rabbitmq")
    return lab.link("rabbitmq", "test-rmq")


def test_round_trip_through_proxy(lab, rmq):
    assert rmq.proxy == "test-rmq-rabbitmq"
    assert rmq.upstream == (lab.endpoint("rabbitmq").host, lab.endpoint("rabbitmq").port)
    assert lab.link("rabbitmq", "test-rmq") == rmq  # idempotent
    assert _round_trip(rmq.url) < 5


def test_latency_toxic_slows_round_trip(lab, rmq):
    with latency(lab, rmq.proxy, 300):
        slowed = _round_trip(rmq.url)
    assert slowed >= 0.3
    assert _round_trip(rmq.url) < slowed  # the toxic is gone with its context


def test_disabled_proxy_cuts_client_off(lab, rmq):
    with disabled(lab, rmq.proxy):
        with pytest.raises(AMQPConnectionError):
            _connect(rmq.url)
    assert _round_trip(rmq.url) < 5


def test_kill9_and_restart(lab, rmq):
    proc = lab.process("rabbitmq")
    port = lab.endpoint("rabbitmq").port
    proc.kill(signal.SIGKILL)
    assert not proc.alive
    with pytest.raises(AMQPConnectionError):
        _connect(rmq.url)
    proc.start()
    assert lab.endpoint("rabbitmq").port == port
    assert _round_trip(rmq.url) < 5
