"""A 2PC participant: account shard, ledger or notifications (same state machine).

Prepared state is durable before the yes vote leaves; every (payment, step) is
recorded in an inbox in the same transaction as its effect, so a redelivered
PREPARE/COMMIT/ABORT only repeats its reply; an ABORT that arrives first leaves
an aborted record that makes the later PREPARE vote no. A payment prepared for
longer than the in-doubt timeout asks the coordinator (through the broker) for
the decision; with delivery=broker it waits for the broker to deliver the decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from targets.payments import service
from targets.payments.config import Config
from targets.payments.effects import effect_for
from targets.payments.failpoints import PARTICIPANT_POINTS, Failpoints
from targets.payments.store import open_db, tx

log = logging.getLogger("txchaos.target.participant")

SCHEMA = """
CREATE TABLE IF NOT EXISTS txns (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, applied INTEGER NOT NULL DEFAULT 0,
    source TEXT, dest TEXT, amount INTEGER, since REAL NOT NULL, asked REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT NOT NULL, step TEXT NOT NULL, result TEXT, PRIMARY KEY (id, step));
"""


class Participant:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.effect = effect_for(cfg)
        self.db = open_db(cfg.db_path, SCHEMA + self.effect.schema,
                          synced=not cfg.hooks.participant_sync_off)
        with tx(self.db):
            self.effect.init(self.db)
        self.transport = service.transport_for(cfg)
        self.failpoints = Failpoints(PARTICIPANT_POINTS)
        self.hooks = cfg.hooks
        self.coordinator = cfg.inbox("coordinator")

    # -- service hooks ------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return []

    def state(self) -> dict[str, Any]:
        rows = self.db.execute("SELECT id, state, applied FROM txns ORDER BY id").fetchall()
        effect = self.effect.applied(self.db)  # what the store holds beats the counter, if it can tell
        out: dict[str, Any] = {"txns": {r["id"]: {"state": r["state"], "applied": r["applied"] if effect is None
                                                  else effect.get(r["id"], 0)}
                                        for r in rows}}
        out.update(self.effect.extra_state(self.db))
        return out

    async def recover(self) -> None:
        """Nothing to redo: prepared payments are picked up by the in-doubt loop."""
        if self.hooks.abort_prepared_on_restart:
            rows = self.db.execute("SELECT id FROM txns WHERE state = 'prepared'").fetchall()
            for r in rows:
                self._abort(r["id"])
            log.warning("recovery rolled back %d prepared payment(s)", len(rows))

    async def on_message(self, m: dict[str, Any]) -> None:
        kind, pid = m.get("type"), m.get("id")
        if not isinstance(pid, str) or not pid:
            log.error("message without a payment id ignored: %r", m)
            return
        if kind == "prepare":
            await self._prepare(pid, m)
        elif kind in ("commit", "abort"):
            await self._decide(pid, kind)
        else:
            log.error("unknown message type %r ignored: %r", kind, m)

    async def background(self) -> None:
        """Resolve payments left in doubt: ask the coordinator, again and again."""
        while True:
            await asyncio.sleep(min(1.0, self.cfg.indoubt_timeout / 2))
            try:
                await self._resolve_in_doubt()
            except Exception:
                log.exception("in-doubt resolution failed; retrying")

    # -- protocol -----------------------------------------------------------
    def _txn(self, pid: str) -> Any:
        return self.db.execute("SELECT * FROM txns WHERE id = ?", (pid,)).fetchone()

    async def _vote(self, pid: str, vote: str) -> None:
        yes = vote == "yes"
        await self.transport.send(self.coordinator, {
            "type": "vote", "id": pid, "participant": self.cfg.name,
            "vote": "yes" if yes else "no", "reason": None if yes else vote},
            dedup_id=f"vote:{pid}:{self.cfg.name}")

    async def _prepare(self, pid: str, m: dict[str, Any]) -> None:
        source, dest, amount = m.get("from"), m.get("to"), m.get("amount")
        if not (isinstance(source, str) and isinstance(dest, str) and isinstance(amount, int)):
            log.error("malformed PREPARE ignored: %r", m)
            return
        seen = self.db.execute("SELECT result FROM inbox WHERE id = ? AND step = 'prepare'",
                               (pid,)).fetchone()
        if seen is not None:  # redelivered: repeat the vote we gave
            await self._vote(pid, seen["result"] or "no")
            return
        if self.hooks.vote_before_persisting:
            return await self._prepare_vote_first(pid, source, dest, amount)
        vote = self._persist_prepare(pid, source, dest, amount)
        await self.failpoints.hit("after-persist-prepared")
        await self._vote(pid, vote)
        await self.failpoints.hit("after-vote")

    def _persist_prepare(self, pid: str, source: str, dest: str, amount: int, *,
                         record_inbox: bool = True) -> str:
        """Hold what the payment needs and remember the vote, in one transaction."""
        with tx(self.db):
            txn = self._txn(pid)
            if txn is not None and txn["state"] == "aborted":
                vote = "aborted-before-prepare"
            elif txn is not None:
                vote = "yes" if txn["state"] == "prepared" else "no"
            else:
                self.db.execute("INSERT INTO txns (id, state, source, dest, amount, since) "
                                "VALUES (?, 'prepared', ?, ?, ?, ?)",
                                (pid, source, dest, amount, time.time()))
                reason = self.effect.prepare(self.db, self._txn(pid))
                vote = reason or "yes"
                if reason:
                    self.db.execute("UPDATE txns SET state = 'aborted' WHERE id = ?", (pid,))
            if record_inbox:
                self.db.execute("INSERT OR REPLACE INTO inbox (id, step, result) VALUES (?, 'prepare', ?)",
                                (pid, vote))
        return vote

    async def _prepare_vote_first(self, pid: str, source: str, dest: str, amount: int) -> None:
        """Mutant vote-before-persist: remember only that we voted, vote, then persist."""
        with tx(self.db):
            self.db.execute("INSERT OR REPLACE INTO inbox (id, step, result) VALUES (?, 'prepare', 'yes')",
                            (pid,))
        await self._vote(pid, "yes")
        await self.failpoints.hit("after-vote")
        self._persist_prepare(pid, source, dest, amount, record_inbox=False)
        await self.failpoints.hit("after-persist-prepared")

    async def _ack(self, pid: str, decision: str) -> None:
        await self.transport.send(self.coordinator, {
            "type": "ack", "id": pid, "participant": self.cfg.name, "decision": decision},
            dedup_id=f"ack:{pid}:{self.cfg.name}")

    async def _decide(self, pid: str, decision: str) -> None:
        seen = self.db.execute("SELECT 1 FROM inbox WHERE id = ? AND step = ?", (pid, decision)).fetchone()
        if seen is not None and not self.hooks.skip_dedup:
            await self._ack(pid, decision)
            return
        if self.hooks.ack_before_applying:
            await self._ack(pid, decision)
        if decision == "commit":
            await self._commit(pid)
        else:
            self._abort(pid)
        await self.failpoints.hit("after-apply-before-ack")
        if not self.hooks.ack_before_applying:
            await self._ack(pid, decision)

    async def _commit(self, pid: str) -> None:
        txn = self._txn(pid)
        if txn is None:
            log.error("COMMIT for %s, which was never prepared here; nothing to apply", pid)
            with tx(self.db):
                self.db.execute("INSERT OR IGNORE INTO inbox (id, step) VALUES (?, 'commit')", (pid,))
            return
        if txn["state"] == "aborted" or (txn["state"] == "committed" and not self.hooks.skip_dedup):
            log.error("COMMIT for %s conflicts with local state %s; ignored", pid, txn["state"])
            with tx(self.db):
                self.db.execute("INSERT OR IGNORE INTO inbox (id, step) VALUES (?, 'commit')", (pid,))
            return
        await self.failpoints.hit("before-apply")
        split = self.hooks.split_local_apply and self.effect.splittable(txn)
        with tx(self.db):
            # checked again with the apply, in one transaction: while this COMMIT waited above,
            # another delivery of it (a redelivery, or the answer to asking the coordinator
            # about a payment in doubt) may have applied it
            now = self._txn(pid)
            if now is not None and now["state"] == "committed" and not self.hooks.skip_dedup:
                self.db.execute("INSERT OR IGNORE INTO inbox (id, step) VALUES (?, 'commit')", (pid,))
                return
            self.effect.commit(self.db, txn, 1 if split else None)
            self.db.execute("UPDATE txns SET state = 'committed', applied = applied + 1 WHERE id = ?", (pid,))
            self.db.execute("INSERT OR IGNORE INTO inbox (id, step) VALUES (?, 'commit')", (pid,))
        if split:
            await self.failpoints.hit("mid-apply")
            with tx(self.db):
                self.effect.commit(self.db, txn, 2)

    def _abort(self, pid: str) -> None:
        with tx(self.db):
            txn = self._txn(pid)
            if txn is None:  # ABORT before PREPARE: block the PREPARE when it comes
                self.db.execute("INSERT INTO txns (id, state, since) VALUES (?, 'aborted', ?)",
                                (pid, time.time()))
            elif txn["state"] == "prepared":
                self.effect.abort(self.db, txn)
                self.db.execute("UPDATE txns SET state = 'aborted' WHERE id = ?", (pid,))
            elif txn["state"] == "committed":
                log.error("ABORT for %s, which is committed here; ignored", pid)
            self.db.execute("INSERT OR IGNORE INTO inbox (id, step) VALUES (?, 'abort')", (pid,))

    async def _resolve_in_doubt(self) -> None:
        now = time.time()
        t = self.cfg.indoubt_timeout
        if self.hooks.wall_clock_heuristic_s is not None:
            for r in self.db.execute("SELECT id FROM txns WHERE state = 'prepared' AND since < ?",
                                     (now - self.hooks.wall_clock_heuristic_s,)).fetchall():
                log.warning("%s prepared %.0fs ago by the wall clock: aborting on my own", r["id"],
                            self.hooks.wall_clock_heuristic_s)
                self._abort(r["id"])
        rows = self.db.execute("SELECT id FROM txns WHERE state = 'prepared' AND since < ? AND asked < ?",
                               (now - t, now - t)).fetchall()
        for r in rows:
            pid = r["id"]
            if self.hooks.heuristic_outcome is not None:
                log.warning("%s in doubt for %.0fs: deciding %s on my own", pid, t, self.hooks.heuristic_outcome)
                if self.hooks.heuristic_outcome == "commit":
                    await self._commit(pid)
                else:
                    self._abort(pid)
                continue
            if self.cfg.trusts_broker:
                continue  # the broker holds the decision until this participant took it
            log.info("%s in doubt for %.0fs: asking the coordinator", pid, t)
            with tx(self.db):
                self.db.execute("UPDATE txns SET asked = ? WHERE id = ?", (now, pid))
            await service.retry_send(self.transport, self.coordinator,
                                     {"type": "status", "id": pid, "participant": self.cfg.name},
                                     dedup_id=f"status:{pid}:{self.cfg.name}:{int(now)}", attempts=1)


def main(default_name: str | None = None) -> int:
    return service.main(Participant, default_name)
