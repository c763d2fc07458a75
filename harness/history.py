"""Record and load histories and final states (formats in docs/formats.md).

A history is the only evidence of what clients were told, so the recorder
enforces Jepsen's rules as it writes (one completion per invoke, one open
operation per process, no invoke after `info`) and streams every event to
disk at once: a crashed run still leaves a history that can be checked.
The loaders reject malformed input with a message naming file, line and fault,
because users record histories of their own systems by hand. `load_state`
lives in harness.checkers.state and is re-exported here.

One reader, two paths: `read_history` streams a file into the checkers' columns
(harness/history_columns.py) and, for anything that path does not take as it
is, falls back to `load_history`, the exact reader whose rules and messages
define the format.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from harness.checkers.state import DECISIONS, TXN_STATES, load_state, paused_gc, validate_state
from harness.errors import BadInput, reading
from harness.model import NEMESIS, Op, OpType

if TYPE_CHECKING:
    from harness.checkers.build import FactsBuilder, HistoryColumns

__all__ = ["HistoryRecorder", "load_history", "read_history", "load_state", "validate_history",
           "validate_state", "paused_gc", "TXN_STATES", "DECISIONS"]

_TYPES = {t.value: t for t in OpType}
_F_NAMES: dict[str, str] = {}  # one shared string per operation name: saves ~60 bytes an op


def _monotonic_clock() -> Callable[[], int]:
    start = time.monotonic_ns()
    return lambda: time.monotonic_ns() - start


class HistoryRecorder:
    """Appends operations to an in-memory history and, if `path` is given, to a JSONL file.

    Thread-safe: the workload and the nemesis record from different tasks or threads.
    Misuse (a second invoke on a busy process, a completion of an unknown op) raises
    ValueError at once, because a history that breaks the rules proves nothing.
    """

    def __init__(self, path: Path | None = None, *,
                 clock: Callable[[], int] | None = None) -> None:
        self._clock = clock or _monotonic_clock()
        self._ops: list[Op] = []
        self._open: dict[int | str, Op] = {}
        self._retired: set[int | str] = set()
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", encoding="utf-8")

    def now(self) -> int:
        """The history clock: nanoseconds since recording started."""
        return int(self._clock())

    @property
    def ops(self) -> list[Op]:
        """A copy of the history so far."""
        with self._lock:
            return list(self._ops)

    def _append(self, process: int | str, type: OpType, f: str, value: Any,
                error: str | None) -> Op:
        op = Op(index=len(self._ops), time=int(self._clock()), process=process,
                type=type, f=f, value=value, error=error)
        self._ops.append(op)
        if self._file is not None:
            self._file.write(json.dumps(op.to_json(), separators=(",", ":")) + "\n")
            self._file.flush()
        return op

    def invoke(self, process: int, f: str, value: Any) -> Op:
        """Record that `process` starts operation `f`; it must have none open and not be retired."""
        if process == NEMESIS or not isinstance(process, int):
            raise ValueError(f"client process must be an int, got {process!r}")
        with self._lock:
            if process in self._retired:
                raise ValueError(f"process {process} ended with info and is retired; "
                                 "continue under a new process number")
            if process in self._open:
                raise ValueError(f"process {process} already has an open operation "
                                 f"(index {self._open[process].index})")
            op = self._append(process, OpType.INVOKE, f, value, None)
            self._open[process] = op
            return op

    def complete(self, invoke: Op, type: OpType | str, value: Any = None,
                 error: str | None = None) -> Op:
        """Record the one completion of `invoke`: ok, fail or info.

        `value` defaults to the invoke's value (a transfer's ok repeats its request).
        After `info` the process is retired: its client must continue as a new process.
        """
        t = OpType(type)
        if t is OpType.INVOKE:
            raise ValueError("a completion must be ok, fail or info")
        with self._lock:
            if self._open.get(invoke.process) is not invoke:
                raise ValueError(f"op {invoke.index} is not an open invoke of process "
                                 f"{invoke.process}")
            del self._open[invoke.process]
            if t is OpType.INFO:
                self._retired.add(invoke.process)
            return self._append(invoke.process, t, invoke.f,
                                invoke.value if value is None else value, error)

    def nemesis(self, f: str, value: dict[str, Any]) -> Op:
        """Record a fault event (`f` is "start" or "stop"); it never blocks client ops."""
        with self._lock:
            return self._append(NEMESIS, OpType.INFO, f, value, None)

    def close(self) -> None:
        """Close the file; ops still open stay open (a checker reads them as info)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> HistoryRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- loading

