"""Seeded bugs: each a classic 2PC or messaging mistake, switched on by TXCHAOS_MUTANT=name.

The correct protocol asks one `Hooks` object at every point where a mutant departs
from it; with no mutant every hook is off, so the protocol code reads as the correct
algorithm with a few named detours. Each mutant is one entry of `MUTANTS`: its name,
what it does, the classic mistake it models and the hooks it switches on. Adding a
mutant is adding one entry here (and, to prove the harness catches it, its exposure
in suites/selftest_plan.py). docs/reference-target.md lists, for each mutant, the
fault that exposes it and the invariant it then violates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Hooks", "Mutant", "MUTANTS", "check", "hooks_for"]


@dataclass(frozen=True)
class Hooks:
    """The decision points where a mutant departs from the correct protocol (all off: correct)."""

    # -- coordinator ------------------------------------------------------------
    reply_before_logging: bool = False
    """Tell the client the outcome before the decision is durable."""
    send_decision_before_logging: bool = False
    """Send the decision to the participants before it is durable."""
    skip_recovery: bool = False
    """On restart, neither abort undecided payments nor re-drive logged decisions."""
    forget_decision_once_sent: bool = False
    """Drop the decision from the protocol log once it is handed to the broker,
    without waiting for every participant's acknowledgement."""
    presume_abort_while_deciding: bool = False
    """Answer a status query about a payment still collecting votes with "abort"."""
    reply_aborted_on_timeout: bool = False
    """Answer the client "aborted" when no decision came within the reply timeout."""
    coordinator_sync_off: bool = False
    """Open the protocol log with SQLite synchronous=OFF: a decision is written, replied and
    sent, but never fsynced."""
    # -- participant --------------------------------------------------------------
    participant_sync_off: bool = False
    """Open the store with SQLite synchronous=OFF: prepared records and effects are never fsynced."""
    vote_before_persisting: bool = False
    """Vote yes first, write the prepared record afterwards."""
    ack_before_applying: bool = False
    """Acknowledge a message (to the broker and to the coordinator) before applying it."""
    skip_dedup: bool = False
    """Apply a redelivered COMMIT again instead of only repeating the reply."""
    heuristic_outcome: Literal["commit", "abort"] | None = None
    """When in doubt past the timeout, decide alone (an XA heuristic outcome) instead of asking."""
    wall_clock_heuristic_s: float | None = None
    """Abort alone a payment prepared longer ago than this by the wall clock (a heuristic
    timeout far beyond any fault window, measured on a clock that can step)."""
    abort_prepared_on_restart: bool = False
    """On restart, roll back every prepared payment as if it were an orphan."""
    split_local_apply: bool = False
    """Apply a same-shard debit and credit in two local transactions."""
    check_funds_without_holding: bool = False
    """At PREPARE, check the balance but do not hold the funds until the commit."""
    # -- every service ------------------------------------------------------------
    broker_non_durable: bool = False
    """Trust the broker's acknowledgement (delivery=broker) on a broker set up without
    durability: no replication, nothing on disk, no wait for a durable acknowledgement."""


@dataclass(frozen=True)
class Mutant:
    name: str
    does: str  # one line: what the mutant does differently
    mistake: str  # the classic mistake it models, and where it is described
    hooks: Mapping[str, Any] = field(default_factory=dict)  # Hooks field -> value

    def __post_init__(self) -> None:
        known = {f.name for f in dataclasses.fields(Hooks)}
        unknown = set(self.hooks) - known
        if unknown:  # a misspelt hook must not silently leave the mutant correct
            raise TypeError(f"mutant {self.name}: no hook(s) {', '.join(sorted(unknown))}")
        if not self.hooks:
            raise TypeError(f"mutant {self.name}: switches on no hook")


MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    Mutant("decision-not-logged", "coordinator sends the decision before it is durable",
           "commit point after the first message: a crash loses a decision some participants applied "
           "(Gray & Reuter, Transaction Processing, ch. 10)",
           {"send_decision_before_logging": True}),
    Mutant("vote-before-persist", "participant votes yes before its prepared record is durable",
           "a yes vote is a promise that must survive a crash (Bernstein, Hadzilacos & Goodman, "
           "Concurrency Control and Recovery, ch. 7)",
           {"vote_before_persisting": True}),
    Mutant("no-dedup", "participant applies a redelivered COMMIT again",
           "at-least-once delivery taken for exactly-once: no idempotent consumer "
           "(Jepsen's Kafka and RabbitMQ analyses: redelivery is normal)",
           {"skip_dedup": True}),
    Mutant("ack-before-apply", "participant acknowledges a message before its effect is durable",
           "auto-ack / offset committed before processing: at-most-once delivery "
           "(RabbitMQ reliability guide; Kafka enable.auto.commit)",
           {"ack_before_applying": True}),
    Mutant("commit-when-in-doubt", "participant commits on its own when in doubt past the timeout",
           "XA heuristic commit: a resource manager decides alone (X/Open XA, XA_HEURCOM)",
           {"heuristic_outcome": "commit"}),
    Mutant("early-reply", "coordinator answers the client before the decision is durable",
           "acknowledging the client before the commit point",
           {"reply_before_logging": True}),
    Mutant("no-recovery", "coordinator does nothing about unfinished payments on restart",
           "no coordinator recovery: the blocking problem of 2PC left unhandled "
           "(Gray & Reuter, ch. 10)",
           {"skip_recovery": True}),
    Mutant("split-apply", "a shard applies the debit and the credit in two local transactions",
           "a local effect that is not atomic: a crash between the halves loses one",
           {"split_local_apply": True}),
    Mutant("heuristic-abort", "participant aborts on its own when in doubt past the timeout",
           "XA heuristic rollback: a resource manager that times out in doubt rolls back alone "
           "(X/Open XA, XA_HEURRB; JTA HeuristicRollbackException)",
           {"heuristic_outcome": "abort"}),
    Mutant("abort-prepared-on-restart", "participant rolls back its prepared payments when it restarts",
           "prepared transactions treated as orphans at recovery (MySQL bug #12161: prepared XA "
           "transactions rolled back on disconnect and restart, fixed in 5.7.7)",
           {"abort_prepared_on_restart": True}),
    Mutant("forget-before-ack", "coordinator forgets a decision once sent, before every participant "
           "acknowledged it",
           "presumed abort's rule broken: a commit decision must be kept until all acks, or an "
           "in-doubt participant is told 'abort' (Mohan, Lindsay & Obermarck, TODS 1986)",
           {"forget_decision_once_sent": True}),
    Mutant("presume-abort-while-deciding", "coordinator answers 'abort' to a status query about a "
           "payment it is still deciding",
           "presumed abort applied to an undecided (not unknown) transaction: the coordinator must "
           "not answer until it decides (Mohan, Lindsay & Obermarck, TODS 1986)",
           {"presume_abort_while_deciding": True}),
    Mutant("timeout-as-abort", "coordinator answers 'aborted' when it has no decision within the "
           "reply timeout",
           "a timeout reported as a failure: the outcome is unknown, the payment may still commit "
           "(Jepsen issue 596; Kleppmann, DDIA ch. 8)",
           {"reply_aborted_on_timeout": True}),
    Mutant("wall-clock-heuristic", "participant aborts on its own a payment prepared more than "
           "120 s ago by the wall clock",
           "a timeout measured on the wall clock instead of a monotonic one: a heuristic timeout "
           "of minutes never fires under crashes, but an NTP step forward makes every payment in "
           "doubt look minutes old (Kleppmann, DDIA ch. 8, unreliable clocks)",
           {"wall_clock_heuristic_s": 120.0}),
    Mutant("decision-unsynced", "coordinator writes its decisions without fsync (SQLite "
           "synchronous=OFF) and replies and sends them at once",
           "a commit point that is only in the page cache: a kill -9 never shows it, a power cut "
           "loses decisions participants already applied (Pillai et al., OSDI 2014: "
           "all file systems are not created equal)",
           {"coordinator_sync_off": True}),
    Mutant("store-sync-off", "participants open their stores with SQLite synchronous=OFF",
           "durability traded for speed: a yes vote and an applied effect that a power cut takes "
           "back (SQLite docs: with synchronous=OFF, a power loss can lose or corrupt the database; "
           "Jepsen, NATS 2.12.1, 2025: acknowledged writes lost to a power cut)",
           {"participant_sync_off": True}),
    Mutant("non-durable-broker", "services trust the broker's acknowledgement (delivery=broker), but "
           "the broker keeps messages without durability: RabbitMQ transient messages in a "
           "non-durable classic queue, NATS an R1 stream in memory, Kafka acks=1 (the leader's word)",
           "a broker configured for speed in a system that relies on it: acknowledged messages lost "
           "when a broker node dies (RabbitMQ reliability guide; Kafka acks; Jepsen, RabbitMQ 2014)",
           {"broker_non_durable": True}),
    Mutant("no-funds-hold", "shard checks the balance at PREPARE but holds nothing until the commit",
           "check-then-act: a yes vote that reserves nothing, so concurrent payments double-spend "
           "(write skew; Berenson et al., A Critique of ANSI SQL Isolation Levels)",
           {"check_funds_without_holding": True}),
]}


def check(name: str | None) -> str | None:
    """The mutant name, or None; ValueError naming the choices if unknown."""
    if not name or name == "none":
        return None
    if name not in MUTANTS:
        raise ValueError(f"unknown mutant {name!r}; choose one of {', '.join(MUTANTS)}")
    return name


def hooks_for(name: str | None) -> Hooks:
    """The hooks of a mutant (all off for None); ValueError for an unknown name."""
    name = check(name)
    return Hooks(**MUTANTS[name].hooks) if name else Hooks()
