"""The self-test's detection matrix as a table: mutant rows, target columns."""

from __future__ import annotations

from typing import Any


def format_matrix(matrix: dict[tuple[str, str], dict[str, Any]]) -> str:
    mutants = sorted({m for m, _ in matrix})
    targets = sorted({t for _, t in matrix})
    def cell(m: str, t: str) -> str:
        c = matrix.get((m, t))
        if c is None:
            return "-"
        if not c["detected"]:
            return "MISSED"
        # a violation seen only in the final state (e.g. a balance) has no operation time
        secs = f" {c['seconds']:.1f}s" if c.get("seconds") is not None else " (final state)"
        return f"{'+'.join(c['by'][:2])}{secs}"
    rows = [["mutant", *targets]] + [[m, *(cell(m, t) for t in targets)] for m in mutants]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    detected = sum(c["detected"] for c in matrix.values())
    lines.append(f"detected {detected} of {len(matrix)}")
    return "\n".join(lines)
