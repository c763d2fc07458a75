"""The streamed file path and the in-memory path give the same verdicts, evidence and errors.

`check_files` reads files with the fast typed reader (harness/history_columns.py,
harness/checkers/state.py) and falls back to the exact loaders for anything it does
not take as it is; `check_all` checks values in memory. Every input here is checked
both ways and the verdict.json contents compared whole, on correct runs, on every
corruption of the property tests, and on malformed files (the same message).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import harness.checkers.state_stream as state_reader
import harness.history_columns as history_columns
from harness.checkers import CheckOptions, check_all, check_files
from harness.checkers.build import FactsBuilder, feed_state
from harness.checkers.state import load_state
from harness.checkers.state_stream import Unusual as _Unusual
from harness.checkers.state_stream import read_fast as _read_fast
from harness.errors import BadInput
from harness.history import load_history
from harness.model import Op
from tests.core.bank_model import BankRun
from tests.core.test_checkers import correct_run
from tests.core.test_history import INV, OK, T1
from tests.core.test_properties import CORRUPTIONS, Corruption, bank_runs

OPTIONS = CheckOptions(snapshot_reads=True)


def _write(d: Path, history: list[Op], state: dict[str, Any]) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    h, s = d / "history.jsonl", d / "state.json"
    h.write_text("".join(json.dumps(o.to_json()) + "\n" for o in history))
    s.write_text(json.dumps(state))
    return h, s


def _both_ways(h: Path, s: Path, options: CheckOptions = OPTIONS) -> dict[str, Any]:
    """Check the files streamed and loaded; assert the same verdict.json; return it."""
    streamed = check_files(h, s, options).to_json()
    loaded = check_all(load_history(h), load_state(s), options).to_json()
    assert streamed == loaded
    return streamed


def _fast_path_takes(h: Path, s: Path) -> bool:
    """Whether both files go through the fast readers (no fallback to the exact loaders)."""
    try:
        b = _read_fast(s, None)
        history_columns.read_columns(h, b)
    except (_Unusual, history_columns.Unusual):
        return False
    return True


@pytest.mark.parametrize("coordinator", [True, False])
def test_correct_run_same_both_ways_and_fast(tmp_path: Path, coordinator: bool) -> None:
    run = correct_run(coordinator)
    h, s = _write(tmp_path, run.history, run.state())
    assert _fast_path_takes(h, s)
    v = _both_ways(h, s)
    assert v["valid"] is True
    assert v == check_all(run.history, run.state(), OPTIONS).to_json()


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """History blocks of 100 bytes (lines cross block boundaries, columns come in many
    pieces) and state objects decoded 60 bytes at a time."""
    monkeypatch.setattr(history_columns, "BLOCK", 100)
    monkeypatch.setattr(state_reader, "PIECE", 60)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(bank_runs(), st.sampled_from([None, *CORRUPTIONS]), st.data())
def test_same_verdicts_and_evidence_both_ways(tmp_path_factory: pytest.TempPathFactory,
                                              small_blocks: None, run: BankRun,
                                              corrupt: Corruption | None,
                                              data: st.DataObject) -> None:
    state, history = run.state(), run.history
    if corrupt is not None:
        result = corrupt(run, state, history, data.draw)
        assume(result is not None)
        state, history = result
    h, s = _write(tmp_path_factory.mktemp("run"), history, state)
    assert _fast_path_takes(h, s)
    v = _both_ways(h, s)
    assert v == check_all(history, state, OPTIONS).to_json()
    if corrupt is not None:
        assert v["valid"] is False, corrupt.__name__


def _big_run(seed: int, payments: int) -> BankRun:
    """A run with many payments, some unknown outcomes, reads and faults (seed printed on failure)."""
    rng = random.Random(seed)
    run = BankRun()
    accts = sorted(run.balances)
    for n in range(1, payments + 1):
        src, dst = rng.sample(accts, 2)
        amount = rng.randint(1, 40)
        commit = run.balances[src] >= amount and rng.random() < 0.9
        told = rng.choice([None] * 8 + ["info", "open"])
        run.transfer(f"pay-{n:06d}", src, dst, amount, commit=commit, told=told,
                     absent=("ledger",) if not commit and rng.random() < 0.3 else ())
        if rng.random() < 0.1:
            run.read()
        if rng.random() < 0.02:
            run.fault()
    return run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_payments_with_violations_same_both_ways(tmp_path: Path, small_blocks: None,
                                                      seed: int) -> None:
    run = _big_run(seed, 400)
    state = run.state()
    rng = random.Random(seed)
    recs = [(p, pid) for p, r in state["participants"].items() for pid in r["txns"]]
    for p, pid in rng.sample(recs, 30):  # more violations than examples kept: counts matter
        state["participants"][p]["txns"][pid] = {"state": rng.choice(["committed", "aborted",
                                                                      "prepared"]),
                                                 "applied": rng.choice([0, 1, 2])}
    h, s = _write(tmp_path, run.history, state)
    assert _fast_path_takes(h, s), f"seed {seed}"
    v = _both_ways(h, s)
    assert v["valid"] is False
    assert v == check_all(run.history, state, OPTIONS).to_json(), f"seed {seed}"


# ---------------------------------------------------------------- malformed and unusual input

def _lines(d: Path, lines: list[Any]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / "h.jsonl"
    p.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return p


BAD_HISTORIES = [
    [INV, "{not json"],
    [{k: v for k, v in INV.items() if k != "type"}],
    [OK],
    [INV, dict(OK, type="done")],
    [INV, dict(INV, index=1)],
    [INV, dict(OK, type="info"), dict(INV, index=2)],
    [INV, OK, OK | {"index": 2}],
    [dict(INV, value={"id": "x", "from": "a", "to": "b"})],
    [INV, OK, dict(INV, index=2, process=1, value=dict(T1, amount=9))],
    [dict(INV, process="x")],
    [{"index": 0, "time": 1, "process": "nemesis", "type": "ok", "f": "start"}],
    [INV, dict(OK, index=0)],
    [INV, dict(OK, f="read")],
    [INV, OK, dict(INV, index=2, value=dict(T1, amount=0))],
    [INV, OK, dict(INV, index=2, time=-1)],
    [INV, OK, dict(INV, index=2, error=5)],
    [INV, OK, dict(INV, index=None)],
    [INV, OK, dict(INV, index=2, f="read", value=None), dict(OK, index=3, f="read", value={"a": True})],
    [INV, OK, [1, 2]],
]


@pytest.mark.parametrize("lines", BAD_HISTORIES, ids=range(len(BAD_HISTORIES)))
def test_malformed_history_same_message_both_ways(tmp_path: Path, lines: list[Any]) -> None:
    h = _lines(tmp_path, lines)
    s = tmp_path / "s.json"
    s.write_text(json.dumps(correct_run().state()))
    with pytest.raises(BadInput) as loaded:
        load_history(h)
    with pytest.raises(BadInput) as streamed:
        check_files(h, s, OPTIONS)
    assert str(streamed.value) == str(loaded.value)
    assert str(loaded.value).startswith(f"{h}:")


BAD_STATES = [
    {"initial_balances": {}},
    {"participants": {"a": {"txns": {"p": {"state": "done"}}}}},
    {"participants": {"a": {"txns": {"p": {"state": "committed", "applied": -1}}}}},
    {"participants": {"a": {"txns": {"p": {"state": "committed", "applied": None}}}}},
    {"participants": {"a": {"txns": {"p": {"state": ["committed"]}}}}},
    {"participants": {"a": {"balances": {"x": 1}}, "b": {"balances": {"x": 2}}}},
    {"participants": {"a": {"balances": {"x": True}}}},
    {"participants": {"a": {"txns": None}}},
    {"participants": {"a": {}}, "coordinator": {"payments": {"p": {"decision": "yes"}}}},
    {"participants": {"a": {}}, "coordinator": {"payments": {"p": {"participants": "a"}}}},
    {"participants": {"a": {}}, "coordinator": []},
    {"participants": {"a": {}}, "resolution": {"in_doubt": {"p": {"resolved": True}}}},
    {"participants": {"a": {"in_every_payment": None}}},
    [],
    '{\n "participants": {\n  "a": }\n}',
    "",
]


@pytest.mark.parametrize("state", BAD_STATES, ids=range(len(BAD_STATES)))
def test_malformed_state_same_message_both_ways(tmp_path: Path, state: Any) -> None:
    h = _lines(tmp_path, [INV, OK])
    s = tmp_path / "s.json"
    s.write_text(state if isinstance(state, str) else json.dumps(state))
    with pytest.raises(BadInput) as loaded:
        load_state(s)
    with pytest.raises(BadInput) as streamed:
        check_files(h, s, OPTIONS)
    assert str(streamed.value) == str(loaded.value)
    assert str(s) in str(loaded.value)


def test_missing_files_same_message(tmp_path: Path) -> None:
    run = correct_run()
    h, s = _write(tmp_path, run.history, run.state())
    for args, loader, path in [((tmp_path / "no.jsonl", s), load_history, tmp_path / "no.jsonl"),
                               ((h, tmp_path / "no.json"), load_state, tmp_path / "no.json"),
                               ((tmp_path, s), load_history, tmp_path)]:
        with pytest.raises(BadInput) as loaded:
            loader(path)
        with pytest.raises(BadInput) as streamed:
            check_files(*args, OPTIONS)
        assert str(streamed.value) == str(loaded.value)


def test_valid_but_unusual_files_fall_back_to_the_same_verdict(tmp_path: Path) -> None:
    """Inputs the typed readers refuse but the format allows: the exact loaders decide."""
    run = correct_run()
    lines = [o.to_json() for o in run.history]
    for d in lines:
        d.pop("index")  # indexes are optional: the position is the index
    text = "".join(json.dumps(d) + "\n" for d in lines)
    text += '\n   \n{"time": 1e0, "process": 99999999999999999999999, "type": "invoke", "f": "read", "value": NaN}\n'
    h = tmp_path / "h.jsonl"
    h.write_text(text.replace('"time": 1e0', '"time": 99999999999'))
    state = run.state()
    state["participants"]["accounts-a"]["txns"]["pay-000001"]["applied"] = 2**70  # past 64 bits
    state["coordinator"]["payments"]["pay-000002"]["amount"] = "30"  # not used: not an integer
    s = tmp_path / "s.json"
    s.write_text(json.dumps(state))
    assert not _fast_path_takes(h, s)
    v = _both_ways(h, s)
    assert v["checkers"][2]["evidence"]["applied-more-than-once"]["count"] == 1


def test_fast_state_reader_matches_exact_loader(tmp_path: Path) -> None:
    """Same rows, statuses and coordinator columns from the typed reader and from load_state."""
    run = _big_run(7, 200)
    state = run.state()
    for i, (pid, rec) in enumerate(list(state["coordinator"]["payments"].items())):
        if i % 3 == 0:  # some coordinator records name from, to and amount, as the target's do
            rec.update({"from": f"acct-x{i % 7}", "to": "acct-01", "amount": i + 1})
        state["coordinator"]["payments"]["only-coord-" + pid] = rec  # not in the history
    h, s = _write(tmp_path, run.history, state)
    fast = _read_fast(s, None)
    exact = FactsBuilder(load_state(s))
    feed_state(exact, load_state(s))
    ff, fe = fast.finish(history_columns.read_columns(h, fast)), exact.finish(
        history_columns.read_columns(h, exact))
    assert ff.pids.equals(fe.pids) and ff.accounts == fe.accounts and ff.plists == fe.plists
    for k in ("status", "decision", "plist", "src", "dst", "amount", "requested"):
        assert (getattr(ff, k) == getattr(fe, k)).all(), k
    _both_ways(h, s)


@pytest.mark.parametrize("workers", [False, True])
def test_state_pieces_repeated_keys_and_nested_records(tmp_path: Path, small_blocks: None,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       workers: bool) -> None:
    """Cuts between pieces inside a nested object, and a payment id repeated in one
    participant's txns (json.loads keeps the last value, at the first place)."""
    run = correct_run()
    h, s = _write(tmp_path, run.history, run.state())
    text = s.read_text()
    rec = '"pay-000003": {"state": "committed", "applied": 1}'
    assert rec in text
    text = text.replace(rec, rec.replace("}", ', "extra": {"a": {"b": 1}, "c": [{"d": 2}]}}'), 1)
    text = text.replace('"pay-000001": {"state": "committed", "applied": 1}',
                        '"pay-000001": {"state": "committed", "applied": 1}, '
                        '"pay-000009": {"state": "aborted", "applied": 0}, '
                        '"pay-000001": {"state": "aborted", "applied": 2}', 1)
    s.write_text(text.replace(", ", ","))  # compact, so cuts fall between members
    if workers:  # participants' pieces decoded by worker processes, as for big files
        monkeypatch.setattr(state_reader, "PARALLEL_BYTES", 0)
    v = _both_ways(h, s)
    assert v["valid"] is False
    assert v["checkers"][2]["evidence"]["applied-more-than-once"]["examples"][0]["payment"] == "pay-000001"


