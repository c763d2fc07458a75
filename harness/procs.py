"""Real OS processes that txchaos starts, signals and always reaps.

Brokers, Toxiproxy and the target's services are all `ManagedProcess`es: each
runs in its own session (so a signal reaches the whole process group, wrappers
and children included), logs to its own file, is ready only when a caller-given
probe says so, and is registered so that `reap_all()` stops every one still
alive on any way out (normal end, exception, Ctrl-C, SIGTERM).

A pid file per process (under `pid_dir`) names the process group and the owning
harness pid, so a later run can find and kill what a SIGKILLed harness left
behind (`reap_orphans`), without touching processes of another live harness.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.clock import Clock
    from harness.disk import LazyDisk

__all__ = [
    "ManagedProcess",
    "ServiceStartError",
    "log_tail",
    "process_state",
    "reap_all",
    "reap_orphans",
]

_LIVE: set["ManagedProcess"] = set()
_LIVE_LOCK = threading.Lock()


class ServiceStartError(RuntimeError):
    """A process exited or never became ready; the message carries its log tail."""


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def process_state(pid: int) -> str:
    """The kernel's view of a pid: 'running', 'stopped', 'zombie' or 'dead'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            code = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "dead"
    return {"T": "stopped", "t": "stopped", "Z": "zombie", "X": "dead"}.get(code, "running")


def _pid_alive(pid: int) -> bool:
    return process_state(pid) not in ("dead", "zombie")


class ManagedProcess:
    """One long-running process in its own process group.

    `ready` is a probe called until it returns True (a real handshake, never a
    sleep); `start()` raises ServiceStartError with the log tail if the process
    exits or the probe does not pass within `ready_timeout` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 60.0,
        pid_dir: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.pid_dir = pid_dir
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self._popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.clock: Clock | None = None  # its own wall clock, when clock faults may step it
        self.disk: LazyDisk | None = None  # its data dir's lazy disk, when power-loss may cut it

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        if self.alive:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n--- txchaos: starting {self.name}: {' '.join(self.argv)}\n".encode())
        log.flush()
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise ServiceStartError(f"{self.name}: cannot run {self.argv[0]!r}: {e.strerror}") from None
        finally:
            log.close()
        self.starts += 1
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._write_pidfile()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self._popen is not None and self._popen.poll() is not None:
                code = self._popen.returncode
                self._forget()
                raise ServiceStartError(
                    f"{self.name} exited with code {code} while starting; "
                    f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            try:
                if self.ready is None or self.ready():
                    return
            except Exception:  # a probe failing is "not ready yet"
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceStartError(
                    f"{self.name} was not ready after {self.ready_timeout:.0f}s; "
                    f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop gracefully, then SIGKILL the group; always reaps. Returns the exit code."""
        if self._popen is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        if self._popen.poll() is None:
            self._signal_group(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            self._signal_group(self.stop_signal)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # stragglers in the group, if any
        try:
            self._popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        code = self._popen.returncode
        self._forget()
        return code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Deliver `sig` to the whole group; for SIGKILL also reap."""
        if self._popen is None:
            return
        self._signal_group(sig)
        if sig == signal.SIGKILL:
            try:
                self._popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self._forget()

    def pause(self) -> None:
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- inspection --------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def state(self) -> str:
        """'running', 'stopped' (paused), or 'dead' as the kernel reports it."""
        if self._popen is None or self._popen.poll() is not None:
            return "dead"
        return process_state(self._popen.pid)

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} {self.state}>"

    # -- internals ---------------------------------------------------------
    def _signal_group(self, sig: int) -> None:
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.pid_dir is not None:
            (self.pid_dir / f"{self.name}.pid").unlink(missing_ok=True)

    def _write_pidfile(self) -> None:
        if self.pid_dir is None or self._popen is None:
            return
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        record = {"name": self.name, "pgid": self._popen.pid, "owner": os.getpid(),
                  "argv": self.argv}
        (self.pid_dir / f"{self.name}.pid").write_text(json.dumps(record))


def reap_all() -> None:
    """Stop every process this harness started that is still alive."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in reversed(live):
        try:
            proc.stop(timeout=5)
        except Exception:
            pass


def reap_orphans(pid_dir: Path) -> list[str]:
    """Kill process groups recorded in `pid_dir` whose owning harness is gone.

    Returns the names of what was cleaned. Groups of a live owner are left alone:
    two harnesses may share a machine.
    """
    cleaned: list[str] = []
    if not pid_dir.is_dir():
        return cleaned
    for pidfile in pid_dir.glob("*.pid"):
        try:
            record = json.loads(pidfile.read_text())
            owner, pgid = int(record["owner"]), int(record["pgid"])
        except (OSError, ValueError, KeyError):
            pidfile.unlink(missing_ok=True)
            continue
        if owner != os.getpid() and _pid_alive(owner):
            continue
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        pidfile.unlink(missing_ok=True)
        cleaned.append(str(record.get("name", pidfile.stem)))
    return cleaned


atexit.register(reap_all)