class _Problem(Exception):
    """What is wrong with one event; the caller adds where it is."""


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with reading(path, "a history file (JSONL)"), open(path, encoding="utf-8") as f:
        yield from enumerate(f, 1)


def _parse_op(d: Any, position: int) -> Op:
    if type(d) is not dict:
        raise _Problem(f"expected a JSON object, got {type(d).__name__}")
    try:
        type_s, f, process, t = d["type"], d["f"], d["process"], d["time"]
    except KeyError as e:
        raise _Problem(f"missing required field {e.args[0]!r}") from None
    ty = _TYPES.get(type_s) if type(type_s) is str else None
    if ty is None:
        raise _Problem(f"unknown type {type_s!r} (expected invoke, ok, fail or info)")
    if type(f) is not str:
        raise _Problem(f"field 'f' must be a string, got {f!r}")
    if type(process) is not int and process != NEMESIS:
        raise _Problem(f"field 'process' must be an integer or \"nemesis\", got {process!r}")
    if type(t) is not int or t < 0:
        raise _Problem(f"field 'time' must be a non-negative integer (ns), got {t!r}")
    index = d.get("index", position)
    if type(index) is not int:
        raise _Problem(f"field 'index' must be an integer, got {index!r}")
    error = d.get("error")
    if error is not None and type(error) is not str:
        raise _Problem(f"field 'error' must be a string, got {error!r}")
    return Op(index, t, process, ty, _F_NAMES.setdefault(f, f), d.get("value"), error)


def _check_transfer_value(v: Any) -> None:
    if type(v) is not dict:
        raise _Problem(f"a transfer's value must be an object with id, from, to, amount; got {v!r}")
    for k in ("id", "from", "to", "amount"):
        if k not in v:
            raise _Problem(f"transfer value is missing {k!r}")
    if type(v["id"]) is not str or not v["id"]:
        raise _Problem(f"transfer id must be a non-empty string, got {v['id']!r}")
    if type(v["from"]) is not str or type(v["to"]) is not str:
        raise _Problem("transfer 'from' and 'to' must be account names (strings)")
    a = v["amount"]
    if type(a) is not int or a <= 0:
        raise _Problem(f"transfer amount must be a positive integer, got {a!r}")
    v["from"] = sys.intern(v["from"])
    v["to"] = sys.intern(v["to"])


class _Validator:
    """The history rules, fed one op at a time (see validate_history)."""

    def __init__(self) -> None:
        self.open: dict[int, Op] = {}
        self.retired: dict[int, int] = {}
        self.transfers: dict[str, tuple[str, str, int, int]] = {}
        self.last_index = -1

    def feed(self, op: Op) -> Op:
        """Check `op`; returns it, or an equal op sharing its invoke's value (saves memory)."""
        if op.index <= self.last_index:
            raise _Problem(f"index {op.index} does not increase (previous {self.last_index})")
        self.last_index = op.index
        p = op.process
        if p == NEMESIS:
            if op.type is not OpType.INFO:
                raise _Problem(f"nemesis events must have type 'info', got {op.type.value!r}")
            return op
        if op.type is OpType.INVOKE:
            if p in self.open:
                raise _Problem(f"process {p} invokes while its op at index {self.open[p].index} "
                               "is still open (one op at a time per process)")
            if p in self.retired:
                raise _Problem(f"process {p} invokes after its 'info' at index {self.retired[p]}; "
                               "a client continues under a new process number")
            if op.f == "transfer":
                v = op.value
                _check_transfer_value(v)
                key = (v["from"], v["to"], v["amount"], op.index)
                seen = self.transfers.setdefault(v["id"], key)
                if seen[:3] != key[:3]:
                    raise _Problem(f"transfer id {v['id']!r} was already used for a different "
                                   f"transfer at index {seen[3]}")
            self.open[p] = op
            return op
        inv = self.open.pop(p, None)
        if inv is None:
            raise _Problem(f"{op.type.value!r} for process {p} without an open invoke before it")
        if inv.f != op.f:
            raise _Problem(f"completion f {op.f!r} does not match its invoke's f {inv.f!r} "
                           f"(index {inv.index})")
        if op.type is OpType.INFO:
            self.retired[p] = op.index
        if op.f == "read" and op.type is OpType.OK:
            v = op.value
            if type(v) is not dict or not all(type(b) is int for b in v.values()):
                raise _Problem(f"an ok read's value must map account names to integer "
                               f"balances, got {v!r}")
        elif op.value is not inv.value and op.value == inv.value:
            op = Op(op.index, op.time, op.process, op.type, op.f, inv.value, op.error)
        return op


