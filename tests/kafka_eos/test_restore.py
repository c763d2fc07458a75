"""A deterministic exposure of the read_uncommitted restore: an aborted credit.

A transaction that credits acct-01 with 50 is written and aborted (as a
fenced or crashed processor's would be), then acct-01, holding 10, is asked
to pay 40. The correct processor refuses; the mutant counts the aborted
credit as money and overdraws, which no-negative (and only it) must catch.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from adapters.base import TargetContext
from adapters.registry import load_adapter
from harness.checkers import CheckOptions, check_all
from harness.model import Op, OpType, Outcome, Transfer
from targets.kafka_eos.protocol import encode

ACCOUNTS = {"acct-01": 10, "acct-02": 0, "acct-03": 0, "acct-04": 0}


async def _aborted_credit(bootstrap: str, topic: str, partition: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"test-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, encode({"payment": "ghost", "txn": "ghost", "kind": "credit",
                                                    "account": "acct-01", "amount": 50}), partition=partition)
        await producer.abort_transaction()
    finally:
        await producer.stop()


@pytest.mark.parametrize("mutant", [None, "uncommitted-restore"])
def test_aborted_credit_is_not_money(lab, tmp_path, eos_target, mutant):
    adapter = load_adapter(eos_target)()
    ctx = TargetContext(lab=lab, run_dir=tmp_path, accounts=ACCOUNTS, mutant=mutant)
    try:
        adapter.start(ctx)
        lay = adapter.layout
        t = Transfer("pay-1", "acct-01", "acct-02", 40)

        async def scenario():
            await _aborted_credit(adapter.bootstrap, lay.account_topic, lay.account_partition("acct-01"))
            result = await adapter.transfer(t)
            state = await adapter.snapshot()
            await adapter.aclose()
            return result, state

        result, state = asyncio.run(scenario())
    finally:
        adapter.stop()
        ctx.close()
    done = {Outcome.OK: OpType.OK, Outcome.FAIL: OpType.FAIL, Outcome.UNKNOWN: OpType.INFO}[result.outcome]
    history = [Op(0, 1, 0, OpType.INVOKE, "transfer", t.to_json()), Op(1, 2, 0, done, "transfer", t.to_json())]
    report = check_all(history, state, CheckOptions(no_negative=True))
    bad = {v.checker for v in report.verdicts if v.valid is not True}
    print(mutant, result, bad)
    if mutant is None:
        assert result.outcome == Outcome.FAIL and bad == set(), (result, report.to_json())
    else:
        assert result.outcome == Outcome.OK and bad == {"no-negative"}, (result, report.to_json())
