"""Conservation: no money is created or lost.

Final balances sum to the initial total; each account's balance equals its initial
balance plus the committed transfers its owner recorded; with snapshot reads,
every ok read sums to the total too.
"""

from __future__ import annotations

from typing import Any

from harness.checkers.facts import Facts
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
    for rec in facts.participants.values():
        out.update(rec.get("balances") or {})
    return out


def check_conservation(history: list[Op], state: dict[str, Any],
                       options: CheckOptions = CheckOptions(), facts: Facts | None = None) -> Verdict:
    facts = facts or Facts.build(history, state)
    out = Findings(KINDS)  # type: ignore[arg-type]
    initial = state.get("initial_balances")
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
    expected = {a: initial.get(a, 0) for a in finals}
    touched: dict[str, list[str]] = {}
    for p, rec in facts.participants.items():
        owned = rec.get("balances")
        if not owned:
            continue
        transfers = facts.transfers
        for pid, t in facts.txns[p].items():
            if t["state"] != "committed":
                continue
            ti = transfers.get(pid)
            tv = (ti.source, ti.dest, ti.amount) if ti is not None else facts.transfer_values(pid)
            if tv is None:
                out.add("transfer-unknown", payment=pid, participants=[p],
                        detail="committed, but from/to/amount are in neither history nor coordinator")
                continue
            src, dst, amount = tv
            if src in owned:
                expected[src] -= amount
                touched.setdefault(src, []).append(pid)
            if dst in owned:
                expected[dst] += amount
                touched.setdefault(dst, []).append(pid)
    for a, want in expected.items():
        if finals[a] != want:
            out.add("balance-mismatch", account=a, participants=[facts.owners[a]],
                    expected=want, actual=finals[a], payments=touched.get(a, [])[:10],
                    detail=f"{a} is {finals[a]}, expected {want} "
                           f"(initial {initial.get(a, 0)} + committed transfers)")
    if options.snapshot_reads:
        accounts = set(initial)
        for op in facts.reads:
            if set(op.value) != accounts:
                out.add("read-incomplete", indexes=[op.index], detail="read does not list every account")
            elif (s := sum(op.value.values())) != total:
                out.add("read-total-wrong", indexes=[op.index], expected=total, actual=s,
                        detail=f"read sums to {s}, total is {total}")
    reads = f", {len(facts.reads)} snapshot reads" if options.snapshot_reads else ""
    return out.verdict(NAME, f"{len(finals)} balances sum to {total} and match committed "
                             f"transfers{reads}")
