"""A node's data directory on txchaos-lazyfs, the disk that power-loss faults cut.

faults/lazyfs (Go, FUSE) shows a backing directory at a mount point and keeps
every file's writes in memory until that file is fsynced; `LazyDisk.drop()`
forgets what was never synced — the state a machine's disk is in after a power
cut, which a kill -9 never reaches (the kernel's page cache survives a killed
process). Metadata (create, rename, unlink) is durable at once. The program is
built once per source version into the project's .cache (go build); mounting
needs root or fusermount3. Every mount is named "txchaos-lazyfs:<pid>", so one a
killed harness left behind is found and detached by `reap_stale_mounts()`.
"""

from __future__ import annotations

import ctypes
import select
import subprocess
import threading
from pathlib import Path

from harness.errors import InfraError

__all__ = ["LazyDisk", "lazyfs_path", "reap_stale_mounts", "mounted"]

_SOURCE = Path(__file__).resolve().parents[1] / "faults" / "lazyfs"
_FSTYPE = "fuse.txchaos-lazyfs"
_MNT_DETACH = 2


def lazyfs_path() -> Path:
    """The compiled filesystem, built on first use (InfraError if it cannot be)."""
    from harness.lab.binaries import CACHE, build_once, go_bin, source_digest

    def argv(tmp: Path) -> list[str]:
        go = go_bin()
        if go is None:
            raise InfraError("power-loss faults need Go to build their filesystem (faults/lazyfs)")
        return [go, "build", "-o", str(tmp), "."]

    files = sorted(p for p in _SOURCE.iterdir() if p.suffix in (".go", ".mod", ".sum"))
    return build_once(CACHE / "bin" / f"txchaos-lazyfs-{source_digest(*files)}", argv,
                      what="txchaos-lazyfs", cwd=_SOURCE)


def mounted() -> list[tuple[str, Path]]:
    """(source, mount point) of every txchaos-lazyfs mount on this machine."""
    out = []
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == _FSTYPE:
            out.append((parts[0], Path(parts[1].replace("\\040", " "))))
    return out


def _detach(mountpoint: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(str(mountpoint).encode(), _MNT_DETACH)


def reap_stale_mounts() -> list[Path]:
    """Detach the mounts whose filesystem process is gone (its harness was killed)."""
    reaped = []
    for source, mnt in mounted():
        pid = source.rpartition(":")[2]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        _detach(mnt)
        reaped.append(mnt)
    return reaped


class LazyDisk:
    """One mounted txchaos-lazyfs: `mountpoint` shows `backing` until `close()`."""

    def __init__(self, mountpoint: Path, backing: Path, *, timeout: float = 15.0) -> None:
        self.mountpoint = Path(mountpoint).resolve()
        self.backing = Path(backing).resolve()
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.backing.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # its own session: a Ctrl-C to the harness must not unmount under a running node
        self._proc = subprocess.Popen([str(lazyfs_path()), str(self.backing), str(self.mountpoint)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True)
        if self._line(timeout) != "ready":
            err = self._proc.stderr.read() if self._proc.poll() is not None else ""  # type: ignore[union-attr]
            self._kill()
            raise InfraError(f"could not mount a lazy disk at {self.mountpoint}: "
                             f"{err.strip() or 'no answer from txchaos-lazyfs'}")

    def _line(self, timeout: float) -> str:
        out = self._proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        return out.readline().strip() if ready else ""

    def _command(self, cmd: str) -> tuple[int, int]:
        with self._lock:
            if self._proc.poll() is not None:
                raise InfraError(f"the lazy disk at {self.mountpoint} is gone")
            assert self._proc.stdin is not None
            self._proc.stdin.write(cmd + "\n")
            self._proc.stdin.flush()
            words = self._line(30.0).split()
        if len(words) != 3 or words[0] == "error":
            raise InfraError(f"lazy disk at {self.mountpoint}: {cmd!r} failed: {' '.join(words)}")
        return int(words[1]), int(words[2])

    def drop(self) -> tuple[int, int]:
        """Forget every write not yet fsynced (the power cut); returns (files, bytes) lost."""
        return self._command("drop")

    def sync(self) -> tuple[int, int]:
        """Write everything to the backing directory, as a clean shutdown would."""
        return self._command("sync")

    def dirty(self) -> tuple[int, int]:
        """(files, bytes) written and not yet fsynced."""
        return self._command("stats")

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if any(m == self.mountpoint for _, m in mounted()):
            _detach(self.mountpoint)

    def close(self) -> None:
        """Sync, unmount and stop; idempotent. Lazily detached if a process still uses it."""
        with self._lock:
            if self._proc.poll() is None:
                try:
                    assert self._proc.stdin is not None
                    self._proc.stdin.write("quit\n")
                    self._proc.stdin.flush()
                    self._proc.wait(timeout=15)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._kill()
            for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if f is not None:
                    f.close()
