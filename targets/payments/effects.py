"""The local effect each kind of participant applies for a payment.

A participant's 2PC state machine (participant.py) is the same for every kind;
only these hooks differ. Each hook runs inside the caller's open transaction,
so the effect, the payment's state and the inbox record become durable together.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from targets.payments.config import Config

Txn = sqlite3.Row  # columns: id, state, applied, source, dest, amount


class Effect:
    schema = ""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.hooks = cfg.hooks

    def init(self, db: sqlite3.Connection) -> None:
        """Seed the store on first start (must be idempotent)."""

    def prepare(self, db: sqlite3.Connection, txn: Txn) -> str | None:
        """Reserve what the commit needs; a reason string votes no."""
        return None

    def commit(self, db: sqlite3.Connection, txn: Txn, part: int | None = None) -> None:
        """Apply the payment. `part` 1/2 applies only the debit/credit (split-apply)."""

    def abort(self, db: sqlite3.Connection, txn: Txn) -> None:
        """Release what prepare reserved (only called for a prepared payment)."""

    def splittable(self, txn: Txn) -> bool:
        return False

    def extra_state(self, db: sqlite3.Connection) -> dict[str, Any]:
        return {}

    def applied(self, db: sqlite3.Connection) -> dict[str, int] | None:
        """How many times each payment's effect is in the store, read from the effect
        itself; None: only the protocol's own counter (txns.applied) can say."""
        return None


class Shard(Effect):
    """Account balances; prepare holds the debited funds, so no balance goes negative."""

    schema = """CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY, balance INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0);"""

    def init(self, db: sqlite3.Connection) -> None:
        for acct, bal in self.cfg.shard_accounts(self.cfg.name).items():
            db.execute("INSERT OR IGNORE INTO accounts (id, balance) VALUES (?, ?)", (acct, bal))

    def _here(self, acct: str) -> bool:
        return acct in self.cfg.accounts and self.cfg.shard_of(acct) == self.cfg.name

    def prepare(self, db: sqlite3.Connection, txn: Txn) -> str | None:
        if not self._here(txn["source"]):
            return None
        row = db.execute("SELECT balance, held FROM accounts WHERE id = ?", (txn["source"],)).fetchone()
        if row is None:
            return "unknown-account"
        if row["balance"] - row["held"] < txn["amount"]:
            return "insufficient-funds"
        if not self.hooks.check_funds_without_holding:  # the hold is the promise of a yes vote
            db.execute("UPDATE accounts SET held = held + ? WHERE id = ?", (txn["amount"], txn["source"]))
        return None

    def commit(self, db: sqlite3.Connection, txn: Txn, part: int | None = None) -> None:
        if self._here(txn["source"]) and part in (None, 1):
            db.execute("UPDATE accounts SET balance = balance - ?, held = MAX(0, held - ?) WHERE id = ?",
                       (txn["amount"], txn["amount"], txn["source"]))
        if self._here(txn["dest"]) and part in (None, 2):
            db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (txn["amount"], txn["dest"]))

    def abort(self, db: sqlite3.Connection, txn: Txn) -> None:
        if self._here(txn["source"]):
            db.execute("UPDATE accounts SET held = MAX(0, held - ?) WHERE id = ?",
                       (txn["amount"], txn["source"]))

    def splittable(self, txn: Txn) -> bool:
        return self._here(txn["source"]) and self._here(txn["dest"])

    def extra_state(self, db: sqlite3.Connection) -> dict[str, Any]:
        rows = db.execute("SELECT id, balance, held FROM accounts ORDER BY id").fetchall()
        return {"balances": {r["id"]: r["balance"] for r in rows},
                "held": {r["id"]: r["held"] for r in rows if r["held"]}}


class Ledger(Effect):
    """A double-entry journal: a debit and a credit entry per committed payment."""

    schema = """CREATE TABLE IF NOT EXISTS journal (
        entry INTEGER PRIMARY KEY AUTOINCREMENT, payment TEXT NOT NULL,
        account TEXT NOT NULL, delta INTEGER NOT NULL);"""

    def commit(self, db: sqlite3.Connection, txn: Txn, part: int | None = None) -> None:
        if part in (None, 1):
            db.execute("INSERT INTO journal (payment, account, delta) VALUES (?, ?, ?)",
                       (txn["id"], txn["source"], -txn["amount"]))
        if part in (None, 2):
            db.execute("INSERT INTO journal (payment, account, delta) VALUES (?, ?, ?)",
                       (txn["id"], txn["dest"], txn["amount"]))

    def splittable(self, txn: Txn) -> bool:
        return True

    def extra_state(self, db: sqlite3.Connection) -> dict[str, Any]:
        n, total = db.execute("SELECT COUNT(*), COALESCE(SUM(delta), 0) FROM journal").fetchone()
        return {"journal_entries": n, "journal_sum": total}

    def applied(self, db: sqlite3.Connection) -> dict[str, int] | None:
        """Complete double entries per payment, from the journal itself. An unbalanced
        payment (a debit without its credit) never reads as applied once: fewer than
        three entries count 0, more count half of them rounded up."""
        out: dict[str, int] = {}
        for pid, debits, credits in db.execute(
                "SELECT payment, SUM(delta < 0), SUM(delta > 0) FROM journal GROUP BY payment"):
            n = debits + credits
            out[pid] = debits if debits == credits else 0 if n < 3 else (n + 1) // 2
        return out


class Notifications(Effect):
    """An outbox: one notification per committed payment, for a sender to deliver."""

    schema = """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, payment TEXT NOT NULL, body TEXT NOT NULL);"""

    def commit(self, db: sqlite3.Connection, txn: Txn, part: int | None = None) -> None:
        db.execute("INSERT INTO outbox (payment, body) VALUES (?, ?)",
                   (txn["id"], f"{txn['source']} paid {txn['amount']} to {txn['dest']}"))

    def extra_state(self, db: sqlite3.Connection) -> dict[str, Any]:
        return {"outbox": db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]}


def effect_for(cfg: Config) -> Effect:
    if cfg.name in cfg.shards:
        return Shard(cfg)
    if cfg.name == "ledger":
        return Ledger(cfg)
    if cfg.name == "notifications":
        return Notifications(cfg)
    raise ValueError(f"no participant named {cfg.name!r}: use one of "
                     f"{', '.join(cfg.shards)}, ledger, notifications")
