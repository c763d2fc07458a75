"""Verdicts, evidence and options shared by every checker (verdict.json in docs/formats.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Evidence", "Verdict", "CheckOptions", "CheckReport", "Findings", "Validity",
           "combine", "MAX_EXAMPLES"]

Validity = bool | Literal["unknown"]
Severity = Literal["violation", "unknown", "info"]
MAX_EXAMPLES = 5


@dataclass
class Evidence:
    """All findings of one kind: how many, and the first few as examples.

    `severity` says what the kind means: "violation" makes the verdict false,
    "unknown" makes it unknown (the evidence cannot decide), "info" is a fact
    worth reporting (e.g. how long a payment was blocked) and never fails.
    """

    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    severity: Severity = "violation"

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "examples": self.examples, "severity": self.severity}


@dataclass
class Verdict:
    checker: str
    valid: Validity
    summary: str
    evidence: dict[str, Evidence] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.checker, "valid": self.valid, "summary": self.summary,
                "evidence": {k: e.to_json() for k, e in self.evidence.items()}}


@dataclass(frozen=True)
class CheckOptions:
    """What the target promises, so checkers test only promised invariants.

    snapshot_reads: `ok` reads are atomic snapshots (their sum is checkable).
    no_negative: no balance may go below zero.
    resolution_bound_s: longest a payment may stay in doubt after faults heal,
    when the state's `resolution` section does not set `bound_s`.
    """

    snapshot_reads: bool = False
    no_negative: bool = True
    resolution_bound_s: float = 30.0


def combine(values: list[Validity]) -> Validity:
    """false beats unknown beats true."""
    if any(v is False for v in values):
        return False
    if any(v == "unknown" for v in values):
        return "unknown"
    return True


@dataclass
class CheckReport:
    verdicts: list[Verdict]
    valid: Validity

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "checkers": [v.to_json() for v in self.verdicts]}

    def verdict(self, checker: str) -> Verdict:
        for v in self.verdicts:
            if v.checker == checker:
                return v
        raise KeyError(checker)


class Findings:
    """Collects evidence by kind while a checker scans; each kind has a fixed severity."""

    def __init__(self, kinds: dict[str, Severity]) -> None:
        self._kinds = kinds
        self.evidence: dict[str, Evidence] = {}

    def add(self, kind: str, **example: Any) -> None:
        ev = self.evidence.get(kind)
        if ev is None:
            ev = self.evidence[kind] = Evidence(severity=self._kinds[kind])
        ev.count += 1
        if len(ev.examples) < MAX_EXAMPLES:
            ev.examples.append(example)

    def count(self, kind: str) -> int:
        ev = self.evidence.get(kind)
        return ev.count if ev else 0

    def validity(self) -> Validity:
        sev = {e.severity for e in self.evidence.values() if e.count}
        if "violation" in sev:
            return False
        if "unknown" in sev:
            return "unknown"
        return True

    def verdict(self, checker: str, ok_summary: str) -> Verdict:
        """A verdict whose summary is `ok_summary` when valid, else the counts by kind."""
        valid = self.validity()
        if valid is True:
            summary = ok_summary
        else:
            wanted = "violation" if valid is False else "unknown"
            parts = [f"{e.count} {k.replace('-', ' ')}" for k, e in self.evidence.items()
                     if e.severity == wanted]
            summary = ", ".join(parts) + ("" if valid is False else " (cannot decide)")
        return Verdict(checker, valid, summary, self.evidence)
