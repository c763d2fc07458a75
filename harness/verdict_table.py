"""A plain-text table of verdicts, shared by `txchaos run` and the suites' messages."""

from __future__ import annotations

from typing import Any

__all__ = ["format_verdict_table", "describe_violation"]

_MARK = {True: "valid", False: "VIOLATED", "unknown": "unknown"}


def format_verdict_table(verdict: dict[str, Any]) -> str:
    rows = [("checker", "result", "summary")]
    for c in verdict["checkers"]:
        rows.append((c["name"], _MARK.get(c["valid"], str(c["valid"])), c["summary"]))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}" for r in rows]
    lines.insert(1, "-" * min(100, max(len(line) for line in lines)))
    return "\n".join(lines)


def describe_violation(checker: dict[str, Any], *, limit: int = 5) -> str:
    """The evidence of one checker, one line per kind: count, payment ids, participants."""
    lines = []
    for kind, ev in (checker.get("evidence") or {}).items():
        examples = ev.get("examples", [])[:limit]
        payments = [str(e.get("payment")) for e in examples if e.get("payment")]
        parts = sorted({p for e in examples for p in (e.get("participants") or [])})
        detail = "; ".join(str(e.get("detail")) for e in examples[:2] if e.get("detail"))
        line = f"  {kind}: {ev.get('count', len(examples))} case(s)"
        if payments:
            line += f"; payments {', '.join(payments)}"
        if parts:
            line += f"; participants {', '.join(parts)}"
        if detail:
            line += f"; e.g. {detail}"
        lines.append(line)
    return "\n".join(lines)
