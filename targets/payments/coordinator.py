"""The 2PC coordinator: `python -m targets.payments.coordinator`.

Presumed abort. A payment is logged before any PREPARE leaves; the decision is
logged (fsynced) before it is sent or told to the client; it is re-sent until
every participant acknowledged it (delivery=broker: until the broker holds it for
each participant), then forgotten (the client-facing record
stays, the protocol log entry goes), so a status query about a forgotten or
unknown payment is answered "abort". On restart undecided payments are aborted
and logged decisions re-driven.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import aiohttp
from aiohttp import web

from targets.payments import service
from targets.payments.config import Config
from targets.payments.failpoints import COORDINATOR_POINTS, Failpoints
from targets.payments.store import open_db, tx
from targets.payments.validate import validate_payment

log = logging.getLogger("txchaos.target.coordinator")


def _branch(step: str, decision: str) -> tuple[str, ...]:
    """The commit-only failpoint of a step both decisions pass (see failpoints.py)."""
    return (f"{step}-commit",) if decision == "commit" else ()


SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, dest TEXT NOT NULL, amount INTEGER NOT NULL,
    participants TEXT NOT NULL, outcome TEXT, reason TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (id TEXT PRIMARY KEY, decision TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS acks (id TEXT NOT NULL, participant TEXT NOT NULL,
    PRIMARY KEY (id, participant));
"""

STATUS = {"commit": "committed", "abort": "aborted"}


