"""Kafka topics read back -> the docs/formats.md state, plus the checks this target adds.

Pure: input is what the snapshot read (every partition from the start, once
with isolation read_committed up to the last stable offset, once with
read_uncommitted up to the high watermark) and the processors' journals of
transaction attempts. Participants are partitions: `accounts-pI` (account I's
debit and credit records), `ledger`, `results`. A payment's records on a
partition, counted, are its `applied`:

- visible under read_committed          -> committed, applied = count;
- only under read_uncommitted, at or past the last stable offset -> prepared
  (its transaction is still open);
- only under read_uncommitted, below it -> aborted.

The extra checks are written as evidence under `kafka_eos.checks` and folded
into the participant records so the six checkers see them: a record of an
attempt its producer aborted yet visible to read_committed becomes
`aborted` with applied > 0 (exactly-once: aborted-but-applied); a record of an
attempt whose commit returned but that is missing becomes `committed` with
applied 0 (exactly-once: committed-not-applied).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from targets.kafka_eos.protocol import Layout

__all__ = ["Read", "build_state", "EXAMPLES"]

EXAMPLES = 5
# (topic, partition) -> [(offset, record)] in offset order
Read = Mapping[tuple[str, int], list[tuple[int, dict[str, Any]]]]


def _participant_of(layout: Layout, topic: str, partition: int) -> str | None:
    if topic == layout.account_topic:
        return f"accounts-p{partition}"
    if topic == layout.ledger:
        return "ledger"
    if topic == layout.results:
        return "results"
    return None


class _Check:
    def __init__(self) -> None:
        self.count = 0
        self.examples: list[dict[str, Any]] = []

    def add(self, **ex: Any) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(ex)

    def to_json(self, what: str) -> dict[str, Any]:
        return {"valid": self.count == 0, "what": what, "count": self.count, "examples": self.examples}


def _attempts(journal: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """txn attempt -> its begin fields and final outcome (committed/aborted/unknown/begin)."""
    out: dict[str, dict[str, Any]] = {}
    for line in journal:
        rec = out.setdefault(line["txn"], {"outcome": "begin"})
        if line.get("outcome") == "begin":
            rec.update({k: v for k, v in line.items() if k not in ("outcome", "t")})
        else:
            rec["outcome"] = line["outcome"]
    return out


def build_state(*, initial: Mapping[str, int], layout: Layout, committed: Read, uncommitted: Read,
                stable: Mapping[tuple[str, int], int], requests: Iterable[dict[str, Any]],
                journal: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The state of one deployment; `stable` is each partition's last stable offset."""
    checks = {k: _Check() for k in ("aborted-read", "lost-committed-write", "offsets-monotonic",
                                    "committed-subset", "fencing-order")}
    attempts = _attempts(journal)
    by_id = _requests_by_id(requests)
    parts: dict[str, dict[str, Any]] = {f"accounts-p{i}": {"txns": {}, "balances": {a: initial.get(a, 0)}}
                                        for i, a in enumerate(layout.accounts)}
    parts["ledger"] = {"txns": {}}
    parts["results"] = {"txns": {}}
    seen_attempts: dict[tuple[str, str], int] = {}  # (participant, txn) -> records visible

    for (topic, partition), recs in sorted(committed.items()):
        p = _participant_of(layout, topic, partition)
        if p is None:
            continue
        ru = {off: r for off, r in uncommitted.get((topic, partition), [])}
        last = -1
        order: dict[str, tuple[int, int]] = {}  # tid -> last (pid, epoch)
        visible: dict[str, list[str]] = {}  # payment -> attempts visible here
        for off, rec in recs:
            if off <= last:
                checks["offsets-monotonic"].add(participant=p, offset=off, previous=last)
            last = off
            if ru.get(off) != rec:
                checks["committed-subset"].add(participant=p, offset=off,
                                               detail="read_committed saw a record read_uncommitted did not")
            tid, pe = rec.get("tid"), (rec.get("pid", -1), rec.get("epoch", -1))
            if tid is not None:
                if tid in order and pe < order[tid]:
                    checks["fencing-order"].add(participant=p, offset=off, tid=tid, producer=list(pe),
                                                after=list(order[tid]),
                                                detail="an older producer epoch wrote after a newer one")
                order[tid] = max(order.get(tid, pe), pe)
            pid, txn = rec["payment"], rec.get("txn", "")
            seen_attempts[(p, txn)] = seen_attempts.get((p, txn), 0) + 1
            if rec.get("replay"):
                continue  # the answer to a client's re-submission: no effect of its own
            if p == "results" and rec.get("status") != "ok":
                parts[p]["txns"].setdefault(pid, {"state": "aborted", "applied": 0})
                continue
            visible.setdefault(pid, []).append(txn)
            if topic == layout.account_topic:
                sign = -1 if rec.get("kind") == "debit" else 1
                bal = parts[p]["balances"]
                bal[rec["account"]] = bal.get(rec["account"], 0) + sign * int(rec["amount"])
        for pid, txns in visible.items():
            aborted = [t for t in txns if attempts.get(t, {}).get("outcome") == "aborted"]
            for t in aborted:
                checks["aborted-read"].add(participant=p, payment=pid, txn=t,
                                           detail="its producer aborted this transaction, yet "
                                                  "read_committed returns its record")
            state = "aborted" if len(aborted) == len(txns) else "committed"
            parts[p]["txns"][pid] = {"state": state, "applied": len(txns)}

    # Records only read_uncommitted returns: aborted below the last stable offset, open past it.
    for (topic, partition), recs in sorted(uncommitted.items()):
        p = _participant_of(layout, topic, partition)
        if p is None:
            continue
        lso = stable.get((topic, partition), 0)
        rc_offsets = {off for off, _ in committed.get((topic, partition), [])}
        last = -1
        for off, rec in recs:
            if off <= last:
                checks["offsets-monotonic"].add(participant=p, offset=off, previous=last,
                                                isolation="read_uncommitted")
            last = off
            if off not in rc_offsets and not rec.get("replay"):
                parts[p]["txns"].setdefault(rec["payment"], {"state": "prepared" if off >= lso else "aborted",
                                                             "applied": 0})

    # Lost committed writes: an attempt whose commit returned must be visible in full.
    for txn, a in attempts.items():
        if a.get("outcome") != "committed" or "payment" not in a:
            continue
        pid = a["payment"]
        req = (by_id.get(pid) or [None])[0]
        expected = ["results"]
        if a.get("status") == "ok" and req is not None:
            expected += [layout.participant(req["from"]), layout.participant(req["to"]), "ledger"]
        for p in expected:
            if seen_attempts.get((p, txn), 0) == 0:
                checks["lost-committed-write"].add(participant=p, payment=pid, txn=txn,
                                                   detail="commit_transaction returned, but the record "
                                                          "is not visible")
                parts[p]["txns"].setdefault(pid, {"state": "committed", "applied": 0})

    payments: dict[str, Any] = {}
    for pid, reqs in by_id.items():
        r = reqs[0]
        if r.get("from") not in layout.accounts or r.get("to") not in layout.accounts:
            continue
        payments[pid] = {"decision": None, "from": r["from"], "to": r["to"], "amount": int(r["amount"]),
                         "participants": sorted({layout.participant(r["from"]), layout.participant(r["to"]),
                                                 "ledger", "results"})}
    outcomes: dict[str, int] = {}
    for a in attempts.values():
        outcomes[a["outcome"]] = outcomes.get(a["outcome"], 0) + 1
    return {
        "initial_balances": dict(initial),
        "participants": parts,
        "coordinator": {"payments": payments},
        "kafka_eos": {
            "checks": {
                "aborted-read": checks["aborted-read"].to_json(
                    "no record of an aborted transaction is visible to read_committed"),
                "lost-committed-write": checks["lost-committed-write"].to_json(
                    "every record of a transaction whose commit returned is visible"),
                "offsets-monotonic": checks["offsets-monotonic"].to_json(
                    "offsets strictly increase in every partition, under both isolation levels"),
                "committed-subset": checks["committed-subset"].to_json(
                    "read_committed returns a subset of read_uncommitted, record for record"),
                "fencing-order": checks["fencing-order"].to_json(
                    "per transactional id, no older producer epoch writes after a newer one"),
            },
            "attempts": outcomes,
            "records": {f"{t}/{p}": len(v) for (t, p), v in sorted(committed.items())},
        },
    }


def _requests_by_id(requests: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in requests:
        out.setdefault(r["id"], []).append(r)
    return out
