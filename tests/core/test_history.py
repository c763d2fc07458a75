"""HistoryRecorder rules and the history/state loaders' error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.history import HistoryRecorder, load_history, load_state
from harness.model import OpType

T1 = {"id": "pay-000001", "from": "acct-01", "to": "acct-02", "amount": 5}


def _ticks():
    n = iter(range(0, 10**9, 1000))
    return lambda: next(n)


def test_recorder_streams_jsonl_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path, clock=_ticks()) as rec:
        inv = rec.invoke(0, "transfer", T1)
        ok = rec.complete(inv, OpType.OK)
        rec.nemesis("start", {"fault": "partition", "targets": ["ledger"]})
        inv2 = rec.invoke(1, "read", None)
        # streamed before close: a crashed run still leaves its history
        assert len(path.read_text().splitlines()) == 4
        rec.complete(inv2, "info", error="timeout")
    assert ok.value == T1 and ok.index == 1 and ok.time == 1000
    loaded = load_history(path)
    assert [o.to_json() for o in loaded] == [o.to_json() for o in rec.ops]
    assert loaded[2].process == "nemesis" and loaded[4].error == "timeout"


def test_recorder_enforces_semantics() -> None:
    rec = HistoryRecorder()
    inv = rec.invoke(0, "transfer", T1)
    with pytest.raises(ValueError, match="already has an open"):
        rec.invoke(0, "transfer", T1)
    rec.complete(inv, OpType.INFO)
    with pytest.raises(ValueError, match="retired"):
        rec.invoke(0, "transfer", T1)
    with pytest.raises(ValueError, match="not an open invoke"):
        rec.complete(inv, OpType.OK)
    with pytest.raises(ValueError, match="ok, fail or info"):
        rec.complete(rec.invoke(1, "read", None), OpType.INVOKE)


def _write(tmp_path: Path, lines: list) -> Path:
    p = tmp_path / "h.jsonl"
    p.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return p


INV = {"index": 0, "time": 1, "process": 0, "type": "invoke", "f": "transfer", "value": T1}
OK = {"index": 1, "time": 2, "process": 0, "type": "ok", "f": "transfer", "value": T1}


@pytest.mark.parametrize("lines, message", [
    ([INV, "{not json"], r"h.jsonl:2: bad JSON"),
    ([{k: v for k, v in INV.items() if k != "type"}], r"h.jsonl:1: missing required field 'type'"),
    ([OK], r"h.jsonl:1: 'ok' for process 0 without an open invoke"),
    ([INV, dict(OK, type="done")], r"h.jsonl:2: unknown type 'done'"),
    ([INV, dict(INV, index=1)], r"h.jsonl:2: process 0 invokes while its op at index 0"),
    ([INV, dict(OK, type="info"), dict(INV, index=2)], r"h.jsonl:3: process 0 invokes after its 'info'"),
    ([INV, OK, OK | {"index": 2}], r"h.jsonl:3: 'ok' for process 0 without an open invoke"),
    ([dict(INV, value={"id": "x", "from": "a", "to": "b"})], r"h.jsonl:1: transfer value is missing 'amount'"),
    ([INV, OK, dict(INV, index=2, process=1, value=dict(T1, amount=9))], r"already used for a different transfer"),
    ([dict(INV, process="x")], r"'process' must be an integer"),
    ([{"index": 0, "time": 1, "process": "nemesis", "type": "ok", "f": "start"}], r"nemesis events must have type 'info'"),
    ([INV, dict(OK, index=0)], r"index 0 does not increase"),
])
def test_load_history_rejects_bad_input(tmp_path: Path, lines: list, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_history(_write(tmp_path, lines))


def test_load_history_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load_history(tmp_path / "nope.jsonl")


GOOD_STATE = {
    "initial_balances": {"acct-01": 100},
    "participants": {"accounts-a": {"txns": {"pay-1": {"state": "committed", "applied": 1}},
                                    "balances": {"acct-01": 100}}},
}


@pytest.mark.parametrize("state, message", [
    ({"initial_balances": {}}, r"missing 'participants'"),
    ({"participants": {"a": {"txns": {"p": {"state": "done"}}}}}, r"participants.a.txns.p.state: must be"),
    ({"participants": {"a": {"txns": {"p": {"state": "committed", "applied": -1}}}}}, r"applied: must be"),
    ({"participants": {"a": {"balances": {"x": 1}}, "b": {"balances": {"x": 2}}}}, r"also held by"),
    ({"participants": {"a": {}}, "coordinator": {"payments": {"p": {"decision": "yes"}}}}, r"decision: must be"),
    ({"participants": {"a": {}}, "resolution": {"in_doubt": {"p": {"resolved": True}}}}, r"blocked_s: required"),
])
def test_load_state_rejects_bad_input(tmp_path: Path, state: dict, message: str) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(state))
    with pytest.raises(BadInput, match=message):
        load_state(p)


def test_load_state_bad_json_names_line(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{\n "participants": {\n  "a": }\n}')
    with pytest.raises(BadInput, match=r"s.json:3: bad JSON"):
        load_state(p)


def test_load_state_accepts_good_state(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(GOOD_STATE))
    assert load_state(p) == GOOD_STATE
