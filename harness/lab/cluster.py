"""Broker clusters: several nodes of one broker on loopback, every connection between two
nodes through a Toxiproxy proxy of its own.

A partition can then cut one node off from its peers while its clients still reach it
(the case where replicated brokers have lost acknowledged writes), or split the cluster.
Each pair of nodes has one proxy: the lower-numbered node dials the higher through it,
so cutting a node's peer proxies cuts it off in both directions. Nodes never learn each
other's direct addresses: what a node would gossip to its peers points nowhere.

A cluster looks like one LocalService to the Lab (start, stop, procs, process,
endpoint) and adds its nodes and its peer proxies.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.errors import InfraError
from harness.lab import binaries, probes
from harness.lab.local import LocalService
from harness.lab.ports import free_port
from harness.lab.types import Endpoint, ProxyLink
from harness.procs import ManagedProcess

__all__ = ["BrokerCluster", "NatsCluster", "ProxyFactory", "busiest"]

# (proxy name, upstream (host, port), listen port or None) -> the proxy's listen (host, port)
ProxyFactory = Callable[[str, tuple[str, int], "int | None"], tuple[str, int]]
FORM_TIMEOUT = 60.0  # seconds for started nodes to elect a leader and serve


class BrokerCluster:
    """`size` nodes of one broker, named f"{service}-{i}" (1-based); the peer proxy of
    nodes i < j is named f"{service}-{i}~{service}-{j}"."""

    service: str

    def __init__(self, root: Path, pid_dir: Path, *, size: int, proxy: ProxyFactory,
                 disks: bool = False) -> None:
        self.root, self.pid_dir, self.size, self.disks = root, pid_dir, size, disks
        self._proxy = proxy
        self.nodes: list[LocalService] = []
        self.peers: list[tuple[str, str, ProxyLink]] = []  # (dialing node, dialed node, proxy)

    @property
    def names(self) -> list[str]:
        return [f"{self.service}-{i}" for i in range(1, self.size + 1)]

    @property
    def procs(self) -> list[ManagedProcess]:
        return [p for n in self.nodes for p in n.procs]

    @property
    def process(self) -> ManagedProcess | None:
        """The first node's process: the cluster counts as running while it has one."""
        return self.nodes[0].process if self.nodes else None

    @property
    def version(self) -> str:
        return self.nodes[0].version if self.nodes else "unknown"

    def endpoint(self) -> Endpoint:
        return self.nodes[0].endpoint()

    def peer_proxy(self, a: int, b: int, upstream_port: int, purpose: str = "") -> int:
        """Create the proxy through which node a dials node b (for `purpose`, when a pair
        has several); its listen port."""
        name = f"{self.service}-{a}~{self.service}-{b}" + (f".{purpose}" if purpose else "")
        host, port = self._proxy(name, ("127.0.0.1", upstream_port), None)
        self.peers.append((f"{self.service}-{a}", f"{self.service}-{b}",
                           ProxyLink(name, self.service, f"{self.service}-{a}", f"{host}:{port}",
                                     (host, port), ("127.0.0.1", upstream_port))))
        return port

    def client_proxy(self, client: str, index: int) -> tuple[tuple[str, int], int | None]:
        """(upstream, fixed listen port or None) of `client`'s proxy to node `index` (0-based)."""
        ep = self.nodes[index].endpoint()
        return (ep.host, ep.port), None

    def start(self) -> None:
        self._plan()
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # a node waits for a quorum of peers
            errors = [f.exception() for f in [pool.submit(n.start) for n in self.nodes]]
        if any(errors):
            self.stop()
            raise next(e for e in errors if e is not None)
        self._await_formed()

    def _await_formed(self) -> None:
        deadline = time.monotonic() + FORM_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.formed()
                return
            except Exception as e:  # not yet: no leader, a node still joining
                last = e
                time.sleep(0.25)
        self.stop()
        raise InfraError(f"{self.service} cluster of {self.size} did not form within "
                         f"{FORM_TIMEOUT:.0f} s: {last}; node logs under {self.root}")

    def stop(self) -> None:
        """All nodes at once: one by one, the last ones wait out their stop timeout for a
        quorum that is already gone."""
        if self.nodes:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda n: n.stop(), self.nodes))

    def _plan(self) -> None:
        """Choose ports, create the peer proxies and the node objects."""
        raise NotImplementedError

    def formed(self) -> None:
        """Return when every node serves as one cluster; raise why not otherwise."""
        raise NotImplementedError

    def data_paths(self) -> dict[str, tuple[str, int]]:
        """Each queue, stream or partition of the users' data: (the node leading it, the
        messages waiting for its consumers), by the broker's own API; nodes that do not
        answer are left out. Compared over time, it tells whose backlog grows where."""
        raise NotImplementedError

    def leader(self) -> str | None:
        """The node that leads now: the one leading the data with most messages waiting, else
        most of it (None if no node answers)."""
        return busiest(self.data_paths().values())


