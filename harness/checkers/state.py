"""The final-state file (docs/formats.md): validation and loading.

Users write states of their own systems by hand, so every rejection names the
file and the JSON path (or line) and says what is wrong. Kept apart from the
checkers' logic, which may assume a validated state.
"""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import numpy as np

from harness.errors import BadInput, reading

if TYPE_CHECKING:
    from harness.checkers.build import FactsBuilder

__all__ = ["load_state", "read_state", "validate_state", "paused_gc", "TXN_STATES", "DECISIONS"]

TXN_STATES = frozenset({"committed", "aborted", "prepared"})
DECISIONS = frozenset({"commit", "abort", None})


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic objects.

    Loading or checking a large history allocates millions of small dicts and ops,
    which triggers repeated full collections that cost more than the work itself.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _member(x: Any, allowed: frozenset[Any]) -> bool:
    return (x is None or isinstance(x, str)) and x in allowed


def _balances(b: Any, where: str) -> None:
    if not isinstance(b, dict):
        raise BadInput(f"{where}: must map account names to integer balances")
    for acct, v in b.items():
        if not _is_int(v):
            raise BadInput(f"{where}.{acct}: balance must be an integer, got {v!r}")


def validate_state(state: Any, name: str = "state") -> dict[str, Any]:
    """Check a final state's shape (docs/formats.md); BadInput names the JSON path."""
    if not isinstance(state, dict):
        raise BadInput(f"{name}: expected a JSON object at the top level")
    parts = state.get("participants")
    if not isinstance(parts, dict) or not parts:
        raise BadInput(f"{name}: missing 'participants' (an object: participant name -> "
                       "{\"txns\": ..., \"balances\": ...})")
    if "initial_balances" in state:
        _balances(state["initial_balances"], f"{name}: initial_balances")
    owners: dict[str, str] = {}
    for pname, p in parts.items():
        where = f"{name}: participants.{pname}"
        if not isinstance(p, dict):
            raise BadInput(f"{where}: expected an object")
        txns = p.get("txns", {})
        if not isinstance(txns, dict):
            raise BadInput(f"{where}.txns: expected an object (payment id -> record)")
        for pid, rec in txns.items():
            w = f"{where}.txns.{pid}"
            if not isinstance(rec, dict):
                raise BadInput(f"{w}: expected an object with 'state' and 'applied'")
            if not _member(rec.get("state"), TXN_STATES):
                raise BadInput(f"{w}.state: must be committed, aborted or prepared, "
                               f"got {rec.get('state')!r}")
            if "applied" in rec and (not _is_int(rec["applied"]) or rec["applied"] < 0):
                raise BadInput(f"{w}.applied: must be a non-negative integer, "
                               f"got {rec['applied']!r}")
        if "balances" in p:
            _balances(p["balances"], f"{where}.balances")
            for acct in p["balances"]:
                if acct in owners:
                    raise BadInput(f"{where}.balances: account {acct!r} is also held by "
                                   f"participant {owners[acct]!r}; each account has one owner")
                owners[acct] = pname
        if not isinstance(p.get("in_every_payment", False), bool):
            raise BadInput(f"{where}.in_every_payment: must be true or false")
    coord = state.get("coordinator")
    if coord is not None:
        if not isinstance(coord, dict) or not isinstance(coord.get("payments", {}), dict):
            raise BadInput(f"{name}: coordinator must be an object with 'payments' "
                           "(payment id -> {decision, participants})")
        for pid, rec in coord.get("payments", {}).items():
            w = f"{name}: coordinator.payments.{pid}"
            if not isinstance(rec, dict):
                raise BadInput(f"{w}: expected an object")
            if not _member(rec.get("decision"), DECISIONS):
                raise BadInput(f"{w}.decision: must be \"commit\", \"abort\" or null, "
                               f"got {rec.get('decision')!r}")
            ps = rec.get("participants")
            if ps is not None and (not isinstance(ps, list)
                                   or not all(isinstance(x, str) for x in ps)):
                raise BadInput(f"{w}.participants: must be a list of participant names")
    res = state.get("resolution")
    if res is not None:
        _validate_resolution(res, f"{name}: resolution")
    return state


