"""Helpers for the fault tests: an in-memory recorder, nodes, echo round trips."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.topology import Node
from faults.toxiproxy import ToxiproxyServer
from harness.procs import ManagedProcess, process_state

class MemoryRecorder:
    """Keeps nemesis events in a list, in the history's shape."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def nemesis(self, f: str, value: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            event = {"index": len(self.events), "time": time.monotonic_ns(), "process": "nemesis",
                     "type": "info", "f": f, "value": value}
            self.events.append(event)
        return event

    def pairs(self) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(e["f"], e["value"]["fault"], tuple(e["value"]["targets"])) for e in self.events]


def sleeper(name: str, tmp: Path, role: str = "participant") -> Node:
    """A node whose process is a real, idle OS process in its own group."""
    proc = ManagedProcess(name, [sys.executable, "-c", "import time; time.sleep(600)"],
                          log_path=tmp / f"{name}.log")
    return Node(name, role, process=proc)


def listen_addr(server: ToxiproxyServer, proxy: str) -> tuple[str, int]:
    host, _, port = server.state()[proxy]["listen"].rpartition(":")
    return host, int(port)


def round_trip(addr: tuple[str, int], payload: bytes = b"ping", timeout: float = 5.0) -> float:
    """Seconds for one request/reply through `addr`; raises OSError if the link is cut."""
    with socket.create_connection(addr, timeout=timeout) as s:
        t = time.monotonic()
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the echo came back")
            got += chunk
        return time.monotonic() - t


def kernel_state(pid: int | None) -> str:
    """What /proc says about a pid: running, stopped, zombie or dead."""
    return "dead" if pid is None else process_state(pid)


def wait_for(pred: Any, timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def becomes(pid: int | None, state: str, timeout: float = 5.0) -> bool:
    """Wait until /proc shows `state` for pid: signals are delivered asynchronously."""
    return wait_for(lambda: kernel_state(pid) == state, timeout=timeout, step=0.02)
