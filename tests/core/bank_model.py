"""A correct model of a 2PC bank that writes a history and a final state.

Used by the checker tests to build valid runs, which tests then corrupt. The
model is the specification in miniature: a committed payment is committed and
applied once at each of its participants, an aborted one is aborted or unknown
at each, clients are told ok/fail only when that is true, info otherwise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from harness.history import HistoryRecorder
from harness.model import Op, OpType

ACCOUNTS = {"acct-01": "accounts-a", "acct-02": "accounts-a",
            "acct-03": "accounts-b", "acct-04": "accounts-b"}
SERVICES = ["ledger", "notifications"]


@dataclass
class BankRun:
    coordinator: bool = True
    initial: int = 100
    recorder: HistoryRecorder = field(default_factory=lambda: HistoryRecorder(clock=_counter()))
    balances: dict[str, int] = field(default_factory=dict)
    txns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    told: dict[str, str] = field(default_factory=dict)
    in_doubt: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_process: int = 0

    def __post_init__(self) -> None:
        self.balances = {a: self.initial for a in ACCOUNTS}
        self.txns = {p: {} for p in [*sorted(set(ACCOUNTS.values())), *SERVICES]}

    def _process(self) -> int:
        return self.next_process

    def participants(self, src: str, dst: str) -> list[str]:
        return sorted({ACCOUNTS[src], ACCOUNTS[dst]}) + SERVICES

    def transfer(self, pid: str, src: str, dst: str, amount: int, *, commit: bool | None = None,
                 told: str | None = None, absent: tuple[str, ...] = ()) -> None:
        """Run one payment. commit=None: commit iff funds suffice. told: what the client
        hears (default ok/fail by outcome; "info" or "open" for unknown outcomes)."""
        if commit is None:
            commit = self.balances[src] >= amount
        told = told or ("ok" if commit else "fail")
        assert told in ("info", "open") or (told == "ok") == commit
        value = {"id": pid, "from": src, "to": dst, "amount": amount}
        inv = self.recorder.invoke(self._process(), "transfer", value)
        ps = self.participants(src, dst)
        if commit:
            self.balances[src] -= amount
            self.balances[dst] += amount
            for p in ps:
                self.txns[p][pid] = {"state": "committed", "applied": 1}
        else:
            for p in ps:
                if p not in absent:
                    self.txns[p][pid] = {"state": "aborted", "applied": 0}
        self.payments[pid] = {"decision": "commit" if commit else "abort", "participants": ps}
        if told == "fail":
            self.recorder.complete(inv, OpType.FAIL, error="insufficient-funds")
        elif told == "ok":
            self.recorder.complete(inv, OpType.OK)
        elif told == "info":
            self.recorder.complete(inv, OpType.INFO, error="timeout")
        if told in ("info", "open"):
            self.next_process += 1
        self.told[pid] = told

    def read(self, told: str = "ok") -> None:
        inv = self.recorder.invoke(self._process(), "read", None)
        if told == "ok":
            self.recorder.complete(inv, OpType.OK, dict(self.balances))
        else:
            self.recorder.complete(inv, OpType.INFO, error="timeout")
            self.next_process += 1

    def fault(self) -> None:
        self.recorder.nemesis("start", {"fault": "partition", "targets": ["ledger"]})
        self.recorder.nemesis("stop", {"fault": "partition", "targets": ["ledger"]})

    def blocked(self, pid: str, seconds: float) -> None:
        self.in_doubt[pid] = {"participants": self.payments[pid]["participants"],
                              "blocked_s": seconds, "resolved": True}

    @property
    def history(self) -> list[Op]:
        return self.recorder.ops

    def state(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        for p, txns in self.txns.items():
            rec: dict[str, Any] = {"txns": copy.deepcopy(txns)}
            owned = {a: b for a, b in self.balances.items() if ACCOUNTS[a] == p}
            if owned:
                rec["balances"] = owned
            elif not self.coordinator:
                rec["in_every_payment"] = True
            parts[p] = rec
        state: dict[str, Any] = {"initial_balances": {a: self.initial for a in ACCOUNTS},
                                 "participants": parts}
        if self.coordinator:
            state["coordinator"] = {"payments": copy.deepcopy(self.payments)}
        if self.in_doubt:
            state["resolution"] = {"healed_at": 0, "quiesced_at": 1, "bound_s": 30.0,
                                   "in_doubt": copy.deepcopy(self.in_doubt)}
        return state


def _counter():
    n = iter(range(0, 10**12, 1000))
    return lambda: next(n)
