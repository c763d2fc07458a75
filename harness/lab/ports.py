"""Free loopback ports, never handed out twice by this process, nor by two live ones.

Ports are drawn at random from below the kernel's ephemeral range: bind(0)
would pick from inside it, where every outgoing connection on this busy machine
also takes its local port, and a port chosen now could be gone by the time a
broker binds it. A port handed out is also claimed in a file named after it under
`CLAIMS` (holding the pid), so two harnesses starting labs at once (a parallel
campaign, two clustered labs) never pick the same port before either binds it; a
claim whose process is gone is taken over. Callers still retry start-up with new
ports on "address in use".
"""

from __future__ import annotations

import os
import random
import socket
import tempfile
import threading
from pathlib import Path

__all__ = ["free_port", "port_open"]

CLAIMS = Path(tempfile.gettempdir()) / "txchaos-ports"
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(port: int) -> bool:
    """Claim `port` for this process; False if a live other process claimed it."""
    CLAIMS.mkdir(mode=0o1777, parents=True, exist_ok=True)
    path = CLAIMS / str(port)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            owner = int(path.read_text() or 0)
        except (OSError, ValueError):
            owner = 0
        if owner == os.getpid() or (owner and _alive(owner)):
            return False
        try:  # the claimant is gone (or never finished writing): take it over
            path.write_text(str(os.getpid()))
        except OSError:
            return False
        return True
    except OSError:  # no claims dir to write in: the in-process check alone
        return True
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
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
            if port not in _GIVEN and _bindable(port) and _claim(port):
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
