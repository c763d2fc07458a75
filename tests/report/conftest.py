"""Shared fixtures of the report tests: the hand-built fixture run directories."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def violated_run_dir() -> Path:
    """A hand-built run (fixture) where atomicity and exactly-once are violated."""
    return FIXTURES / "fixture-violated-run"


@pytest.fixture
def valid_run_dir() -> Path:
    """A hand-built run (fixture) where every checker passed."""
    return FIXTURES / "fixture-valid-run"
