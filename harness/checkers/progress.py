"""Progress of a long check: how much of the files is read, how fast, how long is left.

On a terminal, a bar redrawn in place (rate and time left); elsewhere (CI logs)
one line every few seconds. Nothing at all for a check that ends within a
second, so short checks and tests print only their verdicts.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["CheckProgress"]


def _si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


class CheckProgress:
    """Fed by the readers: `advance(bytes, events)` as each block is done."""

    def __init__(self, total_bytes: int, *, stream: TextIO = sys.stderr,
                 tty: bool | None = None, every: float | None = None,
                 quiet_for: float = 1.0) -> None:
        self.total = max(1, total_bytes)
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.every = every if every is not None else (0.2 if self.tty else 5.0)
        self.quiet_for = quiet_for
        self.t0 = time.monotonic()
        self.last = self.t0
        self.done = 0
        self.events = 0
        self.shown = False

    def advance(self, nbytes: int, events: int = 0) -> None:
        self.done += nbytes
        self.events += events
        now = time.monotonic()
        if now - self.t0 >= self.quiet_for and now - self.last >= self.every:
            self.last = now
            self._show(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max(1e-9, (now or time.monotonic()) - self.t0)
        frac = min(1.0, self.done / self.total)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 and frac < 1 else 0.0
        events = (f"  {_si(self.events)} events ({_si(self.events / elapsed)}/s)"
                  if self.events else "")
        text = (f"{frac:4.0%} of {_si(self.total)}B  {_si(rate)}B/s{events}  "
                f"{elapsed:.0f}s, ~{left:.0f}s left")
        if self.tty:
            width = 24
            full = int(frac * width)
            return f"checking [{'#' * full}{'.' * (width - full)}] {text}"
        return f"checking: {text}"

    def close(self) -> None:
        """Clear the bar (terminal) or write the last line (logs), if anything was shown."""
        if not self.shown:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def _show(self, text: str) -> None:
        self.shown = True
        self.stream.write(("\r\x1b[2K" + text) if self.tty else text + "\n")
        self.stream.flush()
