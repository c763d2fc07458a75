"""Fixtures of the transport tests: each broker of the session's lab, reached
through a Toxiproxy proxy of this area's own (so a test can cut exactly it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from harness.procs import ManagedProcess

BROKER_KINDS = ["rabbitmq", "kafka", "nats"]
CLIENT = "transport-tests"


@dataclass
class Broker:
    """`url` goes through the proxy named `proxy`; `process` is the broker itself."""

    name: str
    url: str
    proxy: str
    process: ManagedProcess
    lab: object

    def set_link(self, enabled: bool) -> None:
        self.lab.toxiproxy.set_enabled(self.proxy, enabled)  # type: ignore[attr-defined]


def broker_of(lab: object, kind: str) -> Broker:
    lab.ensure(kind)  # type: ignore[attr-defined]
    link = lab.link(kind, CLIENT)  # type: ignore[attr-defined]
    process = lab.process(kind)  # type: ignore[attr-defined]
    if process is None:
        pytest.skip(f"{kind} is external: these tests crash and restart the broker")
    return Broker(kind, link.url, link.proxy, process, lab)


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest, lab: object) -> Broker:
    return broker_of(lab, request.param)


@pytest.fixture
def url(broker: Broker) -> str:
    return broker.url


@pytest.fixture
def inbox() -> str:
    """An inbox name of this test's own, so tests never see each other's messages."""
    return f"inbox-{uuid.uuid4().hex[:10]}"
