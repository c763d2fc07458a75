"""The final-state file (docs/formats.md): validation and loading.

Users write states of their own systems by hand, so every rejection names the
file and the JSON path (or line) and says what is wrong. Kept apart from the
checkers' logic, which may assume a validated state.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# ---------------------------------------------------------------- into Facts

def read_state(path: Path, progress: Any = None) -> FactsBuilder:
    """Read a state file into a FactsBuilder, without holding it as Python objects.

    The streamed reader (harness/checkers/state_stream.py) decodes it typed, a piece at
    a time, straight into columns. Anything it does not take as it is goes to
    `load_state`, whose verdict on the file is the one that counts (and names what is
    wrong); its values are then fed the same way.
    """
    from harness.checkers.build import FactsBuilder, feed_state
    from harness.checkers.state_stream import Unusual, read_fast

    path = Path(path)
    try:
        with paused_gc():
            b = read_fast(path, progress)
    except Unusual:
        state = load_state(path)
        b = FactsBuilder(state)
        feed_state(b, state)
        if progress is not None:
            progress.advance(path.stat().st_size)
    b.number()  # the state's payment ids, numbered: their strings can go
    return b
