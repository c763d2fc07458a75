"""The transports under real faults: a consumer SIGKILLed mid-handling, a broker
crash and restart, a proxy outage. Nothing may be lost; sends fail loudly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from harness.procs import ManagedProcess
from targets.payments.transport.base import Transport, TransportError, make_transport
from targets.payments.transport.kafka import KafkaTransport
from targets.payments.transport.nats import NatsTransport

from .collect import Collector, send_until_confirmed, serving
from .conftest import Broker

CONSUMER = Path(__file__).with_name("consumer_proc.py")


def open_transport(url: str, client_id: str, send_timeout: float) -> Transport:
    if url.startswith("kafka://"):
        return KafkaTransport(url, client_id=client_id, send_timeout=send_timeout)
    if url.startswith("nats://"):
        return NatsTransport(url, client_id=client_id, send_timeout=send_timeout)
    return make_transport(url, client_id=client_id)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _wait_file(path: Path, timeout: float, proc: ManagedProcess) -> float:
    start = time.monotonic()
    while not _lines(path):
        assert proc.alive, f"consumer died; see {proc.log_path}"
        assert time.monotonic() - start < timeout, f"nothing reached {path.name} in {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - start


def test_sigkill_mid_handling_redelivers_to_the_restarted_service(url: str, inbox: str,
                                                                  tmp_path: Path) -> None:
    asyncio.run(_send_one(url, inbox, {"id": "pay-9"}))

    def consumer(mode: str) -> ManagedProcess:
        return ManagedProcess(f"consumer-{mode}", [sys.executable, str(CONSUMER), url,
                                                   inbox, "svc-n", str(tmp_path), mode],
                              log_path=tmp_path / f"consumer-{mode}.log")

    first = consumer("hang")
    first.start()
    try:
        _wait_file(tmp_path / "svc-n.received", 60, first)
    finally:
        first.kill(signal.SIGKILL)
    assert not (tmp_path / "svc-n.handled").exists()

    second = consumer("ok")
    second.start()
    try:
        took = _wait_file(tmp_path / "svc-n.handled", 60, second)
    finally:
        second.stop(timeout=10)
    assert _lines(tmp_path / "svc-n.handled") == [{"id": "pay-9"}]
    print(f"redelivered {took:.1f}s after the restarted consumer started")


def test_inbox_survives_a_broker_crash_and_restart(url: str, inbox: str, broker: Broker) -> None:
    async def scenario() -> None:
        transport = open_transport(url, "svc-r", send_timeout=3)
        await transport.connect()
        got = Collector()
        async with serving(transport, inbox, got):
            await transport.send(inbox, {"n": 1}, dedup_id="n1")
            await got.wait_for(1, timeout=30)

            broker.process.kill(signal.SIGKILL)
            with pytest.raises(TransportError):
                await transport.send(inbox, {"n": 2}, dedup_id="n2")
            await asyncio.to_thread(broker.process.start)

            started = time.monotonic()
            await send_until_confirmed(transport, inbox, {"n": 3}, dedup_id="n3", timeout=60)
            await got.wait_contains({"n": 3}, timeout=60)
            print(f"{broker.name}: delivered again {time.monotonic() - started:.1f}s after restart")
        # A send that raised may still have landed (at-least-once): {"n": 2} is allowed.
        assert got.messages[0] == {"n": 1} and {"n": 3} in got.messages

    asyncio.run(scenario())


def test_inbox_survives_a_proxy_outage(url: str, inbox: str, broker: Broker) -> None:
    async def scenario() -> None:
        transport = open_transport(url, "svc-p", send_timeout=3)
        await transport.connect()
        got = Collector()
        async with serving(transport, inbox, got):
            await transport.send(inbox, {"n": 1}, dedup_id="n1")
            await got.wait_for(1, timeout=30)
            broker.set_link(False)
            try:
                with pytest.raises(TransportError):
                    await transport.send(inbox, {"n": 2}, dedup_id="n2")
            finally:
                broker.set_link(True)
            started = time.monotonic()
            await send_until_confirmed(transport, inbox, {"n": 3}, dedup_id="n3", timeout=60)
            await got.wait_contains({"n": 3}, timeout=60)
            print(f"{broker.name}: delivered again {time.monotonic() - started:.1f}s after the link healed")
        assert got.messages[0] == {"n": 1} and {"n": 3} in got.messages

    asyncio.run(scenario())


async def _send_one(url: str, inbox: str, message: dict) -> None:
    transport = open_transport(url, "svc-sender", send_timeout=10)
    try:
        await transport.send(inbox, message, dedup_id=str(message))
    finally:
        await transport.close()
