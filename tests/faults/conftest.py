"""Real services for the fault tests: a Toxiproxy server, a TCP echo server, node processes."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import sleeper

from harness.topology import Link, Topology
from faults.toxiproxy import ToxiproxyServer


@pytest.fixture(scope="session")
def toxiproxy_url(lab: Any) -> str:
    """The session lab's Toxiproxy server."""
    lab.ensure("toxiproxy")
    return str(lab.toxiproxy_url)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="session")
def echo_port() -> Iterator[int]:
    """A real TCP echo server on loopback."""
    srv = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server(toxiproxy_url: str) -> Iterator[ToxiproxyServer]:
    """The lab's Toxiproxy; proxies a test creates are deleted after it, others left alone."""
    srv = ToxiproxyServer(toxiproxy_url)
    before = set(srv.proxy_names())
    yield srv
    for name in set(srv.proxy_names()) - before:
        srv.delete_proxy(name)


@pytest.fixture
def topology(server: ToxiproxyServer, echo_port: int, tmp_path: Path) -> Iterator[Topology]:
    """coordinator, two participants and a broker; each non-broker node has one proxied link."""
    nodes = [sleeper("coordinator", tmp_path, "coordinator"), sleeper("accounts-a", tmp_path),
             sleeper("accounts-b", tmp_path), sleeper("broker", tmp_path, "broker")]
    links = []
    for n in nodes[:3]:
        proxy = f"{n.name}-echo"
        server.create_proxy(proxy, f"127.0.0.1:{echo_port}")
        links.append(Link(n.name, "echo", proxy))
    for n in nodes:
        assert n.process is not None
        n.process.start()
    try:
        yield Topology(nodes, links)
    finally:
        for n in nodes:
            assert n.process is not None
            n.process.stop(timeout=2)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private dockerd (vfs storage, host networking only) with the busybox test image."""
    from faults.docker_engine import busybox_image, start_dockerd

    engine = start_dockerd(tmp_path_factory.mktemp("docker"))
    try:
        busybox_image(engine.client)
        yield engine
    finally:
        engine.close()
