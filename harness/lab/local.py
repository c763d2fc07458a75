"""Services the lab runs itself: each a ManagedProcess on free loopback ports,
with its own data dir and log under the lab root, ready after a handshake.

`start()` retries with fresh ports when a port was taken between choosing it
and binding it (another program on the machine may grab it).
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from harness.disk import LazyDisk
from harness.errors import InfraError
from harness.lab import binaries, probes
from harness.lab.ports import free_port, port_open
from harness.lab.types import Endpoint
from harness.procs import ManagedProcess, ServiceStartError

__all__ = ["LocalService", "NatsService", "RabbitMQService", "ToxiproxyService"]

_IN_USE = ("address already in use", "eaddrinuse", "bindexception", "address in use")
_ATTEMPTS = 3


def _read_log(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(4 * 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""


def _excerpt(log: str, errors: int = 8, tail: int = 12) -> str:
    """The log's first error lines (the cause; a JVM's tail is its shutdown noise) and its end."""
    lines = log.splitlines()
    marks = (" ERROR ", "FATAL", "Exception", "[error]", "error:", "BOOT FAILED")
    first = [ln for ln in lines if any(m in ln for m in marks)][:errors]
    parts = []
    if first:
        parts.append("first errors in the log:\n" + "\n".join(first))
    parts.append("last lines of the log:\n" + ("\n".join(lines[-tail:]) or "(empty)"))
    return "\n".join(parts)


class LocalService(ABC):
    """One service of a local lab; subclasses say how to configure and probe it."""

    name: str

    def __init__(self, root: Path, pid_dir: Path, *, disks: bool = False) -> None:
        self.dir = root / self.name
        self.pid_dir = pid_dir
        self.procs: list[ManagedProcess] = []  # in start order; the last one is the service
        self.port = 0
        self.version = "unknown"
        self.disks = disks  # put the data dir on a lazy disk (power-loss faults)
        self._disk: LazyDisk | None = None

    def data_dir(self, name: str) -> Path:
        """The service's durable directory `name` under its dir; with `disks`, a lazy disk that
        power-loss cuts for the service's process (call from `_prepare`, once)."""
        path = self.dir / name
        if self.disks:
            self._disk = LazyDisk(path, self.dir / f".{name}.backing")
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def process(self) -> ManagedProcess | None:
        return self.procs[-1] if self.procs else None

    @abstractmethod
    def _prepare(self) -> list[ManagedProcess]:
        """Choose ports, write config, format storage; return the processes to start."""

    @abstractmethod
    def endpoint(self) -> Endpoint: ...

    def start(self) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            self._close_disk()
            if self.dir.exists():
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            try:
                self.procs = self._prepare()
                if self.procs:
                    self.procs[-1].disk = self._disk
                for proc in self.procs:
                    proc.start()
                if self._disk is not None:  # a power cut finds it provisioned, as a broker set up
                    self._disk.sync()       # long before would be (its kernel wrote it back)
                return
            except ServiceStartError as e:
                self.stop()
                log = _read_log(self.log_path)
                if attempt < _ATTEMPTS and any(p in log.lower() for p in _IN_USE):
                    continue
                first_line = str(e).splitlines()[0]
                raise InfraError(f"{self.name} failed to start: {first_line}\n{_excerpt(log)}") from None

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self._close_disk()

    def _close_disk(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None

    def _proc(self, suffix: str, argv: list[str], ready, *, env: dict[str, str] | None = None,
              log: Path | None = None, timeout: float = 60.0, stop_timeout: float = 15.0) -> ManagedProcess:
        name = self.name if not suffix else f"{self.name}-{suffix}"
        return ManagedProcess(name, argv, log_path=log or self.log_path, env=env, ready=ready,
                              ready_timeout=timeout, pid_dir=self.pid_dir, stop_timeout=stop_timeout,
                              cwd=self.dir)


class ToxiproxyService(LocalService):
    name = "toxiproxy"

    def _prepare(self) -> list[ManagedProcess]:
        binary = binaries.toxiproxy_bin()
        self.port = free_port()
        url = f"http://127.0.0.1:{self.port}"

        def ready() -> bool:
            self.version = probes.toxiproxy_version(url)
            return True

        return [self._proc("", [binary, "-host", "127.0.0.1", "-port", str(self.port)], ready,
                           timeout=20)]

    def endpoint(self) -> Endpoint:
        return Endpoint("toxiproxy", "127.0.0.1", self.port, f"http://127.0.0.1:{self.port}",
                        self.version, True)


class NatsService(LocalService):
    name = "nats"

    def _prepare(self) -> list[ManagedProcess]:
        binary = binaries.nats_server()
        self.port = free_port()
        store = self.data_dir("jetstream")
        argv = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-n", f"txchaos-{self.port}",
                "-js", "-sd", str(store), "--no_advertise"]
        sync = os.environ.get("TXCHAOS_NATS_SYNC")
        if sync:  # JetStream's fsync interval ("always": every write); nats-server >= 2.10
            conf = self.dir / "nats.conf"
            conf.write_text(f"jetstream {{\n  sync_interval: {sync}\n}}\n")
            argv += ["-c", str(conf)]

        def ready() -> bool:
            self.version = probes.nats_version("127.0.0.1", self.port)
            return True

        return [self._proc("", argv, ready, timeout=20)]

    def endpoint(self) -> Endpoint:
        return Endpoint("nats", "127.0.0.1", self.port, f"nats://127.0.0.1:{self.port}",
                        self.version, True)


