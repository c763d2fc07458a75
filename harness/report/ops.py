"""Turn a flat history into what the plots and evidence need: completed ops and fault windows.

Pure functions of the history (Jepsen semantics): an `invoke` is closed by the
next completion of the same process; an invoke never closed is shown as `info`
(its outcome is unknown), never as `fail`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Completed", "pair_ops", "fault_windows", "fault_label", "run_seconds"]

NS = 1e9


@dataclass(frozen=True, slots=True)
class Completed:
    """One client operation from invoke to completion (times in seconds since start)."""

    process: Any
    f: str
    type: str  # ok | fail | info
    start: float
    end: float
    invoke_index: int
    complete_index: int | None
    value: Any
    error: str | None

    @property
    def latency(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def payment(self) -> str | None:
        v = self.value
        return v.get("id") if isinstance(v, dict) else None


def run_seconds(history: list[dict[str, Any]], schedule: dict[str, Any] | None = None) -> float:
    """The run's length: the last event in the history or the end of the last scheduled fault."""
    end = max((op.get("time", 0) for op in history), default=0) / NS
    for ev in (schedule or {}).get("events", []):
        end = max(end, float(ev.get("at", 0)) + float(ev.get("duration", 0) or 0))
    return max(end, 1e-3)


def pair_ops(history: list[dict[str, Any]]) -> list[Completed]:
    """Client operations with their outcome; unfinished invokes count as `info`."""
    open_ops: dict[Any, dict[str, Any]] = {}
    done: list[Completed] = []
    end_time = max((op.get("time", 0) for op in history), default=0)
    for op in history:
        proc = op.get("process")
        if proc == "nemesis":
            continue
        kind = op.get("type")
        if kind == "invoke":
            open_ops[proc] = op
        elif kind in ("ok", "fail", "info") and proc in open_ops:
            inv = open_ops.pop(proc)
            value = op.get("value") if op.get("value") is not None else inv.get("value")
            if isinstance(inv.get("value"), dict) and isinstance(value, dict) and "id" not in value:
                value = {**inv["value"], **value}
            done.append(Completed(proc, str(inv.get("f", "")), kind, inv.get("time", 0) / NS,
                                  op.get("time", 0) / NS, int(inv.get("index", -1)),
                                  op.get("index"), value, op.get("error")))
    for proc, inv in open_ops.items():
        done.append(Completed(proc, str(inv.get("f", "")), "info", inv.get("time", 0) / NS,
                              end_time / NS, int(inv.get("index", -1)), None, inv.get("value"),
                              "no completion recorded"))
    done.sort(key=lambda c: c.invoke_index)
    return done


def fault_label(value: Any) -> str:
    """Short human label of a nemesis value: 'partition accounts-a,ledger'."""
    if not isinstance(value, dict):
        return str(value)
    targets = value.get("targets") or []
    return f"{value.get('fault', '?')} {','.join(map(str, targets))}".strip()


def fault_windows(history: list[dict[str, Any]], schedule: dict[str, Any] | None = None,
                  ) -> list[tuple[float, float, str]]:
    """(start s, end s, label) of each fault: from the history's nemesis events, else the schedule.

    A start with no matching stop lasts to the end of the run (the heal is then
    missing from the history, which itself is worth seeing).
    """
    end = run_seconds(history, schedule)
    windows: list[tuple[float, float, str]] = []
    open_faults: dict[str, list[float]] = {}
    seen_nemesis = False
    for op in history:
        if op.get("process") != "nemesis":
            continue
        seen_nemesis = True
        label = fault_label(op.get("value"))
        t = op.get("time", 0) / NS
        if op.get("f") == "start":
            open_faults.setdefault(label, []).append(t)
        elif op.get("f") == "stop":
            starts = open_faults.get(label)
            if starts:
                windows.append((starts.pop(0), t, label))
            else:
                # A stop naming no targets heals every open fault of that kind.
                fault = label.split(" ")[0]
                for key in [k for k in open_faults if k.split(" ")[0] == fault]:
                    windows.extend((s, t, key) for s in open_faults.pop(key))
    for label, starts in open_faults.items():
        windows.extend((s, end, label) for s in starts)
    if not seen_nemesis:
        for ev in (schedule or {}).get("events", []):
            at = float(ev.get("at", 0))
            windows.append((at, at + float(ev.get("duration", 0) or 0), fault_label(ev)))
    windows.sort()
    return windows
