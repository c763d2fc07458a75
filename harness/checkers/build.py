"""Building Facts: one builder fed the same way from files (streamed) or from values in memory.

The state comes first (its payments become rows, its initial balances decide which
reads may be evidence), then the history as `HistoryColumns`. A history in memory
(the end of a chaos run, tests) is reduced by the loop below; a history file by the
streaming reader in harness/history.py. Both hand over the same columns, so a
check gives the same verdicts and evidence whichever way its inputs came.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.checkers.facts import Facts, Records
from harness.model import NEMESIS, Op, OpType

__all__ = ["FactsBuilder", "HistoryColumns", "facts_from_values", "STATUS_CODE", "TYPE_CODE"]

STATUS_CODE = {"committed": 1, "aborted": 2, "prepared": 3}
DECISION_CODE = {"commit": 1, "abort": 2}
TYPE_CODE = {OpType.INVOKE: 0, OpType.OK: 1, OpType.FAIL: 2, OpType.INFO: 3}
_EMPTY = np.zeros(0, np.int64)
# Arrow's own pools keep freed memory for reuse; the system allocator gives big blocks
# back at once, so the peak stays that of the largest step, not the sum of them.
_POOL = pa.system_memory_pool()


def ints(xs: Sequence[int] | np.ndarray) -> np.ndarray:
    """int64, or Python ints (object) for numbers past 64 bits, which JSON allows."""
    if not len(xs):
        return _EMPTY
    try:
        return np.asarray(xs, dtype=np.int64)
    except OverflowError:
        return np.asarray(xs, dtype=object)


def _codes(m: dict[str, int], keys: Iterable[str]) -> list[int]:
    """Numbers for keys, new keys numbered on from len(m) in order of first sight.
    (map over dict.get runs at C speed; only the new keys take a Python loop.)"""
    keys = keys if isinstance(keys, list) else list(keys)
    codes = list(map(m.get, keys))
    if None in codes:
        n = len(m)
        m.update(zip(dict.fromkeys(k for k, c in zip(keys, codes) if c is None), count(n)))
        codes = list(map(m.__getitem__, keys))
    return codes


def compact(xs: Sequence[int] | np.ndarray) -> np.ndarray:
    """Small numbers (codes, `applied` counts) in one byte when they fit."""
    a = ints(xs)
    if a.dtype != object and len(a) and -128 <= a.min() and a.max() < 128:
        return a.astype(np.int8)
    return a


def _cat(arrays: Iterable[np.ndarray]) -> np.ndarray:
    arrays = list(arrays)
    return np.concatenate(arrays) if arrays else _EMPTY


def _last_wins(rows: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """A payment id repeated in one JSON object (read in pieces): like json.loads, the
    last value counts, at the place of the first."""
    if len(rows) < 2 or np.bincount(rows).max() < 2:
        return (rows, *cols)
    _, first = np.unique(rows, return_index=True)
    _, last = np.unique(rows[::-1], return_index=True)
    order = np.argsort(first)
    first, last = first[order], len(rows) - 1 - last[order]
    return (rows[first], *(c[last] for c in cols))


@dataclass
class HistoryColumns:
    """What the checkers read from a history: each requested payment's first invoke,
    the transfer outcomes in history order (open invokes last, as info), and the ok
    reads that may be evidence."""

    t_rows: np.ndarray = field(default_factory=lambda: _EMPTY)  # payment row of each first invoke
    t_src: np.ndarray = field(default_factory=lambda: _EMPTY)   # account codes
    t_dst: np.ndarray = field(default_factory=lambda: _EMPTY)
    t_amount: np.ndarray = field(default_factory=lambda: _EMPTY)
    c_index: np.ndarray = field(default_factory=lambda: _EMPTY)  # completions: history index
    c_type: np.ndarray = field(default_factory=lambda: _EMPTY)   # TYPE_CODE
    c_rows: np.ndarray = field(default_factory=lambda: _EMPTY)
    reads: list[Op] = field(default_factory=list)
    n_reads: int = 0
    n_events: int = 0


class FactsBuilder:
    """Numbers payment ids and accounts, collects the columns, makes Facts.

    Payment ids are not kept as Python strings: each batch goes into an Arrow
    string array at once, and they are numbered in hash passes (`dictionary_encode`,
    `index_in`, in order of first sight) after the state and after the history.
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        parts = state.get("participants") or {}
        self.participants = list(parts)
        self.owners = {a: p for p, rec in parts.items() for a in (rec.get("balances") or {})}
        self.everywhere = [p for p, rec in parts.items() if rec.get("in_every_payment")]
        self.acct: dict[str, int] = {}
        self._keys: list[pa.Array] = []
        self._n_keys = 0
        self._slot_rows: np.ndarray | None = None  # slot -> row, for the slots numbered
        self._pids: pa.Array | None = None
        self._records: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = []
        self._coord: list[tuple[np.ndarray, ...]] = []
        self.plists: list[list[str]] = []
        self._plist_ids: dict[tuple[str, ...], int] = {}
        initial = state.get("initial_balances")
        self._accounts = set(initial) if initial is not None else None
        self._total = sum(initial.values()) if initial is not None else 0

    # ------------------------------------------------------------ numbering

    def slots(self, pids: list[str] | pa.Array) -> int:
        """Take a batch of payment ids; returns the slot of the first (the rest follow on).
        `rows(slot, n)` says which payment row each slot is, once `number` has run."""
        self._keys.append(pids if isinstance(pids, pa.Array)
                          else pa.array(pids, pa.string(), memory_pool=_POOL))
        n = self._n_keys
        self._n_keys += len(pids)
        return n

    def number(self) -> None:
        """Number the payment ids taken since the last call: known ids keep their row, new
        ones get the next rows in order of first sight; their strings are then dropped."""
        if not self._keys:
            return
        keys = pa.chunked_array(self._keys, pa.string())
        self._keys = []
        if self._pids is None:
            enc = pc.dictionary_encode(keys, memory_pool=_POOL).combine_chunks(memory_pool=_POOL)
            self._pids, rows = enc.dictionary, enc.indices.to_numpy(zero_copy_only=False)
        else:
            found = pc.index_in(keys, value_set=self._pids, memory_pool=_POOL)
            rows = found.fill_null(-1).to_numpy().astype(np.int64)
            new = rows < 0
            if new.any():
                enc = pc.dictionary_encode(pc.filter(keys, pa.array(new), memory_pool=_POOL),
                                           memory_pool=_POOL).combine_chunks(memory_pool=_POOL)
                rows[new] = enc.indices.to_numpy(zero_copy_only=False) + len(self._pids)
                self._pids = pa.concat_arrays([self._pids, enc.dictionary])
        rows = rows.astype(np.int32 if len(self._pids) < 2**31 else np.int64)
        self._slot_rows = rows if self._slot_rows is None else np.concatenate(
            [self._slot_rows, rows])

    def rows(self, slot: int, n: int) -> np.ndarray:
        """The payment rows of slots slot .. slot+n-1 (numbering what is pending first)."""
        if slot + n > (0 if self._slot_rows is None else len(self._slot_rows)):
            self.number()
        return self._slot_rows[slot:slot + n] if n else _EMPTY

    @property
    def n_rows(self) -> int:
        """How many distinct payment ids have been numbered."""
        return 0 if self._pids is None else len(self._pids)

    def account_pairs(self, src: list[str], dst: list[str]) -> list[tuple[int, int]]:
        """Codes of (from, to) pairs; accounts numbered in order of first sight."""
        codes = _codes(self.acct, [a for pair in zip(src, dst) for a in pair])
        return list(zip(codes[0::2], codes[1::2]))

    def plist_id(self, ps: list[str]) -> int:
        """One shared list per distinct participant list of the coordinator."""
        key = tuple(ps)
        i = self._plist_ids.get(key)
        if i is None:
            i = self._plist_ids[key] = len(self.plists)
            self.plists.append(ps)
        return i

    def keep_read(self, balances: dict[str, int]) -> bool:
        """Whether an ok read may be evidence: it sees a negative balance, misses an account
        or does not sum to the initial total. Others are only counted."""
        if any(b < 0 for b in balances.values()):
            return True
        return self._accounts is not None and (
            balances.keys() != self._accounts or sum(balances.values()) != self._total)

    # ------------------------------------------------------------ feeding

    def add_records(self, pids: list[str], status: Sequence[int], applied: Sequence[int]) -> None:
        """The next participant's txn records (call once per participant, in order)."""
        self.add_record_batch(len(self._records), pids, status, applied)

    def add_record_batch(self, participant: int, pids: list[str] | pa.Array, status: Sequence[int],
                         applied: Sequence[int]) -> None:
        """Some of a participant's records, in order (participants in order too)."""
        while len(self._records) <= participant:
            self._records.append([])
        self._records[participant].append(
            (self.slots(pids), len(pids), np.asarray(status, np.int8), compact(applied)))

    def add_coordinator(self, pids: list[str] | pa.Array, decision: Sequence[int], plist: Sequence[int],
                        src: Sequence[int], dst: Sequence[int], amount: Sequence[int]) -> None:
        """Coordinator records: decision code, plist_id or -1, from/to codes or -1, amount."""
        self._coord.append((self.slots(pids), len(pids), np.asarray(decision, np.int8),
                            compact(plist), compact(src), compact(dst), ints(amount)))

    def finish(self, h: HistoryColumns) -> Facts:
        self.number()
        pids = self._pids if self._pids is not None else pa.array([], pa.string())
        n = len(pids)
        P = len(self.participants)
        records = [Records(*_last_wins(_cat(self.rows(b[0], b[1]) for b in bs),
                                       _cat(b[2] for b in bs), _cat(b[3] for b in bs)))
                   for bs in self._records]
        while len(records) < P:
            records.append(Records(_EMPTY, np.zeros(0, np.int8), _EMPTY))
        status = np.zeros((n, P), np.int8)
        for c, rec in enumerate(records):
            status[rec.rows, c] = rec.status
        has_coord = np.zeros(n, bool)
        decision = np.zeros(n, np.int8)
        plist = np.full(n, -1, np.int64)
        src = np.full(n, -1, np.int64)
        dst = np.full(n, -1, np.int64)
        wide = any(c[6].dtype == object for c in self._coord) or h.t_amount.dtype == object
        amount = np.zeros(n, object if wide else np.int64)
        for sl, k, dec, pl, s, d, a in self._coord:
            rows, dec, pl, s, d, a = _last_wins(self.rows(sl, k), dec, pl, s, d, a)
            has_coord[rows] = True
            decision[rows] = dec
            plist[rows] = pl
            src[rows], dst[rows], amount[rows] = s, d, a
        requested = np.zeros(n, bool)
        requested[h.t_rows] = True
        src[h.t_rows], dst[h.t_rows], amount[h.t_rows] = h.t_src, h.t_dst, h.t_amount
        self._slot_rows = None
        return Facts(state=self.state, participants=self.participants, records=records,
                     owners=self.owners, everywhere=self.everywhere, pids=pids,
                     accounts=list(self.acct), status=status, has_coord=has_coord,
                     decision=decision, plist=plist, plists=self.plists, requested=requested,
                     src=src, dst=dst, amount=amount,
                     completions=(h.c_index, h.c_type, h.c_rows), reads=h.reads,
                     n_reads=h.n_reads, n_events=h.n_events)


