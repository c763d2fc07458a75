"""Failure categories: the message prefixes suites use and the Allure categories that read them.

A product defect (an invariant the target broke) must never be filed as a broken
lab, and a broken lab never as a product defect. So the categories match only a
fixed prefix at the very start of the failure message, and the two families of
prefixes cannot both match one message:

    INVARIANT VIOLATED [<invariant>]: <summary>     the target broke an invariant
    INVARIANT UNKNOWN [<invariant>]: <summary>      the checker could not decide
    INFRASTRUCTURE: <what broke and what to fix>     the lab, not the target

allure-pytest puts the exception type first ("AssertionError: ...",
"Failed: ...", "harness.errors.InfraError: ..."), so one optional type name is
allowed before the prefix. The patterns work in Allure 2 (whole-message Java
match) and Allure 3 (JavaScript search), hence `[\\s\\S]*` instead of flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["INVARIANTS", "CATEGORIES", "violation_message", "unknown_message",
           "infrastructure_message", "classify", "categories_json", "failure_message"]

# Canonical invariant names (checker names); aliases map other spellings onto them.
INVARIANTS = ("atomicity", "client-agreement", "exactly-once", "conservation",
              "no-negative", "resolution")
_ALIASES = {"agreement": "client-agreement", "lost": "client-agreement",
            "duplicates": "exactly-once", "once": "exactly-once",
            "negative-balance": "no-negative", "no-negative-balance": "no-negative", "liveness": "resolution",
            "in-doubt": "resolution"}

_TYPE = r"^(?:[\w.]+: )?"


@dataclass(frozen=True)
class Category:
    name: str
    pattern: str
    statuses: tuple[str, ...]
    description: str


def _inv(name: str) -> str:
    return _TYPE + r"INVARIANT VIOLATED \[" + re.escape(name) + r"\]: [\s\S]*"


CATEGORIES: tuple[Category, ...] = (
    Category("Atomicity violated", _inv("atomicity"), ("failed",),
             "A payment committed at some participants and aborted or lost at others."),
    Category("Payment lost", _inv("client-agreement"), ("failed",),
             "The client was told ok but the payment is not committed everywhere, "
             "or told fail but it committed somewhere."),
    Category("Applied twice", _inv("exactly-once"), ("failed",),
             "A participant applied a payment's effect more than once (or a committed one never)."),
    Category("Money not conserved", _inv("conservation"), ("failed",),
             "Balances do not sum to the initial total, or do not match the committed transfers."),
    Category("Negative balance", _inv("no-negative"), ("failed",),
             "An account went below zero on a target that promises it cannot."),
    Category("Stuck in doubt", _inv("resolution"), ("failed",),
             "A payment stayed prepared (in doubt) past the bound after all faults healed."),
    Category("Verdict unknown", _TYPE + r"INVARIANT UNKNOWN \[[\w\-]+\]: [\s\S]*",
             ("failed", "broken"),
             "A checker could not decide (for example, the state could not be read)."),
    Category("Infrastructure error",
             r"^(?:(?:[\w.]+: )?INFRASTRUCTURE: |[\w.]*(?:InfraError|ServiceStartError): )[\s\S]*",
             ("broken", "failed"),
             "The lab broke (a broker, Toxiproxy or a target service would not start or "
             "answer): not a verdict about the target."),
)


def _canonical(invariant: str) -> str:
    key = invariant.strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(key, key)


def violation_message(invariant: str, summary: str) -> str:
    """The failure message for a broken invariant: 'INVARIANT VIOLATED [atomicity]: ...'."""
    return f"INVARIANT VIOLATED [{_canonical(invariant)}]: {summary}"


def unknown_message(invariant: str, summary: str) -> str:
    """The failure message when a checker could not decide."""
    return f"INVARIANT UNKNOWN [{_canonical(invariant)}]: {summary}"


def infrastructure_message(what: str) -> str:
    """The failure message for a broken lab: 'INFRASTRUCTURE: ...'."""
    return f"INFRASTRUCTURE: {what}"


def failure_message(verdict: dict[str, Any], *, max_payments: int = 5) -> str | None:
    """The message a suite fails with for a verdict.json, or None when the verdict is valid.

    The first line carries the first violated invariant (that picks the category);
    each further line names one more violated or unknown checker and its payment ids.
    """
    lines: list[str] = []
    for want, make in ((False, violation_message), ("unknown", unknown_message)):
        for c in verdict.get("checkers", []):
            if c.get("valid") != want:
                continue
            payments = [str(ex.get("payment")) for ev in (c.get("evidence") or {}).values()
                        for ex in ev.get("examples") or [] if ex.get("payment")]
            seen = list(dict.fromkeys(payments))
            tail = f" (payments: {', '.join(seen[:max_payments])}" + \
                   (f" and {len(seen) - max_payments} more" if len(seen) > max_payments else "") + \
                   ")" if seen else ""
            lines.append(make(str(c.get("name", "?")), str(c.get("summary", ""))) + tail)
    return "\n".join(lines) if lines else None


def classify(message: str, status: str = "failed") -> str | None:
    """The category a failure message lands in (the first match, as Allure does), or None."""
    for cat in CATEGORIES:
        if status in cat.statuses and re.match(cat.pattern, message):
            return cat.name
    return None


def categories_json() -> list[dict[str, Any]]:
    """categories.json content for the Allure results directory."""
    return [{"name": c.name, "description": c.description, "messageRegex": c.pattern,
             "matchedStatuses": list(c.statuses)} for c in CATEGORIES]
