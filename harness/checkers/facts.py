"""One pass over history and state that every checker reads from.

Built once per check so that six checkers over a million-op history cost one
scan each, not one scan per question. Also the one place that decides who the
participants of a payment are (the rule in docs/formats.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.model import NEMESIS, Op, OpType

__all__ = ["Facts", "TransferInfo", "ABSENT", "NOT_IN_STATE"]

ABSENT = "absent"            # the participant exists but has no record of the payment
NOT_IN_STATE = "not-in-state"  # the payment needs a participant the state lacks


@dataclass(slots=True)
class TransferInfo:
    source: str
    dest: str
    amount: int
    invoke_index: int


@dataclass
class Facts:
    state: dict[str, Any]
    participants: dict[str, dict[str, Any]]
    txns: dict[str, dict[str, Any]]  # participant -> its txns
    coordinator: dict[str, dict[str, Any]]  # payment id -> coordinator record
    owners: dict[str, str]  # account -> participant holding its balance
    everywhere: list[str]  # participants that take part in every payment
    transfers: dict[str, TransferInfo]  # payment id -> request, from the history
    completions: list[tuple[int, OpType, str]]  # (index, type, payment id); open invokes as info
    reads: list[Op]  # ok reads
    _parts_cache: dict[str, tuple[list[str], bool]] = field(default_factory=dict)

    @classmethod
    def build(cls, history: list[Op], state: dict[str, Any]) -> Facts:
        parts = state.get("participants") or {}
        txns = {p: (rec.get("txns") or {}) for p, rec in parts.items()}
        owners: dict[str, str] = {}
        for p, rec in parts.items():
            for acct in rec.get("balances") or {}:
                owners[acct] = p
        everywhere = [p for p, rec in parts.items() if rec.get("in_every_payment")]
        coord = (state.get("coordinator") or {}).get("payments") or {}
        transfers: dict[str, TransferInfo] = {}
        completions: list[tuple[int, OpType, str]] = []
        reads: list[Op] = []
        open_: dict[int | str, Op] = {}
        INVOKE, OK = OpType.INVOKE, OpType.OK
        for op in history:
            if op.process == NEMESIS:
                continue
            if op.type is INVOKE:
                open_[op.process] = op
                if op.f == "transfer":
                    v = op.value
                    if v["id"] not in transfers:
                        transfers[v["id"]] = TransferInfo(v["from"], v["to"], v["amount"], op.index)
                continue
            inv = open_.pop(op.process, None)
            if op.f == "transfer" and inv is not None:
                completions.append((op.index, op.type, inv.value["id"]))
            elif op.f == "read" and op.type is OK:
                reads.append(op)
        for inv in open_.values():  # never completed: indeterminate, like info
            if inv.f == "transfer":
                completions.append((inv.index, OpType.INFO, inv.value["id"]))
        return cls(state, parts, txns, coord, owners, everywhere, transfers, completions, reads)

    def transfer_values(self, pid: str) -> tuple[str, str, int] | None:
        """from, to, amount of a payment: the history's request, else the coordinator's record."""
        t = self.transfers.get(pid)
        if t is not None:
            return t.source, t.dest, t.amount
        c = self.coordinator.get(pid) or {}
        if all(k in c for k in ("from", "to", "amount")):
            return c["from"], c["to"], c["amount"]
        return None

    def participants_of(self, pid: str) -> tuple[list[str], bool]:
        """The participants a payment needs, and whether that list is certain.

        The coordinator's list when it has one (certain). Otherwise: the participants
        with a record of it, those marked `in_every_payment`, and the owners of its
        `from` and `to` accounts; certain only if both owners are known.
        """
        c = self.coordinator.get(pid)
        if c is not None and c.get("participants") is not None:
            return c["participants"], True
        hit = self._parts_cache.get(pid)
        if hit is not None:
            return hit
        ps = [p for p, t in self.txns.items() if pid in t]
        for p in self.everywhere:
            if p not in ps:
                ps.append(p)
        certain = False
        tv = self.transfer_values(pid)
        if tv is not None:
            src, dst = self.owners.get(tv[0]), self.owners.get(tv[1])
            for o in (src, dst):
                if o is not None and o not in ps:
                    ps.append(o)
            certain = src is not None and dst is not None
        res = (ps, certain)
        self._parts_cache[pid] = res
        return res

    def status(self, participant: str, pid: str) -> str:
        """committed / aborted / prepared, ABSENT (no record) or NOT_IN_STATE."""
        t = self.txns.get(participant)
        if t is None:
            return NOT_IN_STATE
        rec = t.get(pid)
        return ABSENT if rec is None else rec["state"]

    def uniform(self, pid: str) -> str | None:
        """The one status all of a payment's participants share, or None if they differ
        (or a participant is missing from the state)."""
        return self.summary(pid)[0]

    def summary(self, pid: str) -> tuple[str | None, str | None, bool]:
        """(uniform status, coordinator decision, participants certain) in one lookup.

        The checkers' fast path: almost every payment is uniformly committed or
        aborted, and only the rest need a closer look.
        """
        c = self.coordinator.get(pid)
        if c is not None:
            ps = c.get("participants")
            decision = c.get("decision")
        else:
            ps = decision = None
        if ps is None:
            ps, certain = self.participants_of(pid)
        else:
            certain = True
        txns = self.txns
        u = None
        for p in ps:
            t = txns.get(p)
            if t is None:
                return None, decision, certain
            rec = t.get(pid)
            s = ABSENT if rec is None else rec["state"]
            if u is None:
                u = s
            elif s != u:
                return None, decision, certain
        return u, decision, certain

    def statuses(self, pid: str) -> dict[str, str]:
        ps, _ = self.participants_of(pid)
        return {p: self.status(p, pid) for p in ps}

    def known_anywhere(self, pid: str) -> bool:
        return any(pid in t for t in self.txns.values())

    def payment_ids(self) -> set[str]:
        ids: set[str] = set(self.transfers)
        ids.update(self.coordinator)
        for t in self.txns.values():
            ids.update(t)
        return ids
