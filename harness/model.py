"""The values every part of txchaos passes around: operations and their outcomes.

These mirror the history contract in docs/formats.md (Jepsen's semantics): an
operation is invoked, then completes exactly once as `ok` (took effect), `fail`
(certainly did not take effect) or `info` (unknown). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Op", "OpType", "Outcome", "OpResult", "Transfer", "NEMESIS"]

NEMESIS = "nemesis"


class OpType(str, Enum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Op:
    """One line of a history.

    `process` is an int for clients and "nemesis" for fault events; `time` is
    nanoseconds since the run started (monotonic).
    """

    index: int
    time: int
    process: int | str
    type: OpType
    f: str
    value: Any = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "process": self.process,
            "type": self.type.value,
            "f": self.f,
            "value": self.value,
        }
        if self.error is not None:
            d["error"] = self.error
        return d


@dataclass(frozen=True, slots=True)
class Transfer:
    """A payment request: move `amount` from one account to another."""

    id: str
    source: str
    dest: str
    amount: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.source, "to": self.dest, "amount": self.amount}


class Outcome(str, Enum):
    """What a client learned; UNKNOWN is recorded as `info`, never as `fail`."""

    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "info"


@dataclass(frozen=True, slots=True)
class OpResult:
    """An adapter's answer to one operation.

    `value` is the read's balances for a read; `error` says why a FAIL or
    UNKNOWN happened (e.g. "insufficient-funds", "timeout") and goes into the
    history's `error` field.
    """

    outcome: Outcome
    value: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
