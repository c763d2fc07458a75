"""Ports handed out to labs: never one another live harness claimed, even before it binds."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.lab import ports


class _Draws:
    """Random draws that cycle through the given ports (a fake of pure choice only)."""

    def __init__(self, *choices: int) -> None:
        self.next = itertools.cycle(choices).__next__

    def randint(self, low: int, high: int) -> int:
        return self.next()


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ports, "CLAIMS", tmp_path / "claims")
    monkeypatch.setattr(ports, "_GIVEN", set())
    (tmp_path / "claims").mkdir()
    return tmp_path / "claims"


def test_a_port_another_live_harness_claimed_is_never_handed_out(claims: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = ports.free_port(), ports.free_port()  # two ports free now
    (claims / str(a)).unlink()
    (claims / str(b)).unlink()
    ports._GIVEN.clear()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (claims / str(a)).write_text(str(other.pid))  # claimed by a live harness, not bound yet
        monkeypatch.setattr(ports, "_RANDOM", _Draws(a, b))
        assert ports.free_port() == b
        assert (claims / str(b)).read_text() == str(os.getpid())
        with pytest.raises(RuntimeError, match="no free port"):
            ports.free_port()  # a is the other's, b already ours
    finally:
        other.kill()
        other.wait()


def test_the_claim_of_a_harness_that_is_gone_is_taken_over(claims: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = ports.free_port()
    ports._GIVEN.clear()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (claims / str(a)).write_text(str(gone.pid))
    monkeypatch.setattr(ports, "_RANDOM", _Draws(a))
    assert ports.free_port() == a
    assert (claims / str(a)).read_text() == str(os.getpid())
