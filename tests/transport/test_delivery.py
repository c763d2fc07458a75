"""Delivery contract of the Kafka and NATS transports, against real brokers."""

from __future__ import annotations

import asyncio

import pytest

from targets.payments.transport.base import make_transport
from targets.payments.transport.nats import NatsTransport

from .collect import Collector, eventually, serving
from .native import backlog, publish_raw, stream_messages


def test_send_then_receive_in_order(url: str) -> None:
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await transport.connect()
        for i in range(5):
            await transport.send("ledger", {"i": i}, dedup_id=f"m{i}")
        got = Collector()
        async with serving(transport, "ledger", got):
            messages = await got.wait_for(5, timeout=30)
        assert [m["i"] for m in messages] == [0, 1, 2, 3, 4]
        assert await backlog(transport, "ledger") == 0

    asyncio.run(scenario())


def test_a_failing_handler_gets_the_message_again(url: str) -> None:
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await transport.send("accounts-a", {"id": "pay-1"}, dedup_id="pay-1/prepare")
        got = Collector(fail_first=2)
        async with serving(transport, "accounts-a", got):
            assert await got.wait_for(1, timeout=30) == [{"id": "pay-1"}]
            await eventually(lambda: _no_backlog(transport, "accounts-a"), timeout=10)
        assert got.calls == 3

    asyncio.run(scenario())


def test_a_non_json_message_is_acknowledged_and_skipped(url: str) -> None:
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await publish_raw(transport, "ledger", b"\xff not json {")
        await publish_raw(transport, "ledger", b"[1, 2]")  # JSON, but not a message
        await transport.send("ledger", {"id": "pay-2"}, dedup_id="pay-2")
        got = Collector()
        async with serving(transport, "ledger", got):
            assert await got.wait_for(1, timeout=30) == [{"id": "pay-2"}]
            await eventually(lambda: _no_backlog(transport, "ledger"), timeout=10)
        assert got.calls == 1

    asyncio.run(scenario())


def test_ack_before_handling_loses_a_failed_message(url: str) -> None:
    """The switch the `ack-before-apply` mutant uses really acknowledges first."""
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await transport.send("ledger", {"id": "lost"}, dedup_id="lost")
        await transport.send("ledger", {"id": "kept"}, dedup_id="kept")
        got = Collector(fail_first=1)
        async with serving(transport, "ledger", got, ack_before_handling=True):
            assert await got.wait_for(1, timeout=30) == [{"id": "kept"}]
            await eventually(lambda: _no_backlog(transport, "ledger"), timeout=10)
            await asyncio.sleep(1.0)  # a redelivery, if any, would arrive now
        assert got.calls == 2 and got.messages == [{"id": "kept"}]

    asyncio.run(scenario())


def test_nats_drops_a_repeated_msg_id(brokers) -> None:  # type: ignore[no-untyped-def]
    nats_url = brokers.get("nats").url + "/dedup"

    async def scenario() -> None:
        transport = make_transport(nats_url, client_id="svc-1")
        assert isinstance(transport, NatsTransport)
        await transport.send("coordinator", {"vote": "yes"}, dedup_id="pay-3/vote/accounts-a")
        await transport.send("coordinator", {"vote": "yes"}, dedup_id="pay-3/vote/accounts-a")
        await transport.send("coordinator", {"vote": "yes"}, dedup_id="pay-3/vote/ledger")
        assert await stream_messages(transport) == 2
        got = Collector()
        async with serving(transport, "coordinator", got):
            await got.wait_for(2, timeout=30)
            await eventually(lambda: _no_backlog(transport, "coordinator"), timeout=10)
        assert got.calls == 2

    asyncio.run(scenario())


def test_bad_urls_are_rejected() -> None:
    for bad in ("kafka://127.0.0.1", "kafka://127.0.0.1:9092/bad name", "nats://:4222",
                "nats://127.0.0.1:4222/a.b"):
        with pytest.raises(ValueError):
            make_transport(bad, client_id="x")


async def _no_backlog(transport, inbox: str) -> bool:  # type: ignore[no-untyped-def]
    return await backlog(transport, inbox) == 0
