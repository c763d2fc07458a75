"""Clustered brokers leave nothing behind: `lab down` removes their nodes' processes,
their peer proxies and their clients' proxies."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.lab import Lab
from tests.lab.conftest import live_pids_mentioning


@pytest.mark.parametrize("service, proxies", [("nats", 3 + 3), ("kafka", 12 + 3), ("rabbitmq", 6 + 3)])
def test_down_leaves_no_process_and_no_proxy(tmp_path: Path, service: str, proxies: int) -> None:
    lab = Lab(tmp_path / "lab", cluster=3)
    lab.ensure(service)
    api = lab.toxiproxy
    lab.links(service, "someone")
    assert len(api.proxies()) == proxies  # the peer proxies and one per node for the client
    lab.down(service)
    assert api.proxies() == {}
    assert not live_pids_mentioning(str(tmp_path / "lab" / f"{service}-"))
    lab.down()
    assert not live_pids_mentioning(str(tmp_path / "lab"))
