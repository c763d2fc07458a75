"""A three-node Kafka (KRaft) cluster in the lab (`Lab(cluster=3)`): it forms, topics get
replication factor 3 with min.insync.replicas 2, an acknowledged record outlives the kill
of the leader it was written to, a node cut off from its peers leaves the ISR while the
majority keeps taking writes (and nothing is left after down: the clustered_lab fixture)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from harness.lab import Lab, probes
from tests.lab.conftest import clustered_lab, node_states, wait


def bootstrap(lab: Lab, client: str) -> str:
    return ",".join(f"{h}:{p}" for h, p in (ln.listen for ln in lab.links("kafka", client)))


async def _create(servers: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])
    finally:
        await admin.close()


async def _produce(servers: str, topic: str, n: int, timeout: float) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                                request_timeout_ms=int(timeout * 1000))
    await producer.start()
    try:
        for i in range(n):
            await asyncio.wait_for(producer.send_and_wait(topic, str(i).encode()), timeout)
        return n
    finally:
        await producer.stop()


async def _count(servers: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                                request_timeout_ms=10000)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def isr(lab: Lab, topic: str, among: tuple[int, ...] = (1, 2, 3)) -> tuple[int, list[int]]:
    """(leader, in-sync replicas) of partition 0 of `topic`, as the first of the nodes
    `among` that answers sees them."""
    for node in lab._services["kafka"].nodes:
        if node.index in among:
            try:
                return probes.kafka_partition("127.0.0.1", node.port, topic, timeout=5)
            except Exception:
                continue
    raise AssertionError("no Kafka node answers")


def views(lab: Lab, topic: str) -> dict[str, object]:
    """Each node's view of partition 0 of `topic` (for a failure message)."""
    out: dict[str, object] = {}
    for node in lab._services["kafka"].nodes:
        try:
            out[node.name] = probes.kafka_partition("127.0.0.1", node.port, topic, timeout=5)
        except Exception as e:
            out[node.name] = repr(e)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Lab]:
    yield from clustered_lab(tmp_path_factory, "kafka")


def test_three_nodes_form_one_cluster_and_replicate_three_ways(cluster):
    assert node_states(cluster, "kafka") == [(f"kafka-{i}", "running") for i in (1, 2, 3)]
    assert len(cluster.peer_links("kafka")) == 12  # controller and replication, each direction of 3 pairs
    servers = bootstrap(cluster, "test-form")
    # a client is told only its own proxies, one per node
    assert sorted(probes.kafka_brokers(*cluster.links("kafka", "test-form")[0].listen)) == \
        sorted(ln.listen for ln in cluster.links("kafka", "test-form"))
    run(_create(servers, "formed"))
    assert run(_produce(servers, "formed", 10, 10)) == 10
    wait(lambda: len(isr(cluster, "formed")[1]) == 3, what="three in-sync replicas")


def test_an_acked_record_survives_the_kill_of_its_leader(cluster):
    servers = bootstrap(cluster, "test-kill")
    run(_create(servers, "killed"))
    assert run(_produce(servers, "killed", 50, 10)) == 50
    leader = isr(cluster, "killed")[0]
    victim = dict(cluster.nodes("kafka"))[f"kafka-{leader}"]
    victim.kill(signal.SIGKILL)
    try:
        wait(lambda: isr(cluster, "killed")[0] not in (leader, -1), what="a new leader")
        assert run(_count(servers, "killed")) == 50
    finally:
        victim.start()
    wait(lambda: len(isr(cluster, "killed")[1]) == 3, timeout=60, what="the killed node back in sync")


def test_a_node_cut_off_from_its_peers_leaves_the_isr_and_the_majority_keeps_writing(cluster):
    servers = bootstrap(cluster, "test-split")
    run(_create(servers, "split"))
    assert run(_produce(servers, "split", 10, 10)) == 10
    wait(lambda: len(isr(cluster, "split")[1]) == 3, what="three in-sync replicas")
    cut = [p.proxy for a, b, p in cluster.peer_links("kafka") if "kafka-3" in (a, b)]
    assert len(cut) == 8
    for p in cut:
        cluster.toxiproxy.set_enabled(p, False)
    try:
        # its replication goes only through its peer proxies: it drops out of the ISR
        majority = (1, 2)
        wait(lambda: 3 not in isr(cluster, "split", majority)[1] and isr(cluster, "split", majority)[0] in majority,
             timeout=60, what="kafka-3 out of the ISR, a leader in the majority",
             show=lambda: views(cluster, "split"))
        # a client of the majority (bootstrapped by nodes 1 and 2; kafka-3 still answers its
        # own clients with what it knew) writes with acks=all and min.insync.replicas 2
        ours = ",".join(f"{h}:{p}" for h, p in (ln.listen for ln in cluster.links("kafka", "test-split")[:2]))
        wait(lambda: run(_produce(ours, "split", 1, 5)) == 1, what="a first acked write in the majority")
        assert run(_produce(ours, "split", 19, 10)) == 19
        # cut off for real: kafka-3 never heard of the change (no path to a controller)
        assert 3 in isr(cluster, "split", (3,))[1], views(cluster, "split")
    finally:
        for p in cut:
            cluster.toxiproxy.set_enabled(p, True)
    wait(lambda: len(isr(cluster, "split")[1]) == 3, timeout=60, what="kafka-3 back in sync")
    assert run(_count(servers, "split")) >= 30  # every acked record (a timed-out try may have landed too)


async def _backlog(servers: str) -> None:
    """Node 1 leads three topics whose group read everything; node 3 leads one whose group
    committed 5 of 20 records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"quiet-{i}", num_partitions=-1, replication_factor=-1,
                                            replica_assignments={0: [1, 2, 3]}) for i in (1, 2, 3)]
                                  + [NewTopic("waiting", num_partitions=-1, replication_factor=-1,
                                              replica_assignments={0: [3, 1, 2]})])
    finally:
        await admin.close()
    for topic, read in [("quiet-1", 20), ("quiet-2", 20), ("quiet-3", 20), ("waiting", 5)]:
        await _produce(servers, topic, 20, 10)
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=f"group-{topic}",
                                    enable_auto_commit=False, request_timeout_ms=10000)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): read})
        finally:
            await consumer.stop()


def test_the_leader_is_the_node_holding_a_backlog(cluster):
    """leader-kill and backlog-kill strike the leader of the partitions whose consumer groups
    lag (committed offset behind the high watermark), not the node leading most."""
    servers = bootstrap(cluster, "test-backlog")
    run(_backlog(servers))
    assert {t: isr(cluster, t)[0] for t in ("quiet-1", "waiting")} == {"quiet-1": 1, "waiting": 3}
    assert cluster.leader("kafka") == "kafka-3"
    # per partition: what backlog-kill compares over time
    assert cluster.waiting("kafka")["waiting/0"] == ("kafka-3", 15)
    assert cluster.waiting("kafka")["quiet-1/0"] == ("kafka-1", 0)
