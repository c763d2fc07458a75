"""The fast path of reading a state file: typed decoding, a piece at a time, into columns.

The top level is decoded by msgspec with each participant's `txns` and the
coordinator's `payments` left raw; the rest (balances, resolution...) is checked by
`validate_state` as always. The big objects are then decoded a piece of about PIECE
bytes at a time, so only a piece is ever Python objects; on a big file the
participants' pieces go to worker processes while this one reads the coordinator.
This path only ever says "taken" or "not as I expected" (`Unusual`):
harness.checkers.state.read_state then reads the file with `load_state`, whose
message (file, JSON path, what is wrong) is the one a user sees.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import numpy as np
import pyarrow as pa

from harness.checkers.state import validate_state
from harness.errors import BadInput

if TYPE_CHECKING:
    from harness.checkers.build import FactsBuilder

__all__ = ["Unusual", "read_fast", "PIECE", "PARALLEL_BYTES"]

PIECE = 8 << 20              # bytes of a big JSON object decoded at a time
PARALLEL_BYTES = 32 << 20    # from this size on, participants' pieces go to worker processes


class Unusual(Exception):
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

Batch = tuple[list[str] | pa.Array, np.ndarray, np.ndarray]  # ids, status codes, applied


def read_fast(path: Path, progress: Any = None) -> FactsBuilder:
    from harness.checkers.build import FactsBuilder

    try:
        with open(path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        top = msgspec.json.decode(buf, type=_State)
    except (OSError, ValueError, msgspec.MsgspecError):
        raise Unusual from None
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
        raise Unusual from None
    buf.madvise(mmap.MADV_DONTNEED)  # read again piece by piece: only pieces stay resident
    advance = progress.advance if progress is not None else (lambda n: None)
    base = np.frombuffer(buf, np.uint8).ctypes.data
    raws = [p.txns for p in top.participants.values()]
    b = FactsBuilder(skeleton)
    try:
        with _workers(len(buf)) as pool:
            records = _records(path, raws, base, pool)  # the workers start now
            coordinator = []  # the coordinator's batches, read here meanwhile
            if top.coordinator is not None:
                for payments, n in _pieces(top.coordinator.payments, _PAYMENTS):
                    coordinator.append(_coordinator_batch(b, payments))
                    advance(n)
            for i, (batch, n) in records:  # in order: payments are numbered by first sight
                b.add_record_batch(i, *batch)
                advance(n)
                buf.madvise(mmap.MADV_DONTNEED)
            for i in range(len(raws)):
                b.add_record_batch(i, [], [], [])
            for args in coordinator:
                b.add_coordinator(*args)
    except (OverflowError, msgspec.MsgspecError):
        raise Unusual from None
    advance(len(buf) - sum(len(r) for r in raws) - (
        len(top.coordinator.payments) if top.coordinator is not None else 0))
    return b


# ---------------------------------------------------------------- participants' records

def _workers(size: int) -> Any:
    """Two worker processes for a big file on a machine with two cores or more, else none.
    Forked before any Arrow thread exists, and given only file offsets."""
    import contextlib

    if size < PARALLEL_BYTES or (os.cpu_count() or 1) < 2:
        return contextlib.nullcontext(None)
    return ProcessPoolExecutor(2, mp_context=get_context("fork"))


def _records(path: Path, raws: list[msgspec.Raw], base: int, pool: ProcessPoolExecutor | None
             ) -> Iterator[tuple[int, tuple[Batch, int]]]:
    """Hand the participants' pieces to the workers; returns (participant, (batch, bytes))
    in file order, taken from the workers, or decoded here for the rest of a participant
    whose piece a worker could not take (a cut not between members, a record the typed
    reader refuses) and for every participant when there are no workers."""
    plan = []  # (participant, start, cut, file offset of the participant's txns)
    for i, raw in enumerate(raws):
        a = _object_bytes(raw)
        plan += [(i, start, cut, a.ctypes.data - base) for start, cut in _cuts(a)]
    futures = [pool.submit(_txns_piece, str(path), off + start, off + cut)
               for _, start, cut, off in plan] if pool else []
    return _collect([p[:3] for p in plan], futures, raws)


def _collect(plan: list[tuple[int, int, int]], futures: list[Any], raws: list[msgspec.Raw]
             ) -> Iterator[tuple[int, tuple[Batch, int]]]:
    done: set[int] = set()
    for k, (i, start, cut) in enumerate(plan):
        if i in done:
            continue
        try:
            batch = futures[k].result() if futures else None
        except Exception:  # a worker that died: read it here
            batch = None
        if batch is None:  # decode here, from this piece on
            done.add(i)
            for txns, n in _pieces(raws[i], _TXNS, start):
                yield i, (_txns_batch(txns), n)
            continue
        yield i, ((_ids(batch[0]), *batch[1:]), cut + 1 - start)


def _txns_piece(path: str, lo: int, hi: int) -> Batch | None:
    """In a worker: decode the members at file offsets lo..hi as one participant's txns.
    The ids travel back as the two buffers of an Arrow string array."""
    with open(path, "rb") as f:
        body = os.pread(f.fileno(), hi - lo, lo)
    try:
        ids, status, applied = _txns_batch(_TXNS.decode(b"{" + body + b"}"))
    except (msgspec.MsgspecError, OverflowError):
        return None
    arr = pa.array(ids, pa.string(), memory_pool=pa.system_memory_pool())
    offsets, data = arr.buffers()[1:]
    return (len(arr), bytes(offsets), bytes(data)), status, applied


def _ids(packed: tuple[int, bytes, bytes]) -> pa.Array:
    """Rebuild a worker's ids here, on memory the system allocator gives back."""
    n, offsets, data = packed
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _txns_batch(txns: dict[str, _Txn]) -> Batch:
    from harness.checkers.build import compact

    recs = list(txns.values())
    return (list(txns), np.array([_CODE[r.state] for r in recs], np.int8),
            compact([r.applied for r in recs]))