def busiest(data_paths: Iterable[tuple[str, int]]) -> str | None:
    """The node leading the queues or streams with most messages waiting, else leading most
    of them; data_paths: (leader, messages waiting) per queue or stream."""
    count: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    for leader, messages in data_paths:
        count[leader] += 1
        waiting[leader] += messages
    if not count:
        return None
    return max(sorted(count), key=lambda node: (waiting[node], count[node]))


class _NatsNode(LocalService):
    """One JetStream-clustered nats-server, configured by a file its cluster writes."""

    def __init__(self, root: Path, pid_dir: Path, *, name: str, port: int, monitor: int, conf: str,
                 disks: bool) -> None:
        self.name = name
        super().__init__(root, pid_dir, disks=disks)
        self.port, self.monitor, self._conf = port, monitor, conf

    def _prepare(self) -> list[ManagedProcess]:
        store = self.data_dir("jetstream")
        conf = self.dir / "nats.conf"
        conf.write_text(self._conf.replace("@STORE@", str(store)))

        def ready() -> bool:  # the client port answers; JetStream waits for a quorum (formed())
            self.version = probes.nats_version("127.0.0.1", self.port, jetstream=False)
            return True

        return [self._proc("", [binaries.nats_server(), "-c", str(conf)], ready, timeout=30)]

    def endpoint(self) -> Endpoint:
        return Endpoint(self.name, "127.0.0.1", self.port, f"nats://127.0.0.1:{self.port}",
                        self.version, True)


class NatsCluster(BrokerCluster):
    """NATS with JetStream clustering: routes between every pair of nodes, R3-capable."""

    service = "nats"

    def _plan(self) -> None:
        ports = [free_port() for _ in range(self.size)]
        monitors = [free_port() for _ in range(self.size)]
        cluster_ports = [free_port() for _ in range(self.size)]
        nowhere = free_port()  # gossiped route URLs point here, where nothing listens
        routes: dict[int, list[int]] = {i: [] for i in range(1, self.size + 1)}
        for a in range(1, self.size + 1):
            for b in range(a + 1, self.size + 1):
                routes[a].append(self.peer_proxy(a, b, cluster_ports[b - 1]))
        name = f"txchaos-{ports[0]}"
        self.nodes = []
        for i, node in enumerate(self.names, start=1):
            # JetStream wants routes configured on every node: the last one's is itself (ignored)
            dials = routes[i] or [cluster_ports[i - 1]]
            route_list = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in dials)
            conf = (f'server_name: "{node}"\nlisten: "127.0.0.1:{ports[i - 1]}"\n'
                    f'http: "127.0.0.1:{monitors[i - 1]}"\n'
                    f'jetstream {{\n  store_dir: "@STORE@"\n}}\n'
                    f'cluster {{\n  name: "{name}"\n  listen: "127.0.0.1:{cluster_ports[i - 1]}"\n'
                    f'  advertise: "127.0.0.1:{nowhere}"\n  no_advertise: true\n'
                    f'  connect_retries: 0\n  routes: [{route_list}]\n}}\n')
            self.nodes.append(_NatsNode(self.root, self.pid_dir, name=node, port=ports[i - 1],
                                        monitor=monitors[i - 1], conf=conf, disks=self.disks))

    def formed(self) -> None:
        for n in self.nodes:
            probes.nats_version("127.0.0.1", n.port, jetstream=True)
            routes = len(probes.nats_monitor("127.0.0.1", n.monitor, "routez").get("routes") or [])
            if routes < self.size - 1:
                raise ConnectionError(f"{n.name} has {routes} of {self.size - 1} routes")

    def leader(self) -> str | None:
        """The leader of the streams holding most messages that wait for their consumers
        (pending or unacknowledged: where a backlog is), else of most streams (a target's
        data path), else the meta leader."""
        paths, meta = self._streams()
        return busiest(paths.values()) or meta

    def data_paths(self) -> dict[str, tuple[str, int]]:
        return self._streams()[0]

    def _streams(self) -> tuple[dict[str, tuple[str, int]], str | None]:
        """(leader, messages waiting) per stream, and the meta leader. Every node is asked:
        a one-replica stream shows only on the node that holds it."""
        streams: dict[str, tuple[str, int]] = {}  # stream -> (leader, messages waiting)
        meta = None
        for n in self.nodes:
            try:
                jsz = probes.nats_monitor("127.0.0.1", n.monitor,
                                          "jsz?accounts=true&streams=true&consumers=true", timeout=1.0)
            except Exception:  # killed, paused or cut: ask the next one
                continue
            meta = meta or (jsz.get("meta_cluster") or {}).get("leader")
            for account in jsz.get("account_details") or []:
                for stream in account.get("stream_detail") or []:
                    leader = (stream.get("cluster") or {}).get("leader")
                    waiting = sum(int(c.get("num_pending") or 0) + int(c.get("num_ack_pending") or 0)
                                  for c in stream.get("consumer_detail") or [])
                    if leader:
                        key = f"{account.get('name')}/{stream.get('name')}"
                        streams[key] = (leader, max(waiting, streams.get(key, ("", 0))[1]))
        return streams, meta
