"""Pure logic of the target and its adapter: failpoint specs, validation, answer mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.reference import classify, failpoint_action
from harness.errors import BadInput
from harness.model import Outcome
from targets.payments.config import Config
from targets.payments.failpoints import SpecError, parse
from targets.payments.mutants import MUTANTS, Hooks, Mutant, hooks_for
from targets.payments.validate import validate_payment


def test_failpoint_specs_parse_with_triggers():
    armed = parse("after-vote=crash@2; after-log-decision=delay(200)%0.5;before-apply=error;after-log-payment")
    by = {a.point: a for a in armed}
    assert (by["after-vote"].action, by["after-vote"].nth) == ("crash", 2)
    assert (by["after-log-decision"].delay_ms, by["after-log-decision"].nth,
            by["after-log-decision"].probability) == (200, None, 0.5)
    assert (by["before-apply"].action, by["before-apply"].nth) == ("error", 1)
    assert by["after-log-payment"].action == "crash"


@pytest.mark.parametrize("spec", ["nowhere=crash", "after-vote=explode", "after-vote=crash%2", "after-vote=delay(x)"])
def test_bad_failpoint_specs_are_refused(spec):
    with pytest.raises(SpecError):
        parse(spec)


def test_adapter_builds_specs_the_target_parses():
    assert failpoint_action("delay", ms=150, nth=3) == "delay(150)@3"
    assert parse(f"after-vote={failpoint_action('crash', probability=0.25)}")[0].probability == 0.25
    with pytest.raises(BadInput):
        failpoint_action("explode")


ACCOUNTS = {"acct-01": 10, "acct-02": 10, "acct-03": 10}


@pytest.mark.parametrize("body, reason", [
    ({"from": "acct-01", "to": "acct-02", "amount": 1}, "missing"),
    ({"id": "x", "from": "acct-01", "to": "nope", "amount": 1}, "unknown account"),
    ({"id": "x", "from": "acct-01", "to": "acct-01", "amount": 1}, "same account"),
    ({"id": "x", "from": "acct-01", "to": "acct-02", "amount": 0}, "positive"),
    ({"id": "x", "from": "acct-01", "to": "acct-02", "amount": True}, "positive"),
    ("text", "JSON object"),
])
def test_malformed_payments_have_a_reason(body, reason):
    req, problem = validate_payment(body, ACCOUNTS)
    assert req == {} and problem is not None and reason in problem


def test_valid_payment_passes():
    assert validate_payment({"id": "p", "from": "acct-01", "to": "acct-02", "amount": 3}, ACCOUNTS) == (
        {"id": "p", "from": "acct-01", "to": "acct-02", "amount": 3}, None)


def test_accounts_alternate_over_shards():
    cfg = Config(name="coordinator", http_port=1, broker_url="amqp://x", data_dir=Path("/tmp"), accounts=ACCOUNTS)
    assert [cfg.shard_of(a) for a in sorted(ACCOUNTS)] == ["accounts-a", "accounts-b", "accounts-a"]
    assert cfg.participants_of("acct-01", "acct-02") == ["accounts-a", "accounts-b", "ledger", "notifications"]
    assert cfg.participants_of("acct-01", "acct-03") == ["accounts-a", "ledger", "notifications"]


@pytest.mark.parametrize("status, body, outcome", [
    (200, {"status": "committed"}, Outcome.OK),
    (409, {"status": "aborted", "reason": "insufficient-funds"}, Outcome.FAIL),
    (400, {"error": "bad"}, Outcome.FAIL),
    (202, {"status": "pending"}, Outcome.UNKNOWN),
    (500, None, Outcome.UNKNOWN),
    (200, {"status": "pending"}, Outcome.UNKNOWN),
])
def test_only_definite_answers_are_ok_or_fail(status, body, outcome):
    assert classify(status, body).outcome == outcome


def test_no_mutant_switches_on_no_hook():
    assert hooks_for(None) == Hooks() == hooks_for("none")
    with pytest.raises(ValueError, match="unknown mutant 'nope'"):
        hooks_for("nope")


def test_every_mutant_departs_somewhere_of_its_own():
    seen: dict[Hooks, str] = {}
    for name in MUTANTS:
        hooks = hooks_for(name)
        assert hooks != Hooks(), name
        assert hooks not in seen, f"{name} switches on the same hooks as {seen.get(hooks)}"
        seen[hooks] = name


def test_a_misspelt_hook_is_refused():
    with pytest.raises(TypeError, match="no hook"):
        Mutant("typo", "does", "mistake", {"skip_dedupe": True})


def test_self_test_and_docs_cover_every_mutant():
    from suites.selftest_plan import PLAN

    assert set(PLAN) == set(MUTANTS)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reference-target.md").read_text()
    rows = {line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| ")}
    assert set(MUTANTS) <= rows, set(MUTANTS) - rows


def test_the_ledger_reads_applied_from_its_journal_and_never_hides_a_half_entry(tmp_path: Path):
    import sqlite3

    from targets.payments.effects import Ledger

    cfg = Config(name="ledger", http_port=0, broker_url="", data_dir=tmp_path, accounts={"a": 10, "b": 10})
    ledger, db = Ledger(cfg), sqlite3.connect(":memory:")
    db.executescript(Ledger.schema)

    def pay(pid: str, part: int | None = None) -> None:
        ledger.commit(db, {"id": pid, "source": "a", "dest": "b", "amount": 3}, part)

    pay("once")
    pay("twice"), pay("twice")
    pay("half", 1)  # a crash between the debit and the credit
    pay("one-and-a-half"), pay("one-and-a-half", 1)
    assert ledger.applied(db) == {"once": 1, "twice": 2, "half": 0, "one-and-a-half": 2}


def test_a_nats_url_may_list_the_servers_of_a_cluster() -> None:
    from targets.payments.transport.nats import parse_nats_url

    assert parse_nats_url("nats://127.0.0.1:4222") == (["nats://127.0.0.1:4222"], "")
    three = "nats://127.0.0.1:1,nats://127.0.0.1:2,nats://127.0.0.1:3/t1"
    assert parse_nats_url(three) == ([f"nats://127.0.0.1:{p}" for p in (1, 2, 3)], "t1")
    with pytest.raises(ValueError, match="bad nats URL"):
        parse_nats_url("nats://127.0.0.1:1,amqp://127.0.0.1:2")


def test_a_rabbitmq_url_may_list_the_nodes_of_a_cluster_and_then_declares_quorum_queues() -> None:
    from targets.payments.transport.rabbitmq import _Nodes

    class Channel:  # records what the transport declares (no broker needed for this)
        def __init__(self) -> None:
            self.declared: list[dict] = []

        def queue_declare(self, **kw: object) -> None:
            self.declared.append(kw)

    one = _Nodes("amqp://guest:guest@127.0.0.1:5672/%2F", "coordinator")
    assert not one.clustered and [one.take() for _ in range(2)] == [one.urls[0]] * 2
    urls = [f"amqp://guest:guest@127.0.0.1:{p}/%2F" for p in (1, 2, 3)]
    three = _Nodes(",".join(urls), "accounts-a")
    taken = [three.take() for _ in range(6)]
    assert three.clustered and sorted(taken[:3]) == urls and taken[3:] == taken[:3]  # each in turn
    assert len({_Nodes(",".join(urls), c).take() for c in ("a", "b", "c", "d", "e", "f")}) > 1  # clients spread
    ch = Channel()
    three.declare(ch, "inbox")
    one.declare(ch, "inbox")
    assert ch.declared == [{"queue": "inbox", "durable": True, "arguments": {"x-queue-type": "quorum"}},
                           {"queue": "inbox", "durable": True, "arguments": None}]


def test_delivery_is_resend_or_broker_and_the_non_durable_mutant_trusts_the_broker(monkeypatch) -> None:
    from targets.payments.config import ConfigError, load

    argv = ["--name", "ledger", "--port", "1", "--broker", "nats://127.0.0.1:4222", "--data-dir", "/tmp"]
    monkeypatch.setenv("TXCHAOS_ACCOUNTS", '{"a": 1}')
    monkeypatch.delenv("TXCHAOS_MUTANT", raising=False)
    monkeypatch.delenv("TXCHAOS_DELIVERY", raising=False)
    assert load(argv).delivery == "resend" and not load(argv).trusts_broker
    monkeypatch.setenv("TXCHAOS_DELIVERY", "broker")
    assert load(argv).trusts_broker
    monkeypatch.setenv("TXCHAOS_DELIVERY", "fire-and-forget")
    with pytest.raises(ConfigError, match="TXCHAOS_DELIVERY='fire-and-forget': choose one of resend, broker"):
        load(argv)
    monkeypatch.delenv("TXCHAOS_DELIVERY")
    monkeypatch.setenv("TXCHAOS_MUTANT", "non-durable-broker")
    assert load(argv).trusts_broker and load(argv).hooks.broker_non_durable