def validate_history(ops: Iterable[Op], where: Callable[[int], str] = lambda i: f"op {i}"
                     ) -> list[Op]:
    """Check a history's own semantics; `where(position)` names the place for messages.

    Rules: indexes strictly increase; a completion follows an open invoke of the same
    process and `f`; a process has at most one open invoke and never invokes after
    `info`; nemesis events are `info`; a transfer invoke names id, from, to and amount,
    and an id always names the same transfer. An invoke left open at the end is
    allowed (it reads as `info`).
    """
    v = _Validator()
    out: list[Op] = []
    for pos, op in enumerate(ops):
        try:
            out.append(v.feed(op))
        except _Problem as e:
            raise BadInput(f"{where(pos)}: {e}") from None
    return out


_CHUNK = 4096


def load_history(path: Path) -> list[Op]:
    """Load and validate a JSONL history; BadInput names the file, line and what is wrong.

    Lines are decoded a chunk at a time (one JSON array per chunk), which is several
    times faster than one decode per line; a chunk that fails is re-read line by line
    to name the bad line.
    """
    path = Path(path)
    v = _Validator()
    out: list[Op] = []
    lines: list[str] = []
    linenos: list[int] = []

    def flush() -> None:
        try:
            ds = json.loads("[" + ",".join(lines) + "]")
        except json.JSONDecodeError:
            ds = None
        if ds is None or len(ds) != len(lines):
            ds = []
            for lineno, line in zip(linenos, lines):
                try:
                    ds.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise BadInput(f"{path}:{lineno}: bad JSON ({e.msg} at column {e.colno})"
                                   ) from None
        for d, lineno in zip(ds, linenos):
            try:
                out.append(v.feed(_parse_op(d, len(out))))
            except _Problem as e:
                raise BadInput(f"{path}:{lineno}: {e}") from None
        lines.clear()
        linenos.clear()

    with paused_gc():
        for lineno, line in _lines(path):
            line = line.strip()
            if line:
                lines.append(line)
                linenos.append(lineno)
                if len(lines) >= _CHUNK:
                    flush()
        if lines:
            flush()
    return out


def read_history(path: Path, builder: FactsBuilder, progress: Any = None) -> HistoryColumns:
    """Read a history file into the checkers' columns (`builder` holds the state already).

    The streamed path keeps memory to the columns; a history it does not take as it
    is (a broken line, a rule broken, numbers past 64 bits) is read again by
    `load_history`, which names the file, the line and what is wrong, or, if the
    history is valid after all, hands its ops to the builder.
    """
    from harness.checkers.build import columns_from_ops
    from harness.history_columns import Unusual, read_columns

    path = Path(path)
    advance = progress.advance if progress is not None else (lambda nbytes, events: None)
    try:
        with paused_gc():
            return read_columns(path, builder, advance)
    except Unusual:
        pass
    ops = load_history(path)
    with paused_gc():
        return columns_from_ops(builder, ops)
