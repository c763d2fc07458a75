"""Fixtures of the adapter tests: the Go example's binary, built as scripts/bootstrap.sh builds it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GO_EXAMPLE = REPO / "examples" / "go-payments"


@pytest.fixture(scope="session")
def gopay() -> Path:
    """The gopay binary in .cache/bin, rebuilt only when the Go sources changed."""
    from harness.lab.binaries import CACHE

    out = CACHE / "bin"
    result = subprocess.run([str(GO_EXAMPLE / "build.sh"), str(out)], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        pytest.fail(f"cannot build examples/go-payments (scripts/bootstrap.sh installs Go): "
                    f"{result.stderr.strip()}", pytrace=False)
    return out / "gopay"
