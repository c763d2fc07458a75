"""Fixtures of the transport tests: one real broker per kind, behind a real Toxiproxy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.procs import ManagedProcess

from .brokers import Broker, Toxiproxy, start_kafka, start_nats

BROKER_KINDS = ["kafka", "nats"]


class Brokers:
    """Starts each broker on first use and keeps it for the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.toxiproxy: Toxiproxy | None = None
        self.started: dict[str, Broker] = {}

    def get(self, kind: str) -> Broker:
        if self.toxiproxy is None:
            self.toxiproxy = Toxiproxy(self.root)
            self.toxiproxy.process.start()
        if kind not in self.started:
            start = {"kafka": start_kafka, "nats": start_nats}[kind]
            self.started[kind] = start(self.root, self.toxiproxy)
        return self.started[kind]

    def stop(self) -> None:
        procs: list[ManagedProcess] = [b.process for b in self.started.values()]
        if self.toxiproxy is not None:
            procs.append(self.toxiproxy.process)
        for proc in procs:
            proc.stop(timeout=10)


@pytest.fixture(scope="session")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    the_brokers = Brokers(Path(tmp_path_factory.mktemp("brokers")))
    try:
        yield the_brokers
    finally:
        the_brokers.stop()


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest, brokers: Brokers) -> Broker:
    return brokers.get(request.param)


@pytest.fixture
def url(broker: Broker) -> str:
    """The broker's proxied URL with a namespace of this test's own."""
    return f"{broker.url}/t{uuid.uuid4().hex[:10]}"
