"""One index over history and state that every checker reads from, kept as columns.

Built once per check (harness/checkers/build.py), from files or from values in
memory, so six checkers over a ten-million-event history cost a few vector
passes, not one Python loop per question. Payments are rows, numbered in the
order they first appear (participants' records, then the coordinator, then the
history); participants are columns. Checkers ask the vector questions
(`summary_all`) to find the few payments that need a closer look, and answer
those with the per-payment methods below, which say exactly what the evidence
says. Also the one place that decides who the participants of a payment are
(the rule in docs/formats.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from harness.model import Op, OpType

__all__ = ["Facts", "Records", "ABSENT", "NOT_IN_STATE", "STATUS", "COMMITTED", "ABORTED",
           "PREPARED", "NO_STATUS", "COMMIT", "ABORT", "TYPES"]

ABSENT = "absent"            # the participant exists but has no record of the payment
NOT_IN_STATE = "not-in-state"  # the payment needs a participant the state lacks
STATUS = (ABSENT, "committed", "aborted", "prepared")  # status codes 0..3
COMMITTED, ABORTED, PREPARED = 1, 2, 3
NO_STATUS = -1               # summary: the participants do not share one status
COMMIT, ABORT = 1, 2         # decision codes; 0 = no record or undecided
DECISIONS = (None, "commit", "abort")
TYPES = (OpType.INVOKE, OpType.OK, OpType.FAIL, OpType.INFO)  # completion type codes 0..3


@dataclass
class Records:
    """One participant's txn records, in the state file's order."""

    rows: np.ndarray     # payment row of each record
    status: np.ndarray   # status code (1..3)
    applied: np.ndarray  # `applied`, -1 when the record does not report it


@dataclass
class Facts:
    state: dict[str, Any]           # the state; txns and coordinator payments are the columns below
    participants: list[str]         # participant names, in the state's order
    records: list[Records]          # per participant
    owners: dict[str, str]          # account -> participant holding its balance
    everywhere: list[str]           # participants that take part in every payment
    pids: pa.Array                  # row -> payment id (Arrow strings: no Python object per id)
    accounts: list[str]             # account code -> name
    status: np.ndarray              # [row, participant] status code, 0 = no record
    has_coord: np.ndarray           # row has a coordinator record
    decision: np.ndarray            # row -> decision code
    plist: np.ndarray               # row -> index into plists, -1 = coordinator lists none
    plists: list[list[str]]         # distinct participant lists of the coordinator
    requested: np.ndarray           # row was invoked as a transfer in the history
    src: np.ndarray                 # row -> account code of `from` (history, else coordinator), -1
    dst: np.ndarray
    amount: np.ndarray
    completions: tuple[np.ndarray, np.ndarray, np.ndarray]  # (index, type code, row), history order
    reads: list[Op]                 # ok reads that may be evidence (see build.keep_read)
    n_reads: int                    # all ok reads
    n_events: int
    _summary: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _col: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._col = {p: i for i, p in enumerate(self.participants)}

    # ------------------------------------------------------------ building (thin wrappers)

    @classmethod
    def build(cls, history: list[Op], state: dict[str, Any]) -> Facts:
        """From a history and a state in memory (a chaos run's end, tests)."""
        from harness.checkers.build import facts_from_values
        return facts_from_values(history, state)

    # ------------------------------------------------------------ per payment (evidence)

    def pid(self, r: int) -> str:
        """The payment id of row `r`."""
        return self.pids[int(r)].as_py()

    def transfer_values(self, r: int) -> tuple[str, str, int] | None:
        """from, to, amount of a payment: the history's request, else the coordinator's record."""
        if self.src[r] < 0:
            return None
        return self.accounts[self.src[r]], self.accounts[self.dst[r]], int(self.amount[r])

    def participants_of(self, r: int) -> tuple[list[str], bool]:
        """The participants a payment needs, and whether that list is certain.

        The coordinator's list when it has one (certain). Otherwise: the participants
        with a record of it, those marked `in_every_payment`, and the owners of its
        `from` and `to` accounts; certain only if both owners are known.
        """
        if self.plist[r] >= 0:
            return self.plists[self.plist[r]], True
        ps = [self.participants[c] for c in np.flatnonzero(self.status[r])]
        for p in self.everywhere:
            if p not in ps:
                ps.append(p)
        certain = False
        if self.src[r] >= 0:
            src = self.owners.get(self.accounts[self.src[r]])
            dst = self.owners.get(self.accounts[self.dst[r]])
            for o in (src, dst):
                if o is not None and o not in ps:
                    ps.append(o)
            certain = src is not None and dst is not None
        return ps, certain

    def status_of(self, participant: str, r: int) -> str:
        """committed / aborted / prepared, ABSENT (no record) or NOT_IN_STATE."""
        c = self._col.get(participant)
        if c is None:
            return NOT_IN_STATE
        return STATUS[self.status[r, c]]

    def statuses(self, r: int) -> dict[str, str]:
        ps, _ = self.participants_of(r)
        return {p: self.status_of(p, r) for p in ps}

    def decision_of(self, r: int) -> str | None:
        return DECISIONS[self.decision[r]]

    def known_anywhere(self, r: int) -> bool:
        return bool(self.status[r].any())

    def committed_at(self, r: int) -> list[str]:
        return [self.participants[c] for c in np.flatnonzero(self.status[r] == COMMITTED)]

    # ------------------------------------------------------------ all payments at once

    def summary_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uniform status or NO_STATUS, decision code, participants certain) for every row.

        The vector form of "do all of the payment's participants agree": almost every
        payment is uniformly committed or aborted, and only the rest need a closer look.
        """
        if self._summary is None:
            self._summary = self._summarize()
        return self._summary

    def _summarize(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, P = self.status.shape
        uniform = np.full(n, NO_STATUS, np.int8)
        certain = np.zeros(n, bool)
        listed = self.plist >= 0
        col = self._col
        for i, ps in enumerate(self.plists):  # the coordinator's lists: few distinct ones
            rows = np.flatnonzero(self.plist == i)
            certain[rows] = True
            if not ps or any(p not in col for p in ps):
                continue
            st = self.status[np.ix_(rows, [col[p] for p in ps])]
            same = (st == st[:, :1]).all(axis=1)
            uniform[rows[same]] = st[same, 0]
        rows = np.flatnonzero(~listed)
        st = self.status[rows]
        has = st != 0
        extra = np.zeros_like(has)  # needed participants without a record: everywhere and owners
        for p in self.everywhere:
            extra[:, col[p]] = True
        known = self.src[rows] >= 0
        owner_col = np.array([col[self.owners[a]] if a in self.owners else -1
                              for a in self.accounts] + [-1], np.int64)
        so = owner_col[self.src[rows]]
        do = owner_col[self.dst[rows]]
        for o in (so, do):
            hit = known & (o >= 0)
            extra[np.flatnonzero(hit), o[hit]] = True
        certain[rows] = known & (so >= 0) & (do >= 0)
        missing = (extra & ~has).any(axis=1)
        any_rec = has.any(axis=1)
        hi = st.max(axis=1) if P else np.zeros(len(rows), np.int8)
        lo = np.where(has, st, 127).min(axis=1) if P else hi
        u = np.where(any_rec & (lo == hi), hi, NO_STATUS)
        u = np.where(missing, np.where(any_rec, NO_STATUS, 0), u)
        u = np.where(~any_rec & ~missing, NO_STATUS, u)  # nobody takes part: nothing to share
        uniform[rows] = u
        return uniform, self.decision, certain