# ---------------------------------------------------------------- from values in memory

def coordinator_tv(c: dict[str, Any]) -> tuple[str, str, int] | None:
    """A coordinator record's from/to/amount, when it has all three with usable types."""
    s, d, a = c.get("from"), c.get("to"), c.get("amount")
    if type(s) is str and type(d) is str and type(a) is int:
        return s, d, a
    return None


def feed_state(b: FactsBuilder, state: dict[str, Any]) -> None:
    """Feed a (validated) state held in memory."""
    for p in b.participants:
        txns = state["participants"][p].get("txns") or {}
        recs = list(txns.values())
        b.add_records(list(txns), [STATUS_CODE[r["state"]] for r in recs],
                      [a if type(a := r.get("applied")) is int else -1 for r in recs])
    payments = (state.get("coordinator") or {}).get("payments") or {}
    dec, pl, src, dst, amt = [], [], [], [], []
    for c in payments.values():
        dec.append(DECISION_CODE.get(c.get("decision"), 0))
        ps = c.get("participants")
        pl.append(b.plist_id(ps) if ps is not None else -1)
        tv = coordinator_tv(c)
        (s, d), a = b.account_pairs([tv[0]], [tv[1]])[0] if tv else (-1, -1), tv[2] if tv else 0
        src.append(s)
        dst.append(d)
        amt.append(a)
    b.add_coordinator(list(payments), dec, pl, src, dst, amt)


