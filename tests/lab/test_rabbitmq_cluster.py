"""A three-node RabbitMQ cluster in the lab (`Lab(cluster=3)`): it forms with all Erlang
distribution through its peer proxies, a confirmed message in a quorum queue outlives the
node it was published to, and a node cut off from its peers stops serving and no
confirmed message is lost (and nothing is left after down: the clustered_lab fixture)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pika
import pytest

from harness.lab import Lab
from tests.lab.conftest import clustered_lab, node_states, wait


def _channel(url: str) -> tuple[pika.BlockingConnection, object]:
    params = pika.URLParameters(url)
    params.connection_attempts, params.socket_timeout, params.blocked_connection_timeout = 1, 3, 5
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    return conn, ch


def publish(url: str, queue: str, n: int, tag: str = "") -> int:
    """Publish n persistent messages (bodies f"{tag}{i}") to the quorum queue `queue`
    (declared if missing), each confirmed; how many were confirmed."""
    conn, ch = _channel(url)
    try:
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        for i in range(n):
            ch.basic_publish("", queue, f"{tag}{i}".encode(), pika.BasicProperties(delivery_mode=2),
                             mandatory=True)
        return n
    finally:
        try:
            conn.close()
        except Exception:
            pass


def publish_while(url: str, queue: str, tag: str, stop: threading.Event) -> tuple[threading.Thread, list[str]]:
    """Publish one message at a time until `stop`; the bodies confirmed (a node that paused,
    or a queue without a majority, may hold a publish until the cut heals)."""
    confirmed: list[str] = []

    def loop() -> None:
        i = 0
        while not stop.is_set():
            try:
                publish(url, queue, 1, tag=f"{tag}{i}-")
                confirmed.append(f"{tag}{i}-0")
            except Exception:
                time.sleep(0.2)
            i += 1
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t, confirmed


def bodies(url: str, queue: str) -> set[str]:
    """Every message body in `queue` (read without acknowledging: they stay)."""
    conn, ch = _channel(url)
    try:
        seen = set()
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                return seen
            seen.add(body.decode())
    finally:
        conn.close()


def stored(url: str, queue: str) -> int:
    conn, ch = _channel(url)
    try:
        return ch.queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def running(lab: Lab, node: int = 0) -> int:
    svc = lab._services["rabbitmq"]
    return len(svc.ctl(svc.nodes[node], "cluster_status").get("running_nodes", []))


def _dials(lab: Lab) -> list[tuple[str, str]]:
    """(owner, dialled address) of every established connection to a node's distribution port."""
    dist = {f"127.0.0.1:{n.dist}" for n in lab._services["rabbitmq"].nodes}
    out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()]
    return [(r[-1], r[3]) for r in rows if len(r) >= 5 and r[3] in dist]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Lab]:
    yield from clustered_lab(tmp_path_factory, "rabbitmq")