# A quorum queue's leader reports its length every quorum_tick_interval (default 5 s, no
# rabbitmq.conf key in 3.10): refreshed every 0.25 s, as RabbitMQ's own test suites do.
ADVANCED = "[{rabbit, [{quorum_tick_interval, 250}]}].\n"


class RabbitMQService(LocalService):
    """Debian's RabbitMQ as a private node: own node name, AMQP/dist ports and epmd.

    The node runs in the foreground from /usr/lib/rabbitmq/bin (not the Debian
    wrapper, whose `su` would start a new session and escape our process group),
    as the current user, with HOME in its own dir so its Erlang cookie is private.
    Its own epmd (on its own port) runs as a separate process, so a kill -9 of the
    node leaves epmd up and a restart re-registers on the same ports.
    """

    name = "rabbitmq"

    def _ports(self) -> None:
        """Choose this node's ports and name (a cluster chooses them before any node starts)."""
        self.port, self.dist, self.epmd_port = free_port(), free_port(), free_port()
        self.node = f"txchaos-{self.port}-{os.getpid()}@localhost"

    def _config(self) -> str:
        """rabbitmq.conf: queue lengths refreshed every 0.5 s (default 5 s), so a fault that
        looks for the node holding a backlog sees one that built up a moment ago."""
        return "disk_free_limit.absolute = 10MB\ncollect_statistics_interval = 500\n"

    def _erl_args(self) -> str:
        return "-kernel inet_dist_use_interface {127,0,0,1}"

    def _prepare(self) -> list[ManagedProcess]:
        server = binaries.find_program("rabbitmq-server", what="RabbitMQ server (rabbitmq-server)",
                                       extra_dirs=(Path("/usr/lib/rabbitmq/bin"),))
        self._ports()
        mnesia = self.data_dir("mnesia")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(self._config())
        (self.dir / "advanced.config").write_text(ADVANCED)
        env = self.env()
        env.update({
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist),
            "RABBITMQ_MNESIA_BASE": str(mnesia),
            "RABBITMQ_LOG_BASE": str(self.dir),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": self._erl_args(),
        })

        def ready() -> bool:
            self.version = probes.amqp_version("127.0.0.1", self.port)
            return True

        return [*self._helpers(), self._proc("", [server], ready, env=env, timeout=90)]

    def _helpers(self) -> list[ManagedProcess]:
        """Processes the node needs started before it: its own epmd (a cluster has one)."""
        return [self.epmd(self.dir, self.pid_dir, self.epmd_port)]

    @staticmethod
    def epmd(home: Path, pid_dir: Path, port: int) -> ManagedProcess:
        """An epmd of our own on `port`: nodes register there and tools look them up there."""
        epmd = binaries.find_program("epmd", what="Erlang epmd (erlang-base)",
                                     extra_dirs=(Path("/usr/lib/erlang/bin"),))
        return ManagedProcess(f"{home.name}-epmd", [epmd, "-port", str(port), "-address", "127.0.0.1"],
                              log_path=home / "epmd.log", ready=lambda: port_open("127.0.0.1", port),
                              ready_timeout=10, pid_dir=pid_dir, stop_timeout=5, cwd=home)

    def env(self) -> dict[str, str]:
        """What this node's tools (rabbitmq-server, rabbitmqctl) need to find and reach it."""
        env = dict(os.environ)
        env.update({"HOME": str(self.dir), "ERL_EPMD_PORT": str(self.epmd_port),
                    "ERL_EPMD_ADDRESS": "127.0.0.1", "RABBITMQ_NODENAME": self.node})
        return env

    def endpoint(self) -> Endpoint:
        return Endpoint("rabbitmq", "127.0.0.1", self.port,
                        f"amqp://guest:guest@127.0.0.1:{self.port}/%2F", self.version, True)