@pytest.mark.parametrize("seed", [4, 5])
def test_worker_processes_give_the_same_columns(tmp_path: Path, small_blocks: None,
                                                monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Big states are decoded by worker processes: same verdicts as in-process and in memory."""
    run = _big_run(seed, 300)
    state = run.state()
    rng = random.Random(seed)
    for p, pid in rng.sample([(p, pid) for p, r in state["participants"].items()
                              for pid in r["txns"]], 10):
        state["participants"][p]["txns"][pid] = {"state": "prepared", "applied": 1}
    h, s = _write(tmp_path, run.history, state)
    alone = check_files(h, s, OPTIONS).to_json()
    monkeypatch.setattr(state_reader, "PARALLEL_BYTES", 0)
    assert _fast_path_takes(h, s), f"seed {seed}"
    assert _both_ways(h, s) == alone == check_all(run.history, state, OPTIONS).to_json()


def test_progress_lines_in_logs_and_a_bar_on_a_terminal(tmp_path: Path) -> None:
    import io

    from harness.checkers.progress import CheckProgress

    run = _big_run(9, 100)
    h, s = _write(tmp_path, run.history, run.state())
    log = io.StringIO()
    p = CheckProgress(h.stat().st_size + s.stat().st_size, stream=log, tty=False, every=0,
                      quiet_for=0)
    assert check_files(h, s, OPTIONS, progress=p).valid is True
    p.close()
    lines = log.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("checking: ") for line in lines)
    assert lines[-1].startswith("checking: 100% of") and "events" in lines[-1]
    term = io.StringIO()
    bar = CheckProgress(1000, stream=term, tty=True, every=0, quiet_for=0)
    bar.advance(500, 10)
    bar.close()
    assert "\r\x1b[2Kchecking [############............]  50% of 1.0kB" in term.getvalue()
    assert "left" in term.getvalue() and term.getvalue().endswith("\r\x1b[2K")
    quiet = io.StringIO()
    short = CheckProgress(1000, stream=quiet, tty=False)  # a check under a second: nothing
    short.advance(1000)
    short.close()
    assert quiet.getvalue() == ""
