"""An injected fault that knows how to undo itself, exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Injection"]


@dataclass
class Injection:
    """One fault in force; `heal()` undoes it and is safe to call again.

    Every injector returns one, so the Nemesis can undo whatever is in force on
    any way out without knowing how each fault works. `note` is what the fault found
    as it went (the history's stop record carries it: why it struck where it did).
    """

    fault: str
    targets: tuple[str, ...]
    undo: Callable[[], None] = field(repr=False)
    healed: bool = False
    note: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def heal(self) -> None:
        """Undo the fault once; a second caller (another thread) waits, then does nothing."""
        with self._lock:
            if self.healed:
                return
            self.undo()
            self.healed = True
