"""The Adapter contract: everything txchaos knows about a target system.

An adapter starts and stops the target, says what it is made of (its
`Topology`: nodes that faults can crash or pause, links that faults can cut),
submits operations, and snapshots the final state in the shape of
docs/formats.md. The harness never reaches a target any other way, and faults,
workload and checkers never see an adapter: they see a Topology, a history and
a state.

Required: `start`, `stop`, `transfer`, `snapshot`. Optional capabilities are
declared in `capabilities` (names from CAPABILITIES; anything else is refused
when the adapter is loaded) and discovered by callers, never assumed.

Threads and loops: `start` and `stop` are plain (blocking) calls made outside
any event loop. `transfer`, `read`, `snapshot` and `arm_failpoint` are
coroutines run on the run's event loop, except that healing a failpoint
(`arm_failpoint(node, name, "off")`) may run in a worker thread with an event
loop of its own, after the run's loop is gone. So a client session belongs to
the loop that made it: make one per loop (as ReferenceAdapter._http does) or
per call, and never share one across loops.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.clock import Clock
from harness.model import OpResult, Transfer
from harness.procs import ManagedProcess
from harness.topology import LEADER_META, WAITING_META, Link, Node, Topology

if TYPE_CHECKING:
    from adapters.containers import Containers
    from harness.disk import LazyDisk
    from harness.lab import Lab

__all__ = ["Adapter", "CAPABILITIES", "Link", "Node", "TargetContext", "Topology", "TargetError", "joined_url",
           "client_url"]

# capability -> the Adapter method it promises (None: a promise about behaviour only)
CAPABILITIES: Mapping[str, str | None] = {
    "read": "read",               # read() returns balances (recorded in the history)
    "snapshot-reads": None,       # reads are atomic snapshots, so their sum is checkable
    "no-negative": None,          # no balance ever goes below zero
    "failpoints": "arm_failpoint",  # crash/delay a node at a named protocol step
    "mutants": "mutants",         # mutants() names seeded bugs, chosen with ctx.mutant
    "clusters": None,             # its clients take ctx.links: it runs on clustered brokers (--cluster 3)
}


class TargetError(RuntimeError):
    """The target could not be started or reached: infrastructure, not a verdict."""


def client_url(service: str, host: str, port: int) -> str:
    """The address a client of `service` connects with, in the form its clients accept.

    RabbitMQ: an AMQP URI; Kafka: a bootstrap `host:port` (no scheme: Kafka
    clients refuse one); NATS: a nats:// URL; anything else: http://host:port.
    """
    return {"rabbitmq": f"amqp://guest:guest@{host}:{port}/%2F", "kafka": f"{host}:{port}",
            "nats": f"nats://{host}:{port}"}.get(service, f"http://{host}:{port}")


def joined_url(links: Sequence[Link]) -> str:
    """One connection string for a client given several brokers nodes' links: a Kafka
    bootstrap list `h:p,h:p`, or the nodes' URLs joined by commas (NATS, RabbitMQ)."""
    return ",".join(link.url for link in links)


