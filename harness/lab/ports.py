"""Free loopback ports: asked from the kernel, never handed out twice by this process."""

from __future__ import annotations

import socket
import threading

__all__ = ["free_port", "port_open"]

_GIVEN: set[int] = set()
_LOCK = threading.Lock()


def free_port() -> int:
    """A port nothing listens on now. Another program may still take it before
    the service binds; callers retry start-up with new ports on "address in use"."""
    with _LOCK:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _GIVEN:
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
