"""A three-node NATS cluster in the lab (`Lab(cluster=3)`): it forms through its peer
proxies, an acknowledged message outlives the node it was published to, the majority
keeps working while one node is cut off from its peers (and nothing is left after down:
the clustered_lab fixture)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import nats
import pytest
from nats.js.api import StreamConfig

from harness.lab import Lab, probes
from tests.lab.conftest import clustered_lab, node_states, wait


async def _quiet(e: Exception) -> None:
    """nats-py logs every failed attempt; the tests assert on outcomes instead."""


async def _with_js(url: str, work):
    nc = await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=2,
                                             error_cb=_quiet), 5)
    try:
        return await work(nc.jetstream(timeout=3))
    finally:
        await nc.close()


def publish(url: str, stream: str, n: int, *, timeout: float = 3.0) -> int:
    """Publish n messages to `stream` (R3, created if missing) and wait for each ack; how many were acked."""
    async def work(js) -> int:
        try:
            await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"], num_replicas=3))
        except Exception:
            await js.stream_info(stream)
        acked = 0
        for i in range(n):
            await js.publish(f"{stream}.m", str(i).encode(), timeout=timeout)
            acked += 1
        return acked
    return asyncio.run(asyncio.wait_for(_with_js(url, work), 60))


def declare(url: str, stream: str) -> bool:
    """Create `stream` (R3) if missing; True once the cluster answers for it."""
    return publish(url, stream, 0, timeout=3.0) == 0


def stored(url: str, stream: str) -> int:
    async def work(js) -> int:
        return (await js.stream_info(stream)).state.messages
    return asyncio.run(asyncio.wait_for(_with_js(url, work), 30))


def routes(lab: Lab, node: int) -> list[dict]:
    svc = lab._services["nats"]
    return probes.nats_monitor("127.0.0.1", svc.nodes[node].monitor, "routez").get("routes") or []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Lab]:
    yield from clustered_lab(tmp_path_factory, "nats")


def test_three_nodes_form_one_cluster_through_their_peer_proxies(cluster):
    assert node_states(cluster, "nats") == [(f"nats-{i}", "running") for i in (1, 2, 3)]
    peers = cluster.peer_links("nats")
    assert [(a, b) for a, b, _ in peers] == [("nats-1", "nats-2"), ("nats-1", "nats-3"), ("nats-2", "nats-3")]
    proxy_ports = {p.listen[1] for _, _, p in peers}
    for i in range(3):
        rs = routes(cluster, i)
        assert len(rs) == 2, rs
        dialed = [r["port"] for r in rs if r.get("did_solicit")]
        assert set(dialed) <= proxy_ports  # never a peer's own address
    assert cluster.leader("nats") in {"nats-1", "nats-2", "nats-3"}


def test_an_acked_message_survives_the_kill_of_the_node_it_was_published_to(cluster):
    links = cluster.links("nats", "test-kill")
    assert len(links) == 3 and len({ln.proxy for ln in links}) == 3
    wait(lambda: declare(links[0].url, "KILLED"), what="the stream declared")
    assert publish(links[0].url, "KILLED", 50) == 50
    victim = dict(cluster.nodes("nats"))["nats-1"]
    victim.kill(signal.SIGKILL)
    try:
        assert not victim.alive
        wait(lambda: stored(links[1].url, "KILLED") == 50, what="the stream served by the others")
    finally:
        victim.start()
    wait(lambda: len(routes(cluster, 0)) == 2, what="nats-1 back in the cluster")
    wait(lambda: stored(links[0].url, "KILLED") == 50, what="nats-1 serving the stream again")


def test_a_node_cut_off_from_its_peers_leaves_the_majority_working(cluster):
    links = cluster.links("nats", "test-split")
    # a node restarted by the test before may still be catching up with the cluster's metadata
    wait(lambda: declare(links[0].url, "SPLIT"), what="the stream declared")
    assert publish(links[0].url, "SPLIT", 10) == 10
    cut = [p.proxy for a, b, p in cluster.peer_links("nats") if "nats-3" in (a, b)]
    for p in cut:
        cluster.toxiproxy.set_enabled(p, False)
    try:
        wait(lambda: not routes(cluster, 2), what="nats-3 losing its routes")
        # the majority (nats-1 and -2) elects a stream leader if nats-3 led, then serves
        wait(lambda: publish(links[0].url, "SPLIT", 1, timeout=2) == 1, what="a leader in the majority")
        assert publish(links[0].url, "SPLIT", 19, timeout=5) == 19
        with pytest.raises(Exception):  # nats-3's clients reach it, but it has no quorum
            publish(links[2].url, "SPLIT", 1, timeout=2)
    finally:
        for p in cut:
            cluster.toxiproxy.set_enabled(p, True)
    wait(lambda: all(len(routes(cluster, i)) == 2 for i in range(3)), what="the cluster re-formed")
    wait(lambda: stored(links[2].url, "SPLIT") >= 30, what="nats-3 caught up with every acked message")


def test_the_leader_is_the_node_holding_a_backlog(cluster):
    """A one-replica stream with messages its consumer has not taken: leader-kill and
    backlog-kill strike the node holding it, whatever leads the other streams."""
    link = cluster.links("nats", "test-backlog")[0]

    async def work(js) -> str:
        await js.add_stream(StreamConfig(name="BACKLOG", subjects=["BACKLOG.>"], num_replicas=1))
        await js.pull_subscribe("BACKLOG.>", durable="slow")
        for i in range(20):
            await js.publish("BACKLOG.m", str(i).encode())
        return (await js.stream_info("BACKLOG")).cluster.leader

    wait(lambda: declare(link.url, "OTHER"), what="another stream declared")
    holder = asyncio.run(asyncio.wait_for(_with_js(link.url, work), 60))
    assert holder in {"nats-1", "nats-2", "nats-3"}
    assert cluster.leader("nats") == holder
    # per stream: what backlog-kill compares over time
    assert [v for k, v in cluster.waiting("nats").items() if k.endswith("/BACKLOG")] == [(holder, 20)]
