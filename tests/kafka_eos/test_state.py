"""The Kafka-topics-to-state mapping (pure): each anomaly lands where a checker sees it."""

from __future__ import annotations

from adapters.kafka_eos_state import build_state
from harness.checkers import CheckOptions, check_all
from harness.model import Op, OpType
from targets.kafka_eos.protocol import Layout

LAY = Layout("ns", ("acct-01", "acct-02"))
ACC, LED, RES = LAY.account_topic, LAY.ledger, LAY.results
INITIAL = {"acct-01": 100, "acct-02": 100}
REQ = {"id": "pay-1", "from": "acct-01", "to": "acct-02", "amount": 10}


def _recs(txn: str, status: str = "ok") -> dict:
    meta = {"payment": "pay-1", "txn": txn, "tid": "ns.tx.p0", "pid": 0, "epoch": 1}
    return {"debit": {**meta, "kind": "debit", "account": "acct-01", "amount": 10},
            "credit": {**meta, "kind": "credit", "account": "acct-02", "amount": 10},
            "ledger": {**meta, "from": "acct-01", "to": "acct-02", "amount": 10},
            "result": {**meta, "status": status}}


def _read(*txns: str, skip: tuple[str, ...] = ()) -> dict:
    out: dict = {(ACC, 0): [], (ACC, 1): [], (LED, 0): [], (RES, 0): [], (RES, 1): []}
    for i, txn in enumerate(txns):
        r = _recs(txn)
        for kind, tp in (("debit", (ACC, 0)), ("credit", (ACC, 1)), ("ledger", (LED, 0)), ("result", (RES, 0))):
            if kind not in skip:
                out[tp].append((i * 2, r[kind]))
    return out


def _history(outcome: OpType) -> list[Op]:
    value = dict(REQ)
    return [Op(0, 1, 0, OpType.INVOKE, "transfer", value), Op(1, 2, 0, outcome, "transfer", value)]


def _state(committed: dict, uncommitted: dict | None = None, stable: dict | None = None,
           journal: list | None = None) -> dict:
    uncommitted = committed if uncommitted is None else uncommitted
    stable = stable or {tp: 1000 for tp in uncommitted}
    return build_state(initial=INITIAL, layout=LAY, committed=committed, uncommitted=uncommitted,
                       stable=stable, requests=[REQ], journal=journal or [])


def _invalid(history: list[Op], state: dict) -> set[str]:
    report = check_all(history, state, CheckOptions(no_negative=True))
    return {v.checker for v in report.verdicts if v.valid is not True}


def test_one_clean_payment_is_valid_everywhere():
    state = _state(_read("t1"))
    assert state["participants"]["accounts-p0"]["balances"] == {"acct-01": 90}
    assert state["coordinator"]["payments"]["pay-1"]["participants"] == ["accounts-p0", "accounts-p1",
                                                                         "ledger", "results"]
    assert _invalid(_history(OpType.OK), state) == set()


def test_a_doubled_payment_is_exactly_once_and_conservation():
    state = _state(_read("t1", "t2"))
    assert state["participants"]["accounts-p0"]["txns"]["pay-1"] == {"state": "committed", "applied": 2}
    assert {"exactly-once", "conservation"} <= _invalid(_history(OpType.OK), state)


def test_a_debit_without_its_credit_is_atomicity():
    state = _state(_read("t1", skip=("credit",)))
    assert "atomicity" in _invalid(_history(OpType.OK), state)


def test_open_transaction_is_prepared_and_aborted_one_is_aborted():
    ru = _read("t1")
    state = _state(_read(), ru, stable={tp: 0 for tp in ru})
    assert state["participants"]["ledger"]["txns"]["pay-1"]["state"] == "prepared"
    state = _state(_read(), ru, stable={tp: 1000 for tp in ru})
    assert state["participants"]["ledger"]["txns"]["pay-1"] == {"state": "aborted", "applied": 0}
    assert _invalid(_history(OpType.INFO), state) == set()


def test_aborted_read_is_evidence_and_exactly_once():
    journal = [{"txn": "t1", "outcome": "begin", "payment": "pay-1", "status": "ok"},
               {"txn": "t1", "outcome": "aborted", "payment": "pay-1"}]
    state = _state(_read("t1"), journal=journal)
    check = state["kafka_eos"]["checks"]["aborted-read"]
    assert check["valid"] is False and check["count"] == 4
    assert "exactly-once" in _invalid(_history(OpType.INFO), state)


def test_lost_committed_write_is_evidence_and_exactly_once():
    journal = [{"txn": "t1", "outcome": "begin", "payment": "pay-1", "status": "ok"},
               {"txn": "t1", "outcome": "committed", "payment": "pay-1"}]
    state = _state(_read("t1", skip=("ledger",)), journal=journal)
    assert state["kafka_eos"]["checks"]["lost-committed-write"]["count"] == 1
    assert state["participants"]["ledger"]["txns"]["pay-1"] == {"state": "committed", "applied": 0}
    assert "exactly-once" in _invalid(_history(OpType.OK), state)


def test_refused_payment_is_aborted_at_results_and_fail_agrees():
    read = _read()
    read[(RES, 0)] = [(0, _recs("t1", status="refused")["result"])]
    state = _state(read)
    assert state["participants"]["results"]["txns"]["pay-1"] == {"state": "aborted", "applied": 0}
    assert _invalid(_history(OpType.FAIL), state) == set()


def test_older_epoch_after_newer_is_a_fencing_order_violation():
    read = _read("t1", "t2")
    newer = dict(read[(LED, 0)][0][1], epoch=5)
    read[(LED, 0)] = [(0, newer), (2, read[(LED, 0)][1][1])]
    state = _state(read)
    assert state["kafka_eos"]["checks"]["fencing-order"]["count"] == 1


def test_a_replayed_result_is_not_an_effect():
    read = _read("t1")
    read[(RES, 0)].append((5, dict(_recs("t2")["result"], replay=True)))
    state = _state(read)
    assert state["participants"]["results"]["txns"]["pay-1"] == {"state": "committed", "applied": 1}
    assert _invalid(_history(OpType.OK), state) == set()
