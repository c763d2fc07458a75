"""The fast path of reading a history file: typed decoding a block at a time, rules as vectors.

Lines are decoded by msgspec into small typed records a few MiB at a time and
reduced at once to integer columns (index, type, process, operation, and for
transfers the payment's row, accounts and amount); nothing per event outlives its
block. The history's rules (docs/formats.md) are then checked over the columns:
indexes increase; grouped by process, events alternate invoke / completion with
the same `f` and an `info` ends its process; nemesis events are `info`; a payment
id always names the same transfer. This path only ever says "valid" or "not as I
expected" (`Unusual`): harness.history.read_history then reads the file with the
exact loader, whose message (file, line, what is wrong) is the one a user sees.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import numpy as np

from harness.model import Op, OpType

if TYPE_CHECKING:
    from harness.checkers.build import FactsBuilder, HistoryColumns

__all__ = ["Unusual", "read_columns", "BLOCK"]

BLOCK = 8 << 20  # bytes decoded at a time
_INVOKE, _OK, _INFO = 0, 1, 3
_TYPE = {"invoke": 0, "ok": 1, "fail": 2, "info": 3}


class Unusual(Exception):
    """The fast path does not take this history as it is; the exact loader decides."""


class _Event(msgspec.Struct, gc=False):
    time: Annotated[int, msgspec.Meta(ge=0)]
    process: int | Literal["nemesis"]
    type: Literal["invoke", "ok", "fail", "info"]
    f: str
    index: int | msgspec.UnsetType = msgspec.UNSET
    value: msgspec.Raw = msgspec.Raw(b"null")
    error: str | None = None


class _Transfer(msgspec.Struct, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    src: str = msgspec.field(name="from")
    dst: str = msgspec.field(name="to")
    amount: Annotated[int, msgspec.Meta(gt=0)]


_EVENTS = msgspec.json.Decoder(_Event)
_TRANSFERS = msgspec.json.Decoder(list[_Transfer])
_BALANCES = msgspec.json.Decoder(dict[str, int])


class _Columns:
    """Per-event and per-transfer-invoke columns, appended a block at a time."""

    def __init__(self, b: FactsBuilder) -> None:
        self.b = b
        self.f_code: dict[str, int] = {"transfer": 0, "read": 1}
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "index", "type", "process", "nemesis", "f", "t_pos", "t_src", "t_dst",
            "t_amount")}
        self.n = 0
        self.t_slot = -1  # the slot of the first transfer invoke; the others follow on
        self.t_n = 0
        self.reads: list[Op] = []
        self.n_reads = 0

    def block(self, buf: bytes) -> int:
        """Decode and reduce one block of whole lines; returns how many events it held."""
        try:
            evs = _EVENTS.decode_lines(buf)
        except msgspec.MsgspecError:
            raise Unusual from None
        n, base = len(evs), self.n
        fsd, fc = self.f_code.setdefault, self.f_code
        index = [e.index for e in evs]
        if msgspec.UNSET in index:
            index = [base + i if x is msgspec.UNSET else x for i, x in enumerate(index)]
        process = [e.process for e in evs]
        nemesis = np.zeros(n, bool)
        if "nemesis" in process:
            nemesis = np.array([p == "nemesis" for p in process], bool)
            process = [0 if p == "nemesis" else p for p in process]
        typ = np.array([_TYPE[e.type] for e in evs], np.int8)
        f = np.array([fsd(e.f, len(fc)) for e in evs], np.int32)
        try:
            self._add(index=np.array(index, np.int64), type=typ, nemesis=nemesis,
                      process=np.array(process, np.int64), f=f)
        except OverflowError:
            raise Unusual from None
        client = ~nemesis
        tpos = np.flatnonzero(client & (typ == _INVOKE) & (f == 0))
        if len(tpos):
            try:
                ts = _TRANSFERS.decode(b"[" + b",".join([evs[i].value for i in tpos]) + b"]")
            except msgspec.MsgspecError:
                raise Unusual from None
            b = self.b
            slot = b.slots([t.id for t in ts])
            if self.t_slot < 0:
                self.t_slot = slot
            self.t_n += len(ts)
            codes = np.array(b.account_pairs([t.src for t in ts], [t.dst for t in ts]), np.int32)
            self._add(t_pos=tpos + base, t_src=codes[:, 0], t_dst=codes[:, 1],
                      t_amount=np.array([t.amount for t in ts], np.int64))
        for i in np.flatnonzero(client & (typ == _OK) & (f == 1)):
            e = evs[i]
            try:
                value = _BALANCES.decode(e.value)
            except msgspec.MsgspecError:
                raise Unusual from None
            self.n_reads += 1
            if self.b.keep_read(value):
                self.reads.append(Op(index[i], e.time, e.process, OpType.OK, "read", value, e.error))
        self.n += n
        return n

    def _add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.cols[k].append(v)

    def finish(self) -> HistoryColumns:
        from harness.checkers.build import HistoryColumns

        # number the payment ids first, before the rules' temporaries (a hash table of them)
        rows = self.b.rows(self.t_slot, self.t_n)
        c: dict[str, np.ndarray] = {}
        for k in list(self.cols):  # one column at a time: its pieces go as it is joined
            v = self.cols.pop(k)
            c[k] = np.concatenate(v) if v else np.zeros(0, np.int64)
            del v
        index, typ, f = c.pop("index"), c.pop("type"), c.pop("f")
        nemesis = c.pop("nemesis").astype(bool)
        if len(index) > 1 and not (index[1:] > index[:-1]).all():
            raise Unusual
        if (typ[nemesis] != _INFO).any():
            raise Unusual
        # each process's events in history order must go invoke, completion, invoke, ...
        # with the same f, and an info only last
        proc = c.pop("process")
        n_client = len(proc) - int(nemesis.sum())
        if n_client < len(proc):  # nemesis events sort last, and are left out
            if n_client and proc.max() >= 2**62:
                raise Unusual
            proc[nemesis] = proc.max() + 1 if n_client else 0
        del nemesis
        order = np.argsort(proc, kind="stable")[:n_client]
        proc = proc[order]
        same = proc[1:] == proc[:-1]  # next event is of the same process
        del proc
        t = typ[order]
        inv = t == _INVOKE
        if len(t) and (not inv[0] or (~same & ~inv[1:]).any() or (same & (inv[1:] == inv[:-1])).any()
                       or ((t[:-1] == _INFO) & same).any()):
            raise Unusual
        last_inv = inv.copy()  # an invoke that ends its process's events: left open
        last_inv[:-1] &= ~same
        del t, same
        k = np.flatnonzero(~inv)
        done, invoked = order[k], order[k - 1]  # each completion follows its invoke
        del k, inv
        if (f[done] != f[invoked]).any():
            raise Unusual
        # a payment id names one transfer: every invoke repeats the first's from, to, amount
        t_pos = c.pop("t_pos")
        first = np.full(self.b.n_rows, len(rows), np.int64)
        np.minimum.at(first, rows, np.arange(len(rows)))
        fi = first[rows]
        del first
        for key in ("t_src", "t_dst", "t_amount"):
            if (c[key] != c[key][fi]).any():
                raise Unusual
        # transfer outcomes in history order, then the invokes left open (as info)
        is_t = f[done] == 0
        done, invoked = done[is_t], invoked[is_t]
        cd = np.argsort(done, kind="stable")
        done, invoked = done[cd], invoked[cd]
        open_ = np.sort(order[last_inv])
        open_ = open_[f[open_] == 0]
        del order, last_inv, cd, is_t
        c_pos = np.concatenate([done, open_])
        c_type = np.concatenate([typ[done], np.full(len(open_), _INFO, np.int8)])
        # the invoke of each outcome, by its place among the transfer invokes (t_pos is sorted)
        c_rows = rows[np.searchsorted(t_pos, np.concatenate([invoked, open_]))]
        keep = fi == np.arange(len(rows))
        return HistoryColumns(
            t_rows=rows[keep], t_src=c["t_src"][keep], t_dst=c["t_dst"][keep],
            t_amount=c["t_amount"][keep], c_index=index[c_pos], c_type=c_type, c_rows=c_rows,
            reads=self.reads, n_reads=self.n_reads, n_events=len(index))


def read_columns(path: Path, b: FactsBuilder,
                 advance: Callable[[int, int], Any] = lambda nbytes, events: None
                 ) -> HistoryColumns:
    """Stream `path` a block at a time into columns; Unusual if anything is not as expected."""
    cols = _Columns(b)
    try:
        with open(path, "rb") as f:
            rest = b""
            while block := f.read(BLOCK):
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    rest += block
                    continue
                n = cols.block(rest + block[:cut])
                rest = block[cut:]
                advance(len(block), n)
            if rest.strip():
                advance(len(rest), cols.block(rest))
    except OSError:
        raise Unusual from None
    return cols.finish()