# ---------------------------------------------------------------- big objects in pieces

def _object_bytes(raw: msgspec.Raw) -> np.ndarray:
    a = np.frombuffer(raw, np.uint8)  # a view, no copy
    if len(a) < 2 or a[0] != ord("{") or a[-1] != ord("}"):
        raise Unusual
    return a


def _cuts(a: np.ndarray, start: int = 1) -> Iterator[tuple[int, int]]:
    """Spans of about PIECE bytes of an object's members, each ending at a likely member
    boundary (the decoder proves it: see _pieces)."""
    end = len(a) - 1  # the closing brace
    while start < end:
        cut = _cut(a, start, PIECE, end)
        yield start, cut
        start = cut + 1  # past the comma


def _pieces(raw: msgspec.Raw, decoder: msgspec.json.Decoder, start: int = 1
            ) -> Iterator[tuple[dict[str, Any], int]]:
    """Decode a big JSON object a piece of about PIECE bytes at a time: (members, bytes).

    Cuts go at `},"` (the end of one member, the start of the next). A cut that is
    not between members (inside a nested object) leaves a piece that is not valid JSON,
    so a piece that fails is tried again twice as long, up to the whole object. Keys
    repeated across pieces are settled as json.loads would (build._last_wins).
    """
    a = _object_bytes(raw)
    view = memoryview(a)
    end = len(a) - 1
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
                    raise Unusual from None
                size *= 2
        yield members, cut + 1 - start
        start = cut + 1


def _cut(a: np.ndarray, start: int, size: int, end: int) -> int:
    """The first `,` of a `},"` at least `size` bytes after `start`, or `end`."""
    while start + size < end:
        hit = bytes(a[start + size:start + size + 65536]).find(b'},"')
        if hit >= 0:
            return start + size + hit + 1
        size += 65536
    return end


# ---------------------------------------------------------------- coordinator

def _coordinator_batch(b: FactsBuilder, payments: dict[str, _Payment]) -> tuple[Any, ...]:
    """Arguments of FactsBuilder.add_coordinator for one piece of coordinator records, as
    compact columns (they wait for the participants' records, which come first)."""
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
    from harness.checkers.build import compact, ints

    return (pa.array(list(payments), pa.string(), memory_pool=pa.system_memory_pool()),
            np.array([_DECISION[c.decision] for c in recs], np.int8),
            compact(list(map(lists.__getitem__, raws))), compact([p[0] for p in pairs]),
            compact([p[1] for p in pairs]), ints([c.amount if h else 0 for c, h in zip(recs, has)]))
