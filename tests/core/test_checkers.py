"""Each checker passes correct runs and catches a crafted violation with the right evidence."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checkers import (CheckOptions, check_agreement, check_all, check_atomicity,
                              check_conservation, check_exactly_once, check_no_negative,
                              check_resolution)
from harness.model import Op, OpType
from tests.core.bank_model import BankRun


def correct_run(coordinator: bool = True) -> BankRun:
    run = BankRun(coordinator=coordinator)
    run.transfer("pay-000001", "acct-01", "acct-03", 30)               # ok
    run.transfer("pay-000002", "acct-02", "acct-04", 500)              # refused: no funds
    run.fault()
    run.transfer("pay-000003", "acct-03", "acct-02", 10, commit=True, told="info")   # info, took effect
    run.transfer("pay-000004", "acct-04", "acct-01", 10, commit=False, told="info",  # info, did not
                 absent=("ledger", "notifications"))
    run.read()
    run.transfer("pay-000005", "acct-01", "acct-02", 5, commit=True, told="open")    # never completed
    run.blocked("pay-000003", 2.5)
    return run


@pytest.mark.parametrize("coordinator", [True, False])
def test_correct_run_passes_every_checker(coordinator: bool) -> None:
    run = correct_run(coordinator)
    report = check_all(run.history, run.state(), CheckOptions(snapshot_reads=True))
    assert report.valid is True, report.to_json()
    assert [v.checker for v in report.verdicts] == [
        "atomicity", "client-agreement", "exactly-once", "conservation", "no-negative", "resolution"]
    res = report.verdict("resolution")
    assert res.evidence["blocked"].examples[0]["blocked_s"] == 2.5
    assert "longest blocked 2.5 s" in res.summary


def _examples(verdict: Any, kind: str) -> list[dict[str, Any]]:
    assert verdict.valid is False, verdict
    assert kind in verdict.evidence, verdict.evidence
    return verdict.evidence[kind].examples


def test_atomicity_mixed_outcome() -> None:
    run = correct_run()
    s = run.state()
    s["participants"]["ledger"]["txns"]["pay-000001"] = {"state": "aborted", "applied": 0}
    ex = _examples(check_atomicity(run.history, s), "mixed-outcome")
    assert ex[0]["payment"] == "pay-000001" and ex[0]["states"]["ledger"] == "aborted"


def test_atomicity_missing_record_without_coordinator() -> None:
    run = correct_run(coordinator=False)
    s = run.state()
    del s["participants"]["notifications"]["txns"]["pay-000003"]
    ex = _examples(check_atomicity(run.history, s), "missing-record")
    assert ex[0]["payment"] == "pay-000003" and "notifications" in ex[0]["detail"]


def test_atomicity_unknown_when_participant_missing_from_state() -> None:
    run = correct_run()
    s = run.state()
    del s["participants"]["notifications"]
    v = check_atomicity(run.history, s)
    assert v.valid == "unknown"
    assert v.evidence["participant-not-in-state"].count == 3  # the three committed payments


def test_agreement_ok_but_aborted() -> None:
    run = correct_run()
    s = run.state()
    for p in s["participants"].values():
        if "pay-000001" in p["txns"]:
            p["txns"]["pay-000001"] = {"state": "aborted", "applied": 0}
    ex = _examples(check_agreement(run.history, s), "ok-not-committed")
    assert ex[0]["payment"] == "pay-000001" and ex[0]["indexes"] == [1]


def test_agreement_payment_lost_and_committed_not_requested() -> None:
    run = correct_run()
    s = run.state()
    for p in s["participants"].values():
        p["txns"].pop("pay-000001", None)
    s["coordinator"]["payments"]["pay-999999"] = {"decision": "commit", "participants": ["ledger"]}
    v = check_agreement(run.history, s)
    assert _examples(v, "payment-lost")[0]["payment"] == "pay-000001"
    assert _examples(v, "committed-not-requested")[0]["payment"] == "pay-999999"


def test_agreement_fail_but_committed_and_info_split() -> None:
    run = correct_run()
    s = run.state()
    s["participants"]["ledger"]["txns"]["pay-000002"] = {"state": "committed", "applied": 1}
    s["participants"]["ledger"]["txns"]["pay-000004"] = {"state": "committed", "applied": 1}
    v = check_agreement(run.history, s)
    assert _examples(v, "fail-but-committed")[0]["payment"] == "pay-000002"
    assert _examples(v, "info-split")[0]["payment"] == "pay-000004"


def test_exactly_once_duplicates_and_unapplied() -> None:
    run = correct_run()
    s = run.state()
    s["participants"]["accounts-a"]["txns"]["pay-000001"]["applied"] = 2
    s["participants"]["ledger"]["txns"]["pay-000003"]["applied"] = 0
    s["participants"]["ledger"]["txns"]["pay-000002"]["applied"] = 1
    v = check_exactly_once(run.history, s)
    assert _examples(v, "applied-more-than-once")[0]["participants"] == ["accounts-a"]
    assert _examples(v, "committed-not-applied")[0]["payment"] == "pay-000003"
    assert _examples(v, "aborted-but-applied")[0]["payment"] == "pay-000002"


def test_exactly_once_unknown_without_applied() -> None:
    run = correct_run()
    s = run.state()
    del s["participants"]["ledger"]["txns"]["pay-000001"]["applied"]
    assert check_exactly_once(run.history, s).valid == "unknown"


def test_conservation_balance_changed() -> None:
    run = correct_run()
    s = run.state()
    s["participants"]["accounts-b"]["balances"]["acct-03"] += 7
    v = check_conservation(run.history, s)
    assert _examples(v, "total-changed")[0]["actual"] == 407
    ex = _examples(v, "balance-mismatch")[0]
    assert ex["account"] == "acct-03" and ex["actual"] - ex["expected"] == 7


def test_conservation_snapshot_reads() -> None:
    run = correct_run()
    history = run.history
    bad = [Op(o.index, o.time, o.process, o.type, o.f, {**o.value, "acct-01": 0})
           if o.f == "read" and o.type is OpType.OK else o for o in history]
    assert check_conservation(bad, run.state()).valid is True  # not promised: not checked
    v = check_conservation(bad, run.state(), CheckOptions(snapshot_reads=True))
    assert _examples(v, "read-total-wrong")[0]["expected"] == 400


def test_conservation_unknown_without_initial_balances() -> None:
    run = correct_run()
    s = run.state()
    del s["initial_balances"]
    assert check_conservation(run.history, s).valid == "unknown"


def test_no_negative() -> None:
    run = BankRun()
    run.transfer("pay-000001", "acct-01", "acct-02", 150, commit=True)  # an overdraft accepted
    v = check_no_negative(run.history, run.state())
    assert _examples(v, "negative-balance")[0] == {
        "account": "acct-01", "participants": ["accounts-a"], "balance": -50,
        "detail": "acct-01 ends at -50"}
    assert check_conservation(run.history, run.state()).valid is True
    names = [v.checker for v in check_all(run.history, run.state(),
                                          CheckOptions(no_negative=False)).verdicts]
    assert "no-negative" not in names


def test_resolution_left_prepared_and_late() -> None:
    run = correct_run()
    run.blocked("pay-000001", 45.0)
    s = run.state()
    s["participants"]["ledger"]["txns"]["pay-000005"] = {"state": "prepared", "applied": 0}
    s["resolution"]["in_doubt"]["pay-000005"] = {"participants": ["ledger"], "blocked_s": 60.0,
                                                  "resolved": False}
    v = check_resolution(run.history, s)
    ex = _examples(v, "left-prepared")[0]
    assert ex["payment"] == "pay-000005" and ex["blocked_s"] == 60.0
    assert _examples(v, "resolved-late")[0]["payment"] == "pay-000001"
    assert v.evidence["blocked"].severity == "info"


def test_resolution_examples_do_not_depend_on_the_order_the_state_was_read_in() -> None:
    """A run's verdict and an offline re-check of its directory read the in-doubt payments
    in different orders; with more than the examples kept, both must keep the same ones."""
    run = correct_run()
    for i in range(6, 10):
        run.transfer(f"pay-{i:06d}", "acct-01", "acct-02", 1)
    for i in (1, 2, 3, 4, 6, 7, 8, 9):  # more than MAX_EXAMPLES, all blocked as long
        run.blocked(f"pay-{i:06d}", 0.5)
    s = run.state()
    backwards = {**s, "resolution": {**s["resolution"],
                                     "in_doubt": dict(reversed(list(s["resolution"]["in_doubt"].items())))}}
    assert list(backwards["resolution"]["in_doubt"]) != list(s["resolution"]["in_doubt"])
    a, b = check_resolution(run.history, s), check_resolution(run.history, backwards)
    assert a.to_json() == b.to_json() and a.evidence["blocked"].count == 8


def test_report_combines_false_over_unknown() -> None:
    run = correct_run()
    s = run.state()
    del s["initial_balances"]
    s["participants"]["accounts-a"]["txns"]["pay-000001"]["applied"] = 3
    report = check_all(run.history, s)
    assert report.verdict("conservation").valid == "unknown"
    assert report.valid is False
    js = report.to_json()
    ev = js["checkers"][2]["evidence"]["applied-more-than-once"]
    assert js["valid"] is False and ev["count"] == 1 and ev["severity"] == "violation"
