"""Pure parts of a run's set-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import run, runconfig
from harness.runconfig import RunConfig, default_run_dir


def test_two_runs_started_in_the_same_second_get_two_run_directories(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runconfig.time, "strftime", lambda fmt: "20261207-141421")
    config = RunConfig(target="nats", mutant="non-durable-broker")
    first = default_run_dir(config, 1)  # as `txchaos run` names it
    second = run._run_dir(config, 1)  # as run_chaos does without --out
    assert first == tmp_path / "runs" / "20261207-141421-nats-non-durable-broker-seed1"
    assert second == first.with_name(first.name + "-2") and second.is_dir()
    assert default_run_dir(config, 1).name.endswith("-seed1-3")
