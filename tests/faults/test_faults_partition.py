"""Partitions from per-link proxies: the right links go down, traffic stops, then flows again."""

from __future__ import annotations

import asyncio
import time

import pytest
from faultkit import MemoryRecorder, listen_addr, round_trip

from harness.topology import Topology
from faults.nemesis import Nemesis
from faults.schedule import FaultEvent
from faults.toxiproxy import ToxiproxyServer


def _reachable(server: ToxiproxyServer, proxy: str) -> bool:
    try:
        round_trip(listen_addr(server, proxy), timeout=0.5)
        return True
    except OSError:
        return False


@pytest.mark.parametrize("fault,targets,cut,words", [
    ("partition", ("accounts-a",), {"accounts-a-echo"}, "accounts-a isolated from echo"),
    ("partition-coordinator", (), {"coordinator-echo"}, "coordinator coordinator isolated"),
    ("partition-split", ("accounts-b",), {"accounts-b-echo"},
     "participants split: [accounts-a] | [accounts-b]"),
])
def test_partition_cuts_exactly_its_links(topology: Topology, toxiproxy_url: str, server: ToxiproxyServer,
                                          fault: str, targets: tuple[str, ...], cut: set[str],
                                          words: str) -> None:
    rec = MemoryRecorder()
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=rec)
    proxies = [link.proxy for link in topology.links]

    async def main() -> None:
        inj = await nem.inject(FaultEvent(0, 1, fault, targets, {}))
        during = {p for p in proxies if not _reachable(server, p)}
        assert during == cut
        await nem.heal(inj)

    asyncio.run(main())
    assert all(_reachable(server, p) for p in proxies)
    assert words in rec.events[0]["value"]["description"]


def test_flapping_partition_toggles_then_heals(topology: Topology, toxiproxy_url: str,
                                               server: ToxiproxyServer) -> None:
    nem = Nemesis(topology, toxiproxy_url=toxiproxy_url, recorder=MemoryRecorder())
    samples: list[bool] = []

    async def main() -> None:
        await nem.inject(FaultEvent(0, 1, "partition-flap", ("accounts-a",), {"period_s": 0.3}))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            samples.append(server.state()["accounts-a-echo"]["enabled"])
            await asyncio.sleep(0.05)
        nem.heal_all()

    asyncio.run(main())
    flips = sum(1 for a, b in zip(samples, samples[1:]) if a != b)
    assert flips >= 2, samples
    assert _reachable(server, "accounts-a-echo")
