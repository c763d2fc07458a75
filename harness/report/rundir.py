"""Read a run directory for reporting: tolerant of missing parts, strict about broken ones.

A report is most needed when a run went wrong, so a missing file is not an error
(the part is left out and the report says so), while a file that exists but does
not parse is a BadInput naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BadInput

__all__ = ["RunData", "load_run"]


@dataclass
class RunData:
    """Everything a report shows about one run; absent parts are empty."""

    path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def violated(self) -> list[dict[str, Any]]:
        """The checkers whose verdict is false."""
        return [c for c in self.verdict.get("checkers", []) if c.get("valid") is False]


def _json(path: Path, missing: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(path.name)
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: not valid JSON ({e}); re-run or remove the file") from None
    if not isinstance(value, dict):
        raise BadInput(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _history(path: Path, missing: list[str]) -> list[dict[str, Any]]:
    if not path.is_file():
        missing.append(path.name)
        return []
    ops: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ops.append(json.loads(line))
            except ValueError as e:
                # A run killed mid-write leaves a torn last line; anything else is corrupt.
                if f.readline() == "":
                    break
                raise BadInput(f"{path}:{lineno}: not valid JSON ({e})") from None
    return ops


def load_run(run_dir: Path) -> RunData:
    """Load the parts of `run_dir` that exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"run directory {run_dir} does not exist")
    missing: list[str] = []
    logs_dir = run_dir / "logs"
    return RunData(
        path=run_dir,
        history=_history(run_dir / "history.jsonl", missing),
        state=_json(run_dir / "state.json", missing),
        schedule=_json(run_dir / "schedule.json", missing),
        verdict=_json(run_dir / "verdict.json", missing),
        run=_json(run_dir / "run.json", missing),
        logs=sorted(logs_dir.glob("*.log")) if logs_dir.is_dir() else [],
        missing=missing,
    )
