"""Free loopback ports, never handed out twice by this process.

Ports are drawn at random from below the kernel's ephemeral range: bind(0)
would pick from inside it, where every outgoing connection on this busy machine
also takes its local port, and a port chosen now could be gone by the time a
broker binds it. Callers still retry start-up with new ports on "address in use".
"""

from __future__ import annotations

import random
import socket
import threading

__all__ = ["free_port", "port_open"]

_GIVEN: set[int] = set()
_LOCK = threading.Lock()
_RANDOM = random.SystemRandom()


def _range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    return 10000, max(ephemeral_low - 1, 10001)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral range when possible."""
    low, high = _range()
    with _LOCK:
        for _ in range(200):
            port = _RANDOM.randint(low, high) if high - low > 1000 else 0
            if port == 0:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
            if port not in _GIVEN and _bindable(port):
                _GIVEN.add(port)
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
