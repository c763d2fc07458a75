"""Readiness handshakes: a service is ready when it answers its own protocol.

Each probe returns the server's version string, or raises when the service is
not (yet) serving. Kafka and NATS are spoken raw over a socket, so a probe never
needs an event loop and works inside async tests too.
"""

from __future__ import annotations

import json
import socket
import struct

import pika
import requests

__all__ = ["amqp_version", "kafka_brokers", "nats_version", "toxiproxy_version"]


def amqp_version(host: str, port: int, timeout: float = 2.0) -> str:
    """Open and close a real AMQP connection as guest; the server's version."""
    params = pika.ConnectionParameters(
        host=host, port=port, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=timeout, blocked_connection_timeout=timeout,
        stack_timeout=timeout * 2,
    )
    conn = pika.BlockingConnection(params)
    try:
        version = conn._impl.server_properties.get("version", "unknown")  # pika keeps them here
    finally:
        conn.close()
    return version.decode() if isinstance(version, bytes) else str(version)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _kafka_call(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    client = b"txchaos-probe"
    msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    payload = _recv_exact(sock, size)
    if struct.unpack(">i", payload[:4])[0] != corr:
        raise ConnectionError("kafka: correlation id mismatch")
    return payload[4:]


def kafka_brokers(host: str, port: int, timeout: float = 2.0) -> list[tuple[str, int]]:
    """ApiVersions then Metadata (v0); the brokers the metadata advertises.

    Raises unless the broker answers and reports at least one live broker.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        resp = _kafka_call(sock, 18, 0, 1, b"")  # ApiVersions v0
        (error,) = struct.unpack(">h", resp[:2])
        if error != 0:
            raise ConnectionError(f"kafka: ApiVersions error {error}")
        resp = _kafka_call(sock, 3, 0, 2, struct.pack(">i", 0))  # Metadata v0, all topics
    (count,) = struct.unpack(">i", resp[:4])
    brokers, off = [], 4
    for _ in range(count):
        _node, hlen = struct.unpack(">ih", resp[off:off + 6])
        off += 6
        bhost = resp[off:off + hlen].decode()
        off += hlen
        (bport,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        brokers.append((bhost, bport))
    if not brokers:
        raise ConnectionError("kafka: no live broker in metadata yet")
    return brokers


def nats_version(host: str, port: int, timeout: float = 2.0, *, jetstream: bool = True) -> str:
    """INFO, CONNECT, PING/PONG and (optionally) a JetStream account-info request."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        f = sock.makefile("rb")
        line = f.readline()
        if not line.startswith(b"INFO "):
            raise ConnectionError(f"nats: unexpected greeting {line[:40]!r}")
        info = json.loads(line[5:])
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"name":"txchaos-probe"}\r\n'
                     b"PING\r\n")
        if f.readline().strip() != b"PONG":
            raise ConnectionError("nats: no PONG")
        if jetstream:
            sock.sendall(b"SUB _INBOX.txchaos-probe 1\r\nPUB $JS.API.INFO _INBOX.txchaos-probe 0\r\n\r\n")
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError("nats: closed before JetStream answered")
                if line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    reply = json.loads(f.read(size + 2)[:size])
                    if "error" in reply:
                        raise ConnectionError(f"nats: JetStream not ready: {reply['error']}")
                    break
                if line.startswith(b"PING"):
                    sock.sendall(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    raise ConnectionError(f"nats: {line.decode().strip()}")
    return str(info.get("version", "unknown"))


def toxiproxy_version(url: str, timeout: float = 2.0) -> str:
    """GET /version; older builds answer plain text, newer ones JSON."""
    r = requests.get(f"{url}/version", timeout=timeout)
    r.raise_for_status()
    try:
        body = r.json()
        return str(body.get("version", body)) if isinstance(body, dict) else str(body)
    except ValueError:
        return r.text.strip()
