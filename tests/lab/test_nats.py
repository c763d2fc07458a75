"""NATS (JetStream) through its Toxiproxy proxy: round trip, latency, cut and heal, restart."""

from __future__ import annotations

import asyncio
import signal
import time

import nats
import pytest

from tests.lab.conftest import disabled, latency


async def _quiet(e: Exception) -> None:
    """nats-py logs every failed connect attempt; the tests assert on outcomes instead."""


async def _round_trip(url: str) -> float:
    # nats-py retries the first connect forever, so a bound on it is the only way to
    # learn that the server is unreachable.
    nc = await asyncio.wait_for(
        nats.connect(url, allow_reconnect=False, connect_timeout=2, error_cb=_quiet), 5)
    try:
        js = nc.jetstream()
        await js.add_stream(name="LABTEST", subjects=["labtest.>"])
        sub = await nc.subscribe("labtest.rt")
        t0 = time.monotonic()
        ack = await js.publish("labtest.rt", b"ping", timeout=5)
        msg = await sub.next_msg(timeout=5)
        elapsed = time.monotonic() - t0
        assert msg.data == b"ping" and ack.stream == "LABTEST"
        return elapsed
    finally:
        await nc.close()


def round_trip(url: str) -> float:
    return asyncio.run(asyncio.wait_for(_round_trip(url), 30))


@pytest.fixture(scope="module")
def nlink(lab):
    lab.ensure("nats")
    return lab.link("nats", "test-nats")


def test_round_trip_through_proxy(lab, nlink):
    assert nlink.url.startswith("nats://127.0.0.1:")
    assert nlink.listen[1] != lab.endpoint("nats").port
    assert round_trip(nlink.url) < 5


def test_a_link_whose_proxy_vanished_is_made_again(lab, nlink):
    """The lab caches links; one whose proxy was deleted behind its back (or lost with a
    Toxiproxy started again) is created again by the next link(), not handed out stale."""
    first = lab.link("nats", "test-vanish")
    lab.toxiproxy.delete(first.proxy)
    again = lab.link("nats", "test-vanish")
    assert again.proxy == first.proxy
    assert lab.toxiproxy.get(again.proxy) is not None
    assert round_trip(again.url) < 5


def test_latency_toxic_slows_round_trip(lab, nlink):
    with latency(lab, nlink.proxy, 300):
        slowed = round_trip(nlink.url)
    assert slowed >= 0.3
    assert round_trip(nlink.url) < slowed  # the toxic is gone with its context


def test_disabled_proxy_cuts_client_off(lab, nlink):
    with disabled(lab, nlink.proxy):
        with pytest.raises(Exception):
            round_trip(nlink.url)
    assert round_trip(nlink.url) < 5


def test_kill9_and_restart(lab, nlink):
    proc = lab.process("nats")
    proc.kill(signal.SIGKILL)
    assert not proc.alive
    with pytest.raises(Exception):
        round_trip(nlink.url)
    proc.start()
    assert round_trip(nlink.url) < 5  # the JetStream stream survived in the same store dir
