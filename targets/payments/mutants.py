"""Seeded bugs: each a classic 2PC mistake, switched on by TXCHAOS_MUTANT=name.

With no mutant the system is correct. docs/reference-target.md lists, for each
mutant, the fault that exposes it and the invariant it then violates.
"""

from __future__ import annotations

MUTANTS = {
    "decision-not-logged": "coordinator sends the decision before it is durable",
    "vote-before-persist": "participant votes yes before its prepared record is durable",
    "no-dedup": "participant applies a redelivered COMMIT again",
    "ack-before-apply": "participant acknowledges a message before its effect is durable",
    "commit-when-in-doubt": "participant commits on its own when in doubt past the timeout",
    "early-reply": "coordinator answers the client before the decision is durable",
    "no-recovery": "coordinator does nothing about unfinished payments on restart",
    "split-apply": "a shard applies the debit and the credit in two local transactions",
}


def check(name: str | None) -> str | None:
    """The mutant name, or None; ValueError naming the choices if unknown."""
    if not name or name == "none":
        return None
    if name not in MUTANTS:
        raise ValueError(f"unknown mutant {name!r}; choose one of {', '.join(MUTANTS)}")
    return name
