"""Fixtures for the reference target's tests: a real broker from the lab, a started target."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import TargetContext, Topology
from adapters.reference import KafkaAdapter, NatsAdapter, RabbitMQAdapter, ReferenceAdapter

ADAPTERS = {"rabbitmq": RabbitMQAdapter, "kafka": KafkaAdapter, "nats": NatsAdapter}
TRANSPORT = {"rabbitmq": "rabbitmq", "kafka": "kafka", "nats": "nats"}
ACCOUNTS = {f"acct-{i:02d}": 1000 for i in range(1, 7)}
FAST = {"TXCHAOS_VOTE_TIMEOUT": "5", "TXCHAOS_REPLY_TIMEOUT": "7",
        "TXCHAOS_RESEND_INTERVAL": "1", "TXCHAOS_INDOUBT_TIMEOUT": "2"}


@pytest.fixture(params=list(ADAPTERS))
def broker(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if importlib.util.find_spec(f"targets.payments.transport.{TRANSPORT[name]}") is None:
        pytest.skip(f"targets.payments.transport.{TRANSPORT[name]} does not exist yet")
    return name


Started = tuple[ReferenceAdapter, Topology]


@pytest.fixture
def start_target(broker: str, lab: Any, tmp_path: Path) -> Iterator[Callable[..., Started]]:
    """Start the reference target on `broker`; everything it started is stopped afterwards."""
    started: list[tuple[ReferenceAdapter, TargetContext]] = []

    def start(*, mutant: str | None = None, failpoints: dict[str, str] | None = None,
              accounts: dict[str, int] | None = None, settings: dict[str, str] | None = None,
              disks: bool = False, clocks: bool = False) -> Started:
        adapter = ADAPTERS[broker](settings={**FAST, **(settings or {})})
        ctx = TargetContext(lab=lab, run_dir=tmp_path / f"run{len(started) + 1}", accounts=accounts or ACCOUNTS,
                            mutant=mutant, failpoints=failpoints or {}, disks=disks, clocks=clocks)
        started.append((adapter, ctx))
        return adapter, adapter.start(ctx)

    yield start
    for adapter, ctx in started:
        adapter.stop()
        asyncio.run(adapter.aclose())
        ctx.close()