@dataclass
class TargetContext:
    """What the harness hands an adapter to start a target.

    `spawn` starts a managed process with its log and pid file preset (and, when
    `clocks` is set because the run may step clocks, on its own wall clock:
    harness.clock); `data_dir` gives a node its durable directory (when `disks` is
    set because the run may cut power, on a lazy disk: harness.disk); `link` and
    `proxy` give a node its own Toxiproxy path.
    Everything spawned is stopped by `close()` (the run calls it after
    `Adapter.stop`), and a harness killed with SIGKILL leaves pid files that the
    next lab start reaps.
    """

    lab: Lab
    run_dir: Path
    accounts: Mapping[str, int]  # initial balances
    mutant: str | None = None
    failpoints: Mapping[str, str] = field(default_factory=dict)  # node -> spec, armed at start
    seed: int = 0
    options: Mapping[str, str] = field(default_factory=dict)  # --target-opt key=value
    clocks: bool = False  # spawn processes on their own wall clocks (clock faults)
    disks: bool = False  # put data dirs on lazy disks (power-loss faults)
    _spawned: list[ManagedProcess] = field(default_factory=list, repr=False)
    _pid_dir: Path | None = field(default=None, repr=False)
    _containers: Containers | None = field(default=None, repr=False)
    _disks: dict[str, LazyDisk] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).resolve()

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def data_dir(self, name: str) -> Path:
        """A node's own durable directory (kept across its restarts), created. With
        `disks`, it is a lazy disk that power-loss faults cut for the process `name`
        (the part of the contract that makes a node's fsyncs testable)."""
        path = self.run_dir / "target-data" / name
        if self.disks and name not in self._disks:
            from harness.disk import LazyDisk

            self._disks[name] = disk = LazyDisk(path, self.run_dir / "target-data" / ".backing" / name)
            for proc in self._spawned:
                if proc.name == name:
                    proc.disk = disk
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sync_disks(self) -> None:
        """Write the lazy disks through, so a power cut finds the target as started: the run
        calls it once the target is up (a real kernel writes dirty pages back within ~30 s)."""
        for disk in self._disks.values():
            disk.sync()

    @property
    def pid_dir(self) -> Path:
        """Where spawned processes' pid files live: a directory in the machine-wide lab
        registry owned by this harness process, so that if it dies the next lab start
        (`registry.reap_stale_labs`) kills what it left behind."""
        if self._pid_dir is None:
            from harness.lab import registry

            lab_dir = registry.register(f"target-{os.getpid()}-{uuid.uuid4().hex[:8]}", self.run_dir)
            self._pid_dir = lab_dir / "pids"
        return self._pid_dir

    @staticmethod
    def free_port() -> int:
        """A free TCP port on 127.0.0.1 for a node to listen on."""
        from harness.lab.ports import free_port

        return free_port()

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              ready: Callable[[], bool] | None = None, ready_timeout: float = 60.0,
              cwd: Path | None = None, stop_timeout: float = 10.0, start: bool = True) -> ManagedProcess:
        """Start `argv` as node `name` and wait until `ready()` is true.

        The environment is the harness's own (without TXCHAOS_* variables) plus
        `env`; output goes to logs/NAME.log. Raises ServiceStartError with the
        log's tail if it exits or is not ready within `ready_timeout` seconds.
        """
        if any(p.name == name for p in self._spawned):
            raise ValueError(f"a process named {name!r} was already spawned")
        base = {k: v for k, v in os.environ.items() if not k.startswith("TXCHAOS_")}
        clock = Clock(self.run_dir / "clocks" / f"{name}.clock") if self.clocks else None
        proc = ManagedProcess(name, list(argv), log_path=self.log_dir / f"{name}.log",
                              env={**base, **(env or {}), **(clock.env() if clock else {})}, cwd=cwd,
                              ready=ready, ready_timeout=ready_timeout, pid_dir=self.pid_dir,
                              stop_timeout=stop_timeout)
        proc.clock = clock
        proc.disk = self._disks.get(name)
        self._spawned.append(proc)
        if start:
            proc.start()
        return proc

    def link(self, service: str, node: str) -> Link:
        """`node`'s own proxied connection to the lab broker `service`; idempotent.

        `Link.url` is what the node's broker client connects with (client_url)."""
        p = self.lab.link(service, node)
        host, port = p.listen
        return Link(node, service, p.proxy, url=client_url(service, host, port), address=f"{host}:{port}")

    def links(self, service: str, node: str) -> list[Link]:
        """`node`'s own proxied connections to the lab broker `service`, one per broker node
        (three on a clustered lab), so a fault can cut the node from one broker node only.
        Give the node all of their urls (joined_url)."""
        return [Link(node, service, p.proxy, url=client_url(service, *p.listen),
                     address=f"{p.listen[0]}:{p.listen[1]}") for p in self.lab.links(service, node)]

    def broker(self, service: str) -> tuple[list[Node], list[Link]]:
        """The lab broker's nodes (role "broker") and the links between them, for the
        topology. A peer proxy is listed under both of its nodes: a partition of one node
        then cuts it off from its peers while its clients still reach it."""
        clustered = self.lab.clustered(service)
        meta = {LEADER_META: functools.partial(self.lab.leader, service),
                WAITING_META: functools.partial(self.lab.waiting, service)} if clustered else {}
        nodes = [Node(name, "broker", process=proc, meta=meta)
                 for name, proc in self.lab.nodes(service)]
        peers = [Link(end, service, p.proxy, address=f"{p.listen[0]}:{p.listen[1]}")
                 for a, b, p in self.lab.peer_links(service) for end in (a, b)]
        return nodes, peers

    def proxy(self, name: str, port: int, *, node: str, host: str = "127.0.0.1") -> Link:
        """A proxied TCP path to `host:port` (e.g. an HTTP API); cutting it cuts
        `node`'s traffic over it. `Link.url` is http://listen-address."""
        p = self.lab.proxy(name, host, port)
        lhost, lport = p.listen
        return Link(node, "http", p.proxy, url=client_url("http", lhost, lport), address=f"{lhost}:{lport}")

    @property
    def containers(self) -> Containers:
        """Nodes as containers (adapters/containers.py): the engine starts on first use."""
        if self._containers is None:
            from adapters.containers import Containers

            self._containers = Containers(self.run_dir, self.log_dir, self.pid_dir)
        return self._containers

    @property
    def docker_client(self) -> Any:
        """The Docker engine's client if this target runs containers, else None (for the faults)."""
        return self._containers.client if self._containers is not None and self._containers.used else None

    def close(self) -> None:
        """Remove the containers and stop whatever `spawn` started; forget the pid dir."""
        if self._containers is not None:
            self._containers.close()
        for proc in reversed(self._spawned):
            proc.stop(timeout=5)
            if proc.clock is not None:
                proc.clock.close()
        for disk in self._disks.values():
            disk.close()
        self._disks.clear()
        if self._pid_dir is not None:
            shutil.rmtree(self._pid_dir.parent, ignore_errors=True)
            self._pid_dir = None


