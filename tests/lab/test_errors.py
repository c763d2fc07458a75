"""Errors a user can fix: bad names, bad configs, missing programs, failing services."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.errors import BadInput, InfraError
from harness.lab import Lab, binaries
from harness.lab.config import host_port


def test_unknown_service_lists_choices(tmp_path):
    with pytest.raises(BadInput, match="choose from rabbitmq, kafka, nats, toxiproxy"):
        Lab(tmp_path).ensure("redis")


def test_bad_lab_option(tmp_path):
    with pytest.raises(BadInput, match="local, external"):
        Lab.from_option("nowhere.json", root=tmp_path)
    bad = tmp_path / "lab.json"
    bad.write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        Lab.from_option(str(bad), root=tmp_path)


def test_external_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("TXCHAOS_RABBITMQ_URL", raising=False)
    for var in ("TXCHAOS_KAFKA_BOOTSTRAP", "TXCHAOS_NATS_URL", "TXCHAOS_TOXIPROXY_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BadInput, match="TXCHAOS_RABBITMQ_URL"):
        Lab.from_option("external", root=tmp_path)
    monkeypatch.setenv("TXCHAOS_KAFKA_BOOTSTRAP", "127.0.0.1:1,127.0.0.1:2")
    lab = Lab.from_option("external", root=tmp_path)
    assert not lab.is_local and lab.process("kafka") is None
    with pytest.raises(InfraError, match="not reachable"):
        lab.endpoint("kafka")
    with pytest.raises(InfraError, match="no toxiproxy: set toxiproxy_url .* TXCHAOS_TOXIPROXY_URL"):
        lab.ensure("nats")
    cfg = tmp_path / "lab.json"
    cfg.write_text(json.dumps({"nats_url": "nats://127.0.0.1:1"}))
    assert Lab.from_option(str(cfg), root=tmp_path).external == {"nats": "nats://127.0.0.1:1"}


def test_host_port():
    assert host_port("kafka", "127.0.0.1:9093,127.0.0.1:9094") == ("127.0.0.1", 9093)
    assert host_port("rabbitmq", "amqp://guest:guest@127.0.0.1/%2F") == ("127.0.0.1", 5672)
    with pytest.raises(BadInput):
        host_port("nats", "nats://127.0.0.1:notaport")


def test_missing_program_names_bootstrap(tmp_path, monkeypatch):
    monkeypatch.setenv("TXCHAOS_KAFKA_JARS", str(tmp_path / "none"))
    with pytest.raises(InfraError, match=r"Kafka jars not found .*scripts/bootstrap.sh"):
        binaries.kafka_jars()
    monkeypatch.setenv("TXCHAOS_TOXIPROXY_BIN", str(tmp_path / "none"))
    lab = Lab(tmp_path / "lab")
    try:
        with pytest.raises(InfraError, match="scripts/bootstrap.sh"):
            lab.ensure("toxiproxy")
    finally:
        lab.down()


def test_failed_start_shows_log_tail(tmp_path, monkeypatch):
    broken = tmp_path / "toxiproxy-server"
    broken.write_text("#!/bin/sh\necho 'listen: permission denied (from the test)'\nexit 7\n")
    broken.chmod(0o755)
    monkeypatch.setenv("TXCHAOS_TOXIPROXY_BIN", str(broken))
    lab = Lab(tmp_path / "lab")
    try:
        with pytest.raises(InfraError, match=r"(?s)exited with code 7.*permission denied \(from the test\)"):
            lab.ensure("toxiproxy")
    finally:
        lab.down()


def test_cli_bad_input_is_one_line_and_exit_3(tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness", "lab", "up", "redis", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3
    assert "unknown service 'redis'" in r.stderr and "Traceback" not in r.stderr
