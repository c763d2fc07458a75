"""Conservation: no money is created or lost.

Final balances sum to the initial total; each account's balance equals its initial
balance plus the committed transfers its owner recorded; with snapshot reads,
every ok read sums to the total too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checkers.facts import COMMITTED, Facts
from harness.checkers.verdict import CheckOptions, Findings, Verdict
from harness.model import Op

NAME = "conservation"
KINDS = {
    "total-changed": "violation",       # final balances do not sum to the initial total
    "balance-mismatch": "violation",    # balance != initial + committed transfers of its owner
    "read-total-wrong": "violation",    # an ok snapshot read does not sum to the total
    "no-initial-balances": "unknown",
    "no-balances": "unknown",           # no participant reports balances
    "account-missing": "unknown",       # an initial account has no owner in the state
    "transfer-unknown": "unknown",      # a committed payment whose from/to/amount is unknown
    "read-incomplete": "unknown",       # a snapshot read that does not list every account
}


def final_balances(facts: Facts) -> dict[str, int]:
    out: dict[str, int] = {}
    for rec in facts.state["participants"].values():
        out.update(rec.get("balances") or {})
    return out


def check_conservation(history: list[Op], state: dict[str, Any],
                       options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    initial = facts.state.get("initial_balances")
    finals = final_balances(facts)
    if initial is None:
        out.add("no-initial-balances", detail="state has no initial_balances")
        return out.verdict(NAME, "")
    if not finals:
        out.add("no-balances", detail="no participant reports balances")
        return out.verdict(NAME, "")
    total = sum(initial.values())
    missing = [a for a in initial if a not in finals]
    for a in missing:
        out.add("account-missing", account=a, detail=f"no participant holds {a}")
    final_total = sum(finals.values())
    if not missing and final_total != total:
        out.add("total-changed", expected=total, actual=final_total,
                detail=f"balances sum to {final_total}, initially {total}")
    code = {a: i for i, a in enumerate(facts.accounts)}
    big = len(facts.amount) and int(np.abs(facts.amount).max()) > 2**40
    delta = np.zeros(len(facts.accounts), object if big else np.int64)
    moved: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per owner, for evidence
    for c, p in enumerate(facts.participants):
        owned = facts.state["participants"][p].get("balances")
        if not owned:
            continue
        recs = facts.records[c]
        rows = recs.rows[recs.status == COMMITTED]
        src, dst = facts.src[rows], facts.dst[rows]
        for r in rows[src < 0]:
            out.add("transfer-unknown", payment=facts.pid(r), participants=[p],
                    detail="committed, but from/to/amount are in neither history nor coordinator")
        known = src >= 0
        rows, src, dst, amount = rows[known], src[known], dst[known], facts.amount[rows[known]]
        if big:
            amount = amount.astype(object)  # exact sums past 64 bits
        mine = np.zeros(len(facts.accounts), bool)
        mine[[code[a] for a in owned if a in code]] = True
        debit, credit = mine[src], mine[dst]
        np.subtract.at(delta, src[debit], amount[debit])
        np.add.at(delta, dst[credit], amount[credit])
        moved[p] = (rows, np.where(debit, src, -1), np.where(credit, dst, -1))
    for a, actual in finals.items():
        want = initial.get(a, 0) + (int(delta[code[a]]) if a in code else 0)
        if actual != want:
            owner = facts.owners[a]
            out.add("balance-mismatch", account=a, participants=[owner],
                    expected=want, actual=actual, payments=_touched(facts, moved.get(owner), a),
                    detail=f"{a} is {actual}, expected {want} "
                           f"(initial {initial.get(a, 0)} + committed transfers)")
    if options.snapshot_reads:
        accounts = set(initial)
        for op in facts.reads:
            if set(op.value) != accounts:
                out.add("read-incomplete", indexes=[op.index], detail="read does not list every account")
            elif (s := sum(op.value.values())) != total:
                out.add("read-total-wrong", indexes=[op.index], expected=total, actual=s,
                        detail=f"read sums to {s}, total is {total}")
    reads = f", {facts.n_reads} snapshot reads" if options.snapshot_reads else ""
    return out.verdict(NAME, f"{len(finals)} balances sum to {total} and match committed "
                             f"transfers{reads}")


def _touched(facts: Facts, moved: tuple[np.ndarray, ...] | None, account: str) -> list[str]:
    """The first ten committed payments that moved money in or out of `account`."""
    if moved is None or account not in facts.accounts:
        return []
    a = facts.accounts.index(account)
    rows, debit, credit = moved
    out: list[str] = []
    for k in np.flatnonzero((debit == a) | (credit == a)):
        out += [facts.pid(rows[k])] * (int(debit[k] == a) + int(credit[k] == a))
        if len(out) >= 10:
            break
    return out[:10]