class Adapter(ABC):
    """A target system. Subclass it, or load one by entry point or module:Class."""

    name: ClassVar[str]
    services: ClassVar[frozenset[str]] = frozenset()  # lab services the target needs
    capabilities: ClassVar[frozenset[str]] = frozenset()
    options: ClassVar[Mapping[str, str]] = {}  # option name -> what it does (for --target-opt)
    notices: ClassVar[tuple[str, ...]] = ()  # what every run must tell its reader (printed, in run.json)
    # the target's own timeouts in seconds, e.g. {"vote": 5, "in-doubt": 8}: generated
    # schedules hold some fault windows longer than the longest (docs/faults.md)
    timeouts: ClassVar[dict[str, float]] = {}

    @abstractmethod
    def start(self, ctx: TargetContext) -> Topology:
        """Start the target with the given accounts; return when it serves requests."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every process of the target and reap it; safe to call twice."""

    @abstractmethod
    async def transfer(self, t: Transfer) -> OpResult:
        """Submit one payment. OK: it committed; FAIL: it certainly did not;
        UNKNOWN: anything else (timeouts, connection errors, 5xx)."""

    @abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """The final state of every participant, in the docs/formats.md shape."""

    async def read(self) -> OpResult:
        """Balances as a client sees them (capability "read")."""
        raise NotImplementedError(f"{self.name} does not offer reads")

    def mutants(self) -> list[str]:
        """Names of seeded bugs this target can switch on (capability "mutants")."""
        return []

    def failpoints(self) -> list[str]:
        """Names of failpoints this target offers (capability "failpoints")."""
        return []

    async def arm_failpoint(self, node: str, name: str, action: str = "crash", **params: Any) -> None:
        """Arm a failpoint on a running node (capability "failpoints"); action "off"
        disarms every failpoint of the node and may run on another loop (see above).
        Arming one leaves the node's other armed failpoints armed. Generated schedules use
        "crash" with no parameters unless the node declares more in its
        `meta["failpoint-actions"]` (action -> parameters, of "ms" and "probability",
        e.g. {"crash": [], "delay": ["ms", "probability"]}; docs/faults.md)."""
        raise NotImplementedError(f"{self.name} has no failpoints")

    async def aclose(self) -> None:
        """Release client resources (HTTP sessions); the target keeps running."""
