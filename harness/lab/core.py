"""The Lab: real brokers and a Toxiproxy server, local or external, behind one API.

A local lab starts only the services asked for (`ensure`), each on free loopback
ports with its data and log under `root`; every broker connection a client
makes goes through a Toxiproxy proxy of its own (`link`), so a fault can cut or
slow exactly one client. An external lab starts nothing and only creates proxies.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import procs
from harness.disk import reap_stale_mounts
from harness.errors import BadInput, InfraError
from harness.lab import probes, registry
from harness.lab.cluster import BrokerCluster, NatsCluster
from harness.lab.config import ENV, KEYS, host_port, load_external
from harness.lab.kafka import KafkaService
from harness.lab.kafka_cluster import KafkaCluster
from harness.lab.rabbitmq_cluster import RabbitMQCluster
from harness.lab.local import LocalService, NatsService, RabbitMQService, ToxiproxyService
from harness.lab.ports import free_port
from harness.lab.toxiproxy_api import ToxiproxyAPI
from harness.lab.types import BROKERS, SERVICES, Endpoint, ProxyLink, ServiceStatus
from harness.procs import ManagedProcess

__all__ = ["Lab", "CLUSTERED"]

_LOCAL: dict[str, type[LocalService]] = {
    "rabbitmq": RabbitMQService, "kafka": KafkaService, "nats": NatsService,
    "toxiproxy": ToxiproxyService,
}
CLUSTERED: dict[str, type[BrokerCluster]] = {"nats": NatsCluster, "kafka": KafkaCluster,
                                             "rabbitmq": RabbitMQCluster}
_SCHEME = {"rabbitmq": "amqp://guest:guest@{h}:{p}/%2F", "kafka": "kafka://{h}:{p}",
           "nats": "nats://{h}:{p}"}


def _check(services: tuple[str, ...]) -> None:
    for s in services:
        if s not in SERVICES:
            raise BadInput(f"unknown service {s!r}; choose from {', '.join(SERVICES)}")


def check_cluster(size: int, services: Iterable[str] = ()) -> None:
    """BadInput unless `services` can run as clusters of `size` nodes."""
    if size not in (1, 3):
        raise BadInput(f"--cluster {size}: a broker runs as 1 node or as a cluster of 3")
    for service in services:
        if size > 1 and service in BROKERS and service not in CLUSTERED:
            raise BadInput(f"--cluster {size}: {service} runs as one node here; clustered "
                           f"brokers: {', '.join(CLUSTERED)}")


class Lab:
    """Brokers and Toxiproxy for one harness run (or one pytest session)."""

    def __init__(self, root: Path, *, external: dict[str, str] | None = None,
                 settings: dict[str, Any] | None = None, lab_id: str | None = None,
                 disks: bool = False, cluster: int = 1) -> None:
        self.root = Path(root).resolve()  # services run from other working directories
        self.disks = disks  # brokers started from now on keep their data on lazy disks (power-loss)
        check_cluster(cluster)
        self.cluster = cluster  # nodes per clusterable broker (harness.lab.cluster.CLUSTERED)
        self.external = external  # None: a local lab
        self.settings = settings or {}
        self.lab_id = lab_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._services: dict[str, LocalService | BrokerCluster] = {}
        self._ext_versions: dict[str, str] = {}
        self._links: dict[str, ProxyLink] = {}  # by proxy name
        self._lock = threading.RLock()
        self._lab_dir: Path | None = None
        self._api: ToxiproxyAPI | None = None

    @classmethod
    def from_option(cls, option: str = "local", *, root: Path, cluster: int = 1) -> "Lab":
        """"local", "external" (TXCHAOS_* variables) or the path of a JSON lab config."""
        if option == "local":
            return cls(root, cluster=cluster)
        if cluster != 1:
            raise BadInput(f"--cluster {cluster} needs --lab local: the lab starts the cluster's nodes")
        urls, settings = load_external(option)
        return cls(root, external=urls, settings=settings)

    @property
    def is_local(self) -> bool:
        return self.external is None

    # -- services ----------------------------------------------------------
    def ensure(self, *services: str) -> None:
        """Start what is missing of `services` (a broker implies toxiproxy); idempotent."""
        _check(services)
        wanted = list(dict.fromkeys(services))
        if any(s in BROKERS for s in wanted) and "toxiproxy" not in wanted:
            wanted.insert(0, "toxiproxy")
        if not self.is_local:
            for s in wanted:
                self._ensure_external(s)
            return
        with self._lock:
            if self._lab_dir is None:
                self.root.mkdir(parents=True, exist_ok=True)
                registry.reap_stale_labs()
                reap_stale_mounts()  # lazy disks of a harness killed mid-run
                self._lab_dir = registry.register(self.lab_id, self.root)
            missing = [s for s in wanted if not self._running(s)]
            for s in missing:
                self._services[s] = self._new_service(s)
            if "toxiproxy" in missing:  # a cluster creates its peer proxies as it starts
                self._services["toxiproxy"].start()
                missing.remove("toxiproxy")
            if not missing:
                return
            with ThreadPoolExecutor(len(missing)) as pool:
                futures = [pool.submit(self._services[s].start) for s in missing]
                errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                raise errors[0]

    def _new_service(self, service: str) -> LocalService | BrokerCluster:
        pids = self._lab_dir / "pids"  # type: ignore[operator]
        if self.cluster > 1 and service in BROKERS:
            check_cluster(self.cluster, (service,))
            return CLUSTERED[service](self.root, pids, size=self.cluster, proxy=self._peer_proxy,
                                      disks=self.disks)
        return _LOCAL[service](self.root, pids, disks=self.disks)

    def _peer_proxy(self, name: str, upstream: tuple[str, int], listen: int | None) -> tuple[str, int]:
        # called from ensure()'s start threads: straight to the started Toxiproxy, not via ensure()
        api = ToxiproxyAPI(self._services["toxiproxy"].endpoint().url)
        return self._create_proxy(name, upstream, listen, api)

    def _running(self, service: str) -> bool:
        svc = self._services.get(service)
        return svc is not None and svc.process is not None and svc.process.alive

    def _ensure_external(self, service: str) -> None:
        if service in self._ext_versions:
            return
        if service not in self.external:  # type: ignore[operator]
            raise InfraError(f"external lab has no {service}: set {KEYS[service]} in the lab config "
                             f"file, or {ENV[service]} with --lab external")
        host, port = host_port(service, self.external[service])  # type: ignore[index]
        try:
            if service == "rabbitmq":
                version = probes.amqp_version(host, port)
            elif service == "kafka":
                probes.kafka_brokers(host, port)
                version = "unknown"
            elif service == "nats":
                version = probes.nats_version(host, port, jetstream=True)
            else:
                version = probes.toxiproxy_version(self.external["toxiproxy"].rstrip("/"))  # type: ignore[index]
        except Exception as e:
            raise InfraError(f"external {service} at {self.external[service]} is not reachable: {e}") from None  # type: ignore[index]
        self._ext_versions[service] = version

    def endpoint(self, service: str) -> Endpoint:
        """The direct (unproxied) address of a running service."""
        _check((service,))
        if self.is_local:
            if service not in self._services or self._services[service].process is None:
                raise InfraError(f"{service} is not running in this lab; call lab.ensure({service!r})")
            return self._services[service].endpoint()
        self._ensure_external(service)
        url = self.external[service]  # type: ignore[index]
        host, port = host_port(service, url)
        if service == "kafka":
            url = f"kafka://{host}:{port}"
        return Endpoint(service, host, port, url.rstrip("/"), self._ext_versions[service], False)

    def process(self, service: str) -> ManagedProcess | None:
        """The broker's process, for crash faults; None for an external service."""
        _check((service,))
        svc = self._services.get(service)
        return svc.process if svc is not None else None

    # -- proxies -------------------------------------------------------------
    @property
    def toxiproxy_url(self) -> str:
        if not self.is_local:
            self._ensure_external("toxiproxy")
            return self.external["toxiproxy"].rstrip("/")  # type: ignore[index]
        self.ensure("toxiproxy")
        return self.endpoint("toxiproxy").url

    @property
    def toxiproxy(self) -> ToxiproxyAPI:
        """A REST client bound to this lab's Toxiproxy server."""
        if self._api is None or self._api.url != self.toxiproxy_url:
            self._api = ToxiproxyAPI(self.toxiproxy_url)
        return self._api

    def link(self, service: str, client: str) -> ProxyLink:
        """`client`'s own proxy to `service` (named f"{client}-{service}"); idempotent."""
        _check((service,))
        if service not in BROKERS:
            raise BadInput(f"link() is for brokers ({', '.join(BROKERS)}); use proxy() for {service}")
        self.ensure(service)
        if self.clustered(service):
            raise BadInput(f"{service} runs as a cluster here (--cluster {self.cluster}), and this target "
                           "connects its clients to one broker node (ctx.link): run it with --cluster 1, "
                           "or give its clients ctx.links, a proxy per node (docs/clusters.md)")
        name = f"{client}-{service}"
        with self._lock:
            cached = self._links.get(name)
            if cached is not None and self._exists(cached):
                return cached
            ep = self.endpoint(service)
            upstream, fixed_listen = (ep.host, ep.port), None
            if service == "kafka":
                slot = self._kafka_slot(client)
                if slot is not None:
                    upstream, fixed_listen = ("127.0.0.1", slot[0]), slot[1]
            listen = self._create_proxy(name, upstream, fixed_listen)
            url = _SCHEME[service].format(h=listen[0], p=listen[1])
            link = ProxyLink(name, service, client, url, listen, upstream)
            self._links[name] = link
            return link

    def shape(self, cluster: int) -> None:
        """Run brokers as `cluster` nodes from now on; running brokers of the other shape stop
        (a suite or a campaign worker keeps one lab across runs that may differ)."""
        if cluster == self.cluster:
            return
        if not self.is_local:
            raise BadInput(f"--cluster {cluster} needs --lab local: the lab starts the cluster's nodes")
        check_cluster(cluster)
        running = [s for s in BROKERS if s in self._services]
        if running:
            self.down(*running)
        self.cluster = cluster

    def clustered(self, service: str) -> bool:
        return isinstance(self._services.get(service), BrokerCluster)

    def nodes(self, service: str) -> list[tuple[str, ManagedProcess | None]]:
        """The broker's nodes, (name, process): one named `service`, or a cluster's
        f"{service}-1".. (process None for an external service)."""
        _check((service,))
        svc = self._services.get(service)
        if isinstance(svc, BrokerCluster):
            return [(n.name, n.process) for n in svc.nodes]
        return [(service, self.process(service))]

    def links(self, service: str, client: str) -> list[ProxyLink]:
        """`client`'s own proxies to `service`, one per broker node (named
        f"{client}-{node}" on a cluster): cutting one cuts the client from that node only."""
        self.ensure(service)
        svc = self._services.get(service)
        if not isinstance(svc, BrokerCluster):
            return [self.link(service, client)]
        out = []
        with self._lock:
            for i, node in enumerate(svc.names):
                name = f"{client}-{node}"
                cached = self._links.get(name)
                if cached is None or not self._exists(cached):
                    upstream, fixed = svc.client_proxy(client, i)
                    listen = self._create_proxy(name, upstream, fixed)
                    cached = ProxyLink(name, service, client, _SCHEME[service].format(h=listen[0], p=listen[1]),
                                       listen, upstream)
                    self._links[name] = cached
                out.append(cached)
        return out

    def leader(self, service: str) -> str | None:
        """The node of a clustered broker that leads now (harness.lab.cluster); None otherwise."""
        svc = self._services.get(service)
        return svc.leader() if isinstance(svc, BrokerCluster) else None

    def waiting(self, service: str) -> dict[str, tuple[str, int]]:
        """A clustered broker's data paths: {queue, stream or partition: (leading node,
        messages waiting)} (harness.lab.cluster); {} otherwise."""
        svc = self._services.get(service)
        return svc.data_paths() if isinstance(svc, BrokerCluster) else {}

    def peer_links(self, service: str) -> list[tuple[str, str, ProxyLink]]:
        """A cluster's proxies between its nodes: (dialing node, dialed node, proxy)."""
        svc = self._services.get(service)
        return list(svc.peers) if isinstance(svc, BrokerCluster) else []

    def _kafka_slot(self, client: str) -> tuple[int, int] | None:
        svc = self._services.get("kafka")
        if isinstance(svc, KafkaService):
            return svc.claim(client)
        slots = [tuple(s) for s in self.settings.get("kafka_client_listeners", [])]
        if not slots:
            return None  # plain external Kafka: its advertised listener is not proxied
        used = {p["listen"] for n, p in self.toxiproxy.proxies().items() if n != f"{client}-kafka"}
        for bport, lport in slots:
            if f"127.0.0.1:{lport}" not in used:
                return int(bport), int(lport)
        raise InfraError("all Kafka client listeners of the external lab are in use")

    def proxy(self, name: str, upstream_host: str, upstream_port: int) -> ProxyLink:
        """A generic TCP proxy (e.g. to a coordinator's HTTP port); url http://127.0.0.1:LISTEN."""
        with self._lock:
            existing = self._links.get(name)
            if existing is not None and existing.upstream == (upstream_host, upstream_port) \
                    and self._exists(existing):
                return existing
            listen = self._create_proxy(name, (upstream_host, upstream_port), None)
            link = ProxyLink(name, "http", name, f"http://{listen[0]}:{listen[1]}", listen,
                             (upstream_host, upstream_port))
            self._links[name] = link
            return link

    def _exists(self, link: ProxyLink) -> bool:
        """A cached link is good only while its proxy exists: a Toxiproxy that ensure()
        started again comes back empty, and a proxy may be deleted behind the lab's back."""
        try:
            return self.toxiproxy.get(link.proxy) is not None
        except InfraError:
            return False

    def _create_proxy(self, name: str, upstream: tuple[str, int], listen_port: int | None,
                      api: ToxiproxyAPI | None = None) -> tuple[str, int]:
        up = f"{upstream[0]}:{upstream[1]}"
        last: Exception | None = None
        for _ in range(3):
            port = listen_port if listen_port is not None else free_port()
            try:
                created = (api or self.toxiproxy).create(name, f"127.0.0.1:{port}", up)
            except InfraError as e:
                last = e
                if listen_port is not None or "in use" not in str(e):
                    raise
                continue
            host, _, actual = created["listen"].rpartition(":")
            return (host or "127.0.0.1"), int(actual)
        raise last  # type: ignore[misc]

    # -- status and teardown -----------------------------------------------
    def status(self) -> list[ServiceStatus]:
        out: list[ServiceStatus] = []
        if not self.is_local:
            for s in SERVICES:
                if s in self.external:  # type: ignore[operator]
                    try:
                        out.append(ServiceStatus(s, "external", self.endpoint(s)))
                    except InfraError:
                        out.append(ServiceStatus(s, "unreachable", None))
            return out
        for s in SERVICES:
            svc = self._services.get(s)
            if svc is None or svc.process is None:
                continue
            members = svc.nodes if isinstance(svc, BrokerCluster) else [svc]  # a row per node
            for m in members:
                if m.process is not None:
                    state = {"running": "running", "stopped": "paused"}.get(m.process.state, "dead")
                    out.append(ServiceStatus(m.name, state, m.endpoint(), m.process.pid))
        return out

    def down(self, *services: str) -> None:
        """Delete this lab's proxies and stop its services (all if none named); safe twice."""
        _check(services)
        names = set(services or SERVICES)
        with self._lock:
            doomed = [n for n, link in self._links.items()
                      if "toxiproxy" in names or link.service in names]
            peers = [pl.proxy for s in names for _, _, pl in self.peer_links(s)]
            if (doomed or peers) and self._toxiproxy_up():
                for n in doomed + peers:
                    try:
                        self.toxiproxy.delete(n)
                    except Exception:
                        pass
            for n in doomed:
                del self._links[n]
            order = [s for s in ("kafka", "rabbitmq", "nats", "toxiproxy") if s in names]
            for s in order:
                svc = self._services.pop(s, None)
                if svc is not None:
                    svc.stop()
            if not self._services and self._lab_dir is not None:
                import shutil
                shutil.rmtree(self._lab_dir, ignore_errors=True)
                self._lab_dir = None

    def _toxiproxy_up(self) -> bool:
        return (not self.is_local and "toxiproxy" in self.external) or self._running("toxiproxy")  # type: ignore[operator]

    # -- detached labs (`txchaos lab up`) ------------------------------------
    def detach(self, state_path: Path) -> dict[str, Any]:
        """Leave the services running after this process exits; write their state.

        The state file doubles as an external lab config (`--lab STATE_FILE`).
        """
        if not self.is_local or self._lab_dir is None:
            raise BadInput("only a local lab with running services can be detached")
        state: dict[str, Any] = {"lab_id": self.lab_id, "lab_dir": str(self._lab_dir),
                                 "root": str(self.root), "services": {}}
        for st in self.status():
            state["services"][st.service] = {"url": st.endpoint.url, "version": st.endpoint.version,
                                             "pid": st.pid} if st.endpoint else {}
        keys = {"rabbitmq": "rabbitmq_url", "nats": "nats_url", "toxiproxy": "toxiproxy_url"}
        for s, k in keys.items():
            row = state["services"].get(s) or state["services"].get(f"{s}-1")  # a cluster: its first node
            if row:
                state[k] = row["url"]
        kafka = self._services.get("kafka")
        if isinstance(kafka, KafkaService):
            state["kafka_bootstrap"] = f"127.0.0.1:{kafka.port}"
            state["kafka_client_listeners"] = [list(s) for s in kafka.slots]
        elif isinstance(kafka, BrokerCluster):  # its first node, seen alone from outside
            state["kafka_bootstrap"] = f"127.0.0.1:{kafka.nodes[0].port}"
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state, indent=2))
        registry.mark_detached(self._lab_dir, state_path.resolve())
        with procs._LIVE_LOCK:  # no longer ours to reap at exit
            for svc in self._services.values():
                for p in svc.procs:
                    procs._LIVE.discard(p)
        return state

    def __repr__(self) -> str:
        kind = "local" if self.is_local else "external"
        return f"<Lab {kind} {self.lab_id} services={sorted(self._services) or sorted(self.external or {})}>"
