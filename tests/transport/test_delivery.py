"""Delivery contract of every transport, against real brokers of the lab."""

from __future__ import annotations

import asyncio

import pytest

from targets.payments.transport.base import Transport, make_transport
from targets.payments.transport.nats import NatsTransport

from .collect import Collector, eventually, serving
from .conftest import broker_of
from .native import backlog, publish_raw, stream_messages


def test_send_then_receive_in_order(url: str, inbox: str) -> None:
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await transport.connect()
        for i in range(5):
            await transport.send(inbox, {"i": i}, dedup_id=f"m{i}")
        got = Collector()
        async with serving(transport, inbox, got):
            messages = await got.wait_for(5, timeout=30)
        assert [m["i"] for m in messages] == [0, 1, 2, 3, 4]
        await _drained(transport, url, inbox)

    asyncio.run(scenario())


def test_a_failing_handler_gets_the_message_again(url: str, inbox: str) -> None:
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await transport.send(inbox, {"id": "pay-1"}, dedup_id="pay-1/prepare")
        got = Collector(fail_first=2)
        async with serving(transport, inbox, got):
            assert await got.wait_for(1, timeout=30) == [{"id": "pay-1"}]
        assert got.calls == 3
        await _drained(transport, url, inbox)

    asyncio.run(scenario())


def test_a_non_json_message_is_acknowledged_and_skipped(url: str, inbox: str) -> None:
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await publish_raw(transport, url, inbox, b"\xff not json {")
        await publish_raw(transport, url, inbox, b"[1, 2]")  # JSON, but not a message
        await transport.send(inbox, {"id": "pay-2"}, dedup_id="pay-2")
        got = Collector()
        async with serving(transport, inbox, got):
            assert await got.wait_for(1, timeout=30) == [{"id": "pay-2"}]
        assert got.calls == 1
        await _drained(transport, url, inbox)

    asyncio.run(scenario())


def test_ack_before_handling_loses_a_failed_message(url: str, inbox: str) -> None:
    """The switch the `ack-before-apply` mutant uses really acknowledges first."""
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        await transport.send(inbox, {"id": "lost"}, dedup_id="lost")
        await transport.send(inbox, {"id": "kept"}, dedup_id="kept")
        got = Collector(fail_first=1)
        async with serving(transport, inbox, got, ack_before_handling=True):
            assert await got.wait_for(1, timeout=30) == [{"id": "kept"}]
            await asyncio.sleep(1.0)  # a redelivery, if any, would arrive now
        assert got.calls == 2 and got.messages == [{"id": "kept"}]
        await _drained(transport, url, inbox)

    asyncio.run(scenario())


def test_one_dedup_id_sent_to_two_inboxes_reaches_both(url: str, inbox: str) -> None:
    """A coordinator sends one decision to every participant under one id."""
    async def scenario() -> None:
        transport = make_transport(url, client_id="svc-1")
        other = inbox + "-b"
        await transport.send(inbox, {"to": "a"}, dedup_id="pay-4/commit")
        await transport.send(other, {"to": "b"}, dedup_id="pay-4/commit")
        got_a, got_b = Collector(), Collector()
        async with serving(transport, inbox, got_a):
            tasks = asyncio.create_task(transport.serve(other, got_b))
            assert await got_a.wait_for(1, timeout=30) == [{"to": "a"}]
            assert await got_b.wait_for(1, timeout=30) == [{"to": "b"}]
        await asyncio.wait_for(tasks, 20)

    asyncio.run(scenario())


def test_nats_drops_a_repeated_msg_id(lab: object, inbox: str) -> None:
    nats_url = broker_of(lab, "nats").url + "/dedup"

    async def scenario() -> None:
        transport = make_transport(nats_url, client_id="svc-1")
        assert isinstance(transport, NatsTransport)
        await transport.connect()
        before = await stream_messages(transport)
        await transport.send(inbox, {"vote": "yes"}, dedup_id=f"{inbox}/vote/accounts-a")
        await transport.send(inbox, {"vote": "yes"}, dedup_id=f"{inbox}/vote/accounts-a")
        await transport.send(inbox, {"vote": "yes"}, dedup_id=f"{inbox}/vote/ledger")
        assert await stream_messages(transport) == before + 2
        got = Collector()
        async with serving(transport, inbox, got):
            await got.wait_for(2, timeout=30)
            await asyncio.sleep(0.5)  # a duplicate, if stored, would arrive now
        assert got.calls == 2
        await _drained(transport, nats_url, inbox)

    asyncio.run(scenario())


def test_bad_urls_are_rejected() -> None:
    for bad in ("kafka://127.0.0.1", "kafka://127.0.0.1:9092/bad name", "nats://:4222",
                "nats://127.0.0.1:4222/a.b", "mqtt://127.0.0.1:1883"):
        with pytest.raises(ValueError):
            make_transport(bad, client_id="x")


async def _drained(transport: Transport, url: str, inbox: str) -> None:
    """Every message of the inbox ends acknowledged (checked once no consumer holds it)."""
    async def empty() -> bool:
        return await backlog(transport, url, inbox) == 0
    await eventually(empty, timeout=10)
