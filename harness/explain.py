"""Turn a run's verdict into the message a failing test shows.

The message names the invariant, the payments and participants, the faults
that were active when the offending operations ran, and the exact command that
reproduces the run. Its first line starts with "INVARIANT VIOLATED [name]" or
"INVARIANT UNKNOWN [name]" so reports can tell a product defect from a broken lab
(whose errors start with "INFRASTRUCTURE").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.verdict_table import describe_violation

__all__ = ["explain", "fault_windows", "faults_active_at", "first_violation_time"]


def _history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "history.jsonl"
    if not path.is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fault_windows(history: list[dict[str, Any]]) -> list[tuple[int, int | None, dict[str, Any]]]:
    """(start ns, stop ns or None, fault value) for every fault in the history."""
    open_: dict[str, tuple[int, dict[str, Any]]] = {}
    windows: list[tuple[int, int | None, dict[str, Any]]] = []
    for op in history:
        if op.get("process") != "nemesis":
            continue
        value = op.get("value") or {}
        key = json.dumps({k: value.get(k) for k in ("fault", "targets", "id")}, sort_keys=True)
        if op.get("f") == "start":
            open_[key] = (op["time"], value)
        elif op.get("f") == "stop" and key in open_:
            start, v = open_.pop(key)
            windows.append((start, op["time"], v))
    windows.extend((start, None, v) for start, v in open_.values())
    return sorted(windows, key=lambda w: w[0])


def _describe_fault(value: dict[str, Any]) -> str:
    targets = value.get("targets") or []
    return f"{value.get('fault')}({', '.join(map(str, targets))})"


def faults_active_at(history: list[dict[str, Any]], time_ns: int) -> list[str]:
    return [_describe_fault(v) for start, stop, v in fault_windows(history)
            if start <= time_ns and (stop is None or time_ns <= stop)]


def _indexes(checker: dict[str, Any]) -> list[int]:
    found: list[int] = []
    for ev in (checker.get("evidence") or {}).values():
        for ex in ev.get("examples", []):
            found.extend(int(i) for i in ex.get("indexes", []) if isinstance(i, int))
    return sorted(set(found))


def _payments(checker: dict[str, Any]) -> set[str]:
    return {str(ex["payment"]) for ev in (checker.get("evidence") or {}).values()
            for ex in ev.get("examples", []) if ex.get("payment")}


def _invocations(history: list[dict[str, Any]], payments: set[str]) -> list[int]:
    """History indexes of the invocations (and completions) of `payments`."""
    return [i for i, op in enumerate(history) if isinstance(op.get("value"), dict)
            and op["value"].get("id") in payments and op.get("process") != "nemesis"]


def first_violation_time(run_dir: Path, checker: dict[str, Any]) -> float | None:
    """Seconds from the start of the run to the first operation in the evidence.

    Evidence read from the final state names payments rather than history
    indexes; then the invocation of the earliest such payment counts."""
    history = _history(run_dir)
    times = [history[i]["time"] for i in _indexes(checker) if 0 <= i < len(history)]
    if not times:
        times = [history[i]["time"] for i in _invocations(history, _payments(checker))]
    return min(times) / 1e9 if times else None


def explain(run_dir: Path, checker: dict[str, Any], *, command: str, seed: int) -> str:
    history = _history(run_dir)
    head = "INVARIANT VIOLATED" if checker["valid"] is False else "INVARIANT UNKNOWN"
    lines = [f"{head} [{checker['name']}]: {checker['summary']}", describe_violation(checker)]
    indexes = _indexes(checker) or _invocations(history, _payments(checker))
    active: list[str] = []
    for i in indexes[:20]:
        if 0 <= i < len(history):
            active.extend(a for a in faults_active_at(history, history[i]["time"]) if a not in active)
    injected = sorted({_describe_fault(v) for _, _, v in fault_windows(history)})
    lines.append(f"  faults active at the offending operations: {', '.join(active) or 'none'}")
    lines.append(f"  faults injected in the run: {', '.join(injected) or 'none'}")
    lines.append(f"  run directory: {run_dir}")
    lines.append(f"  reproduce (seed {seed}): {command}")
    return "\n".join(line for line in lines if line)
