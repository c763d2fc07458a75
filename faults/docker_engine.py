"""A private Docker engine and a locally built test image, for container faults.

`start_dockerd` runs dockerd as a ManagedProcess with its own data root, exec
root, pid file and socket under one directory, so it never clashes with
another engine on the machine. Networking is host-only (no bridge, no
iptables): containers run with network_mode="host" and stay on loopback.
`busybox_image` builds an image with `docker import` from a root filesystem
tarball holding Debian's static busybox, since no registry is reachable.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.procs import ManagedProcess, ServiceStartError

__all__ = ["DockerEngine", "start_dockerd", "busybox_image", "BUSYBOX_TAG"]

BUSYBOX_TAG = "txchaos/busybox:test"
_APPLETS = ("sh", "sleep", "nc", "cat", "echo", "kill", "ls")


@dataclass
class DockerEngine:
    """A running private dockerd and a docker-py client connected to it."""

    process: ManagedProcess
    socket: Path
    client: Any
    root: Path
    exec_dir: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def close(self) -> None:
        """Stop every container of this engine, then the engine; safe to call twice."""
        try:
            for c in self.client.containers.list(all=True):
                c.remove(force=True)
        except Exception:
            pass
        try:
            self.client.close()
        except Exception:
            pass
        self.process.stop(timeout=20)
        _unmount_under(self.exec_dir)
        shutil.rmtree(self.exec_dir, ignore_errors=True)


def _unmount_under(directory: Path) -> None:
    """dockerd leaves its network namespace (nsfs) mounted under the exec root; release it."""
    prefix = str(directory.resolve()) + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def start_dockerd(root: Path, *, pid_dir: Path | None = None, timeout: float = 90.0,
                  dockerd: str = "dockerd") -> DockerEngine:
    """Start a private dockerd under `root`; return when its API answers.

    The exec root and socket go under a short /tmp directory: unix socket paths
    are limited to 108 bytes, and containerd nests its socket deep inside.
    """
    import docker

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    short = Path(tempfile.mkdtemp(prefix="txd-", dir="/tmp"))
    sock = short / "docker.sock"
    argv = [dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false", "--ip6tables=false",
            f"--data-root={root / 'data'}", f"--exec-root={short / 'x'}",
            f"--pidfile={short / 'docker.pid'}", f"--host=unix://{sock}"]
    clients: list[Any] = []

    def ready() -> bool:
        if not sock.exists():
            return False
        if not clients:
            clients.append(docker.DockerClient(base_url=f"unix://{sock}", timeout=60))
        return bool(clients[0].ping())

    proc = ManagedProcess("dockerd", argv, log_path=root / "dockerd.log", ready=ready,
                          ready_timeout=timeout, pid_dir=pid_dir, stop_timeout=20)
    try:
        proc.start()
    except ServiceStartError as e:
        if "ip6tables" in str(e) and "--ip6tables=false" in argv:
            argv.remove("--ip6tables=false")
            proc.argv = argv
            proc.start()
        else:
            raise InfraError(f"could not start a private Docker engine: {e}") from None
    return DockerEngine(proc, sock, clients[0], root, short)


def busybox_image(client: Any, *, tag: str = BUSYBOX_TAG, busybox: str = "/bin/busybox") -> str:
    """Import a one-binary image (busybox and a few applet links); returns its tag."""
    try:
        client.images.get(tag)
        return tag
    except Exception:
        pass
    src = Path(busybox)
    if not src.is_file():
        raise InfraError(f"{busybox} is missing; install Debian's busybox-static to build test images")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(str(src), arcname="bin/busybox")
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    repo, _, version = tag.partition(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=version or "latest")
    return tag
