"""RabbitMQ as a cluster of three nodes whose Erlang distribution runs only through
Toxiproxy proxies.

Erlang nodes find a peer's distribution port through epmd, which would give the
peer's own port. Each node therefore loads a small epmd module
(erl/txchaos_epmd.erl, compiled with erlc as the cluster starts) that answers with
the node's proxy to that peer. Either node of a pair may dial (an Erlang connection
serves both directions), so each direction has its proxy: `rabbitmq-i~rabbitmq-j`.

All nodes register with one epmd of the cluster's, so a tool (rabbitmqctl) that
reaches one node is reached back by the others. Node 1 starts first; nodes 2.. join
it on their first boot (classic-config peer discovery) and a restarted node rejoins
from its own Mnesia dir. Settings are
RabbitMQ's for a replicated cluster: `pause_minority` (a node cut off from the
majority stops serving rather than diverge), a 10 s `net_ticktime` (a silent peer is
declared down within ~10 s, not the default 60 s), and clients declare quorum queues
(targets/payments/transport/rabbitmq.py), which replicate on a Raft majority.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.lab import binaries, probes
from harness.lab.cluster import BrokerCluster, busiest as _busiest
from harness.lab.local import RabbitMQService
from harness.lab.ports import free_port
from harness.lab.types import Endpoint
from harness.procs import ManagedProcess

__all__ = ["RabbitMQCluster"]

_EPMD_SOURCE = Path(__file__).with_name("erl") / "txchaos_epmd.erl"


class _RabbitNode(RabbitMQService):
    """One node of a RabbitMQCluster; its ports, name, cookie and peers come from the cluster."""

    def __init__(self, root: Path, pid_dir: Path, *, index: int, disks: bool) -> None:
        self.name = f"rabbitmq-{index}"
        super().__init__(root, pid_dir, disks=disks)
        self.index = index
        self.port, self.dist, self.epmd_port = free_port(), free_port(), free_port()
        self.node = ""
        self.cookie = ""
        self.seed = ""  # the node a first boot joins ("" for the seed itself)
        self.peers: dict[str, int] = {}  # peer node name (before "@") -> this node's proxy to it
        self.code_dir = Path()

    def _ports(self) -> None:
        """Fixed by the cluster before any node starts (the proxies point at them)."""

    def _config(self) -> str:
        conf = super()._config() + "cluster_partition_handling = pause_minority\n"
        if self.seed:
            conf += ("cluster_formation.peer_discovery_backend = classic_config\n"
                     f"cluster_formation.classic_config.nodes.1 = {self.seed}\n")
        return conf

    def _erl_args(self) -> str:
        return (f"{super()._erl_args()} -kernel net_ticktime 10 "
                f"-pa {self.code_dir} -epmd_module txchaos_epmd")

    def _prepare(self) -> list[ManagedProcess]:
        cookie = self.dir / ".erlang.cookie"  # every node of the cluster has the same
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        return super()._prepare()

    def _helpers(self) -> list[ManagedProcess]:
        return []  # the cluster's epmd, not one of its own

    def env(self) -> dict[str, str]:
        env = super().env()
        env["TXCHAOS_DIST_PEERS"] = ";".join(f"{n}={p}" for n, p in self.peers.items())
        return env

    def endpoint(self) -> Endpoint:
        return Endpoint(self.name, "127.0.0.1", self.port,
                        f"amqp://guest:guest@127.0.0.1:{self.port}/%2F", self.version, True)


class RabbitMQCluster(BrokerCluster):
    service = "rabbitmq"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._epmd: ManagedProcess | None = None
        self._hosted: dict[str, str] = {}  # classic queue -> Erlang node, as last asked
        self._hosted_pids: tuple[int | None, ...] = ()  # the nodes' processes then

    @property
    def procs(self) -> list[ManagedProcess]:
        return ([self._epmd] if self._epmd is not None else []) + super().procs

    def _plan(self) -> None:
        code_dir = self.root / "rabbitmq-cluster"
        code_dir.mkdir(parents=True, exist_ok=True)
        erlc = binaries.find_program("erlc", what="the Erlang compiler erlc (erlang-base)",
                                     extra_dirs=(Path("/usr/lib/erlang/bin"),))
        r = subprocess.run([erlc, "-o", str(code_dir), str(_EPMD_SOURCE)], capture_output=True, text=True)
        if r.returncode != 0:
            raise InfraError(f"building {_EPMD_SOURCE.name} failed:\n{r.stderr.strip()}{r.stdout.strip()}")
        nodes = [_RabbitNode(self.root, self.pid_dir, index=i, disks=self.disks)
                 for i in range(1, self.size + 1)]
        cookie, epmd_port = secrets.token_hex(16), free_port()
        self._epmd = RabbitMQService.epmd(code_dir, self.pid_dir, epmd_port)
        for n in nodes:
            n.epmd_port = epmd_port
            n.node = f"txchaos-{nodes[0].port}-{n.index}@localhost"
            n.cookie, n.code_dir = cookie, code_dir
        for n in nodes:
            n.seed = nodes[0].node if n is not nodes[0] else ""
            for peer in nodes:
                if peer is not n:
                    n.peers[peer.node.split("@")[0]] = self.peer_proxy(n.index, peer.index, peer.dist)
        self.nodes = nodes  # type: ignore[assignment]

    def start(self) -> None:
        """The seed node first, then the others at once (each joins the seed)."""
        self._plan()
        try:
            assert self._epmd is not None
            self._epmd.start()
            self.nodes[0].start()
        except Exception:
            self.stop()
            raise
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            errors = [f.exception() for f in [pool.submit(n.start) for n in self.nodes[1:]]]
        if any(errors):
            self.stop()
            raise next(e for e in errors if e is not None)
        self._await_formed()

    def stop(self) -> None:
        super().stop()
        if self._epmd is not None:
            self._epmd.stop()

    def ctl(self, node: _RabbitNode, *args: str) -> Any:
        """rabbitmqctl's JSON answer from `node` (ConnectionError if it gives none)."""
        ctl = binaries.find_program("rabbitmqctl", what="rabbitmqctl (rabbitmq-server)",
                                    extra_dirs=(Path("/usr/lib/rabbitmq/bin"),))
        try:
            r = subprocess.run([ctl, "-n", node.node, "-q", "-t", "5", *args, "--formatter", "json"],
                               env=node.env(), capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                return json.loads(r.stdout)
        except (subprocess.TimeoutExpired, ValueError) as e:
            raise ConnectionError(f"rabbitmqctl {args[0]} on {node.name}: {e}") from None
        raise ConnectionError(f"rabbitmqctl {args[0]} on {node.name}: {(r.stderr or r.stdout).strip()[:300]}")

    def formed(self) -> None:
        """Every node serves AMQP, and the first counts every node as running."""
        for n in self.nodes:
            probes.amqp_version("127.0.0.1", n.port)
        running = self.ctl(self.nodes[0], "cluster_status").get("running_nodes", [])
        if len(running) < self.size:
            raise ConnectionError(f"{self.nodes[0].name} counts {len(running)} of {self.size} nodes running")

    def leader(self) -> str | None:
        """The node leading the queues with most messages waiting (ready or unacknowledged:
        where a backlog is), else most queues: quorum queues by their leader (asked of the
        first node that answers), classic ones by the node they live on, unless a quorum
        queue holds the backlog."""
        paths = self._paths()
        if paths is None:
            return None
        quorum, every = paths
        chosen = quorum if any(waiting for _, waiting in quorum.values()) else every
        return self._name(_busiest(chosen.values()))

    def data_paths(self) -> dict[str, tuple[str, int]]:
        """Quorum queues by their leader, classic ones by the node they live on."""
        paths = self._paths()
        return {} if paths is None else {queue: (name, waiting) for queue, (node, waiting) in paths[1].items()
                                         if (name := self._name(node))}

    def _paths(self) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, int]]] | None:
        """(quorum queues, every queue) -> (Erlang node leading or hosting it, messages), in
        one rabbitmqctl call to the first node that answers (each starts an Erlang VM, about
        0.5 s); None when none does."""
        for n in self.nodes:
            if n.process is None or not n.process.alive:
                continue
            try:
                rows = self.ctl(n, "list_queues", "name", "leader", "messages")
            except ConnectionError:
                continue  # paused or cut off: ask the next one
            quorum = {str(r["name"]): (str(r["leader"]), _count(r.get("messages"))) for r in rows if r.get("leader")}
            classic = {str(r["name"]): _count(r.get("messages")) for r in rows if not r.get("leader")}
            hosts = self._hosts(set(classic))
            return quorum, {**{q: (hosts[q], m) for q, m in classic.items() if q in hosts}, **quorum}
        return None

    def _name(self, node: str | None) -> str | None:
        """The lab's name of an Erlang node."""
        return next((m.name for m in self.nodes if m.node == node), None)

    def _hosts(self, classic: set[str]) -> dict[str, str]:
        """Classic queue -> the node it lives on. They have no leader and never move, so
        every live node is asked (`list_queues --local`, all at once) only when a classic
        queue is new or a node died or restarted since it was last asked."""
        pids = tuple(n.process.pid if n.process is not None and n.process.alive else None for n in self.nodes)
        if not classic or (classic <= set(self._hosted) and pids == self._hosted_pids):
            return self._hosted

        def local(n: _RabbitNode) -> list[tuple[str, str]]:
            try:
                return [(str(row["name"]), n.node) for row in self.ctl(n, "list_queues", "--local", "name")]
            except ConnectionError:
                return []

        live = [n for n, pid in zip(self.nodes, pids) if pid is not None]
        if not live:
            return {}
        with ThreadPoolExecutor(len(live)) as pool:
            self._hosted = dict(host for hosted in pool.map(local, live) for host in hosted)
        self._hosted_pids = pids
        return self._hosted


def _count(value: Any) -> int:
    """A message count from rabbitmqctl's JSON ("" or absent on a queue that is down)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