def columns_from_ops(b: FactsBuilder, history: Iterable[Op]) -> HistoryColumns:
    """Reduce a history in memory to columns (it need not be validated: a completion
    without an open invoke is ignored, an invoke left open reads as info)."""
    t_ids: list[str] = []
    t_vals: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    comps: list[tuple[int, int, str]] = []
    reads: list[Op] = []
    n_reads = n = 0
    open_: dict[int | str, Op] = {}
    INVOKE, OK = OpType.INVOKE, OpType.OK
    for op in history:
        n += 1
        if op.process == NEMESIS:
            continue
        if op.type is INVOKE:
            open_[op.process] = op
            if op.f == "transfer":
                v = op.value
                if v["id"] not in seen:
                    seen.add(v["id"])
                    t_ids.append(v["id"])
                    t_vals.append((v["from"], v["to"], v["amount"]))
            continue
        inv = open_.pop(op.process, None)
        if op.f == "transfer" and inv is not None:
            comps.append((op.index, TYPE_CODE[op.type], inv.value["id"]))
        elif op.f == "read" and op.type is OK:
            n_reads += 1
            if b.keep_read(op.value):
                reads.append(op)
    for inv in open_.values():  # never completed: indeterminate, like info
        if inv.f == "transfer":
            comps.append((inv.index, TYPE_CODE[OpType.INFO], inv.value["id"]))
    t_slot = b.slots(t_ids)
    c_slot = b.slots([c[2] for c in comps])
    pairs = b.account_pairs([v[0] for v in t_vals], [v[1] for v in t_vals])
    return HistoryColumns(
        t_rows=b.rows(t_slot, len(t_ids)), t_src=ints([p[0] for p in pairs]),
        t_dst=ints([p[1] for p in pairs]), t_amount=ints([v[2] for v in t_vals]),
        c_index=ints([c[0] for c in comps]), c_type=np.asarray([c[1] for c in comps], np.int8),
        c_rows=b.rows(c_slot, len(comps)), reads=reads, n_reads=n_reads, n_events=n)


def facts_from_values(history: Iterable[Op], state: dict[str, Any]) -> Facts:
    b = FactsBuilder(state)
    feed_state(b, state)
    return b.finish(columns_from_ops(b, history))


def facts_from_files(history: Path, state: Path, progress: Any = None) -> Facts:
    """Facts from a history file and a state file, streamed (state first: see the module doc)."""
    from harness.checkers.state import read_state
    from harness.history import read_history

    b = read_state(state, progress)
    return b.finish(read_history(history, b, progress))