def _validate_resolution(res: Any, where: str) -> None:
    if not isinstance(res, dict):
        raise BadInput(f"{where}: expected an object")
    for k in ("healed_at", "quiesced_at"):
        if k in res and res[k] is not None and not _is_int(res[k]):
            raise BadInput(f"{where}.{k}: must be an integer (history time, ns)")
    if "bound_s" in res and not isinstance(res["bound_s"], (int, float)):
        raise BadInput(f"{where}.bound_s: must be a number of seconds")
    ind = res.get("in_doubt", {})
    if not isinstance(ind, dict):
        raise BadInput(f"{where}.in_doubt: expected an object (payment id -> record)")
    for pid, rec in ind.items():
        w = f"{where}.in_doubt.{pid}"
        if not isinstance(rec, dict):
            raise BadInput(f"{w}: expected an object")
        if not isinstance(rec.get("blocked_s"), (int, float)) or isinstance(rec["blocked_s"], bool):
            raise BadInput(f"{w}.blocked_s: required, a number of seconds")
        if not isinstance(rec.get("resolved"), bool):
            raise BadInput(f"{w}.resolved: required, true or false")


def _shared_records() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A JSON object hook that makes equal small records one shared object.

    A million-payment state holds millions of identical {"state", "applied"}
    records and coordinator records naming the same few participants; sharing
    them cuts its memory several times. Treat loaded states as read-only.
    """
    canon: dict[tuple[Any, Any], dict[str, Any]] = {}
    lists: dict[tuple[Any, ...], list[Any]] = {}
    strings: dict[str, str] = {}

    def hook(d: dict[str, Any]) -> dict[str, Any]:
        try:
            if len(d) == 2 and "state" in d and "applied" in d:
                return canon.setdefault((d["state"], d["applied"]), d)
            if "decision" in d:
                dec = d["decision"]
                if type(dec) is str:
                    d["decision"] = strings.setdefault(dec, dec)
                ps = d.get("participants")
                if type(ps) is list:
                    d["participants"] = lists.setdefault(tuple(ps), ps)
        except TypeError:  # unhashable values: validation reports them
            pass
        return d

    return hook


def load_state(path: Path) -> dict[str, Any]:
    """Load and validate a state JSON file; BadInput names the file and the JSON path or line.

    Identical txn records are shared objects (see _shared_records): do not mutate them.
    """
    path = Path(path)
    with reading(path, "a state file (JSON)"):
        text = path.read_text(encoding="utf-8")
    try:
        with paused_gc():
            state = json.loads(text, object_hook=_shared_records())
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}:{e.lineno}: bad JSON ({e.msg} at column {e.colno})") from None
    return validate_state(state, str(path))


# ---------------------------------------------------------------- streamed, into Facts

class _Unusual(Exception):
    """The fast reader does not take this file as it is; the exact reader decides."""


_UNSET = msgspec.UNSET


class _Txn(msgspec.Struct, gc=False):
    state: Literal["committed", "aborted", "prepared"]
    applied: Annotated[int, msgspec.Meta(ge=0)] = -1


class _Payment(msgspec.Struct, gc=False):
    decision: Literal["commit", "abort"] | None = None
    participants: msgspec.Raw = msgspec.Raw(b"null")
    src: str | msgspec.UnsetType = msgspec.field(default=_UNSET, name="from")
    dst: str | msgspec.UnsetType = msgspec.field(default=_UNSET, name="to")
    amount: int | msgspec.UnsetType = _UNSET


class _Participant(msgspec.Struct, gc=False):
    txns: msgspec.Raw = msgspec.Raw(b"{}")
    balances: Any = _UNSET
    in_every_payment: Any = _UNSET


class _Coordinator(msgspec.Struct, gc=False):
    payments: msgspec.Raw = msgspec.Raw(b"{}")


class _State(msgspec.Struct, gc=False):
    participants: dict[str, _Participant]
    initial_balances: Any = _UNSET
    coordinator: _Coordinator | None = None
    resolution: Any = _UNSET


_CODE = {"committed": 1, "aborted": 2, "prepared": 3}
_DECISION = {None: 0, "commit": 1, "abort": 2}
_TXNS = msgspec.json.Decoder(dict[str, _Txn])
_PAYMENTS = msgspec.json.Decoder(dict[str, _Payment])
_NAMES = msgspec.json.Decoder(list[str] | None)


def read_state(path: Path, progress: Any = None) -> FactsBuilder:
    """Read a state file into a FactsBuilder, without holding it as Python objects.

    Typed decoding (msgspec) one participant at a time, records straight into
    columns. Anything the typed reader does not take as it is goes to `load_state`,
    whose verdict on the file is the one that counts (and names what is wrong).
    """
    from harness.checkers.build import FactsBuilder, feed_state

    path = Path(path)
    try:
        with paused_gc():
            b = _read_fast(path, progress)
    except _Unusual:
        state = load_state(path)
        b = FactsBuilder(state)
        feed_state(b, state)
        if progress is not None:
            progress.advance(path.stat().st_size)
    b.number()  # the state's payment ids, numbered: their strings can go
    return b


def _read_fast(path: Path, progress: Any) -> FactsBuilder:
    from harness.checkers.build import FactsBuilder

    try:
        with open(path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        top = msgspec.json.decode(buf, type=_State)
    except (OSError, ValueError, msgspec.MsgspecError):
        raise _Unusual from None
    skeleton: dict[str, Any] = {"participants": {}}
    for k in ("initial_balances", "resolution"):
        if (v := getattr(top, k)) is not _UNSET:
            skeleton[k] = v
    for name, p in top.participants.items():
        skeleton["participants"][name] = {k: v for k in ("balances", "in_every_payment")
                                          if (v := getattr(p, k)) is not _UNSET}
    if top.coordinator is not None:
        skeleton["coordinator"] = {"payments": {}}
    try:
        validate_state(skeleton, str(path))
    except BadInput:
        raise _Unusual from None
    b = FactsBuilder(skeleton)
    buf.madvise(mmap.MADV_DONTNEED)  # read again piece by piece: only a piece stays resident
    advance = progress.advance if progress is not None else (lambda n: None)
    done = 0
    try:
        for i, p in enumerate(top.participants.values()):
            for txns, n in _pieces(p.txns, _TXNS):
                recs = list(txns.values())
                b.add_record_batch(i, list(txns), [_CODE[r.state] for r in recs],
                                   [r.applied for r in recs])
                del txns, recs
                advance(n)
                done += n
            b.add_record_batch(i, [], [], [])
            buf.madvise(mmap.MADV_DONTNEED)
        if top.coordinator is not None:
            for payments, n in _pieces(top.coordinator.payments, _PAYMENTS):
                _feed_payments(b, payments)
                advance(n)
                done += n
            buf.madvise(mmap.MADV_DONTNEED)
    except (OverflowError, msgspec.MsgspecError):
        raise _Unusual from None
    advance(len(buf) - done)
    return b


PIECE = 8 << 20  # bytes of a big JSON object decoded at a time


def _pieces(raw: msgspec.Raw, decoder: msgspec.json.Decoder) -> Iterator[tuple[dict[str, Any], int]]:
    """Decode a big JSON object a piece of about PIECE bytes at a time: (members, bytes).

    Cuts go at `},"` (the end of one member, the start of the next). A cut that is
    not between members (inside a string or a nested object) leaves a piece that is
    not valid JSON, so a piece that fails is tried again twice as long, up to the
    whole object. Keys repeated across pieces are settled as json.loads would
    (build._last_wins).
    """
    a = np.frombuffer(raw, np.uint8)  # a view, no copy
    if len(a) < 2 or a[0] != ord("{") or a[-1] != ord("}"):
        raise _Unusual
    end = len(a) - 1  # the closing brace
    start = 1
    view = memoryview(a)
    while start < end:
        size = PIECE
        while True:
            cut = _cut(a, start, size, end)
            piece = bytearray(b"{")  # decoded Raw values refer to it: a new one each time
            piece += view[start:cut]
            piece += b"}"
            try:
                members = decoder.decode(piece)
                break
            except msgspec.MsgspecError:
                if cut >= end:
                    raise _Unusual from None
                size *= 2
        yield members, cut + 1 - start
        start = cut + 1  # past the comma


def _cut(a: np.ndarray, start: int, size: int, end: int) -> int:
    """The first `,` of a `},"` at least `size` bytes after `start`, or `end`."""
    while start + size < end:
        hit = bytes(a[start + size:start + size + 65536]).find(b'},"')
        if hit >= 0:
            return start + size + hit + 1
        size += 65536
    return end


def _feed_payments(b: FactsBuilder, payments: dict[str, _Payment]) -> None:
    recs = list(payments.values())
    lists: dict[bytes, int] = {}
    raws = [bytes(c.participants) for c in recs]
    for raw in dict.fromkeys(raws):  # the distinct participant lists: few
        ps = _NAMES.decode(raw)
        lists[raw] = -1 if ps is None else b.plist_id(ps)
    has = [c.src is not _UNSET and c.dst is not _UNSET and c.amount is not _UNSET for c in recs]
    codes = iter(b.account_pairs([c.src for c, h in zip(recs, has) if h],
                                 [c.dst for c, h in zip(recs, has) if h]))
    pairs = [next(codes) if h else (-1, -1) for h in has]
    b.add_coordinator(list(payments), [_DECISION[c.decision] for c in recs],
                      list(map(lists.__getitem__, raws)), [p[0] for p in pairs],
                      [p[1] for p in pairs], [c.amount if h else 0 for c, h in zip(recs, has)])
