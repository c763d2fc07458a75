"""Client retries through the checkers: the same payment id invoked again after `info`.

A retry is a new invoke of the same id by a new process (docs/formats.md). The
checkers must not raise a false alarm when a first attempt was `info` and the retry
`ok`, and exactly-once must catch a coordinator that runs a retried payment twice.
`ShardedBank` is an in-memory stand-in for a 2PC bank (pure logic only).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from harness.checkers import CheckOptions, check_all
from harness.history import HistoryRecorder, load_history, validate_history
from harness.model import Op, OpResult, OpType, Outcome, Transfer
from harness.workload import WorkloadSpec, initial_balances, run_clients

SEED = 7
OPTIONS = CheckOptions(snapshot_reads=False, no_negative=True)


class ShardedBank:
    """Two account shards and a ledger in every payment. Every `unknown_every`-th attempt
    takes effect but answers UNKNOWN. With `dedup` a known payment id answers its first
    decision (an idempotency key); without it a retry runs the payment again."""

    def __init__(self, spec: WorkloadSpec, *, dedup: bool, unknown_every: int) -> None:
        self.initial = initial_balances(spec)
        self.balances = dict(self.initial)
        accounts = sorted(self.initial)
        self.owner = {a: ("accounts-a" if i < len(accounts) // 2 else "accounts-b")
                      for i, a in enumerate(accounts)}
        self.txns: dict[str, dict[str, dict[str, Any]]] = {
            "accounts-a": {}, "accounts-b": {}, "ledger": {}}
        self.payments: dict[str, dict[str, Any]] = {}
        self.dedup, self.unknown_every, self.n = dedup, unknown_every, 0

    def _run(self, t: Transfer) -> str:
        parts = sorted({self.owner[t.source], self.owner[t.dest]}) + ["ledger"]
        commit = self.balances[t.source] >= t.amount
        if commit:
            self.balances[t.source] -= t.amount
            self.balances[t.dest] += t.amount
        for p in parts:
            rec = self.txns[p].setdefault(t.id, {"state": "aborted", "applied": 0})
            if commit:  # a second run of the same id applies its effect again
                rec["state"] = "committed"
                rec["applied"] += 1
        decision = "commit" if commit else "abort"
        self.payments[t.id] = {"decision": decision, "participants": parts}
        return decision

    async def transfer(self, t: Transfer) -> OpResult:
        self.n += 1
        await asyncio.sleep(0)
        known = self.payments.get(t.id)
        decision = known["decision"] if known and self.dedup else self._run(t)
        if self.unknown_every and self.n % self.unknown_every == 0:
            return OpResult(Outcome.UNKNOWN, error="timeout")
        return OpResult(Outcome.OK) if decision == "commit" else \
            OpResult(Outcome.FAIL, error="insufficient-funds")

    def state(self) -> dict[str, Any]:
        parts: dict[str, Any] = {p: {"txns": t} for p, t in self.txns.items()}
        for p in ("accounts-a", "accounts-b"):
            parts[p]["balances"] = {a: b for a, b in self.balances.items() if self.owner[a] == p}
        return {"initial_balances": self.initial, "participants": parts,
                "coordinator": {"payments": self.payments}}


def retry_run(*, dedup: bool) -> tuple[list[Op], dict[str, Any]]:
    spec = WorkloadSpec(shape="retry", ops=300, read_share=0.0, backoff_s=0.0, retry_delay_s=0.0)
    bank = ShardedBank(spec, dedup=dedup, unknown_every=5)
    rec = HistoryRecorder()
    asyncio.run(run_clients(bank, rec, spec, seed=SEED, until=60.0))
    return validate_history(rec.ops), bank.state()


def verdicts(history: list[Op], state: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c for c in check_all(history, state, OPTIONS).to_json()["checkers"]}


def retried_after_info_then_ok(history: list[Op]) -> int:
    """Payment ids whose attempts read info, ..., then ok."""
    told: dict[str, list[OpType]] = {}
    open_: dict[Any, Op] = {}
    for op in history:
        if op.type is OpType.INVOKE:
            open_[op.process] = op
        else:
            told.setdefault(open_.pop(op.process).value["id"], []).append(op.type)
    return sum(len(v) > 1 and v[-1] is OpType.OK and OpType.INFO in v for v in told.values())


def test_info_then_ok_retries_of_an_idempotent_bank_are_valid() -> None:
    history, state = retry_run(dedup=True)
    assert retried_after_info_then_ok(history) > 20
    v = verdicts(history, state)
    assert {name: c["valid"] for name, c in v.items()} == {
        "atomicity": True, "client-agreement": True, "exactly-once": True,
        "conservation": True, "no-negative": True, "resolution": True}


def test_a_retry_that_runs_the_payment_twice_is_caught() -> None:
    history, state = retry_run(dedup=False)
    v = verdicts(history, state)
    assert v["exactly-once"]["valid"] is False
    assert "applied-more-than-once" in v["exactly-once"]["evidence"]
    assert v["conservation"]["valid"] is False
    # a retry re-run after its first attempt committed can also be refused for funds:
    # the client is then told fail for a committed payment, which agreement reports
    assert v["no-negative"]["valid"] is True and v["resolution"]["valid"] is True


def _history(*attempts: tuple[int, str]) -> list[Op]:
    """One payment, attempted by the given (process, outcome) pairs in order."""
    rec = HistoryRecorder()
    value = {"id": "pay-000001", "from": "acct-01", "to": "acct-05", "amount": 10}
    for process, outcome in attempts:
        inv = rec.invoke(process, "transfer", dict(value))
        rec.complete(inv, OpType(outcome), error=None if outcome == "ok" else "x")
    return validate_history(rec.ops)


def _state(decision: str, applied: int) -> dict[str, Any]:
    parts = ["accounts-a", "accounts-b", "ledger"]
    rec = {"state": "committed" if decision == "commit" else "aborted", "applied": applied}
    moved = 10 * applied if decision == "commit" else 0
    return {"initial_balances": {"acct-01": 100, "acct-05": 100},
            "participants": {"accounts-a": {"txns": {"pay-000001": dict(rec)},
                                            "balances": {"acct-01": 100 - moved}},
                             "accounts-b": {"txns": {"pay-000001": dict(rec)},
                                            "balances": {"acct-05": 100 + moved}},
                             "ledger": {"txns": {"pay-000001": dict(rec)}}},
            "coordinator": {"payments": {"pay-000001": {"decision": decision, "participants": parts}}}}


def test_hand_written_retries_each_attempt_is_judged_against_the_one_outcome() -> None:
    info_ok = _history((0, "info"), (1, "ok"))
    assert verdicts(info_ok, _state("commit", 1))["client-agreement"]["valid"] is True
    assert verdicts(info_ok, _state("abort", 0))["client-agreement"]["valid"] is False
    info_fail = _history((0, "info"), (1, "info"), (2, "fail"))
    assert verdicts(info_fail, _state("abort", 0))["client-agreement"]["valid"] is True
    bad = verdicts(info_fail, _state("commit", 1))["client-agreement"]
    assert bad["valid"] is False and "fail-but-committed" in bad["evidence"]
    twice = verdicts(info_ok, _state("commit", 2))
    assert twice["exactly-once"]["valid"] is False and twice["conservation"]["valid"] is False


def test_the_retry_example_in_the_docs_is_a_valid_history(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    block = next(b for b in re.findall(r"```\n(.*?)```", text, re.S) if b.startswith('{"index":10'))
    (tmp_path / "h.jsonl").write_text(block)
    ops = load_history(tmp_path / "h.jsonl")
    assert [(o.process, o.type.value, o.value["id"]) for o in ops] == [
        (3, "invoke", "pay-000004"), (3, "info", "pay-000004"),
        (4, "invoke", "pay-000004"), (4, "ok", "pay-000004")]
