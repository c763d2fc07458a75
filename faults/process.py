"""Process faults on a node's local process: kill -9, graceful stop, pause, restart, failpoint.

The signal goes to the node's whole process group (ManagedProcess runs each in
its own session), so wrappers and children are hit alike. Starting a node
again waits for its readiness probe, so these calls block: the Nemesis runs
them in a worker thread.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness.topology import Node
from faults.injection import Injection
from harness.errors import BadInput, InfraError
from harness.procs import ManagedProcess, ServiceStartError

__all__ = ["kill", "stop", "pause", "restart", "failpoint", "ensure_running", "process_of"]

ArmFailpoint = Callable[..., Awaitable[None]]


def process_of(node: Node) -> ManagedProcess:
    if node.process is None:
        raise BadInput(f"node {node.name!r} has no local process to signal")
    return node.process


def ensure_running(node: Node) -> None:
    """Start the node again if it is dead; resume it if it is stopped."""
    proc = process_of(node)
    if proc.alive:
        proc.resume()
        return
    try:
        proc.start()
    except ServiceStartError as e:
        raise InfraError(f"could not restart node {node.name!r} after a fault: {e}") from None


def kill(node: Node) -> Injection:
    """kill -9 the node; healing starts it again."""
    process_of(node).kill(signal.SIGKILL)
    return Injection("kill", (node.name,), lambda: ensure_running(node))


def stop(node: Node) -> Injection:
    """Graceful stop (the process's stop signal, then SIGKILL); healing starts it again."""
    process_of(node).stop()
    return Injection("stop", (node.name,), lambda: ensure_running(node))


def pause(node: Node) -> Injection:
    """SIGSTOP the node's group; healing sends SIGCONT."""
    proc = process_of(node)
    proc.pause()
    return Injection("pause", (node.name,), proc.resume)


def restart(node: Node) -> Injection:
    """Stop then start; healing only makes sure the node runs."""
    process_of(node).stop()
    ensure_running(node)
    return Injection("restart", (node.name,), lambda: ensure_running(node))


def _run_in_own_loop(make: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    from concurrent.futures import ThreadPoolExecutor

    async def main() -> Any:
        return await make()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout)


async def failpoint(node: Node, arm: ArmFailpoint | None, name: str, action: str = "crash",
                    **params: Any) -> Injection:
    """Arm failpoint `name` on the node; healing restarts the node if the failpoint crashed it."""
    if arm is None:
        raise BadInput("this target offers no failpoints (no arm_failpoint was given)")
    await arm(node.name, name, action, **params)

    def undo() -> None:
        # Disarm first: a failpoint that did not fire in its window must not
        # crash the node after healing. A dead node restarts disarmed anyway.
        disarmed = False
        if node.process is not None and node.process.alive:
            try:
                _run_in_own_loop(lambda: arm(node.name, name, "off"))
                disarmed = True
            except Exception:
                pass  # it may be dying of the failpoint right now
        if node.process is not None:
            if not disarmed:
                time.sleep(0.2)  # let a crashing node finish dying, so it is restarted
            ensure_running(node)

    return Injection("failpoint", (node.name,), undo)