def test_three_nodes_form_one_cluster_through_their_peer_proxies(cluster):
    assert node_states(cluster, "rabbitmq") == [(f"rabbitmq-{i}", "running") for i in (1, 2, 3)]
    peers = cluster.peer_links("rabbitmq")
    assert sorted((a, b) for a, b, _ in peers) == [(f"rabbitmq-{a}", f"rabbitmq-{b}")
                                                   for a in (1, 2, 3) for b in (1, 2, 3) if a != b]
    assert running(cluster) == 3
    dials = _dials(cluster)
    assert len(dials) >= 3, dials  # every pair of nodes is connected
    assert all("toxiproxy" in owner for owner, _ in dials), dials  # never a peer's own address
    link = cluster.links("rabbitmq", "test-form")[0]
    assert publish(link.url, "formed", 1) == 1
    assert cluster.leader("rabbitmq") in {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3"}


def test_a_confirmed_message_survives_the_kill_of_the_node_it_was_published_to(cluster):
    links = cluster.links("rabbitmq", "test-kill")
    assert len(links) == 3 and len({ln.proxy for ln in links}) == 3
    assert publish(links[0].url, "killed", 50) == 50
    victim = dict(cluster.nodes("rabbitmq"))["rabbitmq-1"]
    victim.kill(signal.SIGKILL)
    try:
        assert not victim.alive
        wait(lambda: stored(links[1].url, "killed") == 50, what="the queue served by the others")
    finally:
        victim.start()
    wait(lambda: running(cluster, 1) == 3, what="rabbitmq-1 back in the cluster")
    wait(lambda: stored(links[0].url, "killed") == 50, what="rabbitmq-1 serving the queue again")


def test_a_node_cut_off_from_its_peers_stops_serving_and_no_confirmed_message_is_lost(cluster):
    """pause_minority: the cut-off node always pauses. A majority node may pause too until
    the whole cluster is back: RabbitMQ reads a cut reaching its peers a few ms apart as a
    partial partition (rabbitmq-server issues 1161, 1667), so the majority's writes during
    the cut are counted, not required."""
    links = cluster.links("rabbitmq", "test-split")
    wait(lambda: publish(links[0].url, "split", 10, tag="before-") == 10, what="the queue declared")
    cut = [p.proxy for a, b, p in cluster.peer_links("rabbitmq") if "rabbitmq-3" in (a, b)]
    stop = threading.Event()
    writers = [publish_while(links[i].url, "split", f"node{i + 1}-", stop) for i in (0, 1, 2)]
    for p in cut:
        cluster.toxiproxy.set_enabled(p, False)
    try:
        def refused() -> bool:
            try:
                publish(links[2].url, "split", 0)
            except Exception:
                return True
            return False
        wait(refused, what="rabbitmq-3 refusing to serve alone")
        time.sleep(5)
    finally:
        for p in cut:
            cluster.toxiproxy.set_enabled(p, True)
    stop.set()
    for t, _ in writers:
        t.join(30)
    confirmed = {f"before-{i}" for i in range(10)} | {b for _, done in writers for b in done}
    wait(lambda: running(cluster, 2) == 3, timeout=60, what="the cluster re-formed")
    wait(lambda: confirmed <= bodies(links[2].url, "split"), what=f"all {len(confirmed)} confirmed messages served",
         show=lambda: sorted(confirmed - bodies(links[2].url, "split")))


def test_the_leader_is_the_node_holding_a_backlog(cluster):
    """A quorum queue with more messages waiting than any other: leader-kill and backlog-kill
    strike its leader, whatever leads the other queues."""
    svc = cluster._services["rabbitmq"]

    def rows() -> list[dict]:
        return svc.ctl(svc.nodes[0], "list_queues", "name", "leader", "messages")

    most = max((int(r["messages"] or 0) for r in rows()), default=0)  # earlier tests' queues
    link = cluster.links("rabbitmq", "test-backlog")[2]

    def publish(count: int, queue: str = "backlog") -> None:
        conn = pika.BlockingConnection(pika.URLParameters(link.url))
        try:
            ch = conn.channel()
            if queue == "backlog":
                ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            else:  # a classic queue lives on the node its declaring client is connected to
                ch.queue_declare(queue, durable=False)
            ch.confirm_delivery()
            for i in range(count):
                ch.basic_publish("", queue, str(i).encode())
        finally:
            conn.close()

    def shows(count: int) -> bool:
        return any(r["name"] == "backlog" and r["messages"] == count for r in rows())

    publish(most + 50)
    # a quorum queue's length is a statistic its leader reports each tick: wait for one ...
    wait(lambda: shows(most + 50), what="the backlog's length in the queue statistics")
    # ... then what grew since shows within the lab's 0.25 s tick (RabbitMQ's default is 5 s,
    # longer than backlog-kill's find step)
    publish(50)
    wait(lambda: shows(most + 100), timeout=2.5, what="50 more messages in the next tick")
    seen = rows()
    holder = next(str(r["leader"]) for r in seen if r["name"] == "backlog")
    name = next(n.name for n in svc.nodes if n.node == holder)
    assert cluster.leader("rabbitmq") == name, seen
    # per queue: what backlog-kill compares over time
    assert cluster.waiting("rabbitmq")["backlog"] == (name, most + 100)
    # a classic queue by the node it lives on (asked once), its length as it is now
    publish(5, "classic")
    assert cluster.waiting("rabbitmq")["classic"] == ("rabbitmq-3", 5)
    publish(5, "classic")
    assert cluster.waiting("rabbitmq")["classic"] == ("rabbitmq-3", 10)