class Coordinator:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.db = open_db(cfg.db_path, SCHEMA, synced=not cfg.hooks.coordinator_sync_off)
        self.transport = service.transport_for(cfg)
        self.failpoints = Failpoints(COORDINATOR_POINTS)
        self.hooks = cfg.hooks
        self.votes: dict[str, dict[str, str]] = {}
        self.vote_events: dict[str, asyncio.Event] = {}
        self.outcomes: dict[str, asyncio.Future[tuple[str, str | None]]] = {}
        self.unacked: dict[str, tuple[str, set[str], float]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.shard_urls = dict(u.split("=", 1) for u in
                               os.environ.get("TXCHAOS_SHARD_URLS", "").split(",") if "=" in u)

    # -- service hooks ------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/payments", self.post_payment), web.get("/payments/{id}", self.get_payment),
                web.get("/balances", self.get_balances)]

    def state(self) -> dict[str, Any]:
        rows = self.db.execute("SELECT * FROM payments ORDER BY id").fetchall()
        return {"payments": {r["id"]: {"decision": r["outcome"], "participants": json.loads(r["participants"]),
                                       "from": r["source"], "to": r["dest"], "amount": r["amount"],
                                       "reason": r["reason"]} for r in rows},
                "unacknowledged": sorted(self.unacked)}

    async def recover(self) -> None:
        if self.hooks.skip_recovery:
            log.warning("recovery skipped")
            return
        undecided = self.db.execute("SELECT id FROM payments WHERE outcome IS NULL").fetchall()
        for r in undecided:
            self._log_decision(r["id"], "abort", "coordinator-restarted")
        for r in self.db.execute("SELECT id, decision FROM decisions").fetchall():
            self._track(r["id"], r["decision"], resend_now=True)
        log.info("recovery: aborted %d undecided, re-driving %d decisions", len(undecided), len(self.unacked))

    async def background(self) -> None:
        """Re-send every decision some participant has not acknowledged yet."""
        while True:
            await asyncio.sleep(self.cfg.resend_interval / 2)
            now = time.monotonic()
            for pid, (decision, waiting, last) in list(self.unacked.items()):
                if now - last >= self.cfg.resend_interval:
                    self.unacked[pid] = (decision, waiting, now)
                    for p in sorted(waiting):
                        sent = await service.retry_send(self.transport, self.cfg.inbox(p),
                                                        {"type": decision, "id": pid},
                                                        dedup_id=f"{decision}:{pid}:{p}:{int(now)}", attempts=1)
                        self._sent(pid, p, sent)

    async def on_message(self, m: dict[str, Any]) -> None:
        kind, pid, who = m.get("type"), m.get("id"), m.get("participant")
        if not (isinstance(pid, str) and isinstance(who, str)):
            log.error("malformed message ignored: %r", m)
            return
        if kind == "vote":
            votes = self.votes.get(pid)
            if votes is not None and who not in votes:
                votes[who] = "yes" if m.get("vote") == "yes" else str(m.get("reason") or "no")
                self.vote_events[pid].set()
        elif kind == "ack":
            self._on_ack(pid, who)
        elif kind == "status":
            await self._on_status(pid, who)
        else:
            log.error("unknown message type %r ignored: %r", kind, m)

    # -- HTTP ---------------------------------------------------------------
    async def post_payment(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        req, problem = validate_payment(body, self.cfg.accounts)
        if problem:
            return web.json_response({"error": problem}, status=400)
        pid = req["id"]
        row = self._payment(pid)
        if row is not None:
            if (row["source"], row["dest"], row["amount"]) != (req["from"], req["to"], req["amount"]):
                return web.json_response({"error": f"payment id {pid} was already used for another payment"},
                                         status=422)
        else:
            parts = self.cfg.participants_of(req["from"], req["to"])
            with tx(self.db):
                self.db.execute("INSERT INTO payments (id, source, dest, amount, participants, created) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (pid, req["from"], req["to"], req["amount"], json.dumps(parts), time.time()))
            await self.failpoints.hit("after-log-payment")
            self.outcomes[pid] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._drive(pid, req, parts))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await self._answer(pid)

    async def _answer(self, pid: str) -> web.Response:
        fut = self.outcomes.get(pid)
        if fut is not None:
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.cfg.reply_timeout)
            except asyncio.TimeoutError:
                pass
        if fut is not None and fut.done():
            decision, reason = fut.result()
        else:
            row = self._payment(pid)
            decision, reason = (row["outcome"], row["reason"]) if row else (None, None)
        if decision is None and self.hooks.reply_aborted_on_timeout:
            decision, reason = "abort", "timeout"  # yet the payment may still commit
        if decision is None:
            return web.json_response({"id": pid, "status": "pending"}, status=202)
        code = 200 if decision == "commit" else 409
        return web.json_response({"id": pid, "status": STATUS[decision], "reason": reason}, status=code)

    async def get_payment(self, request: web.Request) -> web.Response:
        row = self._payment(request.match_info["id"])
        if row is None:
            return web.json_response({"error": "no such payment"}, status=404)
        return web.json_response({"id": row["id"], "from": row["source"], "to": row["dest"],
                                  "amount": row["amount"], "reason": row["reason"],
                                  "status": STATUS.get(row["outcome"], "pending")})

    async def get_balances(self, _: web.Request) -> web.Response:
        """Each shard's balances, read one after another: not an atomic snapshot."""
        if not self.shard_urls:
            return web.json_response({"error": "TXCHAOS_SHARD_URLS not configured"}, status=503)
        balances: dict[str, int] = {}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
                for shard, url in sorted(self.shard_urls.items()):
                    async with s.get(f"{url}/state") as r:
                        r.raise_for_status()
                        balances.update((await r.json())["balances"])
        except (aiohttp.ClientError, asyncio.TimeoutError, KeyError) as e:
            return web.json_response({"error": f"a shard did not answer: {e!r}"}, status=503)
        return web.json_response({"balances": balances})

    # -- protocol -----------------------------------------------------------
    def _payment(self, pid: str) -> Any:
        return self.db.execute("SELECT * FROM payments WHERE id = ?", (pid,)).fetchone()

    def _log_decision(self, pid: str, decision: str, reason: str | None) -> None:
        with tx(self.db):
            self.db.execute("UPDATE payments SET outcome = ?, reason = ? WHERE id = ? AND outcome IS NULL",
                            (decision, reason, pid))
            self.db.execute("INSERT OR IGNORE INTO decisions (id, decision) VALUES (?, ?)", (pid, decision))

    def _track(self, pid: str, decision: str, *, resend_now: bool = False) -> None:
        row = self._payment(pid)
        acked = {r[0] for r in self.db.execute("SELECT participant FROM acks WHERE id = ?", (pid,))}
        waiting = set(json.loads(row["participants"])) - acked if row else set()
        self.unacked[pid] = (decision, waiting, 0.0 if resend_now else time.monotonic())

    def _tell_client(self, pid: str, decision: str, reason: str | None) -> None:
        fut = self.outcomes.pop(pid, None)
        if fut is not None and not fut.done():
            fut.set_result((decision, reason))

    async def _drive(self, pid: str, req: dict[str, Any], parts: list[str]) -> None:
        try:
            decision, reason = await self._collect_votes(pid, req, parts)
        except Exception as e:
            log.warning("%s: preparing failed (%r); aborting", pid, e)
            decision, reason = "abort", "coordinator-error"
        finally:
            self.votes.pop(pid, None)
            self.vote_events.pop(pid, None)
        try:
            await self._finish(pid, decision, reason, parts)
        except Exception:
            log.exception("%s: sending the decision failed; the resend loop retries", pid)

    async def _collect_votes(self, pid: str, req: dict[str, Any], parts: list[str]) -> tuple[str, str | None]:
        votes: dict[str, str] = {}
        self.votes[pid], self.vote_events[pid] = votes, asyncio.Event()
        prepare = {"type": "prepare", "id": pid, "from": req["from"], "to": req["to"], "amount": req["amount"],
                   "participants": parts}
        for p in parts:
            await service.retry_send(self.transport, self.cfg.inbox(p), prepare, dedup_id=f"prepare:{pid}:{p}")
        await self.failpoints.hit("after-send-prepare")
        deadline = time.monotonic() + self.cfg.vote_timeout
        while len(votes) < len(parts) and all(v == "yes" for v in votes.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                return "abort", "vote-timeout"
            self.vote_events[pid].clear()
            try:
                await asyncio.wait_for(self.vote_events[pid].wait(), left)
            except asyncio.TimeoutError:
                pass
        no = [v for v in votes.values() if v != "yes"]
        return ("abort", no[0]) if no else ("commit", None)

    async def _finish(self, pid: str, decision: str, reason: str | None, parts: list[str]) -> None:
        """The commit point: log the decision, then tell the client and the participants."""
        if self.hooks.reply_before_logging:
            self._tell_client(pid, decision, reason)
            await asyncio.sleep(0.05)  # the reply leaves while the log write is "in flight"
        await self.failpoints.hit("before-log-decision", *_branch("before-log", decision))
        if self.hooks.send_decision_before_logging:
            await self._send_decision(pid, decision, parts)
        self._log_decision(pid, decision, reason)
        await self.failpoints.hit("after-log-decision")
        self._tell_client(pid, decision, reason)
        if self.hooks.forget_decision_once_sent:
            self._forget(pid)  # nobody has acknowledged it yet
        else:
            self._track(pid, decision)
        if not self.hooks.send_decision_before_logging:
            await self._send_decision(pid, decision, parts)

    async def _send_decision(self, pid: str, decision: str, parts: list[str]) -> None:
        for i, p in enumerate(parts):
            sent = await service.retry_send(self.transport, self.cfg.inbox(p), {"type": decision, "id": pid},
                                            dedup_id=f"{decision}:{pid}:{p}", attempts=1)
            self._sent(pid, p, sent)
            if i == 0:
                await self.failpoints.hit("after-send-first-decision", *_branch("after-send-first", decision))

    def _sent(self, pid: str, who: str, sent: bool) -> None:
        """With delivery=broker, the broker holding a decision counts as its acknowledgement."""
        if sent and self.cfg.trusts_broker:
            self._on_ack(pid, who)

    def _on_ack(self, pid: str, who: str) -> None:
        with tx(self.db):
            self.db.execute("INSERT OR IGNORE INTO acks (id, participant) VALUES (?, ?)", (pid, who))
            entry = self.unacked.get(pid)
            if entry is not None:
                entry[1].discard(who)
                if not entry[1]:  # everyone applied it: forget the decision
                    self._forget(pid)

    def _forget(self, pid: str) -> None:
        """Drop the decision from the protocol log: from now on presumed abort answers for it."""
        self.db.execute("DELETE FROM decisions WHERE id = ?", (pid,))
        self.unacked.pop(pid, None)

    async def _on_status(self, pid: str, who: str) -> None:
        logged = self.db.execute("SELECT decision FROM decisions WHERE id = ?", (pid,)).fetchone()
        if logged is not None:
            decision = logged["decision"]
        else:
            row = self._payment(pid)
            if row is not None and row["outcome"] is None and not self.hooks.presume_abort_while_deciding:
                return  # still deciding; recovery aborts it if this process dies
            decision = "abort"  # forgotten or never known: presumed abort
        await service.retry_send(self.transport, self.cfg.inbox(who), {"type": decision, "id": pid},
                                 dedup_id=f"{decision}:{pid}:{who}:status", attempts=1)


if __name__ == "__main__":
    import sys

    sys.exit(service.main(Coordinator, "coordinator"))
