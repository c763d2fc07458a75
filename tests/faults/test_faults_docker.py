"""Container faults against a real, private Docker engine; state read back from the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faultkit import MemoryRecorder

from harness.topology import Node, Topology
from faults.docker_engine import BUSYBOX_TAG
from faults.nemesis import Nemesis
from faults.schedule import FaultEvent
from harness.errors import BadInput

pytestmark = pytest.mark.docker


@pytest.fixture
def containers(docker_engine: Any) -> Iterator[list[Any]]:
    made = [docker_engine.client.containers.run(
        BUSYBOX_TAG, ["sleep", "600"], detach=True, network_mode="host", name=f"txc-{name}",
        labels={"txchaos.group": group}) for name, group in (("a", "left"), ("b", "right"), ("c", "right"))]
    try:
        yield made
    finally:
        for c in made:
            c.remove(force=True)


def _status(c: Any) -> str:
    c.reload()
    return str(c.status)


def _started(c: Any) -> str:
    c.reload()
    return str(c.attrs["State"]["StartedAt"])


@pytest.fixture
def nemesis(docker_engine: Any, toxiproxy_url: str, containers: list[Any]) -> Nemesis:
    topo = Topology([Node("node-a", "participant", container="txc-a")], [])
    return Nemesis(topo, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder(),
                   docker_client=docker_engine.client)


@pytest.mark.parametrize("fault,during", [
    ("docker-kill", "exited"), ("docker-stop", "exited"), ("docker-pause", "paused")])
def test_container_fault_and_heal(nemesis: Nemesis, containers: list[Any], fault: str, during: str) -> None:
    a = containers[0]

    async def main() -> None:
        inj = await nemesis.inject(FaultEvent(0, 1, fault, ("node-a",), {"timeout_s": 1}
                                              if fault == "docker-stop" else {}))
        assert _status(a) == during
        await nemesis.heal(inj)

    asyncio.run(main())
    assert _status(a) == "running"


def test_restart_by_name_gives_a_new_start(nemesis: Nemesis, containers: list[Any]) -> None:
    b = containers[1]
    before = _started(b)
    asyncio.run(nemesis.inject(FaultEvent(0, 1, "docker-restart", ("name=txc-b",), {"timeout_s": 1})))
    assert _status(b) == "running" and _started(b) != before
    nemesis.heal_all()


def test_pause_by_label_hits_every_labelled_container(nemesis: Nemesis, containers: list[Any]) -> None:
    asyncio.run(nemesis.inject(FaultEvent(0, 1, "docker-pause", ("label=txchaos.group=right",), {})))
    assert [_status(c) for c in containers] == ["running", "paused", "paused"]
    nemesis.heal_all()
    assert [_status(c) for c in containers] == ["running", "running", "running"]


def test_unknown_container_lists_the_valid_forms(nemesis: Nemesis) -> None:
    with pytest.raises(BadInput, match=r"valid: node names with containers \(node-a\), name=<container>"):
        asyncio.run(nemesis.inject(FaultEvent(0, 1, "docker-kill", ("label=nope=1",), {})))
