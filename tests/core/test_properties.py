"""Property tests: runs of a correct 2PC bank pass every checker; any one corruption is caught."""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.checkers import CheckOptions, check_all
from harness.model import Op, OpType
from tests.core.bank_model import ACCOUNTS, BankRun

OPTIONS = CheckOptions(snapshot_reads=True)
ACCTS = sorted(ACCOUNTS)

step = st.one_of(
    st.tuples(st.just("transfer"), st.sampled_from(ACCTS), st.sampled_from(ACCTS),
              st.integers(1, 150), st.sampled_from(["told", "info", "open"]), st.booleans(),
              st.booleans()),
    st.tuples(st.just("read"), st.booleans()),
    st.tuples(st.just("fault")),
)


@st.composite
def bank_runs(draw: st.DrawFn) -> BankRun:
    run = BankRun(coordinator=draw(st.booleans()))
    n = 0
    for s in draw(st.lists(step, min_size=1, max_size=25)):
        if s[0] == "read":
            run.read("ok" if s[1] else "info")
        elif s[0] == "fault":
            run.fault()
        else:
            _, src, dst, amount, told, lucky, presumed = s
            if src == dst:
                continue
            n += 1
            funds = run.balances[src] >= amount
            # an unknown outcome may have committed (if funds allow) or not
            commit = funds and (told == "told" or lucky)
            absent = ("ledger", "notifications") if presumed and not commit else ()
            run.transfer(f"pay-{n:06d}", src, dst, amount, commit=commit,
                         told=None if told == "told" else told, absent=absent)
            if told != "told" and lucky:
                run.blocked(f"pay-{n:06d}", 1.0)
    return run


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bank_runs())
def test_correct_runs_pass_every_checker(run: BankRun) -> None:
    report = check_all(run.history, run.state(), OPTIONS)
    assert report.valid is True, report.to_json()


# ---- corruptions: each takes (run, state, history, draw) and returns (state, history) or None

Corruption = Callable[[BankRun, dict[str, Any], list[Op], st.DrawFn],
                      tuple[dict[str, Any], list[Op]] | None]


def _records(state: dict[str, Any], want: str) -> list[tuple[str, str]]:
    return sorted((p, pid) for p, rec in state["participants"].items()
                  for pid, t in rec["txns"].items() if t["state"] == want)


def _payments(run: BankRun, told: str, committed: bool) -> list[str]:
    return sorted(pid for pid, t in run.told.items()
                  if t == told and (run.payments[pid]["decision"] == "commit") == committed)


def flip_state(run, state, history, draw):
    recs = _records(state, "committed")
    if not recs:
        return None
    p, pid = draw(st.sampled_from(recs))
    state["participants"][p]["txns"][pid]["state"] = draw(st.sampled_from(["aborted", "prepared"]))
    return state, history


def applied_twice(run, state, history, draw):
    recs = _records(state, "committed")
    if not recs:
        return None
    p, pid = draw(st.sampled_from(recs))
    state["participants"][p]["txns"][pid]["applied"] = draw(st.integers(2, 3))
    return state, history


def applied_when_aborted(run, state, history, draw):
    recs = _records(state, "aborted")
    if not recs:
        return None
    p, pid = draw(st.sampled_from(recs))
    state["participants"][p]["txns"][pid]["applied"] = 1
    return state, history


def change_balance(run, state, history, draw):
    acct = draw(st.sampled_from(ACCTS))
    delta = draw(st.integers(-50, 50).filter(bool))
    state["participants"][ACCOUNTS[acct]]["balances"][acct] += delta
    return state, history


def drop_record(run, state, history, draw):
    recs = _records(state, "committed")
    if not recs:
        return None
    p, pid = draw(st.sampled_from(recs))
    del state["participants"][p]["txns"][pid]
    return state, history


def ok_marked_aborted(run, state, history, draw):
    pids = _payments(run, "ok", True)
    if not pids:
        return None
    pid = draw(st.sampled_from(pids))
    for rec in state["participants"].values():
        if pid in rec["txns"]:
            rec["txns"][pid] = {"state": "aborted", "applied": 0}
    t = next(o.value for o in history if o.type is OpType.INVOKE and o.f == "transfer"
             and o.value["id"] == pid)
    state["participants"][ACCOUNTS[t["from"]]]["balances"][t["from"]] += t["amount"]
    state["participants"][ACCOUNTS[t["to"]]]["balances"][t["to"]] -= t["amount"]
    if "coordinator" in state:
        state["coordinator"]["payments"][pid]["decision"] = "abort"
    return state, history


def fail_marked_committed(run, state, history, draw):
    pids = _payments(run, "fail", False)
    if not pids:
        return None
    pid = draw(st.sampled_from(pids))
    for p in run.payments[pid]["participants"]:
        state["participants"][p]["txns"][pid] = {"state": "committed", "applied": 1}
    t = next(o.value for o in history if o.type is OpType.INVOKE and o.f == "transfer"
             and o.value["id"] == pid)
    state["participants"][ACCOUNTS[t["from"]]]["balances"][t["from"]] -= t["amount"]
    state["participants"][ACCOUNTS[t["to"]]]["balances"][t["to"]] += t["amount"]
    return state, history


def leave_prepared(run, state, history, draw):
    recs = _records(state, "committed") + _records(state, "aborted")
    if not recs:
        return None
    p, pid = draw(st.sampled_from(recs))
    state["participants"][p]["txns"][pid] = {"state": "prepared", "applied": 0}
    return state, history


def forget_request(run, state, history, draw):
    pids = _payments(run, "ok", True)
    if not pids:
        return None
    pid = draw(st.sampled_from(pids))
    drop = {o.index for o in history if o.f == "transfer" and o.value["id"] == pid}
    return state, [o for o in history if o.index not in drop]


def lose_payment(run, state, history, draw):
    pids = _payments(run, "ok", True)
    if not pids:
        return None
    pid = draw(st.sampled_from(pids))
    for rec in state["participants"].values():
        rec["txns"].pop(pid, None)
    state.get("coordinator", {}).get("payments", {}).pop(pid, None)
    return state, history


def bad_read(run, state, history, draw):
    reads = [o for o in history if o.f == "read" and o.type is OpType.OK]
    if not reads:
        return None
    r = draw(st.sampled_from(reads))
    acct = draw(st.sampled_from(ACCTS))
    value = {**r.value, acct: r.value[acct] + draw(st.integers(-20, 20).filter(bool))}
    return state, [Op(o.index, o.time, o.process, o.type, o.f, value) if o is r else o
                   for o in history]


CORRUPTIONS: list[Corruption] = [flip_state, applied_twice, applied_when_aborted, change_balance,
                                 drop_record, ok_marked_aborted, fail_marked_committed,
                                 leave_prepared, forget_request, lose_payment, bad_read]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bank_runs(), st.sampled_from(CORRUPTIONS), st.data())
def test_any_single_corruption_is_caught(run: BankRun, corrupt: Corruption, data: st.DataObject) -> None:
    result = corrupt(run, run.state(), run.history, data.draw)
    assume(result is not None)
    state, history = result
    report = check_all(history, state, OPTIONS)
    assert report.valid is False, (corrupt.__name__, report.to_json())
