"""Nodes that run as containers, for adapters and target specs (`TargetContext.containers`).

The engine is the user's (`DOCKER_HOST` set) or a private dockerd started on
first use under the run directory (faults.docker_engine: vfs storage, no
bridge, no iptables). Containers use host networking, so they reach their
Toxiproxy proxies on 127.0.0.1 and nothing listens beyond loopback; each
node's data directory is bind-mounted at the same path, so a restarted
container keeps its data. Every container started here is removed (its
output saved to logs/NAME.log first) on `close()`, and the private engine is
stopped; a harness killed with SIGKILL leaves the engine's pid file, which
the next lab start reaps.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import InfraError

__all__ = ["Containers"]


class Containers:
    """The containers of one target start; made by TargetContext on first use."""

    def __init__(self, run_dir: Path, log_dir: Path, pid_dir: Path) -> None:
        self.run_dir, self.log_dir, self.pid_dir = run_dir, log_dir, pid_dir
        self.label = f"txchaos-{uuid.uuid4().hex[:10]}"  # every container of this start carries it
        self._engine: Any = None
        self._client: Any = None
        self._started: dict[str, Any] = {}  # node -> container

    @property
    def client(self) -> Any:
        """A docker-py client: the user's engine if DOCKER_HOST is set, else a private one."""
        if self._client is None:
            if os.environ.get("DOCKER_HOST"):
                import docker

                try:
                    self._client = docker.from_env()
                    self._client.ping()
                except Exception as e:
                    raise InfraError(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer: {e}") from None
            else:
                from faults.docker_engine import start_dockerd

                self._engine = start_dockerd(self.run_dir / "docker", pid_dir=self.pid_dir)
                self._client = self._engine.client
        return self._client

    @property
    def used(self) -> bool:
        return self._client is not None

    def image_from_binary(self, tag: str, binary: Path) -> str:
        """A one-program image (`docker import`): `binary` (statically linked) at
        /bin/NAME, with /tmp and /etc; reused if the engine already has `tag`."""
        try:
            self.client.images.get(tag)
            return tag
        except Exception:
            pass
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for d in ("bin", "tmp", "etc", "proc", "sys", "dev"):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
                tar.addfile(info)
            tar.add(str(binary), arcname=f"bin/{binary.name}")
        repo, _, version = tag.partition(":")
        self.client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=version or "latest")
        return tag

    def run(self, node: str, image: str, argv: Sequence[str], *, env: Mapping[str, str],
            mounts: Sequence[Path] = (), ready: Callable[[], bool] | None = None,
            ready_timeout: float = 60.0) -> str:
        """Start node `node` as a container and wait until `ready()`; returns its name."""
        name = f"{self.label}-{node}"
        volumes = {str(p): {"bind": str(p), "mode": "rw"} for p in mounts}
        try:
            container = self.client.containers.run(
                image, list(argv), name=name, detach=True, network_mode="host", environment=dict(env),
                volumes=volumes, labels={"txchaos": self.label, "txchaos.node": node})
        except Exception as e:
            raise InfraError(f"{node}: could not start a container of {image!r}: {e}") from None
        self._started[node] = container
        deadline = time.monotonic() + ready_timeout
        while True:
            container.reload()
            if container.status != "running":
                tail = container.logs(tail=20).decode(errors="replace")
                raise InfraError(f"{node}: its container exited while starting; last lines:\n{tail}")
            try:
                if ready is None or ready():
                    return name
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise InfraError(f"{node} was not ready after {ready_timeout:.0f}s")
            time.sleep(0.2)

    def close(self) -> None:
        """Save each container's output to logs/NODE.log, remove it, stop a private engine."""
        for node, container in self._started.items():
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                with open(self.log_dir / f"{node}.log", "ab") as f:
                    f.write(container.logs())
            except Exception:
                pass
            try:
                container.remove(force=True)
            except Exception:
                pass
        self._started.clear()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
            self._client = None


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness probe: `url` answers 2xx."""
    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=1) as r:
            return 200 <= r.status < 300
    return probe
