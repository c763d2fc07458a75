"""A live progress line for long runs: operations, faults active, time left.

On a terminal the line is redrawn in place; otherwise one line every few
seconds, so CI logs show progress without flooding.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["Progress", "count_outcomes"]


def count_outcomes(ops: Sequence[Any]) -> dict[str, int]:
    """Client completions by type (ok, fail, info) and faults started."""
    counts = {"ok": 0, "fail": 0, "info": 0, "faults": 0}
    for op in ops:
        if op.process == "nemesis":
            counts["faults"] += op.f == "start"
        elif op.type.value in counts:
            counts[op.type.value] += 1
    return counts


class Progress:
    def __init__(self, recorder: Any, *, nemesis_events: Sequence[Any], duration: float,
                 enabled: bool = True, stream: TextIO = sys.stderr) -> None:
        self.recorder = recorder
        self.events = list(nemesis_events)
        self.duration = duration
        self.enabled = enabled
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()

    def line(self) -> str:
        counts = count_outcomes(self.recorder.ops)
        elapsed = time.monotonic() - self.t0
        active = [e.fault + ":" + ",".join(e.targets) for e in self.events
                  if e.at <= elapsed < e.at + e.duration]
        left = max(0.0, self.duration - elapsed)
        return (f"[{elapsed:5.1f}s] ok {counts['ok']}  fail {counts['fail']}  "
                f"unknown {counts['info']}  faults: {' '.join(active) or 'none'}  "
                f"left {left:.0f}s")

    async def run(self, stop: asyncio.Event) -> None:
        if not self.enabled:
            return
        every = 0.5 if self.tty else 5.0
        while not stop.is_set():
            self._write(self.line())
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                pass

    def finish(self) -> None:
        if self.enabled:
            self._write(self.line())
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()

    def _write(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
