"""A node's own wall clock, which clock faults step and skew (never the machine's clock).

A process started with `Clock.env()` loads faults/clockshim.c (LD_PRELOAD), which
reads the wall time through a 32-byte control file that this object rewrites in
place: only CLOCK_REALTIME (time.time(), gettimeofday, a JVM's currentTimeMillis)
moves, as when NTP steps or slews a machine's clock; monotonic clocks and sleeps
stay true. The shim is compiled once per source version into the project's
.cache (gcc); programs that bypass libc (Go, static binaries) ignore it.
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import threading
import time
from pathlib import Path

from harness.errors import InfraError

__all__ = ["Clock", "shim_path"]

_SOURCE = Path(__file__).resolve().parents[1] / "faults" / "clockshim.c"
_LAYOUT = struct.Struct("<Qqdq")  # seq (odd while written), offset_ns, rate, anchor_ns


def shim_path() -> Path:
    """The compiled shim, built on first use (InfraError if it cannot be)."""
    from harness.lab.binaries import CACHE, build_once, source_digest

    def argv(tmp: Path) -> list[str]:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise InfraError("clock faults need a C compiler (gcc) to build their clock shim")
        return [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(_SOURCE), "-ldl"]

    return build_once(CACHE / "lib" / f"txchaos-clock-{source_digest(_SOURCE)}.so", argv,
                      what="the clock shim")


class Clock:
    """One node's wall clock: true until a fault steps or skews it; `reset()` sets it
    true again (one more step, as NTP's correction would be)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as f:
            f.write(_LAYOUT.pack(0, 0, 1.0, 0))
        self._fd = os.open(self.path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _LAYOUT.size)
        self._lock = threading.Lock()

    def env(self) -> dict[str, str]:
        """The environment that puts a process on this clock (LD_PRELOAD prepended)."""
        preload = " ".join(p for p in (str(shim_path()), os.environ.get("LD_PRELOAD", "")) if p)
        return {"LD_PRELOAD": preload, "TXCHAOS_CLOCK_FILE": str(self.path)}

    # -- state ----------------------------------------------------------------
    def _read(self) -> tuple[int, int, float, int]:
        return _LAYOUT.unpack_from(self._map, 0)

    def _write(self, offset_ns: int, rate: float, anchor_ns: int) -> None:
        seq = self._read()[0]
        struct.pack_into("<Q", self._map, 0, seq + 1)  # odd: readers wait
        struct.pack_into("<qdq", self._map, 8, offset_ns, rate, anchor_ns)
        struct.pack_into("<Q", self._map, 0, seq + 2)

    def _offset_ns(self, now: int) -> tuple[int, float]:
        """The clock's offset from true time at `now` (ns), and its rate."""
        _, offset, rate, anchor = self._read()
        return int(offset + (rate - 1.0) * (now - anchor)), rate

    def offset_s(self) -> float:
        """How far the node's wall clock is from the true one now, in seconds."""
        return self._offset_ns(time.time_ns())[0] / 1e9

    # -- faults ---------------------------------------------------------------
    def jump(self, seconds: float) -> None:
        """Step the clock by `seconds` (backward if negative), keeping its rate."""
        with self._lock:
            now = time.time_ns()
            offset, rate = self._offset_ns(now)
            self._write(offset + int(seconds * 1e9), rate, now)

    def skew(self, rate: float) -> None:
        """Run the clock at `rate` times true speed from now on, without a step."""
        if not rate > 0:
            raise ValueError(f"a clock rate must be > 0, got {rate!r}")
        with self._lock:
            now = time.time_ns()
            self._write(self._offset_ns(now)[0], float(rate), now)

    def reset(self) -> None:
        """The true time again."""
        with self._lock:
            self._write(0, 1.0, time.time_ns())

    def close(self) -> None:
        with self._lock:
            self._map.close()
            os.close(self._fd)
