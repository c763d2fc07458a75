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

__all__ = ["amqp_version", "kafka_brokers", "kafka_committed", "kafka_ends", "kafka_groups", "kafka_partition",
           "kafka_partition_leaders", "nats_version", "nats_monitor", "toxiproxy_version"]


def amqp_server_properties(host: str, port: int, timeout: float = 2.0) -> dict[str, str]:
    """Open and close a real AMQP connection as guest; what the server says of itself."""
    params = pika.ConnectionParameters(
        host=host, port=port, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=timeout, blocked_connection_timeout=timeout,
        stack_timeout=timeout * 2,
    )
    conn = pika.BlockingConnection(params)
    try:
        props = dict(conn._impl.server_properties)  # pika keeps them here
    finally:
        conn.close()
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in props.items()}


def amqp_version(host: str, port: int, timeout: float = 2.0) -> str:
    """The server's version, over a real AMQP connection."""
    return str(amqp_server_properties(host, port, timeout).get("version", "unknown"))


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


def _string(buf: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack(">h", buf[off:off + 2])
    off += 2
    return (buf[off:off + n].decode() if n >= 0 else ""), off + max(n, 0)


def kafka_brokers(host: str, port: int, timeout: float = 2.0, *,
                  topic: str | None = None) -> list[tuple[str, int]]:
    """ApiVersions then Metadata (v0); the brokers the metadata advertises.

    Raises unless the broker answers with at least one live broker and, when
    `topic` is given, that topic (auto-created) has a leader for every partition:
    a broker that was just restarted answers metadata before it is unfenced, but
    only an unfenced broker leads partitions.
    """
    body = struct.pack(">i", 0)
    if topic is not None:
        name = topic.encode()
        body = struct.pack(">ih", 1, len(name)) + name
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        resp = _kafka_call(sock, 18, 0, 1, b"")  # ApiVersions v0
        (error,) = struct.unpack(">h", resp[:2])
        if error != 0:
            raise ConnectionError(f"kafka: ApiVersions error {error}")
        resp = _kafka_call(sock, 3, 0, 2, body)  # Metadata v0
    (count,) = struct.unpack(">i", resp[:4])
    brokers, off = [], 4
    for _ in range(count):
        off += 4  # node id
        bhost, off = _string(resp, off)
        (bport,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        brokers.append((bhost, bport))
    if not brokers:
        raise ConnectionError("kafka: no live broker in metadata yet")
    if topic is not None:
        (ntopics,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        for _ in range(ntopics):
            (terr,) = struct.unpack(">h", resp[off:off + 2])
            _name, off = _string(resp, off + 2)
            (nparts,) = struct.unpack(">i", resp[off:off + 4])
            off += 4
            if terr != 0 or nparts == 0:
                raise ConnectionError(f"kafka: topic {topic} not ready (error {terr})")
            for _ in range(nparts):
                perr, _pid, leader = struct.unpack(">hii", resp[off:off + 10])
                off += 10
                if perr != 0 or leader < 0:
                    raise ConnectionError(f"kafka: partition of {topic} has no leader yet")
                for _ in range(2):  # replicas, isr
                    (n,) = struct.unpack(">i", resp[off:off + 4])
                    off += 4 + 4 * n
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


def nats_monitor(host: str, port: int, page: str, timeout: float = 2.0) -> dict:
    """A page of a nats-server's HTTP monitoring endpoint (routez, jsz, varz ...), as JSON."""
    r = requests.get(f"http://{host}:{port}/{page}", timeout=timeout)
    r.raise_for_status()
    return r.json()


def _kafka_ask(host: str, port: int, api: int, version: int, body: bytes, timeout: float) -> bytes:
    """One request on a fresh connection; the response body."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        return _kafka_call(sock, api, version, 1, body)


def kafka_partition_leaders(host: str, port: int, timeout: float = 2.0) -> dict[tuple[str, int], int]:
    """Metadata (v0) of every topic: (topic, partition) -> its leader's node id, over the
    topics whose name does not start with "__" (Kafka's own and the lab's readiness topic)."""
    resp = _kafka_ask(host, port, 3, 0, struct.pack(">i", 0), timeout)  # no topic named: all
    (count,) = struct.unpack(">i", resp[:4])
    off = 4
    for _ in range(count):
        _host, off = _string(resp, off + 4)
        off += 4
    leaders: dict[tuple[str, int], int] = {}
    (ntopics,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    for _ in range(ntopics):
        name, off = _string(resp, off + 2)
        (nparts,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        for _ in range(nparts):
            _perr, pid, leader = struct.unpack(">hii", resp[off:off + 10])
            off += 10
            for _ in range(2):  # replicas, isr
                (n,) = struct.unpack(">i", resp[off:off + 4])
                off += 4 + 4 * n
            if leader >= 0 and not name.startswith("__"):
                leaders[(name, pid)] = leader
    return leaders


def kafka_groups(host: str, port: int, timeout: float = 2.0) -> list[str]:
    """ListGroups (v0): the consumer groups this node coordinates (each node answers for its own)."""
    resp = _kafka_ask(host, port, 16, 0, b"", timeout)
    error, count = struct.unpack(">hi", resp[:6])
    if error != 0:
        raise ConnectionError(f"kafka: ListGroups error {error}")
    groups, off = [], 6
    for _ in range(count):
        group, off = _string(resp, off)
        _protocol, off = _string(resp, off)
        groups.append(group)
    return groups


def kafka_committed(host: str, port: int, group: str, timeout: float = 2.0) -> dict[tuple[str, int], int]:
    """OffsetFetch (v2, every topic) on the group's coordinator: (topic, partition) -> the
    offset the group committed (partitions it never committed are left out)."""
    name = group.encode()
    resp = _kafka_ask(host, port, 9, 2, struct.pack(">h", len(name)) + name + struct.pack(">i", -1), timeout)
    (ntopics,) = struct.unpack(">i", resp[:4])
    off, committed = 4, {}
    for _ in range(ntopics):
        topic, off = _string(resp, off)
        (nparts,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        for _ in range(nparts):
            pid, offset = struct.unpack(">iq", resp[off:off + 12])
            _meta, off = _string(resp, off + 12)
            (error,) = struct.unpack(">h", resp[off:off + 2])
            off += 2
            if error == 0 and offset >= 0:
                committed[(topic, pid)] = offset
    (error,) = struct.unpack(">h", resp[off:off + 2])
    if error != 0:  # not this group's coordinator (any more), or still loading
        raise ConnectionError(f"kafka: OffsetFetch of {group} error {error}")
    return committed


def kafka_ends(host: str, port: int, partitions: list[tuple[str, int]],
               timeout: float = 2.0) -> dict[tuple[str, int], int]:
    """ListOffsets (v1, latest) on the partitions' leader: (topic, partition) -> the offset a
    consumer reads up to (the high watermark); partitions it does not lead are left out."""
    topics: dict[str, list[int]] = {}
    for topic, pid in partitions:
        topics.setdefault(topic, []).append(pid)
    body = struct.pack(">ii", -1, len(topics))
    for topic, pids in topics.items():
        name = topic.encode()
        body += struct.pack(">h", len(name)) + name + struct.pack(">i", len(pids))
        body += b"".join(struct.pack(">iq", pid, -1) for pid in pids)
    resp = _kafka_ask(host, port, 2, 1, body, timeout)
    (ntopics,) = struct.unpack(">i", resp[:4])
    off, ends = 4, {}
    for _ in range(ntopics):
        topic, off = _string(resp, off)
        (nparts,) = struct.unpack(">i", resp[off:off + 4])
        off += 4
        for _ in range(nparts):
            pid, error, _ts, offset = struct.unpack(">ihqq", resp[off:off + 22])
            off += 22
            if error == 0:
                ends[(topic, pid)] = offset
    return ends


def kafka_partition(host: str, port: int, topic: str, timeout: float = 2.0) -> tuple[int, list[int]]:
    """(leader node id, in-sync replica ids) of partition 0 of `topic` (Metadata v0)."""
    name = topic.encode()
    resp = _kafka_ask(host, port, 3, 0, struct.pack(">ih", 1, len(name)) + name, timeout)
    (count,) = struct.unpack(">i", resp[:4])
    off = 4
    for _ in range(count):
        _host, off = _string(resp, off + 4)
        off += 4
    off += 4  # one topic
    terr, = struct.unpack(">h", resp[off:off + 2])
    _name, off = _string(resp, off + 2)
    (nparts,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    if terr != 0 or nparts < 1:
        raise ConnectionError(f"kafka: topic {topic} error {terr}")
    _perr, _pid, leader = struct.unpack(">hii", resp[off:off + 10])
    off += 10
    (n,) = struct.unpack(">i", resp[off:off + 4])
    off += 4 + 4 * n
    (n,) = struct.unpack(">i", resp[off:off + 4])
    isr = list(struct.unpack(f">{n}i", resp[off + 4:off + 4 + 4 * n]))
    return leader, isr
