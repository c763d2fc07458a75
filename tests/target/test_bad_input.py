"""Bad input never breaks a service: junk on the broker, bad settings at start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from harness.model import Outcome
from targets.payments.transport.base import make_transport
from tests.target.helpers import problems, settle, transfer


def test_junk_messages_are_dropped_and_the_inbox_keeps_flowing(start_target, broker, lab):
    adapter, _ = start_target()
    junk = [{"type": "bogus", "id": "j1"}, {"type": "prepare"}, {"type": "prepare", "id": "j2", "amount": "x"},
            {"type": "commit", "id": 7}, {"type": "vote", "id": "j3"}, {"type": "commit", "id": "never-prepared"}]

    async def send_junk() -> None:
        t = make_transport(lab.endpoint(broker).url, client_id=f"{adapter.namespace}-junk")
        await t.connect()
        try:
            for inbox in ("accounts-a", "ledger", "coordinator"):
                for i, m in enumerate(junk):
                    await t.send(f"{adapter.namespace}_{inbox}", m, dedup_id=f"junk-{inbox}-{i}")
        finally:
            await t.close()

    asyncio.run(send_junk())
    if broker == "rabbitmq":  # bytes that are not JSON at all
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(lab.endpoint("rabbitmq").url))
        conn.channel().basic_publish("", f"{adapter.namespace}_accounts-a", b"\x00not json{")
        conn.close()
    assert transfer(adapter, "after-junk", "acct-01", "acct-02", 4).outcome == Outcome.OK
    state = settle(adapter)
    assert problems(state) == []
    assert all(proc.alive for proc in adapter.procs.values())


def test_a_bad_setting_exits_with_a_one_line_message(tmp_path):
    env = {**os.environ, "TXCHAOS_ACCOUNTS": "[1, 2]", "TXCHAOS_BROKER_URL": "amqp://127.0.0.1:1/",
           "TXCHAOS_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "targets.payments.coordinator", "--port", "1"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "TXCHAOS_ACCOUNTS" in r.stderr and "Traceback" not in r.stderr
